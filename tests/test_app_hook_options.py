"""An ``--app`` hook that takes a second parameter gets the Options, whose configure() sets Engine.IO options
that have no flag (``allow_request`` here): they are in force when the server answers over loopback."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.python import usage

from txrealtime.engineio import Handshake, SessionManager
from txrealtime.service import Options, make_process_service
from txrealtime.socketio import Server
from txrealtime.web import BoundedSite

ROOT = Path(__file__).parent.parent
HERE = "tests.test_app_hook_options"
seen: list[Handshake] = []


def require_token(server: Server | SessionManager, options: Options) -> None:
    """The hook under test: only clients with ?token=letmein may open a session."""

    def allow(handshake: Handshake) -> bool | str:
        seen.append(handshake)
        return handshake.query.get("token") == "letmein" or "bad token"

    options.configure(allow_request=allow, max_payload=5000, max_buffer=5000)


def zero_ping(server: Server, options: Options) -> None:
    options.configure(ping_interval=0)


def misspelt(server: Server, options: Options) -> None:
    options.configure(allow_requests=lambda handshake: True)


def assign_replaced(server: Server, options: Options) -> None:
    """Node's way, ported: replace the options whole, on the manager."""
    server.manager.options = dataclasses.replace(server.manager.options, ping_interval=7, max_payload=4000)


def assign_and_configure(server: Server, options: Options) -> None:
    server.manager.options = dataclasses.replace(server.manager.options, ping_interval=7)
    options.configure(ping_timeout=3)


def assign_junk(server: Server, options: Options) -> None:
    server.manager.options = {"ping_interval": 7}  # type: ignore[assignment]


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))  # type: ignore[no-untyped-call]
    return options


async def handshake(url: str) -> tuple[int, bytes]:
    response = await treq.get(url)
    return response.code, await response.content()


@pytest.mark.parametrize("mode, path", [([], "/socket.io/"), (["--engineio"], "/engine.io/")])
@pytest_twisted.ensureDeferred
async def test_allow_request_from_the_hook_refuses_a_handshake(mode: list[str], path: str) -> None:
    seen.clear()
    service = make_process_service(parse(*mode, "--app", f"{HERE}:require_token", "--listen", "tcp:0"))
    assert service.manager.options.allow_request is not None
    site = service.site
    assert isinstance(site, BoundedSite) and site.max_body == 5000  # built after the hook: its options reach it
    port = cast(Any, reactor).listenTCP(0, site, interface="127.0.0.1")
    try:
        base = f"http://127.0.0.1:{port.getHost().port}{path}?EIO=4&transport=polling"
        code, body = await handshake(base)
        assert (code, json.loads(body)) == (403, {"code": 4, "message": "bad token"})  # its reason, as Node's
        assert [h.address for h in seen] == ["127.0.0.1"]
        code, body = await handshake(base + "&token=letmein")
        assert code == 200 and body.startswith(b"0{"), body
        assert len(service.manager.sessions) == 1
    finally:
        service.manager.shutdown()
        await port.stopListening()


def test_one_parameter_hooks_still_get_only_the_server() -> None:
    service = make_process_service(parse("--app", "examples.chat.app:setup", "--listen", "tcp:0"))
    assert isinstance(service.server, Server)
    assert service.manager.options.allow_request is None


def test_configure_checks_what_it_is_given() -> None:
    options = parse()
    with pytest.raises(usage.UsageError, match=r"configure\(ping_interval\): .*must be > 0"):
        options.configure(ping_interval=0)
    with pytest.raises(usage.UsageError, match="unexpected keyword argument 'allow_requests'"):
        options.configure(allow_requests=None)
    assert options.configure(ping_interval=3).ping_interval == 3
    assert options["engineio-options"].ping_interval == 3


@pytest.mark.parametrize(
    "hook, error",
    [
        ("zero_ping", "configure(ping_interval): ping_interval, ping_timeout and upgrade_timeout must be > 0"),
        ("misspelt", "configure(allow_requests): EngineIOOptions.__init__() got an unexpected keyword argument "
                     "'allow_requests'"),
    ],
)
def test_twistd_reports_a_bad_configure_in_one_line(hook: str, error: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "twistd"), "-n", "--pidfile=", "txrealtime", "--listen", "tcp:0",
         "--app", f"{HERE}:{hook}"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"txrealtime: --app {HERE}:{hook}: {error}\n"


@pytest_twisted.ensureDeferred
async def test_options_assigned_in_the_hook_stay_in_force() -> None:
    """Assigning ``manager.options`` in the hook is not undone when the hook returns (it was, silently)."""
    options = parse("--app", f"{HERE}:assign_replaced", "--listen", "tcp:0")
    service = make_process_service(options)
    assert (service.manager.options.ping_interval, service.manager.options.max_payload) == (7, 4000)
    assert options["engineio-options"] is service.manager.options
    site = service.site
    assert isinstance(site, BoundedSite) and site.max_body == 4000
    port = cast(Any, reactor).listenTCP(0, site, interface="127.0.0.1")
    try:
        code, body = await handshake(f"http://127.0.0.1:{port.getHost().port}/socket.io/?EIO=4&transport=polling")
        assert code == 200
        opened = json.loads(body[1:])
        assert (opened["pingInterval"], opened["maxPayload"]) == (7000, 4000)
    finally:
        service.manager.shutdown()
        await port.stopListening()


@pytest.mark.parametrize(
    "hook, error",
    [
        ("assign_and_configure", "it both assigned manager.options and called options.configure(): do one"),
        ("assign_junk", "manager.options must be an EngineIOOptions, not dict"),
    ],
)
def test_conflicting_or_bad_assignment_is_refused(hook: str, error: str) -> None:
    with pytest.raises(SystemExit, match=re.escape(f"txrealtime: --app {HERE}:{hook}: {error}")):
        make_process_service(parse("--app", f"{HERE}:{hook}", "--listen", "tcp:0"))
