#!/usr/bin/env python3
"""What a broadcast costs between two nodes through Redis, by Redis client: latency and CPU per message.

Usage: .venv/bin/python bench/redis_link.py [--messages N] [--rate R] [--rounds K] [--impls a,b]

A private redis-server on a free port; for each client implementation, a receiving process subscribes
(as the adapter does: a pattern, ``socket.io#/#*``) and a sending process publishes N messages of a
typical broadcast's size (~110 bytes of MessagePack) at R messages per second. Each message carries the
sender's CLOCK_MONOTONIC (system-wide on Linux), so the receiver measures publish -> delivery latency.
Each process reports its own user + system CPU over the run, divided by the messages: the "server CPU
per broadcast" on each side. Rounds alternate the implementations (the machine is shared: compare the
ratios within a round). Implementations:

- ``txrealtime``: :class:`txrealtime.redis.RedisClient` (RESP3, hiredis's parser), as RedisLink uses it;
- ``txrealtime-sharded``: :class:`txrealtime.redis.ClusterClient`, ``SPUBLISH`` routed by the channel's slot and
  ``SSUBSCRIBE``, as ShardedRedisLink uses it (the redis-server is a cluster of one);
- ``txrealtime-streams``: the streams adapter's path, ``XADD ... MAXLEN ~`` and ``XREAD BLOCK`` from the last
  entry read (a :class:`txrealtime.adapters.redis.RedisStreamsLink`);
- ``txrealtime-pure``: the same as ``txrealtime`` with the pure-Python reader (no hiredis);
- ``txredisapi``: txredisapi (RESP2, its own parser), what RedisLink used before;
- ``redis-py-threads``: redis-py (hiredis) bridged to the reactor with a thread hop per command
  (``deferToThread``) and per message (a subscriber thread, ``callFromThread``): the cost of bridging a
  blocking client;
- ``redis-py-asyncio``: redis-py's asyncio client on Twisted's asyncio reactor
  (``asyncioreactor``), ``Deferred.fromFuture`` per command: the cost of bridging an asyncio client.

Prints a Markdown table (``late``: messages that had not arrived when the sender's last one did), and the raw
figures as JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMPLS = ["txrealtime", "txrealtime-sharded", "txrealtime-streams", "txrealtime-pure", "txredisapi", "redis-py-threads",
         "redis-py-asyncio"]
CHANNEL = "socket.io#/#"
PATTERN = "socket.io#/#*"
DONE = b"done"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_BODY: list[bytes] = []


def payload(n: int) -> bytes:
    """A broadcast as the classic adapter publishes it, its sequence number's place holding the send time."""
    if not _BODY:
        import msgpack

        _BODY.append(b"\x94" + msgpack.packb(
            ["a1b2c3", {"type": 2, "data": ["chat message", {"name": "alice", "text": "hello " * 8}], "nsp": "/"},
             {"rooms": ["chat"], "except": [], "flags": {}}]
        )[1:] + b"\xcf")
    return _BODY[0] + time.monotonic_ns().to_bytes(8, "big") + n.to_bytes(4, "big")


def sent_at(message: bytes) -> int:
    return int.from_bytes(message[-12:-4], "big")


# -- the processes --------------------------------------------------------------------------------


def install_reactor(impl: str) -> Any:
    if impl == "redis-py-asyncio":
        import asyncio

        from twisted.internet import asyncioreactor

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        asyncioreactor.install(loop)
    from twisted.internet import reactor

    return reactor


class Side:
    """One implementation's publish, and its subscription calling ``on_message(bytes)``."""

    async def start(self, url: str, on_message: Any) -> None:
        raise NotImplementedError

    def publish(self, message: bytes) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        """Wait until what was published is answered."""


class Ours(Side):
    def __init__(self, pure: bool) -> None:
        if pure:
            import txrealtime.redis.resp as resp

            resp.new_reader = resp.PureReader  # type: ignore[assignment]
            import txrealtime.redis.connection as connection

            connection.new_reader = resp.PureReader  # type: ignore[assignment]

    async def start(self, url: str, on_message: Any) -> None:
        from txrealtime.redis import RedisClient

        self.client = RedisClient(url, on_message=lambda channel, message, pattern: on_message(message))
        self.client.start()
        await self.client.when_connected()
        if on_message is not None:
            await self.client.subscribe("psubscribe", [PATTERN])
        self.last: Any = None

    def publish(self, message: bytes) -> None:
        self.last = self.client.execute("PUBLISH", CHANNEL, message)
        self.last.addErrback(lambda f: print(f, file=sys.stderr))

    async def flush(self) -> None:
        await self.client.execute("PING")


