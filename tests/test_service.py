"""The twistd plugin: option parsing, resource mounting, and a real twistd process."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import LogLevel
from twisted.python import usage
from twisted.web.resource import Resource

from tests.servers import INTEROP, RedisCluster, RedisServer, Twistd
from tests.tls import self_signed
from txrealtime import set_log_level
from txrealtime.adapters.redis.link import numsub_count
from txrealtime.client import Manager
from txrealtime.engineio import HttpCompression, PerMessageDeflate
from txrealtime.redis import ClusterClient, RedisClient
from txrealtime.service import Options, make_process_service, mount, raise_open_files_limit
from txrealtime.socketio import Server
from txrealtime.socketio.recovery import StateRecovery
from txrealtime.web import BoundedSite


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))  # type: ignore[no-untyped-call]
    return options


def test_defaults() -> None:
    options = parse()
    assert options["listen"] == ["tcp:8080"]
    assert options["path"] == "/socket.io/"
    assert parse("--engineio")["path"] == "/engine.io/"
    assert parse("--engineio", "--path", "/rt/")["path"] == "/rt/"
    assert options["engineio-options"].ping_interval == 25.0
    assert options["engineio-options"].cors_allowed_origins is None
    assert (options["header-timeout"], options["max-connections-per-ip"]) == (10.0, None)


def test_options(tmp_path: Path) -> None:
    key, cert = self_signed(tmp_path)
    tls = f"ssl:2:privateKey={key}:certKey={cert}"
    options = parse(
        "--listen",
        "tcp:1",
        "-l",
        tls,
        "--ping-interval",
        "5",
        "--max-payload",
        "10",
        "--cors-origin",
        "https://a.example",
        "--cors-origin",
        "https://b.example",
        "--no-upgrades",
    )
    assert options["listen"] == ["tcp:1", tls]
    eio = options["engineio-options"]
    assert (eio.ping_interval, eio.max_payload, eio.allow_upgrades) == (5.0, 10, False)
    assert list(eio.cors_allowed_origins) == ["https://a.example", "https://b.example"]
    assert parse("--cors-origin", "*")["engineio-options"].cors_allowed_origins == "*"


def test_allow_eio3_option() -> None:
    assert parse("--allow-eio3")["engineio-options"].allow_eio3 is True
    assert parse()["engineio-options"].allow_eio3 is False
    twistd = str(Path(sys.executable).parent / "twistd")
    done = subprocess.run(
        [twistd, "txrealtime", "--help"], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent
    )
    assert "--allow-eio3" in done.stdout and "allowEIO3" in done.stdout, done.stdout + done.stderr


def test_header_timeout_and_connections_per_address_reach_the_site() -> None:
    options = parse("--listen", "tcp:0", "--header-timeout", "2.5", "--max-connections-per-ip", "50")
    site = make_process_service(options).site
    assert isinstance(site, BoundedSite)
    assert (site.header_timeout, site.max_connections_per_ip) == (2.5, 50)
    site = make_process_service(parse("--listen", "tcp:0")).site
    assert isinstance(site, BoundedSite)
    assert (site.header_timeout, site.max_connections_per_ip) == (10.0, None)


def test_socketio_limits_recovery_and_log_level_reach_the_server() -> None:
    from txrealtime import _logging

    service = make_process_service(parse(
        "--listen", "tcp:0", "--attachment-timeout", "5", "--max-namespaces-per-client", "7",
        "--cleanup-empty-child-namespaces", "--state-recovery", "90", "--log-level", "warn",
    ))
    try:
        server = service.server
        assert server is not None
        assert (server.attachment_timeout, server.max_namespaces_per_client) == (5.0, 7)
        assert server.cleanup_empty_child_namespaces is True
        assert server.connection_state_recovery == StateRecovery(max_disconnection_duration=90.0)
        assert _logging._predicate.logLevelForNamespace("txrealtime.socketio") is LogLevel.warn
    finally:
        set_log_level("info")
    server = make_process_service(parse("--listen", "tcp:0")).server
    assert server is not None
    assert (server.attachment_timeout, server.max_namespaces_per_client) == (30.0, 100)
    assert server.cleanup_empty_child_namespaces is False and server.connection_state_recovery is None


def test_parser_option_reaches_the_server() -> None:
    from txrealtime.protocol.msgpack import MSGPACK
    from txrealtime.protocol.parser import JSON

    server = make_process_service(parse("--listen", "tcp:0", "--parser", "msgpack")).server
    assert server is not None and server.parser is MSGPACK
    server = make_process_service(parse("--listen", "tcp:0")).server
    assert server is not None and server.parser is JSON
    with pytest.raises(usage.UsageError, match="unknown parser 'cbor'"):
        parse("--parser", "cbor")
    with pytest.raises(usage.UsageError, match="drop --engineio"):
        parse("--engineio", "--parser", "msgpack")


def test_compression_options() -> None:
    """Node's defaults: permessage-deflate off, HTTP compression on; each flag turns one around."""
    default = parse()["engineio-options"]
    assert (default.websocket_compression, default.polling_compression) == (None, HttpCompression())
    changed = parse("--per-message-deflate", "--no-http-compression")["engineio-options"]
    assert (changed.websocket_compression, changed.polling_compression) == (PerMessageDeflate(), None)


