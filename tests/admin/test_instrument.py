"""instrument() over in-memory sessions on a fake clock: exact wire messages, stats timing, logins,
sessions, commands; and the pure pieces (wire builders, command reader, credentials) on their own."""

from __future__ import annotations

import copy
import gc
import json
import pickle
import re
import weakref
from dataclasses import replace
from typing import Any, cast

import bcrypt
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import HANDSHAKE, Peer
from txrealtime.admin import BasicAuth, Instrumentation, MemorySessionStore, instrument, is_bcrypt_hash
from txrealtime.admin.auth import Login
from txrealtime.admin.wire import (
    Disconnect,
    Emit,
    EventBuffer,
    Join,
    Leave,
    iso_date,
    parse_command,
    serialize_socket,
    supported_features,
)
from txrealtime.engineio import EngineIOOptions, SessionManager
from txrealtime.protocol.packets import Packet, PacketType
from txrealtime.socketio import ConnectionRefused, Server, Socket

T = PacketType
CREDENTIALS = {"username": "admin", "password": "pw"}


def events(peer: Peer, name: str | None = None) -> list[list[Any]]:
    """The EVENT packets ``peer`` got since the last call, as ``[event, *args]`` (only ``name`` ones if given)."""
    return [p.data for p in peer.packets() if p.type is T.EVENT and (name is None or p.data[0] == name)]


class InstrumentTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.manager = SessionManager(EngineIOOptions(ping_interval=25, ping_timeout=20), reactor=self.clock)
        self.server = Server(self.manager)
        self.sockets: list[Socket] = []
        self.server.on("connection", self.sockets.append)

    def instrument(self, **options: Any) -> Instrumentation:
        result = instrument(self.server, **{"auth": ("admin", "pw"), "server_id": "node-1", **options})
        self.addCleanup(result.close)
        return result

    def admin(self, auth: Any = None, name: str = "websocket") -> Peer:
        peer = Peer(self.manager, name)
        peer.send_packet(Packet(T.CONNECT, "/admin", CREDENTIALS if auth is None else auth))
        return peer

    def test_login_then_session_config_and_all_sockets_on_the_wire(self) -> None:
        self.instrument()
        peer = self.admin()
        messages = [str(m.data) for m in peer.transport.sent[1:]]
        sid = self.server.of("/admin").sockets.popitem()[1].id
        self.assertEqual(messages[0], f'2/admin,["room_joined","/admin","{sid}","{sid}","2027-01-15T08:00:00.000Z"]')
        self.assertEqual(messages[1], f'0/admin,{{"sid":"{sid}"}}')
        self.assertTrue(messages[2].startswith('2/admin,["socket_connected",{"id":'))
        self.assertRegex(messages[3], r'^2/admin,\["session","[0-9a-f]{32}"\]$')
        self.assertEqual(messages[4], '2/admin,["config",{"supportedFeatures":["EMIT","JOIN","LEAVE","DISCONNECT",'
                                      '"MJOIN","MLEAVE","MDISCONNECT","AGGREGATED_EVENTS","ALL_EVENTS"]}]')
        self.assertTrue(messages[5].startswith('2/admin,["all_sockets",[{"id":'))

    def test_wrong_password_refused_on_the_wire_and_password_dropped(self) -> None:
        self.instrument()
        peer = self.admin({"username": "admin", "password": "nope"})
        self.assertEqual([m.data for m in peer.transport.sent[1:]], ['4/admin,{"message":"invalid credentials"}'])
        self.assertFalse(peer.closed)
        self.admin()
        [socket] = self.server.of("/admin").sockets.values()
        self.assertEqual(socket.handshake.auth, {"username": "admin"})

    def test_server_stats_every_two_seconds(self) -> None:
        self.instrument()
        peer = self.admin()
        polling = Peer(self.manager, "polling")
        polling.send_packet(Packet(T.CONNECT, "/"))
        events(peer)
        sent = [p for one in (peer, polling) for p in one.transport.sent]
        self.clock.advance(1.9)
        self.assertEqual(events(peer, "server_stats"), [])
        self.clock.advance(0.1)
        previous = peer.transport.sent[-1].data
        [[_, stats]] = events(peer, "server_stats")
        aggregated = stats.pop("aggregatedEvents")
        self.assertEqual(stats, {
            "serverId": "node-1", "hostname": stats["hostname"], "pid": stats["pid"], "uptime": 2.0,
            "clientsCount": 2, "pollingClientsCount": 1,
            "namespaces": [{"name": "/", "socketsCount": 1}, {"name": "/admin", "socketsCount": 1}],
        })
        at = 1_800_000_000_000
        self.assertEqual({e["timestamp"] for e in aggregated}, {at})
        counts = {e["type"]: e["count"] for e in aggregated}
        self.assertEqual(counts["packetsOut"], len(sent))
        self.assertEqual(counts["bytesOut"], sum(len(p.data) for p in sent))
        self.assertEqual(counts["rawConnection"], 2)
        self.assertEqual(counts["packetsIn"], 2)  # two CONNECT packets
        self.assertEqual(counts["bytesIn"], len('0/admin,{"username":"admin","password":"pw"}') + len("0"))
        self.clock.advance(2)
        [[_, stats]] = events(peer, "server_stats")
        self.assertEqual(stats["uptime"], 4.0)
        # Nothing happened since, but the last server_stats went out.
        self.assertEqual(stats["aggregatedEvents"], [
            {"timestamp": at + 2000, "type": "packetsOut", "count": 1},
            {"timestamp": at + 2000, "type": "bytesOut", "count": len(previous)},
        ])

    def test_disconnections_are_counted_by_reason(self) -> None:
        self.instrument()
        peer = self.admin()
        other = Peer(self.manager)
        other.send_packet(Packet(T.CONNECT, "/"))
        self.clock.advance(1)
        other.session.close()
        self.clock.advance(1)
        [[_, stats]] = events(peer, "server_stats")
        closes = [e for e in stats["aggregatedEvents"] if e["type"] == "rawDisconnection"]
        self.assertEqual(closes, [{"timestamp": 1_800_000_001_000, "type": "rawDisconnection",
                                   "subType": "forced close", "count": 1}])

    def test_session_id_logs_in_until_it_expires(self) -> None:
        self.instrument()
        [[_, session_id]] = events(self.admin(), "session")
        again = self.admin({"sessionId": session_id})
        self.assertEqual(events(again, "session"), [])
        self.assertEqual(len(self.server.of("/admin").sockets), 2)
        self.clock.advance(86400)
        late = self.admin({"sessionId": session_id})
        self.assertEqual([m.data for m in late.transport.sent[1:]], ['4/admin,{"message":"invalid credentials"}'])

    def test_commands(self) -> None:
        self.instrument()
        admin = self.admin()
        client = Peer(self.manager)
        client.send_packet(Packet(T.CONNECT, "/"))
        [socket] = self.sockets
        admin.send_packet(Packet(T.EVENT, "/admin", ["join", "/", "r1", socket.id]))
        self.assertEqual(socket.rooms, {socket.id, "r1"})
        client.packets()
        admin.send_packet(Packet(T.EVENT, "/admin", ["emit", "/", "r1", "news", 1, {"a": None}]))
        self.assertEqual(client.packets(), [Packet(T.EVENT, "/", ["news", 1, {"a": None}])])
        admin.send_packet(Packet(T.EVENT, "/admin", ["leave", "/", "r1"]))
        self.assertEqual(socket.rooms, {socket.id})
        # Malformed, or for a namespace that does not exist: ignored, and no namespace is created.
        admin.send_packet(Packet(T.EVENT, "/admin", ["join", "/nowhere", "r1"]))
        admin.send_packet(Packet(T.EVENT, "/admin", ["emit", "/", None, "disconnect"]))
        admin.send_packet(Packet(T.EVENT, "/admin", ["_disconnect", "/", "yes"]))
        self.assertNotIn("/nowhere", self.server.namespaces)
        self.assertTrue(socket.connected)
        admin.send_packet(Packet(T.EVENT, "/admin", ["_disconnect", "/", False, socket.id]))
        self.assertFalse(socket.connected)
        self.assertFalse(admin.closed)

    def test_read_only(self) -> None:
        self.instrument(read_only=True)
        admin = self.admin()
        client = Peer(self.manager)
        client.send_packet(Packet(T.CONNECT, "/"))
        [socket] = self.sockets
        admin.send_packet(Packet(T.EVENT, "/admin", ["join", "/", "r1"]))
        admin.send_packet(Packet(T.EVENT, "/admin", ["_disconnect", "/", True]))
        self.assertEqual(socket.rooms, {socket.id})
        self.assertTrue(socket.connected)

    def test_room_left_on_the_next_turn(self) -> None:
        self.instrument()
        admin = self.admin()
        client = Peer(self.manager)
        client.send_packet(Packet(T.CONNECT, "/"))
        [socket] = self.sockets
        events(admin)
        socket.disconnect()
        self.assertEqual([e[0] for e in events(admin)], ["socket_disconnected"])
        self.clock.advance(0)
        self.assertEqual(events(admin), [["room_left", "/", socket.id, socket.id, "2027-01-15T08:00:00.000Z"]])

    def test_dynamic_and_later_namespaces_are_watched(self) -> None:
        self.instrument()
        admin = self.admin()
        self.server.of("/later")
        client = Peer(self.manager)
        client.send_packet(Packet(T.CONNECT, "/later"))
        names = [e[0] for e in events(admin)]
        self.assertIn("socket_connected", names)
        self.assertIn("room_joined", names)

    def test_data_changes_are_sent_and_the_socket_freed_without_gc(self) -> None:
        self.instrument()
        admin = self.admin()
        client = Peer(self.manager)
        client.send_packet(Packet(T.CONNECT, "/"))
        [socket] = self.sockets
        events(admin)
        socket.data["name"] = "bob"
        socket.data.update(age=3)
        del socket.data["age"]
        updates = [e[1]["data"] for e in events(admin, "socket_updated")]
        self.assertEqual(updates, [{"name": "bob"}, {"name": "bob", "age": 3}, {"name": "bob"}])
        self.assertEqual(type(pickle.loads(pickle.dumps(socket.data))), dict)
        self.assertEqual(copy.deepcopy(socket.data), {"name": "bob", "_admin": socket.data["_admin"]})
        gone = weakref.ref(socket)
        self.sockets.clear()
        del socket
        gc.disable()
        try:
            client.session.close()
            self.clock.advance(0)
            self.assertIsNone(gone())
        finally:
            gc.enable()

    def test_removed_dynamic_namespaces_are_forgotten(self) -> None:
        self.manager = SessionManager(reactor=self.clock)
        self.server = Server(self.manager, cleanup_empty_child_namespaces=True)
        self.server.of(re.compile(r"/room-\d+"))
        instrumentation = self.instrument()
        watched = len(instrumentation._watched)
        for n in range(3):
            peer = Peer(self.manager)
            peer.send_packet(Packet(T.CONNECT, f"/room-{n}"))
            self.assertIn(f"/room-{n}", self.server.namespaces)
            peer.send_packet(Packet(T.DISCONNECT, f"/room-{n}"))
            self.assertNotIn(f"/room-{n}", self.server.namespaces)
        gc.collect()
        self.assertEqual(len(instrumentation._watched), watched)

    def test_close_stops_everything(self) -> None:
        instrumentation = self.instrument()
        admin = self.admin()
        instrumentation.close()
        events(admin)
        Peer(self.manager).send_packet(Packet(T.CONNECT, "/"))
        self.clock.advance(10)
        self.assertEqual(events(admin), [])
        self.assertEqual(self.server.sockets.adapter.listeners, {"join-room": [], "leave-room": []})
        self.assertEqual(self.server.sockets.listeners("connection"), [self.sockets.append])

    def test_no_auth_warns_and_passwords_are_never_logged(self) -> None:
        events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, events.append)
        globalLogPublisher.addObserver(observer)
        try:
            self.instrument(auth=False)
            self.admin({"username": "x", "password": "hunter2"})
            self.manager = SessionManager(reactor=self.clock)
            self.server = Server(self.manager)
            self.instrument(auth=("admin", "pw"))
            self.admin({"username": "admin", "password": "wrong-hunter2"})
        finally:
            globalLogPublisher.removeObserver(observer)
        lines = [formatEvent(e) for e in events]
        [warning] = [e for e in events if e.get("log_level") is LogLevel.warn]
        self.assertIn("ADMIN UI WITHOUT AUTHENTICATION", formatEvent(warning))
        self.assertTrue([line for line in lines if "login refused for 127.0.0.1" in line])
        self.assertFalse([line for line in lines if "hunter2" in line or "pw" in line.split()])

    def test_auth_is_required(self) -> None:
        self.assertRaises(TypeError, instrument, self.server, auth=None)
        self.assertRaises(TypeError, instrument, self.server, auth={"type": "digest", "username": "a"})
        self.assertRaises(ValueError, instrument, self.server, auth=("a", "b"), mode="staging")

    def test_bcrypt_checks_wait_in_line(self) -> None:
        store = MemorySessionStore(self.clock)
        login = Login(BasicAuth("a", "b"), store, self.clock, concurrency=1, max_waiting=1)
        pending: list[Deferred[bool]] = []

        def slow(username: str, password: str) -> Deferred[bool]:
            pending.append(Deferred())
            return pending[-1]

        login._run_check = slow  # type: ignore[method-assign]
        results = [login._check(_socket(self, f"10.0.0.{n}"), "a", "b") for n in range(3)]
        refusals: list[Failure] = []
        results[2].addErrback(refusals.append)  # one running, one waiting: the third is refused at once
        self.assertEqual([str(f.value) for f in refusals], ["too many logins being checked, retry later"])
        self.assertEqual(len(pending), 1)
        pending[0].callback(True)
        self.assertEqual(len(pending), 2)
        self.assertRaises(ConnectionRefused, login._check, _socket(self, "10.0.0.1"), "a", "b")  # one at a time


