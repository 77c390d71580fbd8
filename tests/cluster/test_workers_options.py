"""``--workers`` on the command line: parsing, refusals, the worker's command line, and with ``--redis``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.python import usage

from tests.cluster.workers import Cluster
from tests.servers import RedisServer, node_peer
from tests.tls import self_signed
from txrealtime.cluster.master import MasterService
from txrealtime.command import WorkerOptions
from txrealtime.service import Options, make_process_service, make_service


def parsed(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))  # type: ignore[no-untyped-call]
    return options


def test_workers_default_to_one_process() -> None:
    options = parsed()
    assert options["workers"] == 1
    assert not isinstance(make_service(options), MasterService)


def test_auto_means_one_worker_per_cpu() -> None:
    assert parsed("--workers", "auto")["workers"] == (os.cpu_count() or 1)


@pytest.mark.parametrize("value", ["0", "-2", "two", ""])
def test_bad_worker_counts_are_refused(value: str) -> None:
    with pytest.raises(usage.UsageError, match="--workers must be a number >= 1 or auto"):
        parsed("--workers", value)


def test_workers_get_the_command_line_without_workers() -> None:
    options = parsed("--workers", "2", "-l", "tcp:0", "--workers=3", "--ping-interval", "5", "--no-upgrades",
                     "--cors-origin", "https://a.example", "--cors-origin", "https://b.example")
    assert options["workers"] == 3
    args = options.worker_args()
    assert "--workers" not in " ".join(args)
    assert {"--listen=tcp:0", "--ping-interval=5.0", "--no-upgrades", "--path=/socket.io/",
            "--cors-origin=https://a.example", "--cors-origin=https://b.example"} <= set(args)
    again = parsed(*args)  # the worker parses it into the same options
    for name in ("listen", "ping-interval", "no-upgrades", "cors-origin", "path", "max-payload", "shutdown-grace"):
        assert again[name] == options[name], name
    assert again["workers"] == 1
    service = make_service(options)
    assert isinstance(service, MasterService)
    assert len(service.workers) == 3
    with pytest.raises(ValueError, match="build it with make_service"):
        make_process_service(options)


def test_tls_endpoints_are_refused_with_several_workers(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with pytest.raises(usage.UsageError, match="terminate TLS in front of it"):
        parsed("--workers", "2", "--listen", f"ssl:0:privateKey={key}:certKey={cert}")
    assert parsed("--workers", "1", "--listen", f"ssl:0:privateKey={key}:certKey={cert}")["workers"] == 1


def test_metrics_are_refused_with_several_workers() -> None:
    for flags in (["--metrics"], ["--metrics-listen", "tcp:0"]):
        with pytest.raises(usage.UsageError, match="each worker keeps its own counters"):
            parsed("--workers", "2", *flags)
        assert parsed("--workers", "1", *flags)["metrics"]


def test_a_malformed_worker_channel_is_refused() -> None:
    for args, error in ((["--worker-channel", "3"], "--worker-channel: expected FD:INDEX"),
                        ([], "--worker-channel FD:INDEX is required")):
        with pytest.raises(SystemExit) as exited:
            WorkerOptions().parseOptions(args)
        assert str(exited.value.code).startswith(f"python -m txrealtime._worker: {error}")


def test_the_worker_channel_is_no_user_option() -> None:
    """Only the worker processes a master starts take it (``python -m txrealtime._worker``)."""
    with pytest.raises(usage.UsageError, match="option --worker-channel not recognized"):
        parsed("--worker-channel", "3:1")


def test_help_names_workers() -> None:
    done = subprocess.run([sys.executable, "-m", "txrealtime", "--help"], capture_output=True, text=True, check=True)
    assert "--workers=" in done.stdout
    assert "auto for one per CPU" in done.stdout


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[Cluster]:
    redis = RedisServer(tmp_path)
    running = Cluster("--redis", redis.url)
    yield running
    running.stop()
    redis.stop()


@pytest_twisted.ensureDeferred
async def test_workers_share_rooms_through_redis_when_told_to(redis_cluster: Cluster) -> None:
    report = await node_peer("workers_client.js", redis_cluster.url, "2", "polling", "websocket")
    clients = report["clients"]
    assert {c["pid"] for c in clients} == set(redis_cluster.pids.values())
    assert report["heard"] == [{"text": "hello all", "pid": clients[0]["pid"]}] * 4
    assert report["census"] == sorted([c["id"], c["pid"]] for c in clients)
    (other,) = set(redis_cluster.pids.values()) - {clients[0]["pid"]}
    assert report["answers"] == [{"pid": other, "asked by": clients[0]["pid"]}]
    assert "Redis link" in "".join(redis_cluster.log)
