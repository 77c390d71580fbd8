"""The Engine.IO echo example, served by twistd with the command its docstring documents, in headless Chromium."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest_twisted

import examples.echo.app
from tests.servers import ARTIFACTS, page_report

ROOT = Path(__file__).parent.parent.parent


def documented_options() -> list[str]:
    """The options after ``txrealtime`` in the ``twistd -n txrealtime ...`` command of examples/echo/app.py's
    docstring, but its ``--listen`` (on port 8080 of 127.0.0.1; the tests take a free port)."""
    doc = (examples.echo.app.__doc__ or "").replace("\\\n", " ")
    [line] = [line.strip() for line in doc.splitlines() if line.strip().startswith("twistd -n txrealtime ")]
    words = shlex.split(line)
    options = words[words.index("txrealtime") + 1 :]
    at = options.index("--listen")
    assert options[at + 1] == "tcp:8080:interface=127.0.0.1"
    return options[:at] + options[at + 2 :]


@pytest_twisted.ensureDeferred
async def test_echo_page_echoes() -> None:
    report = await page_report("echo_browser.js", *documented_options())
    assert report.get("error") is None, (report["error"], report.get("state"))
    assert report["errors"] == []
    assert report["notFound"] == []  # the page names its icon: no /favicon.ico asked for
    assert (report["scriptStatus"], report["eioType"]) == (200, "function")
    assert report["log"] == ["echo: hello <b>echo</b>"]
    assert report["bold"] == 0  # shown as text, never markup
    assert report["inputAfter"] == ""
    assert report["status"] == "connected over websocket"
    assert (ARTIFACTS / "echo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_echo_without_engineio_fails_in_one_line() -> None:
    """Forgetting --engineio names the fix in one line, not an AttributeError from the hook."""
    options = [o for o in documented_options() if o != "--engineio"]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "twistd"), "-n", "--pidfile=", "txrealtime", "--listen", "tcp:0", *options],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "txrealtime: --app examples.echo.app:setup: it takes a SessionManager, not a Server: add --engineio\n"
    )
