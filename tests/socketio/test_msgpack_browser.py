"""The served msgpack bundle, socket.io.msgpack.min.js, pairs with ``twistd txrealtime --parser msgpack``."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted

from tests.servers import page_report


@pytest_twisted.ensureDeferred
async def test_msgpack_bundle_in_chromium(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<!doctype html><script src="/socket.io/socket.io.msgpack.min.js"></script>')
    report = await page_report(
        "msgpack_browser.js", "--static", str(tmp_path), "--app", "tests.socketio.app:install", "--parser", "msgpack"
    )
    assert report.get("error") is None, report["error"]
    assert report["errors"] == []
    assert report["scriptStatus"] == 200
    assert report["polling"] == ["got", {"binary": [4, 5]}]
    assert report["ack"] == ["got", {"binary": [1, 2, 3]}, {"date": "2021-06-06T00:00:00.000Z"}, {"n": 1.5}]
    assert report["echo"] == ["hé", {"binary": [9]}]
    assert report["answer"] == [[42, {"binary": [7]}]]
    assert (report["transport"], report["afterUpgrade"]) == ("websocket", ["got", "after"])
