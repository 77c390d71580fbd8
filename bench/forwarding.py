"""Forwarding's cost: three txrealtime nodes on one Redis behind a round-robin proxy, against the same three
nodes behind a sticky proxy; writes bench/results-forwarding.md.

Both proxies are tests/interop/rrproxy.js, which opens a fresh connection to a node for every HTTP request
(``Connection: close``): round robin sends each request and upgrade to the next node, ``--sticky`` sends a
session's requests to the node that answered its handshake. Scenarios (bench/loadgen.js):

- ``poll-echo``: 500 long-polling clients, each emitting ``echo`` with an ack, waiting, repeating;
- ``upgrade-echo``: 200 clients connecting as browsers do (polling handshake, then the upgrade to
  WebSocket), then echoing over their WebSocket: the time to connect and upgrade, and the echoes.

Server CPU is the three nodes' user + system time (from /proc) while the load runs, per message or per
connection. Everything (nodes, Redis, proxy, load generator) shares the machine's cores: the figures are
ratios of one run, not absolute capacity. Usage: ``.venv/bin/python bench/forwarding.py [SECONDS]``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cpustat import tree_cpu_seconds as cpu_seconds  # bench/, this script's directory

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE = shutil.which("node") or "node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(path: Path, pattern: str, count: int, limit: float = 60.0) -> None:
    regex = re.compile(pattern)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and sum(1 for line in path.read_text().splitlines() if regex.search(line)) >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"no {count} lines like {pattern!r} in {path}")


def load(url: str, *args: str) -> dict[str, Any]:
    env = dict(os.environ, NODE_PATH=str(BENCH / "node_modules"))
    done = subprocess.run([NODE, str(BENCH / "loadgen.js"), args[0], url, *args[1:]], capture_output=True,
                          text=True, env=env, timeout=600)
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in report:
        raise RuntimeError(report["error"])
    return report


def measured(nodes: list[subprocess.Popen[bytes]], url: str, *args: str) -> tuple[dict[str, Any], float]:
    """The load generator's report, and the nodes' CPU seconds while it ran."""
    before = sum(cpu_seconds(n.pid) for n in nodes)
    report = load(url, *args)
    return report, sum(cpu_seconds(n.pid) for n in nodes) - before


def main() -> None:
    seconds = sys.argv[1] if len(sys.argv) > 1 else "10"
    if not (BENCH / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BENCH, check=True)
    work = Path(tempfile.mkdtemp(prefix="forwarding-bench."))
    redis_port = free_port()
    processes: list[subprocess.Popen[Any]] = []
    try:
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", str(work), "--logfile", str(work / "redis.log")])
        processes.append(redis)
        time.sleep(0.5)
        nodes = []
        ports = []
        for i in range(3):
            port = free_port()
            ports.append(port)
            log = work / f"node{i}.log"
            nodes.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "twistd"), "-n", "--pidfile=", "-l", str(log), "txrealtime",
                 "--listen", f"tcp:{port}:interface=127.0.0.1:backlog=1024", "--app", "bench.apps.tx_app:setup",
                 "--no-access-log", "--max-buffer", "50000000", "--redis", f"redis://127.0.0.1:{redis_port}"],
                cwd=ROOT))
        processes.extend(nodes)
        for i in range(3):
            wait_for(work / f"node{i}.log", r"Redis link: node \w+ joined", 2)
        env = dict(os.environ, NODE_PATH=str(ROOT / "tests" / "interop" / "node_modules"))
        urls = {}
        for name, extra in (("round robin", []), ("sticky", ["--sticky"])):
            proxy = subprocess.Popen([NODE, str(ROOT / "tests" / "interop" / "rrproxy.js"), *extra, *map(str, ports)],
                                     stdout=subprocess.PIPE, text=True, env=env)
            processes.append(proxy)
            assert proxy.stdout is not None
            urls[name] = f"http://127.0.0.1:{json.loads(proxy.stdout.readline())['port']}"
        rows = []
        for scenario, clients in (("poll-echo", "500"), ("upgrade-echo", "200")):
            for name in ("sticky", "round robin"):
                report, cpu = measured(nodes, urls[name], scenario, clients, seconds)
                row = {"scenario": f"{scenario} {clients}", "proxy": name, **report, "cpu": cpu}
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "arrivals"}), flush=True)
        write(rows, seconds)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def write(rows: list[dict[str, Any]], seconds: str) -> None:
    lines = [
        "# Forwarding: round robin against sticky, same three nodes",
        "",
        f"`.venv/bin/python bench/forwarding.py {seconds}` on {time.strftime('%Y-%m-%d')}: three `twistd txrealtime "
        "--redis` nodes (bench/apps/tx_app.py), one redis-server, tests/interop/rrproxy.js as the load "
        "balancer (a fresh connection per request, both ways), bench/loadgen.js as the clients. **Everything "
        f"shares this machine's {os.cpu_count()} cores**: nodes, Redis, proxy and load generator compete, so "
        "compare the rows with each other, not with other tables. Node CPU: the three nodes' user + system "
        "time over the whole run (connections included), divided by the messages counted.",
        "",
        "| scenario | proxy | messages/s | p50 ms | p99 ms | µs of node CPU per message | connections/s "
        "| connect p50 ms | connect p99 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        per = row["cpu"] * 1e6 / row["messages"] if row.get("messages") else float("nan")
        connect = (f"{row['connectRate']:.0f} | {row['connectP50']:.0f} | {row['connectP99']:.0f}"
                   if "connectRate" in row else "| |")
        lines.append(f"| {row['scenario']} | {row['proxy']} | {row['rate']:.0f} | {row['p50']:.1f} | "
                     f"{row['p99']:.1f} | {per:.0f} | {connect} |")
    (BENCH / "results-forwarding.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
