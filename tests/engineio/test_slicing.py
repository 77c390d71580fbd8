"""Polling POST bodies handled in slices on a ``task.Clock``, and the lazy payload decoder under them."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from tests.fakes import BASE, PollingTestCase
from tests.memhttp import Exchange
from txrealtime.engineio import CloseReason, EngineIOOptions, MessageReceived, SessionClosed
from txrealtime.engineio.packets import DecodeError, Packet, PacketType, iter_payload
from txrealtime.engineio.polling import PollingTransport

SLICE = PollingTransport.SLICE


def body(*parts: str) -> bytes:
    return "\x1e".join(parts).encode()


def numbered(start: int, stop: int) -> list[str]:
    return [f"4m{i}" for i in range(start, stop)]


class IterPayloadTests(SynchronousTestCase):
    def test_packets_come_one_by_one(self) -> None:
        packets = iter_payload("4a\x1ebAQI=\x1e3\x1e6")
        self.assertEqual(next(packets), Packet(PacketType.MESSAGE, "a"))
        self.assertEqual(
            list(packets), [Packet(PacketType.MESSAGE, b"\x01\x02"), Packet(PacketType.PONG), Packet(PacketType.NOOP)]
        )

    def test_valid_packets_before_the_first_bad_one_come_out(self) -> None:
        for bad, message in [("9", "unknown packet type '9'"), ("", "empty packet"), ("b!", "invalid base64")]:
            with self.subTest(bad=bad):
                packets = iter_payload(f"4a\x1e{bad}\x1e4b")
                self.assertEqual(next(packets), Packet(PacketType.MESSAGE, "a"))
                with self.assertRaises(DecodeError) as raised:
                    next(packets)
                self.assertTrue(str(raised.exception).startswith(message))

    def test_empty_payload(self) -> None:
        with self.assertRaises(DecodeError):
            next(iter_payload(""))


class SlicingTestCase(PollingTestCase):
    options = EngineIOOptions(max_payload=1_000_000)

    def start_post(self, sid: str, data: bytes) -> Exchange:
        return self.http.request("POST", f"{BASE}&sid={sid}", data)

    def messages(self) -> list[str | bytes]:
        return [e.data for e in self.events if isinstance(e, MessageReceived)]

    def closes(self) -> list[tuple[CloseReason, str]]:
        return [(e.reason, e.description) for e in self.events if isinstance(e, SessionClosed)]

    def assertNoSliceLeft(self) -> None:
        """Nothing is due now: slices run with ``callLater(0)``, session timers are seconds away."""
        due = [c for c in self.clock.calls if c.getTime() <= self.clock.seconds()]
        self.assertEqual(due, [])

    def step(self) -> None:
        """Run the one slice due now (``Clock.advance(0)`` would also run the slices it schedules)."""
        [call] = [c for c in self.clock.calls if c.getTime() <= self.clock.seconds()]
        self.clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)

    def assertOk(self, exchange: Exchange) -> None:
        response = exchange.result()
        self.assertEqual((response.status, response.headers["content-type"], response.body), (200, "text/html", b"ok"))


class SlicingTests(SlicingTestCase):
    def test_small_body_answered_at_once(self) -> None:
        sid = self.handshake()
        exchange = self.start_post(sid, body(*numbered(0, SLICE - 1)))
        self.assertOk(exchange)
        self.assertEqual(self.messages(), [f"m{i}" for i in range(SLICE - 1)])
        self.assertNoSliceLeft()

    def test_large_body_in_slices_in_order(self) -> None:
        sid = self.handshake()
        parts = numbered(0, 2 * SLICE + 50)
        parts[SLICE + 3] = "bAAE="  # a binary message keeps its place
        exchange = self.start_post(sid, body(*parts))
        expected: list[str | bytes] = [p[1:] for p in parts]
        expected[SLICE + 3] = b"\x00\x01"
        self.assertEqual(self.messages(), expected[:SLICE])
        self.assertFalse(exchange.done)
        self.step()
        self.assertEqual(self.messages(), expected[: 2 * SLICE])
        self.assertFalse(exchange.done)
        self.step()
        self.assertEqual(self.messages(), expected)
        self.assertOk(exchange)
        self.assertNoSliceLeft()
        self.assertIsNotNone(self.manager.get(sid))
        # The transport takes the next POST as usual.
        self.assertOk(self.start_post(sid, b"4after"))
        self.assertEqual(self.messages()[-1], "after")

    def test_stops_at_the_first_bad_packet(self) -> None:
        sid = self.handshake()
        exchange = self.start_post(sid, body(*numbered(0, SLICE + 10), "9", *numbered(SLICE + 10, 3 * SLICE)))
        self.clock.advance(0)
        self.assertError(exchange.result(), 3, "Bad request")
        self.assertEqual(self.messages(), [f"m{i}" for i in range(SLICE + 10)])
        self.assertEqual(self.closes(), [(CloseReason.PARSE_ERROR, "unknown packet type '9'")])
        self.assertNoSliceLeft()
        self.clock.advance(0)
        self.assertEqual(len(self.messages()), SLICE + 10)

    def test_bad_first_packet_refused_at_once(self) -> None:
        sid = self.handshake()
        self.assertError(self.start_post(sid, body("9", *numbered(0, 5000))).result(), 3, "Bad request")
        self.assertEqual(self.messages(), [])
        self.assertEqual(self.closes(), [(CloseReason.PARSE_ERROR, "unknown packet type '9'")])
        self.assertNoSliceLeft()

    def test_bad_packet_answers_400_even_with_a_poll_parked(self) -> None:
        sid = self.handshake()
        poll = self.http.request("GET", f"{BASE}&sid={sid}")
        exchange = self.start_post(sid, body(*numbered(0, SLICE + 10), "9"))
        self.clock.advance(0)
        self.assertError(exchange.result(), 3, "Bad request")
        self.assertEqual(poll.result().body, b"1")
        self.assertNoSliceLeft()

    def test_overlapping_post(self) -> None:
        sid = self.handshake()
        first = self.start_post(sid, body(*numbered(0, 3 * SLICE)))
        second = self.start_post(sid, b"4late")
        self.assertError(second.result(), 3, "Bad request")
        self.assertEqual(self.closes(), [(CloseReason.TRANSPORT_ERROR, "data request overlap")])
        self.clock.advance(0)
        self.assertOk(first)  # the body's dispatch stopped with its session
        self.assertEqual(self.messages(), [f"m{i}" for i in range(SLICE)])
        self.assertNoSliceLeft()
        self.assertEqual(self.http.request("GET", f"{BASE}&sid={sid}").result().body, b"1")

    def test_session_closed_between_slices(self) -> None:
        sid = self.handshake()
        exchange = self.start_post(sid, body(*numbered(0, 3 * SLICE)))
        self.manager.close(sid)
        self.clock.advance(0)
        self.assertOk(exchange)
        self.assertEqual(len(self.messages()), SLICE)
        self.assertNoSliceLeft()

    def test_session_closed_between_slices_with_a_poll_parked(self) -> None:
        sid = self.handshake()
        poll = self.http.request("GET", f"{BASE}&sid={sid}")
        exchange = self.start_post(sid, body(*numbered(0, 3 * SLICE)))
        self.manager.close(sid)
        self.assertEqual(poll.result().body, b"1")
        self.assertOk(exchange)  # answered with the close, no slice left to run
        self.assertNoSliceLeft()
        self.assertEqual(len(self.messages()), SLICE)

    def test_connection_lost_mid_dispatch(self) -> None:
        sid = self.handshake()
        exchange = self.start_post(sid, body(*numbered(0, 3 * SLICE)))
        exchange.drop()
        self.assertNoSliceLeft()
        self.assertEqual(
            self.closes(), [(CloseReason.TRANSPORT_ERROR, "data request connection closed prematurely")]
        )
        self.clock.advance(0)
        self.assertEqual(len(self.messages()), SLICE)

    def test_client_close_packet_ends_the_body(self) -> None:
        sid = self.handshake()
        exchange = self.start_post(sid, body(*numbered(0, SLICE + 5), "1", *numbered(0, SLICE)))
        self.clock.advance(0)
        self.assertOk(exchange)
        self.assertEqual(len(self.messages()), SLICE + 5)
        self.assertEqual(self.closes(), [(CloseReason.TRANSPORT_CLOSE, "client sent close")])
        self.assertNoSliceLeft()
        self.assertEqual(json.loads(self.http.request("GET", f"{BASE}&sid={sid}").result().body)["code"], 1)


class RateLimitedSlicingTests(SlicingTestCase):
    options = EngineIOOptions(max_payload=1_000_000, max_packets_per_second=50)

    def test_rate_limit_stops_dispatch(self) -> None:
        sid = self.handshake()
        exchange = self.start_post(sid, body(*numbered(0, 3 * SLICE)))
        self.assertOk(exchange)  # the session closed within the first slice: nothing left to do
        self.assertEqual(len(self.messages()), 50)
        self.assertEqual(self.closes(), [(CloseReason.TRANSPORT_ERROR, "rate limit: more than 50 packets/s")])
        self.assertNoSliceLeft()
        self.assertEqual(self.http.request("GET", f"{BASE}&sid={sid}").result().body, b"1")
