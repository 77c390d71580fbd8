"""Drives python-engineio's client against a server that echoes every message.

Usage: python eio_client.py URL polling|websocket|upgrade; prints one JSON line.
"""

import json
import sys
import threading

import engineio

url, mode = sys.argv[1], sys.argv[2]
transports = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}[mode]
client = engineio.Client()
messages: list[object] = []
got_all = threading.Event()


@client.on("message")
def on_message(data: str | bytes) -> None:
    messages.append(data if isinstance(data, str) else {"binary": list(data)})
    if len(messages) == 2:
        got_all.set()


client.connect(url, transports=transports, engineio_path="/engine.io/")
client.send("hello")
client.send(b"\x01\x02\x03")
finished = got_all.wait(30)
report = {"finalTransport": client.transport(), "messages": messages, "complete": finished}
client.disconnect()
print(json.dumps(report))