def _socket(test: InstrumentTests, address: str = "127.0.0.1") -> Socket:
    Peer(test.manager, handshake=replace(HANDSHAKE, address=address)).send_packet(Packet(T.CONNECT, "/"))
    return test.sockets[-1]


class StoreTests(SynchronousTestCase):
    def test_expiry_and_bound(self) -> None:
        clock = Clock()
        store = MemorySessionStore(clock, ttl=10, max_sessions=2)
        store.save("a")
        clock.advance(5)
        store.save("b")
        store.save("c")
        self.assertEqual((store.exists("a"), store.exists("b"), store.exists("c")), (False, True, True))
        clock.advance(5)
        self.assertEqual((store.exists("b"), store.exists("c")), (True, True))
        clock.advance(5)
        self.assertEqual((store.exists("b"), len(store)), (False, 1))


class CredentialTests(SynchronousTestCase):
    def test_plain(self) -> None:
        auth = BasicAuth.parse("admin:pa:ss")
        self.assertEqual((auth.username, auth.password, auth.hashed), ("admin", "pa:ss", False))
        self.assertTrue(auth.check("admin", "pa:ss"))
        self.assertFalse(auth.check("admin", "pa:s"))
        self.assertFalse(auth.check("root", "pa:ss"))
        self.assertNotIn("pa:ss", repr(auth))

    def test_bcrypt_variants(self) -> None:
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
        for prefix in ("$2a$", "$2b$", "$2y$"):
            auth = BasicAuth("admin", prefix + hashed[4:])
            self.assertTrue(auth.hashed)
            self.assertTrue(auth.check("admin", "s3cret"))
            self.assertFalse(auth.check("admin", "s3cre"))
            self.assertFalse(auth.check("admn", "s3cret"))

    def test_bad_values(self) -> None:
        self.assertRaises(ValueError, BasicAuth.parse, "admin")
        self.assertRaises(ValueError, BasicAuth.parse, ":pw")
        self.assertRaises(ValueError, BasicAuth, "admin", "")
        self.assertRaises(ValueError, BasicAuth, "admin", "$2b$10$tooshort")
        self.assertFalse(is_bcrypt_hash("$2x$10$" + "a" * 53))