class OursSharded(Side):
    async def start(self, url: str, on_message: Any) -> None:
        from txrealtime.redis import ClusterClient

        self.client = ClusterClient(url, on_message=lambda channel, message, pattern: on_message(message))
        self.client.start()
        if on_message is not None:
            self.client.ssubscribe([CHANNEL])
        await self.client.when_connected()

    def publish(self, message: bytes) -> None:
        self.client.execute("SPUBLISH", CHANNEL, message, key=CHANNEL).addErrback(lambda f: print(f, file=sys.stderr))

    async def flush(self) -> None:
        await self.client.execute("PING", key=CHANNEL)


class OursStreams(Side):
    """As the streams adapter: ``XADD ... MAXLEN ~ 10000`` on the publishing connection, ``XREAD BLOCK`` from the
    last entry read on a third one (:class:`txrealtime.adapters.redis.RedisStreamsLink`)."""

    async def start(self, url: str, on_message: Any) -> None:
        from txrealtime.adapters.redis import RedisStreamsLink

        self.link = RedisStreamsLink(url)
        if on_message is not None:
            self.link.read_stream("/", lambda entry_id, fields: on_message(fields[b"data"]))
        self.link.start()
        await self.link.when_reading(30)

    def publish(self, message: bytes) -> None:
        self.link.command("XADD", self.link.stream_name, "MAXLEN", "~", self.link.max_len, "*", "uid", "bench",
                          "nsp", "/", "type", "3", "data", message).addErrback(lambda f: print(f, file=sys.stderr))

    async def flush(self) -> None:
        await self.link.command("PING")


class TxRedisApi(Side):
    async def start(self, url: str, on_message: Any) -> None:
        import txredisapi
        from twisted.internet import reactor

        port = int(url.rsplit(":", 1)[1])
        if on_message is None:
            self.conn = await txredisapi.Connection("127.0.0.1", port, reconnect=False, convertNumbers=False,
                                                    charset=None)
            return

        class Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc]
            def messageReceived(self, pattern: bytes, channel: bytes, message: bytes) -> None:
                on_message(message)

        factory = txredisapi.SubscriberFactory()
        factory.protocol = Subscriber
        factory.charset = None
        from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

        self.sub = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), Subscriber(charset=None))
        self.sub.factory = factory
        await self.sub.psubscribe(PATTERN)

    def publish(self, message: bytes) -> None:
        self.conn.publish(CHANNEL, message).addErrback(lambda f: print(f, file=sys.stderr))

    async def flush(self) -> None:
        await self.conn.ping()


class RedisPyThreads(Side):
    async def start(self, url: str, on_message: Any) -> None:
        import threading

        import redis
        from twisted.internet import reactor, threads

        self.threads = threads
        self.client = redis.Redis.from_url(url)
        if on_message is not None:
            pubsub = self.client.pubsub()
            pubsub.psubscribe(PATTERN)
            while pubsub.get_message(timeout=1) is None:
                pass

            def listen() -> None:
                for item in pubsub.listen():
                    if item["type"] == "pmessage":
                        reactor.callFromThread(on_message, item["data"])

            threading.Thread(target=listen, daemon=True).start()

    def publish(self, message: bytes) -> None:
        self.threads.deferToThread(self.client.publish, CHANNEL, message).addErrback(
            lambda f: print(f, file=sys.stderr)
        )

    async def flush(self) -> None:
        await self.threads.deferToThread(self.client.ping)


class RedisPyAsyncio(Side):
    async def start(self, url: str, on_message: Any) -> None:
        import asyncio

        import redis.asyncio as aioredis
        from twisted.internet.defer import Deferred

        self.Deferred = Deferred
        self.client = aioredis.Redis.from_url(url)
        if on_message is not None:
            pubsub = self.client.pubsub()
            await Deferred.fromFuture(asyncio.ensure_future(pubsub.psubscribe(PATTERN)))

            async def listen() -> None:
                async for item in pubsub.listen():
                    if item["type"] == "pmessage":
                        on_message(item["data"])

            self.task = asyncio.ensure_future(listen())

    def publish(self, message: bytes) -> None:
        import asyncio

        self.Deferred.fromFuture(asyncio.ensure_future(self.client.publish(CHANNEL, message))).addErrback(
            lambda f: print(f, file=sys.stderr)
        )

    async def flush(self) -> None:
        import asyncio

        await self.Deferred.fromFuture(asyncio.ensure_future(self.client.ping()))


def side(impl: str) -> Side:
    if impl in ("txrealtime", "txrealtime-pure"):
        return Ours(pure=impl == "txrealtime-pure")
    if impl == "txrealtime-sharded":
        return OursSharded()
    if impl == "txrealtime-streams":
        return OursStreams()
    return {"txredisapi": TxRedisApi, "redis-py-threads": RedisPyThreads, "redis-py-asyncio": RedisPyAsyncio}[impl]()


