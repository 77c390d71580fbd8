"""The README's server snippet runs as printed and talks to python-socketio's client."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
from pathlib import Path

import socketio

from tests.servers import free_port

README = Path(__file__).parent.parent / "README.md"


def test_readme_server_snippet(tmp_path: Path) -> None:
    section = README.read_text().split("## Write a server", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet is not None
    code = snippet.group(1)
    port = free_port()
    code = code.replace("reactor.listenTCP(8080,", f"reactor.listenTCP({port}, interface='127.0.0.1', factory=")
    script = tmp_path / "snippet.py"
    script.write_text(code)
    server = subprocess.Popen([sys.executable, "-u", str(script)], stdout=subprocess.PIPE, text=True)
    try:
        client = socketio.Client(reconnection=False)
        news: queue.Queue[object] = queue.Queue()
        client.on("news", news.put)
        for _ in range(300):
            try:
                client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=10)
                break
            except socketio.exceptions.ConnectionError:
                client.sleep(0.1)  # the snippet's process is still starting
        else:
            raise AssertionError("the README snippet's server never accepted a connection")
        client.emit("my other event", {"my": "data"})
        assert server.stdout is not None
        assert server.stdout.readline() == "{'my': 'data'}\n"
        assert news.get(timeout=10) == {"hello": "world"}
        client.disconnect()
    finally:
        server.terminate()
        server.wait(30)
