"""Deprecated: moved to :mod:`txrealtime.protocol.parser`, which the server and the client share.

Names imported from here still work, with a ``DeprecationWarning``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import moved_module

if TYPE_CHECKING:
    from ..protocol.parser import *  # noqa: F403

__getattr__ = moved_module(__name__, "txrealtime.protocol.parser")
