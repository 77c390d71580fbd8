"""The docs site: ``./run-docs`` builds it (warnings fail it), and headless Chromium loads every page, follows
every internal link, and finds the API reference through the search box."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest_twisted

from tests.servers import page_report

ROOT = Path(__file__).parent.parent


@pytest_twisted.ensureDeferred
async def test_the_docs_site_builds_and_every_page_and_link_works(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "SITE": str(site), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    built = subprocess.run(["./run-docs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    assert built.stderr == "", built.stderr  # no warning either
    guides = sorted(p.stem for p in (ROOT / "docs").glob("*.md") if p.stem != "index")
    for name in guides:
        assert (site / f"{name}.html").is_file(), name
    # pydoctor's reference, in place of the placeholder page, beside the guides.
    assert "Sphinx" not in (site / "api" / "index.html").read_text()
    assert (site / "api" / "txrealtime.socketio.server.Server.html").is_file()

    # No access log: nothing reads the server's output while the crawl makes a thousand requests.
    report = await page_report("docs_site_browser.js", "--static", str(site), "--no-access-log")
    assert report.get("error") is None, report["error"]
    assert report["broken"] == [] and report["failedRequests"] == [] and report["errors"] == [], report
    assert report["pages"] > len(guides) + 100, report["pages"]  # the guides, and the API reference's pages
    assert report["searchBox"] == 1
    assert any("Engine.IO" in title for title in report["searchResults"]), report["searchResults"]
