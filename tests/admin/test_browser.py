"""The official admin UI's files from npm, served by ``twistd txrealtime --admin-ui-static``, in headless Chromium."""

from __future__ import annotations

import json
from typing import Any

import bcrypt
import pytest
import pytest_twisted

from tests.servers import ARTIFACTS, NODE_MODULES, Twistd, node_peer, require_chromium

PASSWORD = "correct horse"
UI = NODE_MODULES / "@socket.io" / "admin-ui" / "ui" / "dist"


async def ui_report(mode: str, *options: str, cross_origin: bool = False) -> tuple[dict[str, Any], str]:
    """Run tests/interop/admin_browser.js against a twistd serving the UI; its report and the server's log.

    With ``cross_origin``, another twistd serves the UI's files, as admin.socket.io does: the server
    allows that origin with ``--cors-origin``.
    """
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    ui = Twistd("--admin-ui-static", str(UI), "--shutdown-grace", "1") if cross_origin else None
    if ui is not None:
        options += ("--cors-origin", ui.url)
    server = Twistd("--admin", f"admin:{hashed}", "--admin-ui-static", str(UI), "--app", "tests.admin.app:setup",
                    "--shutdown-grace", "1", *options)
    try:
        report: dict[str, Any] = await node_peer("admin_browser.js", server.url, str(ARTIFACTS), PASSWORD, mode,
                                                 ui.url if ui is not None else server.url, timeout=240)
    finally:
        server.stop()
        if ui is not None:
            ui.stop()
    log = "".join(server.log)
    if report.get("error") is not None:
        (ARTIFACTS / f"admin-ui-{mode}-failure.txt").write_text(json.dumps(report, indent=1) + "\n" + log)
    assert report.get("error") is None, report["error"]
    assert report["errors"] == []
    assert PASSWORD not in log and hashed not in log
    return report, log


@pytest.mark.parametrize("cross_origin", [False, True], ids=["same-origin", "cross-origin"])
@pytest_twisted.ensureDeferred
async def test_log_in_watch_join_and_disconnect_from_the_ui(cross_origin: bool) -> None:
    report, _ = await ui_report("full", cross_origin=cross_origin)
    assert report["wrongPassword"] == "disconnected"  # "invalid credentials" was shown in the login form
    assert report["socketListed"] is True and report["roomListed"] is True
    assert report["rowButtons"] == 1  # the socket's disconnect button
    assert len(report["servers"]) == 1 and "#" in report["servers"][0]
    assert report["joinedFromUi"] == sorted([report["clientId"], "lobby", "from-ui"])
    assert report["disconnectReason"] == "io server disconnect"
    assert len(report["storedSession"]) == 32
    assert report["reconnected"] is True and report["modalAfterReload"] is False
    assert (ARTIFACTS / "admin-ui-full.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest_twisted.ensureDeferred
async def test_read_only_ui_cannot_act() -> None:
    report, log = await ui_report("readonly", "--admin-read-only")
    assert report["socketListed"] is True and report["roomListed"] is True
    assert report["rowButtons"] == 0  # no DISCONNECT feature: no button
    # The join form is there (the UI does not hide it); the server refused the command.
    assert "join refused (read-only)" in log
    assert report["clientConnected"] is True
    assert report["roomsAtEnd"] == sorted([report["clientId"], "lobby"])
