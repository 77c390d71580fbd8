"""Engine.IO's request errors: the code, the JSON body and what Node reports as ``connection_error``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

__all__ = ["SessionError"]

_SURROGATE = re.compile(r"[\ud800-\udfff]")
"""A code point UTF-8 cannot carry, which only an application's reason could hold."""


class SessionError(Exception):
    """A request names a session it may not use; ``code`` is Engine.IO's error code."""

    UNKNOWN_TRANSPORT = 0
    """``transport`` is neither polling nor websocket."""
    UNKNOWN_SID = 1
    """No such session (or it closed)."""
    BAD_HANDSHAKE_METHOD = 2
    """A handshake that is not a GET."""
    BAD_REQUEST = 3
    """A request that breaks the protocol for its session."""
    FORBIDDEN = 4
    """Refused: origin, ``allow_request``, sessions per address, shutting down."""
    UNSUPPORTED_PROTOCOL_VERSION = 5
    """An ``EIO`` revision the server does not speak."""

    MESSAGES = {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
    }
    """Each code's message, as Node's engine.io words it."""

    def __init__(
        self, code: int, context: str = "", details: Mapping[str, str] | None = None, answer: str | None = None
    ) -> None:
        """The error for ``code``.

        :param code: One of the codes below (``UNKNOWN_SID``...), which picks the message and the HTTP status.
        :param context: What went wrong, for the log.
        :param details: Node's ``connection_error`` context (a message of its own
            for ``FORBIDDEN``, from ``context``, if not given).
        :param answer: The message the client is answered with instead of the code's own (Node's
            ``allowRequest`` message); never what the server says for itself, which may name the client.
        """
        super().__init__(self.MESSAGES[code] + (f": {context}" if context else ""))
        self.code = code
        """One of the codes above."""
        self.context = context
        """A description for the log."""
        self.answer = answer or self.MESSAGES[code]
        """The message of the answer's body: the code's own, or the application's reason (``allow_request``)."""
        if details is None:
            details = {"message": context} if code == self.FORBIDDEN and context else {}
        self.details = details
        """What went wrong under the keys of Node's ``connection_error`` context (``sid``, ``name``, ...)."""

    @property
    def status(self) -> int:
        """The HTTP status of the answer: 403 for ``FORBIDDEN``, else 400."""
        return 403 if self.code == self.FORBIDDEN else 400

    def body(self) -> bytes:
        """The JSON error body Engine.IO servers answer with, compact as Node's ``JSON.stringify`` writes it."""
        # UTF-8 as it is, as JSON.stringify leaves it; a lone surrogate escaped, as JSON.stringify escapes it.
        text = json.dumps({"code": self.code, "message": self.answer}, separators=(",", ":"), ensure_ascii=False)
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()

    def upgrade_body(self) -> bytes:
        """The body of the answer to a refused WebSocket upgrade, as Node's engine.io writes it: the bare message."""
        return _SURROGATE.sub("\ufffd", self.answer).encode()  # as Node's Buffer writes a lone surrogate

    def upgrade_refusal(self) -> bytes:
        """The whole answer to a refused WebSocket upgrade, as Node's engine.io writes it on the socket before
        closing it: ``400 Bad Request`` whatever the code (forbidden too), the bare message as ``text/html``."""
        message = self.upgrade_body()
        return (
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: %d\r\n\r\n"
            % len(message)
        ) + message


def id_error(why: str) -> SessionError:
    """The error of a ``generate_id`` hook that failed or gave an unusable id (Node's ``ID_GENERATION_ERROR``)."""
    return SessionError(SessionError.BAD_REQUEST, why, {"name": "ID_GENERATION_ERROR"})
