"""pytest plugin (registered as ``txrealtime`` under ``pytest11``): the ``realtime`` fixture.

Needs pytest-twisted. In a test::

    @pytest_twisted.ensureDeferred
    async def test_join(realtime):
        server = await realtime.start_server(chat.setup)
        alice = await realtime.connect(server)
        assert await alice.emit_with_ack("join", "alice") == {"ok": True, "users": 1}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet.defer import Deferred, DeferredList

from .client import ClientSocket
from .socketio import Server
from .testing import TestServer, connect_in_memory, start_server

__all__ = ["Realtime", "realtime"]


class Realtime:
    """Starts servers and connects clients for one test; everything stops after it."""

    def __init__(self) -> None:
        self.servers: list[TestServer] = []
        """The servers started, stopped at the end of the test."""

    def start_server(self, setup: Callable[[Server], object] | None = None, **kwargs: Any) -> Deferred[TestServer]:
        """See :func:`txrealtime.testing.start_server`."""

        def started(server: TestServer) -> TestServer:
            self.servers.append(server)
            return server

        return start_server(setup, **kwargs).addCallback(started)

    def connect(
        self, server: TestServer, namespace: str = "/", *, auth: Any = None, **options: Any
    ) -> Deferred[ClientSocket]:
        """Connect a real client over loopback; see :meth:`TestServer.client`."""
        return server.client(namespace, auth=auth, **options)

    def in_memory(self, server: Server, namespace: str = "/", **options: Any) -> Deferred[ClientSocket]:
        """See :func:`txrealtime.testing.connect_in_memory`."""
        return connect_in_memory(server, namespace, **options)

    def stop(self) -> Deferred[Any]:
        """Stop every server this fixture started (it does at the end of the test)."""
        servers, self.servers = self.servers, []
        return DeferredList([s.stop() for s in servers], consumeErrors=True)


@pytest.fixture
def realtime() -> Iterator[Realtime]:
    """A :class:`Realtime` helper whose servers and clients stop after the test."""
    import pytest_twisted

    helper = Realtime()
    yield helper
    pytest_twisted.blockon(helper.stop())
