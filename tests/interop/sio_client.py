"""Drives python-socketio's client against tests/socketio/app.py.

Usage: python sio_client.py URL polling|websocket|upgrade; prints one JSON line.
"""

import json
import queue
import sys
import traceback
from typing import Any

import socketio

url, mode = sys.argv[1], sys.argv[2]
transports = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}[mode]
report: dict[str, Any] = {}


def plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"binary": list(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


try:
    client = socketio.Client(reconnection=False)
    events: "queue.Queue[tuple[str, Any]]" = queue.Queue()

    @client.on("echo", namespace="/custom")
    def on_echo(*args: Any) -> None:
        events.put(("echo", plain(list(args))))

    @client.on("question", namespace="/custom")
    def on_question(value: int) -> tuple[int, bytes]:
        return value + 1, b"\x09"

    @client.on("answer", namespace="/custom")
    def on_answer(answer: Any) -> None:
        events.put(("answer", plain(answer)))

    client.connect(
        url,
        namespaces=["/", "/custom", "/admin"],
        transports=transports,
        auth={"token": "s3cret"},
        wait_timeout=10,
    )
    report["namespaces"] = sorted(client.namespaces)
    client.emit("echo", ("hello", b"\x01\x02\x03", {"nested": [b"\x04"]}), namespace="/custom")
    report["echo"] = events.get(timeout=10)
    report["ack"] = plain(client.call("ack", (1, b"\x05"), namespace="/admin", timeout=10))
    client.emit("ask me", 41, namespace="/custom")
    report["answer"] = events.get(timeout=10)
    report["default"] = plain(client.call("ack", "default", timeout=10))
    client.sleep(0.01)
    report["transport"] = client.transport()
    client.disconnect()

    refused = socketio.Client(reconnection=False)
    try:
        refused.connect(url, namespaces=["/nope"], transports=transports, wait_timeout=10)
        report["invalid"] = "connected"
    except socketio.exceptions.ConnectionError as e:
        report["invalid"] = str(e)
    finally:
        refused.disconnect()
except Exception:
    report["error"] = traceback.format_exc()

print(json.dumps(report))
