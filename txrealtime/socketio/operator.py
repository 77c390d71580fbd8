"""Broadcasting to a selection of sockets: ``to``/``except_``/``volatile``/``timeout`` and friends."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Literal, Protocol, overload

from twisted.internet.defer import Deferred

from ..protocol.acks import BroadcastAcks
from ..protocol.handlers import RESERVED_EVENTS, check_event
from ..protocol.packets import Packet, PacketType
from .adapter import Adapter, BroadcastFlags, BroadcastOptions, ClusterAnswer, FetchedSocket
from .errors import AckTimeout

__all__ = ["BroadcastOperator", "Broadcasting", "RESERVED_EVENTS", "Selecting", "check_event"]


def _rooms(rooms: str | Iterable[str]) -> frozenset[str]:
    return frozenset([rooms] if isinstance(rooms, str) else rooms)


class BroadcastOperator:
    """An immutable selection of sockets (rooms, exceptions, flags) to emit to or act on.

    Every method that narrows the selection returns a new operator, so
    ``server.to("a").except_("b").volatile.emit(...)`` reads as in Node.
    """

    def __init__(
        self,
        adapter: Adapter,
        rooms: frozenset[str] = frozenset(),
        except_rooms: frozenset[str] = frozenset(),
        flags: BroadcastFlags | None = None,
    ) -> None:
        """A selection; ``server.to(room)`` and the like make them.

        :param adapter: The namespace's adapter, which delivers.
        :param rooms: Target these rooms (every socket of the namespace if none).
        :param except_rooms: Skip the sockets in any of these rooms.
        :param flags: ``volatile``, ``compress``, ``local``, ``timeout``.
        """
        self.adapter = adapter
        """The namespace's adapter, which delivers."""
        self._opts = BroadcastOptions(rooms, except_rooms, flags or BroadcastFlags())

    def _with(self, **changes: Any) -> BroadcastOperator:
        opts = replace(self._opts, **changes)
        return BroadcastOperator(self.adapter, opts.rooms, opts.except_, opts.flags)

    # -- narrowing ---------------------------------------------------------

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        """Target sockets in ``rooms`` too (a union with rooms already targeted)."""
        return self._with(rooms=self._opts.rooms | _rooms(rooms))

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        """Leave out sockets in ``rooms``."""
        return self._with(except_=self._opts.except_ | _rooms(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """Drop the packet for clients not ready to receive it right now."""
        return self._with(flags=replace(self._opts.flags, volatile=True))

    @property
    def local(self) -> BroadcastOperator:
        """Only this process's sockets."""
        return self._with(flags=replace(self._opts.flags, local=True))

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Wait at most ``seconds`` for acknowledgements."""
        return self._with(flags=replace(self._opts.flags, timeout=seconds))

    def compress(self, compress: bool) -> BroadcastOperator:
        """With ``False``, the packet goes uncompressed to every client whatever its size."""
        return self._with(flags=replace(self._opts.flags, compress=compress))

    # -- emitting ------------------------------------------------------------

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit to every selected socket; ``False`` if other nodes of a cluster could not be reached.

        With ``ack`` (which needs :meth:`timeout`), ``ack(err, responses)`` is
        called once every client answered (``err`` is ``None``) or the timeout
        passed (``err`` is an :class:`AckTimeout`, ``responses`` those received).
        """
        check_event(event)
        packet = Packet(PacketType.EVENT, self.adapter.namespace.name, [event, *args])
        if ack is None:
            return self.adapter.broadcast(packet, self._opts)

        def done(result: Any) -> None:
            if isinstance(result, AckTimeout):
                ack(result, result.responses)
            else:
                ack(None, result)

        self._emit_with_ack(packet).addBoth(done)
        return True

    def send(self, *args: Any) -> bool:
        """Emit a ``message`` event."""
        return self.emit("message", *args)

    def emit_with_ack(self, event: str, *args: Any) -> Deferred[list[Any]]:
        """Emit and fire with the list of every client's answer; fail with :class:`AckTimeout` on timeout."""
        check_event(event)
        return self._emit_with_ack(Packet(PacketType.EVENT, self.adapter.namespace.name, [event, *args]))

    def _emit_with_ack(self, packet: Packet) -> Deferred[Any]:
        timeout = self._opts.flags.timeout
        if timeout is None:
            raise ValueError("acknowledgements from a broadcast need a timeout: use .timeout(seconds)")
        server = self.adapter.namespace.server
        acks = BroadcastAcks(server.reactor, timeout, server.broadcast_ack_timed_out)
        self.adapter.broadcast_with_ack(packet, self._opts, acks.client_count, acks.answer)
        self.adapter.server_count().addCallback(acks.expect_servers)
        return acks.result

    # -- acting on the selected sockets -------------------------------------

    @overload
    def fetch_sockets(self, partial: Literal[False] = False) -> Deferred[list[FetchedSocket]]: ...

    @overload
    def fetch_sockets(self, partial: Literal[True]) -> Deferred[ClusterAnswer[list[FetchedSocket]]]: ...

    def fetch_sockets(self, partial: bool = False) -> Deferred[Any]:
        """The selected sockets, this process's and (with a cluster adapter) other nodes'.

        A node that does not answer within the adapter's request timeout fails the whole query (as in
        Node); with ``partial``, the result is a :class:`ClusterAnswer` instead: the sockets found on the
        nodes that answered, and which did not."""
        if partial:
            return self.adapter.fetch_sockets_partial(self._opts)
        return self.adapter.fetch_sockets(self._opts)

    def count(self) -> Deferred[ClusterAnswer[int]]:
        """How many sockets are selected across the cluster: each node answers with its number (Node
        nodes, which do not know the request, with their sockets, counted here), as a :class:`ClusterAnswer`
        whose ``value`` is the total of the nodes that answered in time."""
        return self.adapter.count_sockets(self._opts)

    def sockets_join(self, rooms: str | Iterable[str]) -> None:
        """Make the selected sockets join ``rooms``."""
        self.adapter.add_sockets(self._opts, _rooms(rooms))

    def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        """Make the selected sockets leave ``rooms``."""
        self.adapter.del_sockets(self._opts, _rooms(rooms))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the selected sockets (and close their connections if ``close``)."""
        self.adapter.disconnect_sockets(self._opts, close)


class Selecting(Protocol):
    """``to``/``in_``/``except_``/``local`` for whatever can start a broadcast (server, namespace, socket).

    Implementers provide :meth:`broadcast_operator`, the selection everything starts from.
    """

    def broadcast_operator(self) -> BroadcastOperator:
        """The selection everything starts from: every socket (of a server or namespace), or all but a socket."""

    def to(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        """Sockets in ``rooms``."""
        return self.broadcast_operator().to(rooms)

    def in_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        """Same as :meth:`to`."""
        return self.broadcast_operator().to(rooms)

    def except_(self, rooms: str | Iterable[str]) -> BroadcastOperator:
        """Every socket but those in ``rooms``."""
        return self.broadcast_operator().except_(rooms)

    @property
    def local(self) -> BroadcastOperator:
        """Only this process's sockets."""
        return self.broadcast_operator().local


class Broadcasting(Selecting, Protocol):
    """Node's broadcast shortcuts on the server and on a namespace: each starts from :meth:`broadcast_operator`."""

    @property
    def volatile(self) -> BroadcastOperator:
        """Skip clients not ready to receive right now."""
        return self.broadcast_operator().volatile

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Wait at most ``seconds`` for acknowledgements."""
        return self.broadcast_operator().timeout(seconds)

    def compress(self, compress: bool) -> BroadcastOperator:
        """With ``False``, the packet goes uncompressed whatever its size."""
        return self.broadcast_operator().compress(compress)

    def emit(self, event: str, *args: Any, ack: Callable[..., object] | None = None) -> bool:
        """Emit to every socket (see :meth:`BroadcastOperator.emit`)."""
        return self.broadcast_operator().emit(event, *args, ack=ack)

    def emit_with_ack(self, event: str, *args: Any) -> Deferred[list[Any]]:
        """Emit to every socket and collect their answers (needs :meth:`timeout`)."""
        return self.broadcast_operator().emit_with_ack(event, *args)

    def send(self, *args: Any) -> bool:
        """Emit a ``message`` event."""
        return self.broadcast_operator().send(*args)

    def write(self, *args: Any) -> bool:
        """Same as :meth:`send`."""
        return self.broadcast_operator().send(*args)

    @overload
    def fetch_sockets(self, partial: Literal[False] = False) -> Deferred[list[FetchedSocket]]: ...

    @overload
    def fetch_sockets(self, partial: Literal[True]) -> Deferred[ClusterAnswer[list[FetchedSocket]]]: ...

    def fetch_sockets(self, partial: bool = False) -> Deferred[Any]:
        """Every socket, this process's and (with a cluster adapter) other nodes' (see
        :meth:`BroadcastOperator.fetch_sockets` for ``partial``)."""
        selected = self.broadcast_operator()
        return selected.fetch_sockets(partial) if partial else selected.fetch_sockets()

    def count(self) -> Deferred[ClusterAnswer[int]]:
        """How many sockets there are across the cluster (see :meth:`BroadcastOperator.count`)."""
        return self.broadcast_operator().count()

    def sockets_join(self, rooms: str | Iterable[str]) -> None:
        """Make every socket join ``rooms``."""
        self.broadcast_operator().sockets_join(rooms)

    def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        """Make every socket leave ``rooms``."""
        self.broadcast_operator().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket (and close their connections if ``close``)."""
        self.broadcast_operator().disconnect_sockets(close)