def test_help_lists_the_new_options() -> None:
    twistd = str(Path(sys.executable).parent / "twistd")
    done = subprocess.run(
        [twistd, "txrealtime", "--help"], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent
    )
    for option in ("--header-timeout=", "--max-connections-per-ip=", "--attachment-timeout=", "--state-recovery=",
                   "--max-namespaces-per-client=", "--cleanup-empty-child-namespaces", "--log-level=",
                   "--parser=", "--per-message-deflate", "--no-http-compression", "--gc-threshold="):
        assert option in done.stdout, done.stdout + done.stderr


def test_open_files_limit_is_raised_to_the_hard_limit() -> None:
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 2:
        pytest.skip(f"no finite hard limit to raise to ({hard})")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard - 1, hard))
        assert raise_open_files_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
        assert raise_open_files_limit() == hard  # already there: nothing to do, no error
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_gc_threshold_applies_while_the_service_runs() -> None:
    assert parse()["gc-threshold"] == 50_000
    before = gc.get_threshold()
    assert before[0] != 12345
    realtime = make_process_service(parse("--listen", "tcp:0:interface=127.0.0.1", "--gc-threshold", "12345"))
    assert gc.get_threshold() == before  # building the service changes nothing
    realtime._endpoints.clear()  # not listening: only the threshold is under test
    for child in list(realtime):
        child.disownServiceParent()
    realtime.startService()
    try:
        assert gc.get_threshold() == (12345, *before[1:])
    finally:
        realtime.stopService()
    assert gc.get_threshold() == before
    untouched = make_process_service(parse("--gc-threshold", "0"))
    untouched._endpoints.clear()
    for child in list(untouched):
        child.disownServiceParent()
    untouched.startService()
    assert gc.get_threshold() == before
    untouched.stopService()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--static", "/no/such/dir"], "no such folder"),
        (["--app", "nocolon"], "module:function"),
        (["--app", "no_such_module_xyz:setup"], "cannot import"),
        (["--app", "examples.echo.app:missing"], "has no function"),
        (["--path", "socket.io"], "must start with /"),
        (["--header-timeout", "0"], "--header-timeout must be > 0"),
        (["--max-connections-per-ip", "0"], "--max-connections-per-ip must be > 0"),
        (["--log-level", "loud"], "--log-level must be one of"),
        (["--state-recovery", "0"], "--state-recovery must be > 0"),
        (["--gc-threshold", "-1"], "--gc-threshold must be >= 0"),
        (["--forward-timeout", "0"], "--forward-timeout must be > 0"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=message):
        parse(*args)


def test_engineio_app_hook_receives_manager() -> None:
    service = make_process_service(parse("--engineio", "--app", "examples.echo.app:setup", "--listen", "tcp:0"))
    assert service.server is None
    assert len(service.manager._subscribers) == 1
    assert len(list(service)) == 1


def test_app_hook_receives_socketio_server() -> None:
    options = parse("--app", "examples.chat.app:setup", "--listen", "tcp:0", "--connect-timeout", "3")
    service = make_process_service(options)
    assert isinstance(service.server, Server)
    assert service.server.manager is service.manager
    assert service.server.connect_timeout == 3.0
    assert len(service.server.sockets.listeners("connection")) == 1


