"""The chat example, served by twistd, in two headless Chromium pages."""

from __future__ import annotations

import pytest_twisted

from tests.servers import ARTIFACTS, check_chat, page_report


@pytest_twisted.ensureDeferred
async def test_chat_in_two_browser_pages() -> None:
    report = await page_report(
        "chat_browser.js", "--static", "examples/chat/public", "--app", "examples.chat.app:setup"
    )
    check_chat(report)
    assert report["notFound"] == []  # the page names its icon: no /favicon.ico asked for
    for name in ("chat-alice.png", "chat-bob.png"):
        assert (ARTIFACTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest_twisted.ensureDeferred
async def test_tutorial_page_loads_the_served_client() -> None:
    report = await page_report(
        "hello_browser.js", "--static", "examples/hello/public", "--app", "examples.hello.app:setup"
    )
    assert report.get("error") is None, report["error"]
    assert report["errors"] == []
    assert report["notFound"] == []
    assert (report["scriptStatus"], report["scriptType"]) == (200, "application/javascript; charset=utf-8")
    assert report["ioType"] == "function"
    assert report["news"] == {"hello": "world", "online": 1}
    assert (ARTIFACTS / "hello.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
