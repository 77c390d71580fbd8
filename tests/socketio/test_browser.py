"""The chat example, served by twistd, in two headless Chromium pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest_twisted

from tests.servers import Twistd, node_peer, require_chromium

ROOT = Path(__file__).parent.parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest_twisted.ensureDeferred
async def test_chat_in_two_browser_pages() -> None:
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    server = Twistd("--static", "examples/chat/public", "--app", "examples.chat.app:setup", "--shutdown-grace", "1")
    try:
        report = await node_peer("chat_browser.js", server.url, str(ARTIFACTS), timeout=240)
    finally:
        server.stop()
    if report.get("error") is not None:
        (ARTIFACTS / "chat-failure.txt").write_text(json.dumps(report, indent=1) + "\n" + "".join(server.log))
    assert report.get("error") is None, (report["error"], report.get("state"))
    assert report["errors"] == []
    assert report["bobSees"] == "alicehello from alice <b>not bold</b>"
    assert report["bobBold"] == 0  # text, never markup
    assert report["bobStatus"] == "connected (websocket)"
    assert report["aliceMessages"] == [
        "you joined as alice (1 online)",
        "bob joined (2 online)",
        "alicehello from alice <b>not bold</b>",
    ]
    assert report["aliceAfter"][-1] == "bob left (1 online)"
    for name in ("chat-alice.png", "chat-bob.png"):
        assert (ARTIFACTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest_twisted.ensureDeferred
async def test_tutorial_page_loads_the_served_client() -> None:
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    server = Twistd("--static", "examples/hello/public", "--app", "examples.hello.app:setup", "--shutdown-grace", "1")
    try:
        report = await node_peer("hello_browser.js", server.url, str(ARTIFACTS), timeout=240)
    finally:
        server.stop()
    assert report.get("error") is None, report["error"]
    assert report["errors"] == []
    assert (report["scriptStatus"], report["scriptType"]) == (200, "application/javascript; charset=utf-8")
    assert report["ioType"] == "function"
    assert report["news"] == {"hello": "world", "online": 1}
    assert (ARTIFACTS / "hello.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
