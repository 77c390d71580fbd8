"""``twistd txrealtime --admin*``: option checks, and what make_process_service builds from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.python import usage

from txrealtime.admin import BasicAuth
from txrealtime.admin.service import AdminService
from txrealtime.service import Options, make_process_service

HASH = "$2b$10$GdtRguLTec.mN/llKziN.eQchJjRVv4TNepvVGP/bz8JPT.OX6Zue"


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1", *args])  # type: ignore[no-untyped-call]
    return options


@pytest.mark.parametrize(("args", "message"), [
    (["--admin", "a:b", "--admin-no-auth"], "exclude each other"),
    (["--admin", "nocolon"], "USER:PASSWORD"),
    (["--admin", "a:$2b$10$short"], "not a valid one"),
    (["--admin", "a:b", "--admin-mode", "staging"], "development or production"),
    (["--admin-read-only"], "need --admin"),
    (["--admin", "a:b", "--engineio"], "drop --engineio"),
    (["--admin", "a:b", "--admin-namespace", "admin"], "must start with /"),
    (["--admin-ui-static", "."], "no index.html"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=message):
        parse(*args)


def test_options_reach_instrument() -> None:
    options = parse("--admin", f"ops:{HASH}", "--admin-mode", "production", "--admin-read-only",
                    "--admin-namespace", "/ops", "--admin-server-id", "web-1")
    assert options["admin-auth"] == BasicAuth("ops", HASH)
    realtime = make_process_service(options)
    [admin] = [s for s in realtime if isinstance(s, AdminService)]
    instrumentation = admin.instrumentation
    try:
        assert instrumentation.server_id == "web-1"
        assert instrumentation.features == ["AGGREGATED_EVENTS"]
        assert instrumentation.admin.name == "/ops"
        assert instrumentation.login is not None and instrumentation.login.auth.hashed
    finally:
        admin.stopService()
    assert not instrumentation._stats.running


def test_without_admin_options_nothing_is_instrumented() -> None:
    realtime: Any = make_process_service(parse())
    assert not [s for s in realtime if isinstance(s, AdminService)]
    assert realtime.server is not None and "/admin" not in realtime.server.namespaces


def test_help_lists_the_admin_options() -> None:
    twistd = str(Path(sys.executable).parent / "twistd")
    done = subprocess.run([twistd, "txrealtime", "--help"], capture_output=True, text=True, timeout=60)
    for option in ("--admin=", "--admin-no-auth", "--admin-mode=", "--admin-read-only", "--admin-namespace=",
                   "--admin-server-id=", "--admin-ui-static="):
        assert option in done.stdout, done.stdout + done.stderr
