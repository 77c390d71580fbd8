"""Resident memory of ``twistd txrealtime --state-recovery`` under the recovery log's hostile cases (issue 23 item 4).

Each case starts a fresh server (``bench/apps/rebroadcast.py``: what a client sends is broadcast to
everyone else, so every message is logged for recovery and nobody has to read it back) and reads its
RSS from /proc before and after:

- ``tiny``: one client sends 300,000 tiny events (``42["say",N]``);
- ``objects``: 11 messages of ~1 MB, each an array of empty JSON objects;
- ``msgpack``: with ``--parser msgpack``, 11 messages of ~900 KB, each an array of empty maps;
- ``silence``: 50 clients connect and lose their transports (50 kept sessions) and one sends 100,000 tiny
  events; then nothing for the window (15 s) plus 2 s.

Loopback only, bounded in count and size. ``--root DIR`` serves txrealtime from another tree (before/after).

    .venv/bin/python bench/recovery_memory.py [--root DIR] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import websocket

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 15


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: Path, *extra: str) -> None:
        app = root / "bench" / "apps" / "rebroadcast.py"
        if not app.exists():  # an older tree: bring the handler along
            shutil.copy(ROOT / "bench" / "apps" / "rebroadcast.py", app)
        self.port = free_port()
        twistd = str(Path(sys.executable).parent / "twistd")
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            [twistd, "-n", "--pidfile=", "-l", "/dev/null", "txrealtime", "--listen",
             f"tcp:{self.port}:interface=127.0.0.1", "--app", "bench.apps.rebroadcast:setup", "--no-access-log",
             "--state-recovery", str(WINDOW), *extra],
            cwd=root, env=env,
        )
        self.url = f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def client(self, binary: bool = False) -> websocket.WebSocket:
        ws = websocket.create_connection(self.url, timeout=60)
        ws.recv()
        ws.send_binary(msgpack.packb({"type": 0, "nsp": "/"})) if binary else ws.send("40")
        ws.recv()
        return ws

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def done(ws: websocket.WebSocket, binary: bool = False) -> None:
    """Wait until the server handled everything sent before (its answer to an ack)."""
    if binary:
        ws.send_binary(msgpack.packb({"type": 2, "nsp": "/", "data": ["done"], "id": 1}))
    else:
        ws.send('421["done"]')
    while True:
        answer = ws.recv()
        if answer not in ("2", b"2"):
            return
        ws.send("3")


def tiny(server: Server, count: int = 300_000) -> None:
    ws = server.client()
    for n in range(count):
        ws.send(f'42["say",{n}]')
    done(ws)
    ws.close()


def objects(server: Server) -> None:
    ws = server.client()
    message = '42["say",[' + ",".join(["{}"] * 333_000) + "]]"
    for _ in range(11):
        ws.send(message)
    done(ws)
    ws.close()


def msgpack_maps(server: Server) -> None:
    ws = server.client(binary=True)
    message = msgpack.packb({"type": 2, "nsp": "/", "data": ["say", [{}] * 900_000]})
    for _ in range(11):
        ws.send_binary(message)
    done(ws, binary=True)
    ws.close()


def silence(server: Server) -> None:
    kept = [server.client() for _ in range(50)]
    for ws in kept:  # transport close: each socket's state is kept for the window
        ws.shutdown()  # type: ignore[no-untyped-call]
    tiny(server, 100_000)
    time.sleep(1)
    print(f"    after the packets: {server.rss_mib():.0f} MiB", flush=True)
    time.sleep(WINDOW + 2)


CASES = {"tiny": (tiny, ()), "objects": (objects, ()), "msgpack": (msgpack_maps, ("--parser", "msgpack")),
         "silence": (silence, ())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    results = {}
    for name in args.cases:
        run, extra = CASES[name]
        server = Server(args.root.resolve(), *extra)
        try:
            before = server.rss_mib()
            run(server)
            time.sleep(1)
            after = server.rss_mib()
        finally:
            server.stop()
        results[name] = {"before": round(before), "after": round(after), "growth": round(after - before)}
        print(f"{name}: {before:.0f} -> {after:.0f} MiB (+{after - before:.0f})", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
