"""Resident memory of ``twistd txrealtime`` under repeated hostile floods (docs/security.md quotes it).

Each round: ten polling clients POST ~1 MB of tiny events, five WebSocket
clients start a binary packet announcing 99 attachments and send ~900 KB of
them before leaving, and one sends 800 KB of nested brackets. RSS is read
from /proc after each round. Loopback only, bounded in rounds and size.

    .venv/bin/python bench/flood_memory.py [ROUNDS]
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(rounds: int) -> None:
    port = free_port()
    twistd = str(Path(sys.executable).parent / "twistd")
    server = subprocess.Popen(
        [twistd, "-n", "--pidfile=", "-l", "/dev/null", "txrealtime", "--listen", f"tcp:{port}:interface=127.0.0.1",
         "--app", "examples.chat.app:setup", "--no-access-log"],
        cwd=ROOT,
    )

    def rss_mib() -> int:
        for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
        raise RuntimeError("no VmRSS")

    polling = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
    ws_url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    try:
        for _ in range(100):
            try:
                requests.get(polling, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        print(f"idle: {rss_mib()} MiB", flush=True)
        body = "\x1e".join(['42["typing"]'] * 76_000)
        for n in range(rounds):
            for _ in range(10):
                sid = json.loads(requests.get(polling, timeout=10).text[1:])["sid"]
                requests.post(f"{polling}&sid={sid}", data=b"40", timeout=10)
                requests.post(f"{polling}&sid={sid}", data=body.encode(), timeout=60)
            for _ in range(5):
                ws = websocket.create_connection(ws_url, timeout=10)
                ws.recv()
                ws.send("40")
                ws.recv()
                ws.send("4599-" + json.dumps(["x"] + [{"_placeholder": True, "num": k} for k in range(99)]))
                try:
                    for _ in range(9):
                        ws.send_binary(b"\0" * 100_000)
                except (websocket.WebSocketException, OSError):
                    pass  # closed by the server: over max_payload
                ws.close()
            ws = websocket.create_connection(ws_url, timeout=10)
            ws.recv()
            ws.send("40")
            ws.recv()
            try:
                ws.send('42["x",' + "[" * 400_000 + "]" * 400_000 + "]")
            except (websocket.WebSocketException, OSError):
                pass
            ws.close()
            time.sleep(1)
            print(f"after round {n + 1}: {rss_mib()} MiB", flush=True)
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
