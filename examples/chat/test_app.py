"""How to test a txrealtime application: the chat's handlers under trial and under pytest.

Run it from the checkout, where the ``examples`` package is (``pip install .`` does not install it)::

    python -m twisted.trial examples.chat.test_app
    python -m pytest examples/chat

``python -m`` puts the working directory on ``sys.path``; a bare ``trial`` finds ``examples`` only where the
checkout is on ``sys.path`` already, as after ``pip install -e .``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from examples.chat.app import setup
from txrealtime.engineio import SessionManager
from txrealtime.socketio import Server
from txrealtime.testing import RealtimeTestMixin, connect_in_memory

if TYPE_CHECKING:
    from txrealtime.pytest_plugin import Realtime


class ChatOverLoopback(RealtimeTestMixin, TestCase):
    """Real clients over loopback TCP: the server and clients are cleaned up after each test."""

    # A trial TestCase runs the reactor itself: run it with trial. Under pytest, pytest-twisted
    # owns the reactor, so pytest skips this class and runs test_user_left_notice below instead.
    __test__ = False

    async def test_message_reaches_the_other_user(self) -> None:
        server = await self.start_server(setup)
        alice = await self.connect(server)
        bob = await self.connect(server)
        self.assertEqual(await alice.emit_with_ack("join", "alice"), {"ok": True, "users": 1})
        self.assertEqual(await bob.emit_with_ack("join", "bob"), {"ok": True, "users": 2})

        received: Deferred[dict[str, object]] = Deferred()
        bob.on("chat message", received.callback)
        await alice.emit_with_ack("chat message", "hello bob")
        message = await received
        self.assertEqual((message["name"], message["text"]), ("alice", "hello bob"))


class ChatInMemory(SynchronousTestCase):
    """No sockets, no reactor: each emit is handled before it returns."""

    def setUp(self) -> None:
        self.server = Server(SessionManager(reactor=Clock()))
        setup(self.server)

    def test_join_announces_the_newcomer(self) -> None:
        alice = self.successResultOf(connect_in_memory(self.server))
        bob = self.successResultOf(connect_in_memory(self.server))
        notices: list[object] = []
        alice.on("user joined", notices.append)
        self.successResultOf(alice.emit_with_ack("join", "alice"))
        self.assertEqual(self.successResultOf(bob.emit_with_ack("join", "bob")), {"ok": True, "users": 2})
        self.assertEqual(notices, [{"name": "bob", "users": 2}])

    def test_must_join_before_talking(self) -> None:
        carol = self.successResultOf(connect_in_memory(self.server))
        answer = self.successResultOf(carol.emit_with_ack("chat message", "hi"))
        self.assertEqual(answer, {"ok": False, "error": "join first"})


# pytest: the `realtime` fixture comes with txrealtime (a pytest11 plugin); pytest-twisted runs the coroutine.
try:
    import pytest_twisted
except ImportError:  # trial users need not install pytest
    pytest_twisted = None  # type: ignore[assignment]

if pytest_twisted is not None:

    @pytest_twisted.ensureDeferred
    async def test_user_left_notice(realtime: Realtime) -> None:
        server = await realtime.start_server(setup)
        alice = await realtime.connect(server)
        bob = await realtime.connect(server)
        await alice.emit_with_ack("join", "alice")
        await bob.emit_with_ack("join", "bob")
        left: Deferred[dict[str, object]] = Deferred()
        alice.on("user left", left.callback)
        bob.disconnect()
        assert await left == {"name": "bob", "users": 1}
