"""``twistd txrealtime`` under the HTTP-edge attacks of issue 23 (items 1, 2, 6, 11): RSS and reactor stalls.

Each case starts a fresh server (``--allow-eio3``) and reads its RSS from /proc before and after; a
canary thread opens a polling session again and again meanwhile, and the longest it waited for an
answer is the reactor's longest stall (roughly: the canary's own round trip is in it).

- ``v3pings``: a v3 polling client POSTs 10 x 333,000 pings (``1:2``), never GETs, then GETs once;
- ``forms``: 10 POSTs of 999 KB of ``&`` as ``application/x-www-form-urlencoded`` and 5 as
  ``multipart/form-data`` to ``sid=x`` (no such session);
- ``bundle``: 10,000 GETs of distinct 8 KB names under ``/socket.io/``;
- ``line``: a 16.1 KiB request line in one write: what the server answers.

Loopback only, bounded in count and size. ``--root DIR`` serves txrealtime from another tree (before/after).

    .venv/bin/python bench/hostile_engine.py [--root DIR] [CASE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        twistd = str(Path(sys.executable).parent / "twistd")
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            [twistd, "-n", "--pidfile=", "-l", "/dev/null", "txrealtime", "--listen",
             f"tcp:{self.port}:interface=127.0.0.1", "--no-access-log", "--allow-eio3"],
            cwd=root, env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}/socket.io/"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)

    def status(self, field: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class Canary(threading.Thread):
    """Handshakes in a loop; ``worst`` is the longest one took."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url + "?EIO=4&transport=polling"
        self.worst = 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        with requests.Session() as http:
            while not self.stopping.is_set():
                started = time.perf_counter()
                http.get(self.url, timeout=60)
                self.worst = max(self.worst, time.perf_counter() - started)
                time.sleep(0.01)


def v3pings(server: Server) -> str:
    poll = server.url + "?EIO=3&transport=polling"
    opened = requests.get(poll, timeout=60)
    sid = opened.text.split('"sid":"', 1)[1].split('"', 1)[0]
    started = time.monotonic()
    with requests.Session() as http:
        for _ in range(10):
            http.post(f"{poll}&sid={sid}", data=b"1:2" * 333_000, timeout=600)
        posted = time.monotonic() - started
        got = http.get(f"{poll}&sid={sid}", timeout=600)
    return f"POSTs took {posted:.0f} s; the GET got {got.status_code} with {got.content[:60]!r}"


def forms(server: Server) -> str:
    target = server.url + "?EIO=4&transport=polling&sid=x"
    statuses = []
    with requests.Session() as http:
        for n in range(15):
            ctype = "multipart/form-data" if n >= 10 else "application/x-www-form-urlencoded"
            statuses.append(http.post(target, data=b"&" * 999_000, headers={"Content-Type": ctype}, timeout=600))
    return f"answers {sorted({r.status_code for r in statuses})}"


def bundle(server: Server) -> str:
    with requests.Session() as http:
        for n in range(10_000):
            http.get(f"{server.url}{n:05d}{'x' * 8000}", timeout=60)
    return ""


def line(server: Server) -> str:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /socket.io/?EIO=4&transport=polling&pad=" + b"x" * int(16.1 * 1024)
                     + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
    status = answer.split(b"\r\n", 1)[0]
    return f"answer: {status!r}"


CASES: dict[str, Callable[[Server], str]] = {"v3pings": v3pings, "forms": forms, "bundle": bundle, "line": line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    results = {}
    for name in args.cases:
        server = Server(args.root.resolve())
        canary = Canary(server.url)
        try:
            before = server.status("VmRSS")
            canary.start()
            note = CASES[name](server)
            canary.stopping.set()
            canary.join()
            time.sleep(1)
            after, peak = server.status("VmRSS"), server.status("VmHWM")
        finally:
            server.stop()
        results[name] = {"before": round(before), "after": round(after), "peak": round(peak),
                         "stall": round(canary.worst, 2), "note": note}
        print(f"{name}: RSS {before:.0f} -> {after:.0f} MiB (peak {peak:.0f}), longest canary wait "
              f"{canary.worst:.2f} s; {note}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