class WireTests(SynchronousTestCase):
    def test_iso_date(self) -> None:
        self.assertEqual(iso_date(0), "1970-01-01T00:00:00.000Z")
        self.assertEqual(iso_date(1_700_000_000.1239), "2023-11-14T22:13:20.123Z")

    def test_features(self) -> None:
        self.assertEqual(supported_features(True, False), ["AGGREGATED_EVENTS"])
        self.assertEqual(supported_features(False, True)[-2:], ["AGGREGATED_EVENTS", "ALL_EVENTS"])

    def test_remote_socket_from_its_data(self) -> None:
        handshake = {"headers": {"x-forwarded-for": "10.0.0.1"}, "address": "127.0.0.1", "auth": {"password": "x"},
                     "query": {}, "issued": 1, "secure": True, "time": "t", "url": "/", "xdomain": True}
        data = {"_admin": {"clientId": "abc", "transport": "websocket"}, "name": "bob"}
        self.assertEqual(serialize_socket("s1", "/", handshake, {"s1", "a"}, data), {
            "id": "s1", "clientId": "abc", "transport": "websocket", "nsp": "/", "data": {"name": "bob"},
            "rooms": ["a", "s1"],
            "handshake": {"address": "10.0.0.1", "headers": {"x-forwarded-for": "10.0.0.1"}, "query": {},
                          "issued": 1, "secure": True, "time": "t", "url": "/", "xdomain": True},
        })

    def test_event_buffer(self) -> None:
        buffer = EventBuffer()
        buffer.push(1.5, "bytesIn", None, 10)
        buffer.push(1.9, "bytesIn", None, 5)
        buffer.push(2.0, "rawDisconnection", "ping timeout")
        self.assertEqual(buffer.values_and_clear(), [
            {"timestamp": 1000, "type": "bytesIn", "count": 15},
            {"timestamp": 2000, "type": "rawDisconnection", "subType": "ping timeout", "count": 1},
        ])
        self.assertEqual(len(buffer), 0)

    def test_commands(self) -> None:
        self.assertEqual(parse_command("emit", ["/", None, "news", 1]), Emit("/", None, "news", (1,)))
        self.assertEqual(parse_command("emit", ["/", "", "news"]), Emit("/", None, "news", ()))
        self.assertEqual(parse_command("join", ["/", "r", "sid"]), Join("/", "r", "sid"))
        self.assertEqual(parse_command("leave", ["/", "r"]), Leave("/", "r", None))
        self.assertEqual(parse_command("_disconnect", ["/", True]), Disconnect("/", True, None))
        bad: list[tuple[str, list[Any]]] = [
            ("emit", ["/", None, "connect"]), ("emit", ["nsp", None, "x"]), ("emit", ["/", 3, "x"]), ("join", ["/"]),
            ("join", ["/", 1]), ("join", ["/", "r", "s", "extra"]), ("_disconnect", ["/", 1]), ("other", ["/"]),
            ("emit", []),
        ]
        for event, args in bad:
            self.assertIsNone(parse_command(event, args), (event, args))

    json_values: st.SearchStrategy[Any] = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )

    @given(st.sampled_from(["emit", "join", "leave", "_disconnect", "x"]), st.lists(json_values, max_size=6))
    def test_any_input_reads_as_a_command_or_none(self, event: str, args: list[Any]) -> None:
        command = parse_command(event, args)
        if command is not None:
            self.assertTrue(command.nsp.startswith("/"))
            self.assertTrue(command.filter is None or isinstance(command.filter, str))
            json.dumps(args)  # what the UI sent was JSON to begin with
