"""``twistd txrealtime --workers 2``: real master and worker processes, official clients, loopback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import requests
import socketio
from twisted.internet import threads

from tests.cluster.workers import Cluster, NodeClients
from tests.servers import node_peer


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    running = Cluster()
    yield running
    running.stop()


def landed(cluster: Cluster, clients: list[dict[str, Any]]) -> None:
    """Each client's sid starts with the index of the worker that answered it, and the clients of each
    transport mode landed on both workers."""
    for client in clients:
        assert client["sid"].startswith(f"{cluster.worker_of(client['pid'])}."), client
    for mode in {c["mode"] for c in clients}:
        assert {c["pid"] for c in clients if c["mode"] == mode} == set(cluster.pids.values()), (mode, clients)


@pytest_twisted.ensureDeferred
async def test_node_clients_of_every_transport_across_two_workers(cluster: Cluster) -> None:
    report = await node_peer("workers_client.js", cluster.url, "2", "polling", "websocket", "upgrade")
    clients = report["clients"]
    assert len(clients) == 6
    landed(cluster, clients)
    assert [c["again"] for c in clients] == [c["pid"] for c in clients]  # every later request reached its owner
    assert [c["transport"] for c in clients] == ["polling"] * 2 + ["websocket"] * 4
    assert {c["address"] for c in clients} == {"127.0.0.1"}  # the worker sees the client, not the master
    # One broadcast from a client of one worker reached every client of both.
    assert report["sent"] == "sent"
    assert report["heard"] == [{"text": "hello all", "pid": clients[0]["pid"]}] * 6
    # fetch_sockets from the last client's worker found every socket, with the worker it lives on.
    assert report["census"] == sorted([c["id"], c["pid"]] for c in clients)
    # The server-side emit was answered by the other worker only.
    asker = clients[0]["pid"]
    (other,) = set(cluster.pids.values()) - {asker}
    assert report["answers"] == [{"pid": other, "asked by": asker}]


def python_clients(url: str, transports: list[str], count: int) -> list[dict[str, Any]]:
    """``count`` python-socketio clients on ``transports``: each one's sid, and its pid asked twice."""
    seen = []
    clients = []
    try:
        for _ in range(count):
            client = socketio.Client(reconnection=False)
            client.connect(url, transports=transports, wait_timeout=30)
            clients.append(client)
            first = client.call("whoami", timeout=30)
            again = client.call("whoami", timeout=30)
            seen.append({"mode": transports[0], "pid": first["pid"], "again": again["pid"], "sid": client.eio.sid})
    finally:
        for client in clients:
            client.disconnect()
    return seen


@pytest_twisted.ensureDeferred
async def test_python_socketio_clients_across_two_workers(cluster: Cluster) -> None:
    clients = await threads.deferToThread(python_clients, cluster.url, ["polling"], 2)
    clients += await threads.deferToThread(python_clients, cluster.url, ["websocket"], 2)
    landed(cluster, clients)
    assert [c["again"] for c in clients] == [c["pid"] for c in clients]


def kill_and_reconnect(cluster: Cluster) -> tuple[Any, Any, int]:
    clients = NodeClients(cluster.url, 2, "polling", "websocket")
    try:
        before = clients.report()
        victim = cluster.pids[0]
        mark = len(cluster.log)
        os.kill(victim, signal.SIGKILL)
        restarted = cluster.ready(0, start=mark)
        after = clients.command(f"reconnect {victim}")
    finally:
        clients.close()
    return before, after, restarted


@pytest_twisted.ensureDeferred
async def test_a_killed_worker_is_restarted_and_its_clients_reconnect(cluster: Cluster) -> None:
    victim, survivor = cluster.pids[0], cluster.pids[1]
    before, after, restarted = await threads.deferToThread(kill_and_reconnect, cluster)
    assert {c["pid"] for c in before["clients"]} == {victim, survivor}
    assert after["lost"] == sum(c["pid"] == victim for c in before["clients"]) > 0
    assert restarted not in (victim, survivor)
    assert f"Worker 0 (pid {victim}) exited (signal 9): restarting it" in "".join(cluster.log)
    # Every client is connected again, to a live worker; the survivor's clients never left it.
    pids = [c["pid"] for c in after["clients"]]
    assert set(pids) <= {restarted, survivor}
    for old, new in zip(before["clients"], after["clients"], strict=True):
        if old["pid"] == survivor:
            assert new == old
        else:
            assert new["sid"] != old["sid"]
    cluster.pids[0] = restarted
    landed(cluster, [c for c in after["clients"] if c["pid"] == restarted])


