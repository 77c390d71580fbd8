"""The errors both roles raise: an acknowledgement that did not come in time."""

from __future__ import annotations

from typing import Any

__all__ = ["AckTimeout"]


class AckTimeout(TimeoutError):
    """Acknowledgements did not arrive in time; ``responses`` holds those that did."""

    def __init__(self, responses: list[Any] | None = None) -> None:
        """The timeout, with ``responses``.

        :param responses: The acknowledgements that arrived in time.
        """
        super().__init__("operation has timed out")
        self.responses = responses if responses is not None else []
        """The acknowledgements that arrived in time."""
