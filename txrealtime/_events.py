"""The event names applications may not emit, and the check every emitting API makes (Node's rule)."""

from __future__ import annotations

__all__ = ["RESERVED_EVENTS", "check_event"]

RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
"""Event names applications may not emit (Node's list)."""


def check_event(event: str) -> None:
    """Raise unless ``event`` is a string an application may emit."""
    if not isinstance(event, str):
        raise TypeError(f"event names are strings, not {type(event).__name__}")
    if event in RESERVED_EVENTS:
        raise ValueError(f'"{event}" is a reserved event name')