def drain(cluster: Cluster) -> tuple[Any, Any, int]:
    clients = NodeClients(cluster.url, 2, "polling", "websocket", "upgrade")
    try:
        connected = clients.report()
        cluster.process.send_signal(signal.SIGTERM)
        closed = clients.command("closed")
    finally:
        clients.close()
    return connected, closed, cluster.stop()


@pytest_twisted.ensureDeferred
async def test_sigterm_drains_every_worker_and_exits_0(cluster: Cluster) -> None:
    connected, closed, status = await threads.deferToThread(drain, cluster)
    assert {c["pid"] for c in connected["clients"]} == set(cluster.pids.values())
    assert closed["reasons"] == ["transport close"] * 6  # as one process drains: each got its CLOSE
    assert status == 0
    log = "".join(cluster.log)
    for index, pid in cluster.pids.items():
        assert f"Worker {index} (pid {pid}) exited (status 0)" in log
        assert f"worker {index} | [txrealtime.service#info] Shutdown clean" in log
    assert "[txrealtime.cluster.master#info] Shutdown clean" in log


def handshake(session: requests.Session, url: str) -> str:
    response = session.get(f"{url}/socket.io/?EIO=4&transport=polling", timeout=30)
    return str(json.loads(response.text[1:])["sid"])


def keep_alive(url: str) -> tuple[str, str, list[tuple[int, str | None, str | None]], str]:
    """Two sessions opened on two connections; then a request of the second on the first's kept-alive one."""
    first, second = requests.Session(), requests.Session()
    try:
        mine, theirs = handshake(first, url), handshake(second, url)
        # requests sends this on first's kept-alive connection, which the master gave mine's worker.
        response = first.post(f"{url}/socket.io/?EIO=4&transport=polling&sid={theirs}", data="40", timeout=30)
        hops = [(r.status_code, r.headers.get("location"), r.headers.get("connection")) for r in response.history]
        return mine, theirs, hops, response.text
    finally:
        first.close()
        second.close()


@pytest_twisted.ensureDeferred
async def test_a_kept_alive_connection_reaching_the_wrong_worker_is_redirected(cluster: Cluster) -> None:
    mine, theirs, hops, answer = await threads.deferToThread(keep_alive, cluster.url)
    assert {mine.split(".")[0], theirs.split(".")[0]} == {"0", "1"}
    # The worker that does not own the session sends the client back through the master, body and all.
    assert hops == [(307, f"/socket.io/?EIO=4&transport=polling&sid={theirs}", "close")]
    assert answer == "ok"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pids: list[int]) -> list[int]:
    """The pids still running once every one of ``pids`` exited or a minute passed (a safety net)."""
    for _ in range(600):
        if not any(alive(pid) for pid in pids):
            break
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


@pytest_twisted.ensureDeferred
async def test_workers_shut_down_when_their_master_is_killed(cluster: Cluster) -> None:
    cluster.process.kill()
    # Their channel closed: each drains and exits (their log went through the master, now gone).
    assert await threads.deferToThread(wait_gone, list(cluster.pids.values())) == []


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def over_unix(path: str) -> list[tuple[str, str]]:
    """Two handshakes on two connections, then a message sent on a third connection per session."""
    sids = []
    for _ in range(2):
        connection = UnixHTTPConnection(path)
        connection.request("GET", "/socket.io/?EIO=4&transport=polling")
        sids.append(json.loads(connection.getresponse().read()[1:])["sid"])
        connection.close()
    answers = []
    for sid in sids:
        connection = UnixHTTPConnection(path)
        connection.request("POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", body=b"40")
        answers.append((sid, connection.getresponse().read().decode()))
        connection.close()
    return answers


@pytest_twisted.ensureDeferred
async def test_a_unix_endpoint_is_shared_out_too(tmp_path: Path) -> None:
    path = str(tmp_path / "realtime.sock")
    cluster = Cluster("--listen", f"unix:{path}")
    try:
        cluster.wait_for(r"Site starting on .*realtime.sock")
        answers = await threads.deferToThread(over_unix, path)
    finally:
        cluster.stop()
    assert sorted(sid.split(".")[0] for sid, _ in answers) == ["0", "1"]
    assert [answer for _, answer in answers] == ["ok", "ok"]


@pytest_twisted.ensureDeferred
async def test_the_admin_ui_sees_every_worker_as_a_server() -> None:
    cluster = Cluster("--admin-no-auth")
    try:
        report = await node_peer("workers_admin.js", cluster.url, "4")
    finally:
        cluster.stop()
    assert report.get("error") is None, report["error"]
    # One server per worker (hostname#pid), each counting its own clients; every client seen by the UI.
    assert {name.rsplit("#", 1)[1] for name in report["servers"]} == {str(pid) for pid in cluster.pids.values()}
    assert sum(report["servers"].values()) >= 4
    assert set(report["clients"]) <= set(report["seen"])

