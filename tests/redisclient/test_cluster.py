"""The Redis Cluster client against a real three-master cluster: routing, MOVED, ASK, resharding, a restart."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from twisted.internet import threads

from tests.peers import until
from tests.servers import RedisCluster
from txrealtime.redis.cluster import ClusterClient, ClusterDown, ClusterUp
from txrealtime.redis.connection import RedisUnavailable
from txrealtime.redis.slots import key_slot

WAIT = 30.0


def cluster_client(url: str, **options: Any) -> tuple[ClusterClient, list[tuple[bytes, bytes]]]:
    messages: list[tuple[bytes, bytes]] = []
    options.setdefault("reconnect_max_delay", 0.2)
    client = ClusterClient(url, on_message=lambda ch, m, p: messages.append((ch, m)), **options)
    client.start()
    return client, messages


def key_on(cluster: RedisCluster, index: int, prefix: str = "k") -> str:
    """A key whose slot node ``index`` serves."""
    for n in range(10_000):
        key = f"{prefix}{n}"
        if cluster.owner(key_slot(key)) == index:
            return key
    raise AssertionError(f"no key on node {index}")


@pytest_twisted.ensureDeferred
async def test_slots_routing_and_every_master(redis_cluster: RedisCluster) -> None:
    client, _ = cluster_client(redis_cluster.url_of(2))  # any node will do to discover the others
    try:
        await client.when_connected()
        assert sorted(p for _, p in client.masters()) == sorted(redis_cluster.ports)
        for key in ("foo", "bar", "{user1}.a", "socket.io#/#", "x\u00e9"):
            assert int(redis_cluster.cli(0, "CLUSTER", "KEYSLOT", key)) == key_slot(key)
        for n in range(30):
            assert await client.execute("SET", f"key{n}", n, key=f"key{n}") == b"OK"
        for n in range(30):
            assert await client.execute("GET", f"key{n}", key=f"key{n}") == str(n).encode()
        sizes = await client.execute_on_masters("DBSIZE")
        assert sum(sizes) == 30 and all(sizes)  # spread over the three
        # A blocking read on the stream's master, on a connection of its own.
        reader = client.dedicated("stream")
        reader.start()
        try:
            await reader.when_connected()
            read = reader.execute("XREAD", "BLOCK", 10_000, "STREAMS", "stream", "$", timeout=15)
            await client.execute("XADD", "stream", "*", "f", "v", key="stream")
            [[_, fields]] = (await read)[b"stream"]
            assert fields == [b"f", b"v"]
        finally:
            await reader.stop()
    finally:
        await client.stop()


@pytest_twisted.ensureDeferred
async def test_moved_and_ask_are_followed_while_a_slot_moves(redis_cluster: RedisCluster) -> None:
    client, _ = cluster_client(redis_cluster.url, refresh_interval=3600)
    try:
        await client.when_connected()
        key = key_on(redis_cluster, 0)
        slot = key_slot(key)
        await client.execute("SET", key, "before", key=key)
        other = f"{{{key}}}.other"  # the same slot, not written yet: during the move it is asked for with ASK

        asked: list[Any] = []

        def half_moved() -> None:
            # Called in the thread running the move: the slot is MIGRATING on node 0, IMPORTING on node 1.
            asked.append(threads.blockingCallFromThread(_reactor(), lambda: client.execute("SET", other, "new",
                                                                                            key=other)))

        refreshes = client.refreshes
        await threads.deferToThread(redis_cluster.move_slot, slot, 1, half_moved)
        assert asked == [b"OK"]
        assert redis_cluster.cli(1, "GET", other) == "new"  # ASK sent it to the importing node
        assert client.slots is not None and client.slots.owner(slot) == ("127.0.0.1", redis_cluster.ports[0])
        # The map is stale now: MOVED corrects it and the command lands on the new owner.
        assert await client.execute("GET", key, key=key) == b"before"
        assert client.slots.owner(slot) == ("127.0.0.1", redis_cluster.ports[1])
        await until(lambda: client.refreshes > refreshes, "the map to be fetched again", limit=WAIT)
    finally:
        await client.stop()


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest_twisted.ensureDeferred
async def test_shard_channels_follow_their_slot(redis_cluster: RedisCluster) -> None:
    client, messages = cluster_client(redis_cluster.url)
    publisher, _ = cluster_client(redis_cluster.url_of(1))
    events: list[ClusterUp | ClusterDown] = []
    client.subscribe_events(events.append)
    try:
        channels = [key_on(redis_cluster, i, "chan") for i in range(3)]
        client.ssubscribe(channels)
        await client.when_connected()
        await publisher.when_connected()
        for channel in channels:
            assert await publisher.execute("SPUBLISH", channel, "one", key=channel) == 1
        await until(lambda: len(messages) == 3, "a message on each shard", limit=WAIT)

        # Move the first channel's slot: Redis unsubscribes it on node 0, the client subscribes on node 2.
        await threads.deferToThread(redis_cluster.move_slot, key_slot(channels[0]), 2)
        await until(lambda: any(isinstance(e, ClusterDown) for e in events), "the move to be noticed", limit=WAIT)
        await client.when_connected()
        assert await publisher.execute("SPUBLISH", channels[0], "two", key=channels[0]) == 1
        await until(lambda: (channels[0].encode(), b"two") in messages, "the message after the move", limit=WAIT)
        counts = await client.execute_on_masters("PUBSUB", "SHARDNUMSUB", channels[0])
        by_port = {port: count[1] for (_, port), count in zip(client.masters(), counts, strict=True)}
        assert by_port == {redis_cluster.ports[0]: 0, redis_cluster.ports[1]: 0, redis_cluster.ports[2]: 1}
    finally:
        await client.stop()
        await publisher.stop()


@pytest_twisted.ensureDeferred
async def test_a_restarted_master_is_reconnected_and_resubscribed(redis_cluster: RedisCluster) -> None:
    client, messages = cluster_client(redis_cluster.url, health_check_interval=0.5)
    try:
        on_two = key_on(redis_cluster, 2, "chan")
        key = key_on(redis_cluster, 2)
        client.ssubscribe([on_two])
        await client.when_connected()
        redis_cluster.stop(2)
        await until(lambda: not client.connected, "the lost master to be noticed", limit=WAIT)
        # The other masters still serve their slots; the lost one's fail, after a few tries.
        elsewhere = key_on(redis_cluster, 0)
        assert await client.execute("SET", elsewhere, "ok", key=elsewhere) == b"OK"
        failed: list[Any] = []
        await client.execute("SET", key, "x", key=key).addErrback(failed.append)
        assert failed and failed[0].check(RedisUnavailable)
        redis_cluster.start(2)
        await threads.deferToThread(redis_cluster.wait_until_ok)
        await client.when_connected()
        assert await client.execute("SET", key, "back", key=key) == b"OK"
        assert await client.execute("SPUBLISH", on_two, "again", key=on_two) == 1
        await until(lambda: messages == [(on_two.encode(), b"again")], "the message after the restart", limit=WAIT)
    finally:
        await client.stop()
