"""bench/apps/tx_app.py with a typed contract checked at run time: the cost of validation per event.

``TXREALTIME_VALIDATION`` picks the backend: ``msgspec`` (the default), ``pydantic``, or ``none``
(the contract's types only, no runtime check: what ``typed()`` costs, which is nothing).
"""

from __future__ import annotations

import os

from typing_extensions import TypedDict  # pydantic wants it before Python 3.12

from bench.apps import tx_app
from txrealtime.contract import ToServer
from txrealtime.socketio import Server
from txrealtime.socketio.validation import Validator


class Payload(TypedDict):
    """What the load generator echoes."""

    t: float
    pad: str


class Bench:
    """The benchmark's contract."""

    echo = ToServer[[Payload], Payload]("echo")
    broadcast = ToServer[[Payload], bool]("broadcast")


def setup(server: Server) -> None:
    """Validate every event (unless ``TXREALTIME_VALIDATION=none``), then the usual handlers."""
    backend = os.environ.get("TXREALTIME_VALIDATION", "msgspec")
    if backend == "msgspec":
        Validator(Bench, backend="msgspec").install(server)
    elif backend == "pydantic":
        Validator(Bench, backend="pydantic").install(server)
    tx_app.setup(server)
