#!/usr/bin/env python3
"""Broadcast 1000 through each Redis adapter across two nodes, txrealtime against Node with the same adapter in the
same run; writes bench/results-adapters.md and bench/results-adapters.json.

For each adapter (``redis``: the classic pub/sub adapter; ``redis-streams``; ``redis-sharded`` on a Redis
Cluster of one master holding every slot) and each server (``twistd txrealtime --adapter ...`` running
bench/apps/tx_app.py; Node's socket.io 4.8 on the matching ``@socket.io`` adapter, bench/apps/node_redis_server.js),
two nodes of that server share a fresh redis-server. 1000 clients of bench/loadgen.js join the room, half on
each node; one more client on node A asks it to broadcast MESSAGES times (each after the previous one's ack),
so every broadcast reaches 500 clients locally and 500 through Redis and node B.

Figures: deliveries/s (all deliveries over the time from the first send to the last delivery); per broadcast,
the latency from its send to its last client's delivery, p50 and p99 over the broadcasts; server CPU per
delivery, the two nodes' user + system time (from /proc) during the broadcasts, divided by the deliveries
(Redis's own CPU is not counted). Everything shares the machine's cores, so compare rows of one run.

Usage: ``bench/adapters.py [--clients N] [--messages N] [--rounds N] [--adapters a,b]`` (the venv's twistd serves
txrealtime: run it with the venv's Python, or with it activated).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # run as a script: bench.forwarding is beside it

from bench.forwarding import cpu_seconds, free_port, wait_for  # noqa: E402

NODE = shutil.which("node") or "node"
NODE_PATH = str(ROOT / "tests" / "interop" / "node_modules")
ADAPTERS = ("redis", "redis-streams", "redis-sharded")
SERVERS = ("txrealtime", "node")


def start_redis(work: Path, cluster: bool) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server (a cluster of one master holding every slot with ``cluster``) and its URL; on a
    port another process took meanwhile, again on another (it answers with its own pid before it is used)."""
    for _ in range(5):
        port = free_port()
        extra = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"] if cluster else []
        process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", str(work), *extra], stdout=subprocess.DEVNULL)
        cli = ["redis-cli", "-p", str(port)]
        while process.poll() is None:
            info = subprocess.run([*cli, "INFO", "server"], capture_output=True, text=True).stdout
            if f"process_id:{process.pid}\r" in info or f"process_id:{process.pid}\n" in info:
                break
            time.sleep(0.05)
        if process.poll() is not None:
            continue
        if cluster:
            subprocess.run([*cli, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"], check=True, capture_output=True)
            while "cluster_state:ok" not in subprocess.run([*cli, "CLUSTER", "INFO"], capture_output=True,
                                                           text=True).stdout:
                time.sleep(0.05)
        return process, f"redis://127.0.0.1:{port}"
    raise RuntimeError("no redis-server started")


def start_node(server: str, adapter: str, redis_url: str, work: Path, index: int) -> tuple[subprocess.Popen[Any], str]:
    """One node: its process and URL, once it serves (and, for txrealtime, its link is up)."""
    port = free_port()
    if server == "txrealtime":
        log = work / f"tx-{adapter}-{index}.log"
        process: subprocess.Popen[Any] = subprocess.Popen(
            [str(Path(sys.executable).parent / "twistd"), "-n", "--pidfile=", "-l", str(log), "txrealtime",
             "--listen", f"tcp:{port}:interface=127.0.0.1:backlog=1024", "--app", "bench.apps.tx_app:setup",
             "--no-access-log", "--max-buffer", "50000000", "--adapter", adapter, "--redis", redis_url],
            cwd=ROOT)
        wait_for(log, r"Redis link \w+ connected", 1)
        wait_for(log, r"Site starting on", 1)
    else:
        process = subprocess.Popen([NODE, str(BENCH / "apps" / "node_redis_server.js"), str(port), adapter, redis_url],
                                   stdout=subprocess.PIPE, text=True, env=dict(os.environ, NODE_PATH=NODE_PATH))
        assert process.stdout is not None
        json.loads(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}"


def loadgen(*args: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([NODE, "--max-old-space-size=4096", str(BENCH / "loadgen.js"), *map(str, args)],
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                            env=dict(os.environ, NODE_PATH=NODE_PATH))


def last_json(process: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
    out, _ = process.communicate(timeout=timeout)
    result: dict[str, Any] = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(server: str, adapter: str, clients: int, messages: int) -> dict[str, Any]:
    """One row: two nodes of ``server`` on ``adapter``, ``clients`` listeners, ``messages`` broadcasts."""
    work = Path(tempfile.mkdtemp(prefix="adapters-bench."))
    processes: list[subprocess.Popen[Any]] = []
    try:
        redis, url = start_redis(work, cluster=adapter == "redis-sharded")
        processes.append(redis)
        nodes = []
        for index in range(2):
            process, node_url = start_node(server, adapter, url, work, index)
            processes.append(process)
            nodes.append((process, node_url))
        listeners = [loadgen("listen", node_url, clients // 2, messages) for _, node_url in nodes]
        for g in listeners:
            assert g.stdout is not None
            assert json.loads(g.stdout.readline()).get("ready")
        time.sleep(1.0)  # the nodes settle (subscriptions, heartbeats) before the broadcasts
        before = sum(cpu_seconds(p.pid) for p, _ in nodes)
        sent = dict(last_json(loadgen("emit", nodes[0][1], messages), timeout=600)["sent"])
        parts = [last_json(g, timeout=600) for g in listeners]
        cpu = sum(cpu_seconds(p.pid) for p, _ in nodes) - before
        delivered = sum(p["deliveries"] for p in parts)
        last: dict[int, float] = {}
        for p in parts:
            for n, (_first, at, _count) in p["arrivals"]:
                last[n] = max(last.get(n, 0.0), at)
        spans = [last[n] - sent[n] for n in last]
        elapsed = (max(last.values()) - min(sent.values())) / 1000
        return {
            "server": server, "adapter": adapter, "clients": clients, "messages": messages,
            "delivered": delivered, "expected": clients // 2 * 2 * messages,
            "deliveries_per_s": delivered / elapsed if elapsed > 0 else 0.0,
            "p50_ms": statistics.median(spans), "p99_ms": percentile(spans, 0.99),
            "cpu_us_per_delivery": cpu * 1e6 / delivered if delivered else None,
        }
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def write(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    (BENCH / "results-adapters.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "# Broadcast 1000 through each Redis adapter, two nodes",
        "",
        f"`bench/adapters.py --clients {args.clients} --messages {args.messages} --rounds "
        f"{args.rounds}` on {time.strftime('%Y-%m-%d')}: two nodes per row on one fresh redis-server (the sharded "
        "adapter: a Redis Cluster of one master), half the clients on each, the broadcasts asked of node A "
        "(bench/adapters.py says how). **Everything shares this machine's "
        f"{os.cpu_count()} cores** (nodes, Redis, load generators): compare rows of this table, not other tables. "
        "Latency: from a broadcast's send to its last client's delivery, over the broadcasts. CPU: both nodes' "
        "user + system time during the broadcasts per delivery (Redis's not counted). Each broadcast is asked for "
        "as soon as the previous one is acknowledged, faster than 1000 clients take them in: the latency is mostly "
        "that backlog, the same for every row. With several rounds, the median of each figure; "
        "bench/results-adapters.json has every round.",
        "",
        "| adapter | server | delivered | deliveries/s | p50 ms | p99 ms | µs of server CPU per delivery |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for adapter in ADAPTERS:
        for server in SERVERS:
            mine = [r for r in rows if r["adapter"] == adapter and r["server"] == server]
            if not mine:
                continue
            med = {k: statistics.median(r[k] for r in mine) for k in
                   ("deliveries_per_s", "p50_ms", "p99_ms", "cpu_us_per_delivery")}
            delivered = f"{sum(r['delivered'] for r in mine)}/{sum(r['expected'] for r in mine)}"
            lines.append(f"| {adapter} | {server} | {delivered} | {med['deliveries_per_s']:.0f} | "
                         f"{med['p50_ms']:.1f} | {med['p99_ms']:.1f} | {med['cpu_us_per_delivery']:.1f} |")
    (BENCH / "results-adapters.md").write_text("\n".join(lines) + "\n")


def rewrite(path: Path) -> None:
    """Write the table again from a JSON file of rows (the figures of an earlier run)."""
    rows = json.loads(path.read_text())
    rounds = len(rows) // len({(r["server"], r["adapter"]) for r in rows})
    write(rows, argparse.Namespace(clients=rows[0]["clients"], messages=rows[0]["messages"], rounds=rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--adapters", default=",".join(ADAPTERS))
    parser.add_argument("--table-only", action="store_true", help="write the table again from the last JSON")
    args = parser.parse_args()
    if args.table_only:
        rewrite(BENCH / "results-adapters.json")
        return
    rows = []
    for _ in range(args.rounds):
        for adapter in args.adapters.split(","):
            for server in SERVERS:  # txrealtime then Node, same adapter, one after the other
                row = run(server, adapter, args.clients, args.messages)
                print(json.dumps(row), flush=True)
                rows.append(row)
    write(rows, args)


if __name__ == "__main__":
    main()
