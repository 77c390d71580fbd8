"""The chat example survives a server restart in a browser: the page joins again by itself."""

from __future__ import annotations

import json
import os
import subprocess

from tests.servers import ARTIFACTS, INTEROP, NODE_MODULES, Twistd, free_port, node, require_chromium


def test_chat_page_rejoins_after_a_restart() -> None:
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    listen = f"tcp:{free_port()}:interface=127.0.0.1"
    args = ("--static", "examples/chat/public", "--app", "examples.chat.app:setup", "--shutdown-grace", "1")
    server = Twistd(*args, listen=listen)
    browser = subprocess.Popen(
        [node(), str(INTEROP / "chat_restart_browser.js"), server.url, str(ARTIFACTS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
    )
    assert browser.stdin is not None and browser.stdout is not None
    try:
        first = json.loads(browser.stdout.readline() or "{}")
        assert first == {"phase": "joined"}, first
        server.stop()
        server = Twistd(*args, listen=listen)  # the same port, a new process: every session is gone
        browser.stdin.write("restarted\n")
        browser.stdin.flush()
        out, _ = browser.communicate(timeout=240)
    finally:
        if browser.poll() is None:
            browser.kill()
        server.stop()
    report = json.loads(out.strip().splitlines()[-1])
    assert report.get("error") is None, report
    assert report["errors"] == []
    assert report["aliceStatus"].startswith("connected")
    assert report["alice"][0] == "you joined as alice (1 online)"
    assert "joined again as alice (1 online)" in report["alice"]
    assert report["alice"][-1] == "aliceafter the restart"
    assert report["bob"] == ["you joined as bob (2 online)", "aliceafter the restart"]
    assert report["aliceError"] == ""
