"""Benchmark txrealtime against Node socket.io and python-socketio in one run; write bench/results.md.

Each server runs pinned to CPU 0 and is driven by Node load-generator
processes (bench/loadgen.js) pinned to CPU 1, so the servers compete for
the same core under the same load. Every scenario prints one line per
server as it finishes. Usage (bench/run does the installing)::

    python bench/bench.py [--servers txrealtime,node,...] [--quick] [--only SCENARIO,...]

Opt-in: ``--servers txrealtime-w2,node-cluster2`` runs ``--workers 2`` against
Node in cluster mode (``@socket.io/sticky`` + ``@socket.io/cluster-adapter``,
two workers); both spread over CPUs 0 and 1, which they share with the load
generators on CPU 1, e.g.
``bench/run --servers txrealtime,node,pysio-uvicorn,pysio-aiohttp,txrealtime-w2,node-cluster2`` (they
run only in echo 100/1000 and broadcast 1000/10000).

``--only`` runs some scenarios and merges their rows into the last results;
``--txrealtime-root DIR`` serves txrealtime from another checkout (e.g. a
``git worktree`` of an older commit), for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cpustat import tree_cpu_seconds  # bench/, this script's directory

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
NODE = shutil.which("node") or "node"
LOADGEN = str(BENCH / "loadgen.js")
SERVER_CPU, LOAD_CPU = "0", "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: str, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *args] if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1 else args


SERVERS: dict[str, Any] = {
    "txrealtime": lambda port: [
        str(Path(PYTHON).parent / "twistd"), "-n", "--pidfile=", "-l", "/dev/null", "txrealtime",
        "--listen", f"tcp:{port}:interface=127.0.0.1:backlog=1024", "--app", "bench.apps.tx_app:setup",
        "--no-access-log", "--max-buffer", "50000000",
    ],
    "txrealtime-metrics": lambda port: [*SERVERS["txrealtime"](port), "--metrics"],
    # Opt-in: dynamic namespaces' empty children removed (for the namespace flood).
    "txrealtime-cleanup": lambda port: [*SERVERS["txrealtime"](port), "--cleanup-empty-child-namespaces"],
    "node": lambda port: [NODE, str(BENCH / "apps" / "node_server.js"), str(port)],
    "pysio-uvicorn": lambda port: [
        str(Path(PYTHON).parent / "uvicorn"), "bench.apps.pysio_asgi:app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log", "--backlog", "1024",
    ],
    "pysio-aiohttp": lambda port: [PYTHON, "-m", "bench.apps.pysio_aiohttp", str(port)],
    # Opt-in (--servers txrealtime-w2,node-cluster2): two worker processes each, on both CPUs.
    "txrealtime-w2": lambda port: [*SERVERS["txrealtime"](port), "--workers", "2"],
    "node-cluster2": lambda port: [NODE, str(BENCH / "apps" / "node_cluster_server.js"), str(port), "2"],
}
CLUSTERED = {"txrealtime-w2": "0,1", "node-cluster2": "0,1"}
"""Servers of several processes, and the CPUs they run on (the load generators stay on CPU 1)."""
COUNTERPART = {"node-cluster2": "txrealtime-w2"}
"""The txrealtime row a peer's row is compared with (else plain ``txrealtime``)."""

MSGPACK_ARGS: dict[str, list[str]] = {"txrealtime": ["--parser", "msgpack"], "node": ["msgpack"]}
"""How each server is told to use the msgpack parser (python-socketio's through ``BENCH_SERIALIZER``)."""

NODE_PATH = str(BENCH / "node_modules")
"""The bench's own packages (bench/package.json, which bench/run installs): every scenario's Node peers."""


@dataclass
class Running:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    deflate: bool = False
    """permessage-deflate on, in the server and the load generator's clients."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User + system time of the server's processes (workers and cluster children included)."""
        return tree_cpu_seconds(self.process.pid)


TX_ROOT = ROOT
"""The source tree txrealtime is served from (``--txrealtime-root``)."""