def test_mount_nested() -> None:
    root, leaf = Resource(), Resource()
    mount(root, "/a/b/", leaf)
    assert root.children[b"a"].children[b"b"] is leaf
    with pytest.raises(ValueError):
        mount(root, "/", leaf)


def test_twistd_serves_static_and_realtime(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    server = Twistd("--engineio", "--static", str(tmp_path), "--app", "examples.echo.app:setup")
    try:
        with urllib.request.urlopen(server.url + "/index.html") as page:
            assert page.read() == b"<h1>hi</h1>"
        for mode in ("polling", "websocket", "upgrade"):
            done = subprocess.run(
                [sys.executable, str(INTEROP / "eio_client.py"), server.url, mode],
                capture_output=True,
                text=True,
                timeout=60,
            )
            report = json.loads(done.stdout.strip().splitlines()[-1])
            assert report["messages"] == ["hello", {"binary": [1, 2, 3]}], done.stderr
    finally:
        code = server.stop()
    # Every session drained within the grace period: a clean stop, exit status 0.
    assert code == 0
    assert "Server Shut Down." in "".join(server.log)


def test_chat_bot_example_against_twistd() -> None:
    server = Twistd("--static", "examples/chat/public", "--app", "examples.chat.app:setup")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "examples.chat.bot", server.url],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).parent.parent,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["join: {'ok': True, 'users': 1}", "bot: hello from Twisted"]


async def chat_across(first: Twistd, second: Twistd, links_up: Callable[[], Awaitable[bool]], text: str) -> None:
    """alice, on ``first``, says ``text``; bob, on ``second``, hears it; both servers then stop cleanly.

    Joining asks every node (``fetch_sockets``): ``links_up()`` says when both nodes' links are up and
    subscribed, which is waited for first.
    """
    managers = [Manager(first.url, transports=["websocket"]), Manager(second.url, transports=["websocket"])]
    try:
        while not await links_up():
            await deferLater(reactor, 0.05, lambda: None)
        alice = await managers[0].socket("/").connect()
        bob = await managers[1].socket("/").connect()
        heard: Deferred[dict[str, object]] = Deferred()
        bob.on("chat message", lambda msg: heard.callback(msg) if not heard.called else None)
        await alice.emit_with_ack("join", "alice", timeout=10)
        await bob.emit_with_ack("join", "bob", timeout=10)
        # A node's room subscription may still be on its way right after the join: say it until it is heard.
        for _ in range(200):
            await alice.emit_with_ack("chat message", text, timeout=10)
            if heard.called:
                break
            await deferLater(reactor, 0.05, lambda: None)
        message = await heard
        assert (message["name"], message["text"]) == ("alice", text)
    finally:
        for manager in managers:
            await manager.close()
        codes = [first.stop(), second.stop()]
    assert codes == [0, 0]
    assert "Redis link" in "".join(first.log)


@pytest_twisted.ensureDeferred
async def test_two_twistd_nodes_share_the_chat_through_redis(redis_server: RedisServer) -> None:
    args = ("--static", "examples/chat/public", "--app", "examples.chat.app:setup", "--redis", redis_server.url)
    first, second = Twistd(*args), Twistd(*args, "--redis-key", "socket.io")
    watcher = RedisClient(redis_server.url)
    watcher.start()

    async def links_up() -> bool:
        await watcher.when_connected()
        return numsub_count(await watcher.execute("PUBSUB", "NUMSUB", "socket.io-request#/#")) == 2

    try:
        await chat_across(first, second, links_up, "across nodes")
    finally:
        await watcher.stop()


def test_redis_option_errors() -> None:
    with pytest.raises(usage.UsageError, match="redis://"):
        parse("--redis", "http://nope")
    with pytest.raises(usage.UsageError, match="drop --engineio"):
        parse("--redis", "redis://127.0.0.1", "--engineio")


