"""Runtime validation of typed events (:class:`txrealtime.socketio.validation.Validator`): bad payloads are refused
or dropped before the handlers, counted, and never close the connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from typing_extensions import TypedDict

from examples.typed.app import setup
from examples.typed.contract import Chat
from tests.fakes import Peer
from tests.servers import node_peer
from txrealtime.contract import ToServer
from txrealtime.engineio import SessionManager
from txrealtime.engineio.packets import Packet as EIOPacket
from txrealtime.engineio.packets import PacketType as EIOType
from txrealtime.pytest_plugin import Realtime
from txrealtime.socketio import EventRefused, Server, Socket
from txrealtime.socketio.validation import Backend, Validator
from txrealtime.testing import connect_in_memory


def validated(backend: Backend = "msgspec") -> tuple[Server, Validator, list[tuple[str, Any]]]:
    """The typed chat behind a validator, and a log of what its handlers got."""
    server = Server(SessionManager(reactor=Clock()))
    validator = Validator(Chat, backend=backend)
    validator.install(server)
    setup(server)
    seen: list[tuple[str, Any]] = []

    @server.on("connection")
    def spy(socket: Socket) -> None:
        socket.on("join", lambda room: seen.append(("join", room)))
        socket.on("say", lambda message: seen.append(("say", message)))

    return server, validator, seen


class ValidatorTests(SynchronousTestCase):
    backend: Backend = "msgspec"

    def test_bad_payloads_never_reach_the_handlers(self) -> None:
        server, validator, seen = validated(self.backend)
        client = self.successResultOf(connect_in_memory(server))
        errors: list[BaseException] = []
        server.sockets.sockets[next(iter(server.sockets.sockets))].on("error", errors.append)
        answers: list[Any] = []
        client.emit_with_ack("join", 42).addCallback(answers.append)
        client.emit("say", {"room": "lobby"})
        client.emit("say", {"room": "lobby", "text": 5})
        client.emit_with_ack("join", "lobby").addCallback(answers.append)
        self.assertEqual(answers[0]["error"], "invalid arguments")
        self.assertEqual(answers[0]["event"], "join")
        self.assertEqual(answers[1], 1)
        self.assertEqual(seen, [("join", "lobby")])
        self.assertEqual(validator.invalid, {"join": 1, "say": 2})
        self.assertEqual([str(e) for e in errors], ["invalid arguments"] * 3)
        self.assertTrue(all(isinstance(e, EventRefused) for e in errors))
        self.assertTrue(client.connected)

    def test_extra_keys_of_a_typed_dict_are_left_out(self) -> None:
        """Keys a TypedDict does not declare are not refused (TypeScript's object types allow them too), but the
        handler gets only the declared ones."""
        server, validator, seen = validated(self.backend)
        client = self.successResultOf(connect_in_memory(server))
        client.emit("say", {"room": "lobby", "text": "hi", "mood": "happy"})
        self.assertEqual(seen, [("say", {"room": "lobby", "text": "hi"})])
        self.assertEqual(validator.invalid, {})

    def test_the_error_answer_names_what_is_wrong_without_the_payload(self) -> None:
        server, _, _ = validated(self.backend)
        client = self.successResultOf(connect_in_memory(server))
        answers: list[Any] = []
        client.emit_with_ack("join", "s3cret-value", "more").addCallback(answers.append)
        client.emit_with_ack("join", {"s3cret-key": 1}).addCallback(answers.append)
        for answer in answers:
            self.assertEqual(set(answer), {"error", "event", "detail"})
            self.assertNotIn("s3cret", answer["detail"])

    def test_untyped_events_and_unknown_names_pass(self) -> None:
        anything: ToServer[..., None] = ToServer("anything")
        validator = Validator(Chat, anything, backend=self.backend)
        args: list[Any] = [1, {"x": 2}]
        validator("anything", args)
        validator("not-in-the-contract", args)
        self.assertEqual(args, [1, {"x": 2}])


class Point(TypedDict):
    """typing_extensions' TypedDict: pydantic refuses typing's before Python 3.12."""

    x: int
    y: int


@dataclass
class Size:
    width: int
    height: int


class Shapes:
    move = ToServer[[str, Point], bool]("move")
    draw = ToServer[[list[Point]], None]("draw")
    resize = ToServer[[Size], None]("resize")


class BothBackendsTests(SynchronousTestCase):
    backend: Backend = "msgspec"

    def check(self, event: str, *args: Any) -> list[Any] | str:
        """The arguments as the handler would get them, or the error detail."""
        arguments = list(args)
        try:
            Validator(Shapes, backend=self.backend)(event, arguments)
        except EventRefused as refused:
            self.assertEqual(refused.answer["event"], event)
            return str(refused.answer["detail"])
        return arguments

    def test_good_arguments_pass(self) -> None:
        self.assertEqual(self.check("move", "a", {"x": 1, "y": 2}), ["a", {"x": 1, "y": 2}])
        self.assertEqual(self.check("draw", [{"x": 1, "y": 2}] * 3), [[{"x": 1, "y": 2}] * 3])

    def test_bad_arguments_are_refused_without_coercion(self) -> None:
        for args in (["a", {"x": "1", "y": 2}], ["a", {"x": 1.5, "y": 2}], [1, {"x": 1, "y": 2}], ["a"],
                     ["a", {"x": 1, "y": 2}, 3], ["a", {"x": 1}], ["a", None]):
            self.assertIsInstance(self.check("move", *args), str, args)
        self.assertIsInstance(self.check("draw", {"x": 1, "y": 2}), str)


class PydanticBackendTests(BothBackendsTests):
    backend = "pydantic"


class ConversionTests(SynchronousTestCase):
    def test_msgspec_makes_the_declared_dataclass(self) -> None:
        args: list[Any] = [{"width": 3, "height": 4}]
        Validator(Shapes)("resize", args)
        self.assertEqual(args, [Size(3, 4)])


@pytest.mark.parametrize("mode", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_the_node_client_sending_bad_payloads(realtime: Realtime, mode: str) -> None:
    validator = Validator(Chat)
    seen: list[tuple[str, Any]] = []

    def app(server: Server) -> None:
        validator.install(server)
        setup(server)

        @server.on("connection")
        def spy(socket: Socket) -> None:
            socket.on("join", lambda room: seen.append(("join", room)))
            socket.on("say", lambda message: seen.append(("say", message)))

    running = await realtime.start_server(app)
    report: dict[str, Any] = await node_peer("typed_client.js", running.url, mode)
    assert report.get("error") is None, report
    assert report["badJoin"] == {"error": "invalid arguments", "event": "join",
                                 "detail": "Expected `str`, got `int` - at `$[0]`"}
    assert report["missingJoin"]["detail"] == "Expected `array` of at least length 1, got 0"
    assert report["extraJoin"]["detail"] == "Expected `array` of at most length 1, got 2"
    assert report["goodJoin"] == 1
    assert report["relayed"] == {"room": "lobby", "text": "hello"}
    assert report["messages"] == [{"room": "lobby", "text": "hello"}]
    assert report["sameId"] is True and report["connected"] is True and report["disconnects"] == []
    assert seen == [("join", "lobby"), ("say", {"room": "lobby", "text": "hello"})]
    assert validator.invalid == {"join": 3, "say": 3}


class WireTests(SynchronousTestCase):
    """Exact bytes on the wire: the error acknowledgement, and middleware of both kinds in order."""

    def setUp(self) -> None:
        self.server = Server(SessionManager(reactor=Clock()))
        self.validator = Validator(Chat)
        self.validator.install(self.server)
        setup(self.server)
        self.sockets: list[Socket] = []
        self.server.on("connection", self.sockets.append)
        self.peer = Peer(self.server.manager)
        self.peer.connect()

    def test_a_refused_event_is_answered_with_one_error_object(self) -> None:
        self.peer.send('27["join",42]', '2["say","lobby"]', '28["join","lobby"]')
        self.assertEqual(self.peer.transport.sent[-2:], [
            EIOPacket(EIOType.MESSAGE, '37[{"error":"invalid arguments","event":"join",'
                                       '"detail":"Expected `str`, got `int` - at `$[0]`"}]'),
            EIOPacket(EIOType.MESSAGE, "38[1]"),
        ])
        self.assertEqual(self.validator.invalid, {"join": 1, "say": 1})
        self.assertFalse(self.peer.closed)

    def test_later_middleware_waits_for_an_async_one_and_may_refuse_too(self) -> None:
        [socket] = self.sockets
        gate: Deferred[None] = Deferred()
        order: list[str] = []
        socket.use(lambda event, args: order.append(f"sync {event}"))
        socket.use(lambda event, args: gate if event == "join" else None)

        @socket.use
        def last(event: str, args: list[Any]) -> None:
            order.append(f"last {event}")
            if args == ["closed"]:
                raise EventRefused("closed room", ("no", "closed"))

        self.peer.send('21["join","lobby"]', '22["join","closed"]')
        self.assertEqual(order, ["sync join", "sync join"])
        self.assertEqual(self.peer.packets(), [])
        gate.callback(None)
        self.assertEqual(order, ["sync join", "sync join", "last join", "last join"])
        self.assertEqual(self.peer.transport.sent[-2:], [
            EIOPacket(EIOType.MESSAGE, "31[1]"), EIOPacket(EIOType.MESSAGE, '32["no","closed"]'),
        ])