def receive(impl: str, url: str, messages: int) -> None:
    reactor = install_reactor(impl)
    from twisted.internet.defer import Deferred, ensureDeferred

    latencies: list[int] = []
    marks: dict[str, float] = {}
    done: Deferred[None] = Deferred()

    def on_message(message: bytes) -> None:
        if message == DONE:  # the sender is through: what has not come will not
            if not done.called:
                marks.setdefault("cpu_end", cpu())
                done.callback(None)
            return
        if not latencies:
            marks["cpu"] = cpu()
        latencies.append(time.monotonic_ns() - sent_at(message))
        if len(latencies) == messages:
            marks["cpu_end"] = cpu()

    async def main() -> None:
        s = side(impl)
        await s.start(url, on_message)
        print("ready", flush=True)
        await done
        latencies.sort()
        report = {
            "late": messages - len(latencies),
            "p50_us": latencies[len(latencies) // 2] / 1000,
            "p99_us": latencies[int(len(latencies) * 0.99)] / 1000,
            "cpu_us": (marks["cpu_end"] - marks["cpu"]) * 1e6 / len(latencies),
        }
        print(json.dumps(report), flush=True)
        os._exit(0)

    reactor.callWhenRunning(lambda: ensureDeferred(main()).addErrback(_fail))
    reactor.run()


def send(impl: str, url: str, messages: int, rate: int) -> None:
    reactor = install_reactor(impl)
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import LoopingCall

    async def main() -> None:
        s = side(impl)
        await s.start(url, None)
        per_tick = max(1, rate // 1000)
        sent = [0]
        start = cpu()
        loop = LoopingCall(lambda: tick())

        def tick() -> None:
            for _ in range(per_tick):
                if sent[0] >= messages:
                    loop.stop()
                    return
                s.publish(payload(sent[0]))
                sent[0] += 1

        await loop.start(0.001)
        await s.flush()
        s.publish(DONE)
        await s.flush()
        print(json.dumps({"sent": sent[0], "cpu_us": (cpu() - start) * 1e6 / sent[0]}), flush=True)
        os._exit(0)

    reactor.callWhenRunning(lambda: ensureDeferred(main()).addErrback(_fail))
    reactor.run()


def _fail(failure: Any) -> None:
    print(failure.getTraceback(), file=sys.stderr, flush=True)
    os._exit(1)


# -- the orchestra --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_pair(impl: str, url: str, messages: int, rate: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    me = [sys.executable, str(Path(__file__).resolve())]
    receiver = subprocess.Popen([*me, "--role", "receive", "--impl", impl, "--url", url, "--messages", str(messages)],
                                stdout=subprocess.PIPE, text=True, env=env)
    assert receiver.stdout is not None
    if receiver.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{impl}: the receiver did not start")
    sender = subprocess.run([*me, "--role", "send", "--impl", impl, "--url", url, "--messages", str(messages),
                             "--rate", str(rate)], capture_output=True, text=True, env=env, timeout=600)
    out, _ = receiver.communicate(timeout=120)
    received = json.loads(out.strip().splitlines()[-1])
    sent = json.loads(sender.stdout.strip().splitlines()[-1])
    return {"impl": impl, "late": received["late"], "p50_us": received["p50_us"], "p99_us": received["p99_us"],
            "receiver_cpu_us": received["cpu_us"], "sender_cpu_us": sent["cpu_us"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["receive", "send"])
    parser.add_argument("--impl", default="txrealtime")
    parser.add_argument("--url")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--impls", default=",".join(IMPLS))
    args = parser.parse_args()
    if args.role == "receive":
        return receive(args.impl, args.url, args.messages)
    if args.role == "send":
        return send(args.impl, args.url, args.messages, args.rate)

    directory = tempfile.mkdtemp()
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", directory], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{port}"
        results: dict[str, list[dict[str, Any]]] = {impl: [] for impl in args.impls.split(",")}
        for _ in range(args.rounds):
            for impl in results:
                results[impl].append(run_pair(impl, url, args.messages, args.rate))
    finally:
        redis.kill()
        shutil.rmtree(directory, ignore_errors=True)
    medians = {
        impl: {key: statistics.median(r[key] for r in rows) for key in rows[0] if key != "impl"}
        for impl, rows in results.items()
    }
    base = medians.get("txrealtime")
    print(f"{args.messages} messages of {len(payload(0))} bytes at {args.rate}/s, median of {args.rounds} rounds\n")
    print("| client | latency p50 (µs) | p99 (µs) | receiver CPU/msg (µs) | sender CPU/msg (µs) | CPU vs txrealtime "
          "| late |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for impl, m in medians.items():
        total = m["receiver_cpu_us"] + m["sender_cpu_us"]
        ratio = total / (base["receiver_cpu_us"] + base["sender_cpu_us"]) if base else float("nan")
        print(f"| {impl} | {m['p50_us']:.0f} | {m['p99_us']:.0f} | {m['receiver_cpu_us']:.1f} | "
              f"{m['sender_cpu_us']:.1f} | {ratio:.2f} | {m['late']:.0f} |")
    print(json.dumps({"messages": args.messages, "rate": args.rate, "rounds": results}))


if __name__ == "__main__":
    main()