def test_adapter_option_errors() -> None:
    assert parse("--redis", "redis://127.0.0.1")["adapter"] == "redis"  # --redis alone: the classic adapter
    assert parse("--adapter", "redis-sharded", "--redis", "redis://h:7000")["adapter"] == "redis-sharded"
    with pytest.raises(usage.UsageError, match="one of redis, redis-streams, redis-sharded"):
        parse("--adapter", "mongo", "--redis", "redis://127.0.0.1")
    with pytest.raises(usage.UsageError, match="needs --redis"):
        parse("--adapter", "redis-sharded")
    with pytest.raises(usage.UsageError, match="database 0 only"):
        parse("--adapter", "redis-sharded", "--redis", "redis://h:7000/2")
    with pytest.raises(usage.UsageError, match="subscription-mode"):
        parse("--adapter", "redis-sharded", "--redis", "redis://h", "--redis-subscription-mode", "lazy")
    with pytest.raises(usage.UsageError, match="--redis-max-len must be 1 or more, not 0"):
        parse("--adapter", "redis-streams", "--redis", "redis://h", "--redis-max-len", "0")
    with pytest.raises(usage.UsageError, match="--redis-max-len takes a whole number, not 'many'"):
        parse("--adapter", "redis-streams", "--redis", "redis://h", "--redis-max-len", "many")
    with pytest.raises(usage.UsageError, match="--redis-stream-name must not be empty"):
        parse("--adapter", "redis-streams", "--redis", "redis://h", "--redis-stream-name", "")


def test_the_streams_adapter_takes_nodes_stream_name_and_max_len() -> None:
    """Node's streamName and maxLen, for a cluster whose Node nodes do not use the defaults."""
    from txrealtime.adapters.redis import RedisStreamsLink

    service = make_process_service(parse("--adapter", "redis-streams", "--redis", "redis://127.0.0.1:1",
                                         "--redis-stream-name", "chat-stream", "--redis-max-len", "500",
                                         "--no-forwarding"))
    link = service.redis
    assert isinstance(link, RedisStreamsLink)
    assert (link.stream_name, link.max_len, link.key) == ("chat-stream", 500, "socket.io")
    link.stop()
    defaults = make_process_service(parse("--adapter", "redis-streams", "--redis", "redis://127.0.0.1:1",
                                          "--no-forwarding"))
    assert isinstance(defaults.redis, RedisStreamsLink)
    assert (defaults.redis.stream_name, defaults.redis.max_len) == ("socket.io", 10_000)  # Node's defaults
    defaults.redis.stop()


@pytest_twisted.ensureDeferred
async def test_two_twistd_nodes_share_the_chat_through_a_redis_cluster(redis_cluster: RedisCluster) -> None:
    def node(index: int) -> Twistd:
        return Twistd("--static", "examples/chat/public", "--app", "examples.chat.app:setup",
                      "--adapter", "redis-sharded", "--redis", redis_cluster.url_of(index))

    first, second = node(0), node(2)  # each discovers the cluster from a node of its own
    watcher = ClusterClient(redis_cluster.url)
    watcher.start()

    async def links_up() -> bool:  # both nodes subscribed to the namespace's channel
        await watcher.when_connected()
        replies = await watcher.execute_on_masters("PUBSUB", "SHARDNUMSUB", "socket.io#/#")
        return sum(numsub_count(reply) for reply in replies) == 2

    try:
        await chat_across(first, second, links_up, "across the cluster")
    finally:
        await watcher.stop()


def test_forwarding_is_on_with_redis_unless_turned_off() -> None:
    alone = make_process_service(parse())
    assert alone.forwarder is None and alone.manager.sid_tag == ""
    linked = make_process_service(parse("--redis", "redis://127.0.0.1:1", "--forward-timeout", "2.5"))
    forwarder = linked.forwarder
    assert forwarder is not None and forwarder.timeout == 2.5
    assert linked.manager.sid_tag == "~" + forwarder.uid
    assert linked.resource is not None and linked.resource.elsewhere is forwarder
    sticky = make_process_service(parse("--redis", "redis://127.0.0.1:1", "--no-forwarding"))
    assert sticky.forwarder is None and sticky.resource is not None and sticky.resource.elsewhere is None
    for service in (linked, sticky):
        forwarder = service.forwarder
        if forwarder is not None:
            forwarder.stop()
        service.redis.stop()
