"""Engine.IO's request errors: the code, the JSON body and what Node reports as ``connection_error``."""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["SessionError"]


class SessionError(Exception):
    """A request names a session it may not use; ``code`` is Engine.IO's error code."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    MESSAGES = {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
    }

    def __init__(self, code: int, context: str = "", details: Mapping[str, str] | None = None) -> None:
        super().__init__(self.MESSAGES[code] + (f": {context}" if context else ""))
        self.code = code
        self.context = context
        """A description for the log."""
        if details is None:
            details = {"message": context} if code == self.FORBIDDEN and context else {}
        self.details = details
        """What went wrong under the keys of Node's ``connection_error`` context (``sid``, ``name``, ...)."""

    @property
    def status(self) -> int:
        """The HTTP status of the answer: 403 for ``FORBIDDEN``, else 400."""
        return 403 if self.code == self.FORBIDDEN else 400

    def body(self) -> bytes:
        """The JSON error body Engine.IO servers answer with."""
        return json.dumps({"code": self.code, "message": self.MESSAGES[self.code]}).encode()


def id_error(why: str) -> SessionError:
    """The error of a ``generate_id`` hook that failed or gave an unusable id (Node's ``ID_GENERATION_ERROR``)."""
    return SessionError(SessionError.BAD_REQUEST, why, {"name": "ID_GENERATION_ERROR"})