@contextmanager
def server(name: str, parser: str = "json", deflate: bool = False) -> Iterator[Running]:
    port = free_port()
    root = TX_ROOT if name.startswith("txrealtime") else ROOT
    env = dict(os.environ, NODE_PATH=NODE_PATH, PYTHONPATH=str(root), BENCH_DEFLATE=str(int(deflate)))
    args = SERVERS[name](port) + (["--per-message-deflate"] if deflate and name.startswith("txrealtime") else [])
    if parser == "msgpack":
        args += MSGPACK_ARGS.get(name, [])
        env["BENCH_SERIALIZER"] = "msgpack"
    process = subprocess.Popen(
        pinned(CLUSTERED.get(name, SERVER_CPU), args), cwd=root, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {process.stderr.read().decode() if process.stderr else ''}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{name} did not start")
        scraping = Scraper(port) if name == "txrealtime-metrics" else None
        try:
            yield Running(name, port, process, deflate)
        finally:
            if scraping is not None:
                scraping.stop()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Scraper:
    """Scrapes ``/metrics`` every second while a server runs with ``--metrics``, as Prometheus would
    (whose default interval is 15 s or more); stops with the server."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    response.read()
                self.scrapes += 1
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def loadgen(*args: Any, deflate: bool = False) -> subprocess.Popen[str]:
    env = dict(os.environ, NODE_PATH=NODE_PATH, BENCH_DEFLATE=str(int(deflate)))
    return subprocess.Popen(
        pinned(LOAD_CPU, [NODE, "--max-old-space-size=4096", LOADGEN, *map(str, args)]),
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, env=env,
    )


def last_json(process: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
    # Read through the text stream, not communicate(): what until_mark's readline buffered would be lost.
    assert process.stdout is not None
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        out = process.stdout.read()
        process.wait()
    finally:
        watchdog.cancel()
    if process.stdin is not None:
        process.stdin.close()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"no report from the load generator (exit status {process.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def until_mark(process: subprocess.Popen[str], name: str) -> None:
    """Read the load generator's output up to its ``{"mark": name}`` line (the rest stays for `last_json`)."""
    assert process.stdout is not None
    while line := process.stdout.readline():
        if line.startswith("{"):
            report = json.loads(line)
            if report.get("mark") == name:
                return
            if "error" in report:
                raise RuntimeError(report["error"])
    raise RuntimeError(f"the load generator ended before {name!r}")


def cpu_while_measured(run: Running, gens: list[subprocess.Popen[str]], seconds: float) -> float:
    """The server's CPU seconds per second of wall time while every load generator measures (from the last one's
    ``measuring`` mark until shortly before the first one's window of ``seconds`` closes)."""
    until_mark(gens[0], "measuring")
    end = time.monotonic() + seconds * 0.9
    for g in gens[1:]:
        until_mark(g, "measuring")
    c0, t0 = run.cpu_seconds(), time.monotonic()
    time.sleep(max(0.1, end - t0))
    c1, t1 = run.cpu_seconds(), time.monotonic()
    return (c1 - c0) / (t1 - t0)


def per_op_us(cpu_share: float, rate: float) -> float | None:
    """µs of server CPU per operation, from the server's share of a CPU and the operations per second."""
    return cpu_share / rate * 1e6 if rate else None


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- scenarios ---------------------------------------------------------------------------------


@dataclass
class Results:
    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def add(self, scenario: str, server: str, figures: dict[str, Any]) -> None:
        self.rows.setdefault(scenario, {})[server] = figures
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in figures.items())
        print(f"{scenario:<22} {server:<16} {shown}", flush=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def echo(run: Running, clients: int, seconds: float, procs: int, mode: str = "echo") -> dict[str, Any]:
    gens = [loadgen(mode, run.url, n, seconds) for n in split(clients, procs)]
    busy = cpu_while_measured(run, gens, seconds)
    parts = [last_json(g) for g in gens]
    rate = sum(p["rate"] for p in parts)
    p50 = statistics.mean(p["p50"] for p in parts if p["p50"] is not None)
    p99 = max(p["p99"] for p in parts if p["p99"] is not None)
    return {"msgs_per_s": rate, "cpu_us_per_op": per_op_us(busy, rate), "p50_ms": p50, "p99_ms": p99}


def broadcast(run: Running, clients: int, messages: int, procs: int) -> dict[str, Any]:
    gens = [loadgen("listen", run.url, n, messages, deflate=run.deflate) for n in split(clients, procs)]
    for g in gens:
        assert g.stdout is not None
        ready = json.loads(g.stdout.readline())
        assert ready.get("ready"), ready
    before = run.cpu_seconds()
    sent = last_json(loadgen("emit", run.url, messages, deflate=run.deflate), timeout=600)["sent"]
    for g in gens:
        until_mark(g, "received")
    cpu = run.cpu_seconds() - before
    parts = [last_json(g, timeout=600) for g in gens]
    sent_at = dict(sent)
    delivered = sum(p["deliveries"] for p in parts)
    last_per_message: dict[int, float] = {}
    for p in parts:
        for n, (_first, last, _count) in p["arrivals"]:
            last_per_message[n] = max(last_per_message.get(n, 0.0), last)
    spans = [last_per_message[n] - sent_at[n] for n in last_per_message]
    elapsed = (max(last_per_message.values()) - min(sent_at.values())) / 1000
    return {
        "deliveries_per_s": delivered / elapsed if elapsed > 0 else 0.0,
        "cpu_us_per_op": cpu / delivered * 1e6 if delivered else None,
        "delivered": f"{delivered}/{clients * messages}",
        "last_client_ms_p50": statistics.median(spans) if spans else None,
        "last_client_ms_max": max(spans) if spans else None,
    }


def connections(run: Running, clients: int, procs: int) -> dict[str, Any]:
    before, cpu_before = run.rss_kib(), run.cpu_seconds()
    gens = [loadgen("idle", run.url, n) for n in split(clients, procs)]
    reports = []
    deadline = time.monotonic() + 300  # bounded: a server that never accepts them all is reported, not waited for
    for g in gens:
        assert g.stdout is not None
        ready, _, _ = select.select([g.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            for stuck in gens:
                stuck.kill()
            raise TimeoutError(f"not every idle connection was up within 300 s ({sum(r['connected'] for r in reports)} "
                               "reported)")
        reports.append(json.loads(g.stdout.readline()))
    cpu = run.cpu_seconds() - cpu_before
    time.sleep(1.0)  # let the server settle before reading its memory
    after = run.rss_kib()
    for g in gens:
        assert g.stdin is not None and g.stdout is not None
        g.stdin.close()
        g.stdout.read()
        g.wait(60)
    connected = sum(r["connected"] for r in reports)
    return {
        "connected": connected,
        "connect_all_s": max(r["connectMs"] for r in reports) / 1000,
        "cpu_us_per_op": cpu / connected * 1e6 if connected else None,
        "rss_mib": after / 1024,
        "kib_per_conn": (after - before) / connected if connected else None,
    }


def polling(run: Running, clients: int, seconds: float, procs: int) -> dict[str, Any]:
    gens = [loadgen("poll-echo", run.url, n, seconds) for n in split(clients, procs)]
    busy = cpu_while_measured(run, gens, seconds)
    rate = sum(last_json(g)["rate"] for g in gens)
    return {"msgs_per_s": rate, "cpu_us_per_op": per_op_us(busy, rate)}


def flood(run: Running, flooders: int, seconds: float, body_bytes: int | str) -> dict[str, Any]:
    """A WebSocket canary's ack round trips while polling clients POST ~1 MB bodies of tiny events
    (``body_bytes`` ``"ws-flood"``: while WebSocket clients send tiny events as fast as they are read;
    ``"ns-flood"``: while they join and leave new dynamic namespaces)."""
    if isinstance(body_bytes, str):
        gen = loadgen(body_bytes, run.url, flooders, seconds)
    else:
        gen = loadgen("flood", run.url, flooders, seconds, body_bytes)
    busy = cpu_while_measured(run, [gen], seconds)
    report = last_json(gen, timeout=seconds + 120)
    return {
        "canary_idle_p50_ms": report["idleP50"],
        "canary_p50_ms": report["p50"],
        "canary_p99_ms": report["p99"],
        "canary_max_ms": report["max"],
        "flood_packets_per_s": report["packetsPerS"],
        "cpu_us_per_op": per_op_us(busy, report["packetsPerS"]),
        "refused_posts": report["refused"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", default="txrealtime,node,pysio-uvicorn,pysio-aiohttp")
    parser.add_argument("--quick", action="store_true", help="smaller loads, for a smoke run")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--out", default=str(BENCH / "results.md"))
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from results.json")
    parser.add_argument("--only", help="comma-separated scenarios to run; their rows replace those in results.json")
    parser.add_argument("--txrealtime-root", help="serve txrealtime from this source tree instead of this one")
    args = parser.parse_args()
    names = args.servers.split(",")
    if args.txrealtime_root:
        global TX_ROOT
        TX_ROOT = Path(args.txrealtime_root).resolve()
    if args.report_only:
        results = Results(json.loads(Path(args.out).with_suffix(".json").read_text()))
        write_report(results, names, Path(args.out), quick=args.quick, partial=args.only and args.only.split(","))
        return
    q = args.quick
    scenarios = [
        ("echo 100", lambda r: echo(r, 100, 2 if q else 5, args.procs)),
        ("echo 1000", lambda r: echo(r, 1000 if not q else 300, 2 if q else 5, args.procs)),
        (ECHO_MSGPACK, lambda r: echo(r, 100, 2 if q else 5, args.procs, "echo-msgpack")),
        ("broadcast 1000", lambda r: broadcast(r, 1000, 5 if q else 20, args.procs)),
        ("broadcast 10000", lambda r: broadcast(r, 2000 if q else 10000, 3 if q else 10, args.procs)),
        (DEFLATE, lambda r: broadcast(r, 1000, 5 if q else 20, args.procs)),
        ("connections 10000", lambda r: connections(r, 2000 if q else 10000, args.procs)),
        ("polling 500", lambda r: polling(r, 100 if q else 500, 2 if q else 5, args.procs)),
        (FLOOD, lambda r: flood(r, 2, 5 if q else 10, 990_000)),
        (WS_FLOOD, lambda r: flood(r, 2, 5 if q else 10, "ws-flood")),
        (NS_FLOOD, lambda r: flood(r, 1, 5 if q else 10, "ns-flood")),
    ]
    results = Results()
    partial = None
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {title for title, _ in scenarios}
        if unknown:
            parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
        scenarios = [(title, run) for title, run in scenarios if title in wanted]
        previous = Path(args.out).with_suffix(".json")
        if previous.exists():
            results.rows = json.loads(previous.read_text())
        partial = wanted
    for title, run_scenario in scenarios:
        for name in names:
            if name in CLUSTERED and title not in CLUSTER_SCENARIOS:
                continue  # the two-worker servers are compared on what a second core can share out
            if name in NOT_RUN.get(title, {}):
                results.add(title, name, {"not run": NOT_RUN[title][name]})
                continue
            try:
                with server(name, "msgpack" if title == ECHO_MSGPACK else "json", deflate=title == DEFLATE) as running:
                    results.add(title, name, run_scenario(running))
            except Exception as e:  # a peer that cannot run a scenario is reported, not fatal
                results.add(title, name, {"error": str(e).splitlines()[-1][:120] if str(e) else type(e).__name__})
    write_report(results, names, Path(args.out), quick=q, partial=partial)


FLOOD = "canary under polling flood"
WS_FLOOD = "canary under WebSocket flood"
NS_FLOOD = "canary under namespace flood"
ECHO_MSGPACK = "echo msgpack"
"""``echo 100`` with every server and client on the msgpack parser."""
DEFLATE = "broadcast 1000 deflate"
"""Broadcast to 1,000 clients with permessage-deflate on both sides (threshold 1024) and a ~2.5 KB payload."""

NOT_RUN = {
    FLOOD: dict.fromkeys(
        ("pysio-uvicorn", "pysio-aiohttp"),
        "python-engineio refuses polling payloads of more than 16 packets, so the flood is never dispatched",
    ),
}

LOWER_NOTES = {
    "connections 10000": "(memory: >1 means txrealtime uses less)",
    FLOOD: "(canary p99: >1 means txrealtime answers faster)",
    WS_FLOOD: "(canary p99: >1 means txrealtime answers faster)",
    NS_FLOOD: "(canary p99: >1 means txrealtime answers faster)",
}

PRIMARY = {
    "echo 100": ("msgs_per_s", True),
    "echo 1000": ("msgs_per_s", True),
    ECHO_MSGPACK: ("msgs_per_s", True),
    "broadcast 1000": ("deliveries_per_s", True),
    "broadcast 10000": ("deliveries_per_s", True),
    DEFLATE: ("deliveries_per_s", True),
    "connections 10000": ("kib_per_conn", False),
    "polling 500": ("msgs_per_s", True),
    FLOOD: ("canary_p99_ms", False),
    WS_FLOOD: ("canary_p99_ms", False),
    NS_FLOOD: ("canary_p99_ms", False),
}


def served_build() -> str:
    """What txrealtime the servers ran: compiled or pure, its HTTP parser and its JSON codec."""
    probe = (
        "import txrealtime.engineio.session as s, txrealtime.web as w, txrealtime._json as j;"
        "print('compiled (mypyc)' if s.__file__.endswith('.so') else 'pure Python', w.channel_for().__name__,"
        " j.CODEC.name, sep='|')"
    )
    env = dict(os.environ, PYTHONPATH=str(TX_ROOT))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=TX_ROOT,
                          check=False)
    if done.returncode:
        return "txrealtime could not be probed"
    build, channel, codec = done.stdout.strip().split("|")
    parser = "httptools (llhttp)" if channel.startswith("Llhttp") else "twisted.web's parser"
    return f"txrealtime {build}, HTTP parsed by {parser}, JSON by {codec}"


def write_report(
    results: Results, names: list[str], out: Path, quick: bool, partial: list[str] | None = None
) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if partial:
        origin = f"Rows of {', '.join(partial)} updated by `bench/bench.py --only` on {stamp}; the others as before"
    else:
        origin = f"Generated by `bench/run` on {stamp}"
    lines = [
        "# Benchmark results",
        "",
        origin
        + (" (quick run: smaller loads)" if quick else "")
        + f"; {os.cpu_count()} CPUs, servers pinned to CPU {SERVER_CPU}, load generators to CPU {LOAD_CPU}; "
        + served_build() + ".",
        *([
            "",
            f"{', '.join(n for n in names if n in CLUSTERED)} run two worker processes each on CPUs "
            f"{CLUSTERED[next(n for n in names if n in CLUSTERED)]}: the load generators and these servers share "
            f"those {os.cpu_count()} cores. Each is compared with its counterpart "
            f"({', '.join(f'{k} with {v}' for k, v in COUNTERPART.items())}).",
        ] if any(n in CLUSTERED for n in names) else []),
        "",
        "Two ratios per peer: its figure against txrealtime's (throughput, latency or memory, as noted), and **CPU "
        "per operation**, the peer's µs of server CPU per operation ÷ txrealtime's (`cpu_us_per_op`: user + system "
        "time of all the server's processes from /proc, divided by the operations the load generator counted; "
        ">1 means txrealtime spends less). The targets are judged by CPU per operation, which does not depend on "
        "how fast the shared machine ran at the time.",
        "",
        "| scenario | server | figures | txrealtime ÷ server | CPU per op, server ÷ txrealtime |",
        "| --- | --- | --- | --- | --- |",
    ]
    servers = names + [name for name in SERVERS if name not in names]  # rows kept from an earlier run too
    for scenario, by_server in results.rows.items():
        key, higher_better = PRIMARY[scenario]
        for name in servers:
            if name not in by_server:
                continue
            figures = by_server[name]
            theirs = figures.get(key)
            counterpart = by_server.get(COUNTERPART.get(name, "txrealtime"), {})
            ours = counterpart.get(key)
            ratio = cpu_ratio = ""
            if (not name.startswith("txrealtime") and isinstance(ours, int | float)
                    and isinstance(theirs, int | float) and theirs):
                value = ours / theirs if higher_better else theirs / ours
                note = "(higher is better)" if higher_better else LOWER_NOTES.get(scenario, "(>1: txrealtime lower)")
                ratio = f"{value:.2f}× {note}"
            ours_cpu, theirs_cpu = counterpart.get("cpu_us_per_op"), figures.get("cpu_us_per_op")
            if not name.startswith("txrealtime") and isinstance(ours_cpu, int | float) and isinstance(
                    theirs_cpu, int | float) and ours_cpu:
                cpu_ratio = f"{theirs_cpu / ours_cpu:.2f}×"
            shown = ", ".join(f"{k} {_fmt(v)}" for k, v in figures.items())
            lines.append(f"| {scenario} | {name} | {shown} | {ratio} | {cpu_ratio} |")
    lines += ["", "## Targets", ""] + targets(results) + [""]
    out.write_text("\n".join(lines))
    (out.with_suffix(".json")).write_text(json.dumps(results.rows, indent=1, default=str))
    plot(results, names, out.with_name("latency.png" if out.name == "results.md" else f"{out.stem}-latency.png"))
    print(f"wrote {out}")


NODE_TARGETS = {
    "echo 100": 0.6, "echo 1000": 0.6, ECHO_MSGPACK: 0.6, "polling 500": 0.6, "broadcast 1000": 1.0,
    "broadcast 10000": 1.0, DEFLATE: 1.0, "connections 10000": 1.0,
}
"""Issue 27's targets against Node, by CPU per operation (Node's ÷ txrealtime's)."""

PEER_TARGET = 2.0
"""Issue 27: at least twice each python-socketio server in every scenario, by CPU per operation."""

CLUSTER_TARGETS = {"echo 1000": 1.0, "broadcast 1000": 1.0}
CLUSTER_SCENARIOS = ("echo 100", "echo 1000", "broadcast 1000", "broadcast 10000")
"""The scenarios ``txrealtime-w2`` and ``node-cluster2`` run in (their targets' and the previous table's)."""
"""Issue 27: ``--workers 2`` against Node's cluster of two, by CPU per operation."""


def targets(results: Results) -> list[str]:
    """Issue 27's targets, checked against this run's CPU per operation (the throughput ratio beside it)."""
    rows = results.rows

    def get(scenario: str, server: str, key: str) -> float | None:
        value = rows.get(scenario, {}).get(server, {}).get(key)
        return float(value) if isinstance(value, int | float) else None

    def line(scenario: str, ours_name: str, peer: str, wanted: float) -> str | None:
        ours, theirs = get(scenario, ours_name, "cpu_us_per_op"), get(scenario, peer, "cpu_us_per_op")
        if not ours or theirs is None:
            return None
        key, higher_better = PRIMARY[scenario]
        if scenario == "connections 10000":
            key, higher_better = "connect_all_s", False  # the rate of connecting, not memory
        ours_figure, theirs_figure = get(scenario, ours_name, key), get(scenario, peer, key)
        beside = ""
        if ours_figure and theirs_figure:
            beside = f", throughput {ours_figure / theirs_figure if higher_better else theirs_figure / ours_figure:.2f}"
        verdict = "met" if theirs / ours >= wanted else "missed"
        return (f"- {scenario}: {peer} ÷ {ours_name} CPU per op = {theirs / ours:.2f} (target ≥ {wanted}{beside}): "
                f"**{verdict}**")

    out = [text for scenario, wanted in NODE_TARGETS.items() if (text := line(scenario, "txrealtime", "node", wanted))]
    ours_kib = get("connections 10000", "txrealtime", "kib_per_conn")
    theirs_kib = get("connections 10000", "node", "kib_per_conn")
    if ours_kib is not None and theirs_kib is not None:
        verdict = "met" if ours_kib <= theirs_kib else "missed"
        out.append(
            f"- idle memory per connection: {ours_kib:.1f} KiB, node {theirs_kib:.1f} KiB (target: no more): "
            f"**{verdict}**"
        )
    for scenario in PRIMARY:
        if scenario in (FLOOD, WS_FLOOD, NS_FLOOD):
            continue
        for peer in ("pysio-uvicorn", "pysio-aiohttp"):
            if text := line(scenario, "txrealtime", peer, PEER_TARGET):
                out.append(text)
    for scenario, wanted in CLUSTER_TARGETS.items():
        if text := line(scenario, "txrealtime-w2", "node-cluster2", wanted):
            out.append(text)
    delivered = [
        f"{scenario} {figures.get('delivered')}" for scenario, by_server in rows.items()
        for name, figures in by_server.items() if name == "txrealtime" and "delivered" in figures
    ]
    if delivered:
        out.append(f"- broadcasts delivered completely (txrealtime): {', '.join(delivered)}")
    return out


def plot(results: Results, names: list[str], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in names:
        xs, p50s, p99s = [], [], []
        for scenario in ("echo 100", "echo 1000"):
            figures = results.rows.get(scenario, {}).get(name, {})
            if "p50_ms" in figures:
                xs.append(int(scenario.split()[1]))
                p50s.append(figures["p50_ms"])
                p99s.append(figures["p99_ms"])
        if xs:
            line = ax.plot(xs, p50s, marker="o", label=f"{name} p50")[0]
            ax.plot(xs, p99s, marker="x", linestyle="--", color=line.get_color(), label=f"{name} p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent echo clients")
    ax.set_ylabel("round-trip latency (ms)")
    ax.set_title("Echo round-trip latency against clients")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
