"""``bench/run`` on a fresh clone installs what its scenarios need: its own Node peers (bench/package.json) and the
``bench`` extra, nothing borrowed from the test suite's tests/interop/node_modules.

A smoke run of one scenario, ``echo msgpack`` (whose msgpack parser the suite's Node peers used to lend), against
every server; about three minutes, most of them installing. It runs with the rest of the suite, so CI runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SCENARIO = "echo msgpack"
SERVERS = ["txrealtime", "node", "pysio-uvicorn", "pysio-aiohttp"]


def test_bench_run_on_a_fresh_clone(tmp_path: Path) -> None:
    """The clone is of the last commit: uncommitted changes are not in it."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    if head.returncode != 0:
        pytest.skip(f"not a git checkout: {head.stderr.strip()}")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=300)
    assert not (clone / "tests" / "interop" / "node_modules").exists()
    # bench/run makes its own venv (with this interpreter) and installs into it, as on a new machine.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "NODE_PATH")}
    env["PYTHON"] = sys.executable
    done = subprocess.run(
        ["bench/run", "--only", SCENARIO, "--quick"], cwd=clone, env=env, capture_output=True, text=True,
        timeout=1200, stdin=subprocess.DEVNULL,
    )
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    rows = json.loads((clone / "bench" / "results.json").read_text())[SCENARIO]
    for server in SERVERS:
        assert "error" not in rows[server], (server, rows[server], output)
        assert rows[server]["msgs_per_s"] > 0, (server, rows[server])
    assert f"Rows of {SCENARIO} updated" in (clone / "bench" / "results.md").read_text()
