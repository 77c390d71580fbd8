"""Writing to a TCP connection at once when nothing waits in its buffer.

Twisted's TCP transport buffers every ``write`` and sends it on the
reactor's next turn: it registers the socket for writability (one
``epoll_ctl``), waits for the reactor to report it writable, sends, and
unregisters it (another ``epoll_ctl``). When nothing is buffered, the
kernel nearly always takes the whole write at once, so :func:`write`
sends it there and then (as libuv, under Node, does) and hands Twisted only
what the kernel did not take, which keeps Twisted's buffering, its
streaming-producer pauses and its error handling for the rest.

The shortcut applies to plain (not TLS) TCP connections of Twisted's own
``tcp.Server`` and ``tcp.Client`` classes, and to them through wrappers
registered with :func:`forwards_writes`; anything else (TLS, UNIX sockets,
test transports) is written to as usual. It relies on attributes of
``twisted.internet.abstract.FileDescriptor`` and ``tcp.Connection``
(``dataBuffer``, ``_tempDataLen``, ``_writeDisconnected``, ``_aborting``,
``TLS``, ``socket``), which ``tests/test_tcp.py`` checks against the
installed Twisted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from twisted.internet import tcp
from twisted.protocols.policies import ProtocolWrapper

_DIRECT: frozenset[type] = frozenset({tcp.Server, tcp.Client})
"""Transport classes written to directly: exactly these, not subclasses (UNIX sockets subclass them)."""

_FORWARDING: set[type] = {ProtocolWrapper}
"""Wrapper classes whose ``write`` only forwards to their own ``transport``."""

T = TypeVar("T", bound=type)


def forwards_writes(cls: T) -> T:
    """Class decorator: ``cls`` (a protocol wrapper) writes what it is given to its ``transport`` unchanged."""
    _FORWARDING.add(cls)
    return cls


def _direct(transport: Any) -> Any:
    """The TCP connection ``transport`` writes to, if it can be written to at once now; else ``None``."""
    kind = type(transport)
    if kind in _FORWARDING:
        transport = transport.transport
        kind = type(transport)
    if (
        kind in _DIRECT
        and not transport._tempDataLen
        and not transport.dataBuffer
        and transport.connected
        and not transport.TLS
        and not transport.disconnecting
        and not transport._aborting
        and not transport._writeDisconnected
        # A pull producer is asked for more only once Twisted's buffer drains (doWrite): leave it to Twisted.
        and (transport.producer is None or transport.streamingProducer)
    ):
        return transport
    return None


def write(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, sending at once what the kernel takes when nothing is buffered."""
    connection = _direct(transport)
    if connection is None:
        transport.write(data)
    else:
        _send(connection, transport, data)


def write_sequence(transport: Any, chunks: Sequence[bytes]) -> None:
    """``transport.writeSequence(chunks)``, sent at once like :func:`write`."""
    connection = _direct(transport)
    if connection is None:
        transport.writeSequence(chunks)
    else:
        _send(connection, transport, chunks[0] if len(chunks) == 1 else b"".join(chunks))


def _send(connection: Any, transport: Any, data: bytes) -> None:
    """Send ``data`` on ``connection`` (which :func:`_direct` found idle); the rest goes to ``transport.write``."""
    if type(data) is bytes and data:  # other types: Twisted refuses them as usual
        try:
            sent = connection.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # a broken connection: Twisted's own write meets the error and closes it as usual
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)
