"""What ``twistd txrealtime`` does when not told: no pid file in the foreground, a warning when it serves every
network interface; and the commands the README and the examples give bind 127.0.0.1."""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher
from twisted.scripts.twistd import ServerOptions  # type: ignore[attr-defined]

from txrealtime.service import Options, make_service

ROOT = Path(__file__).parent.parent
TWISTD = str(Path(sys.executable).parent / "twistd")


@contextmanager
def foreground_twistd(cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """``twistd -n txrealtime`` as a newcomer types it (no ``--pidfile``), on a free loopback port, until it serves."""
    process = subprocess.Popen(
        [TWISTD, "-n", "txrealtime", "--listen", "tcp:0:interface=127.0.0.1", "--shutdown-grace", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
    )
    try:
        assert process.stdout is not None
        log = []
        for line in process.stdout:
            log.append(line)
            if re.search(r"Site starting on \d+", line):
                break
        else:
            raise AssertionError(f"twistd exited ({process.wait()}) before serving:\n{''.join(log)}")
        yield process
    finally:
        process.terminate()
        process.communicate(timeout=60)


def test_two_foreground_servers_share_a_folder(tmp_path: Path) -> None:
    """twistd's default pid file, ``twistd.pid`` in the working directory, would stop the second one
    ("Another twistd server is running"), and a restart while the first still drains its clients."""
    with ExitStack() as stack:
        first = stack.enter_context(foreground_twistd(tmp_path))
        second = stack.enter_context(foreground_twistd(tmp_path))
        assert first.poll() is None and second.poll() is None
        assert list(tmp_path.iterdir()) == []


def parsed_by_twistd(*args: str) -> Any:
    config = ServerOptions()
    config.parseOptions([*args, "txrealtime", "--listen", "tcp:0:interface=127.0.0.1"])
    return config


def test_pid_file_only_when_asked_or_daemonized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parsed_by_twistd("-n")["pidfile"] == ""
    assert parsed_by_twistd("-n", "--pidfile", "chat.pid")["pidfile"] == str(tmp_path / "chat.pid")
    # A daemon is found and stopped through its pid file: twistd's default stays.
    assert parsed_by_twistd()["pidfile"] == str(tmp_path / "twistd.pid")


def warnings_of(*args: str) -> list[str]:
    """The warnings logged while building the service ``twistd txrealtime ARGS`` runs (nothing listens)."""
    options = Options()
    options.parseOptions(list(args))  # type: ignore[no-untyped-call]
    logged: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") is LogLevel.warn:
            logged.append(formatEvent(event))

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    try:
        service = make_service(options)
    finally:
        globalLogPublisher.removeObserver(observer)
    service.manager.shutdown()  # type: ignore[attr-defined]
    return logged


def test_serving_every_interface_by_default_is_said_once() -> None:
    assert warnings_of() == [
        "No --listen given: listening on tcp:8080, on every network interface; to serve this machine only, "
        "give --listen tcp:8080:interface=127.0.0.1"
    ]
    assert warnings_of("--listen", "tcp:8080:interface=127.0.0.1") == []
    assert warnings_of("--listen", "tcp:8080") == []  # asked for


def documented_commands() -> dict[str, list[str]]:
    """The ``twistd -n txrealtime`` commands of the examples' docstrings and of the README's first block."""
    found = {}
    for app in sorted(ROOT.glob("examples/*/app.py")):
        module = importlib.import_module(f"examples.{app.parent.name}.app")
        doc = (module.__doc__ or "").replace("\\\n", " ")
        [line] = [line for line in doc.splitlines() if "twistd -n txrealtime" in line]
        found[str(app.relative_to(ROOT))] = shlex.split(line[line.index("twistd -n") :])
    readme = (ROOT / "README.md").read_text()
    first = readme[readme.index("```sh\n") + 6 :].splitlines()[0]
    found["README.md"] = shlex.split(first[first.index(".venv/bin/twistd") :])
    return found


@pytest.mark.parametrize("where, command", sorted(documented_commands().items()))
def test_documented_commands_serve_this_machine_only(where: str, command: list[str]) -> None:
    assert command[command.index("--listen") + 1] == "tcp:8080:interface=127.0.0.1", (where, command)
    assert "--pidfile" not in " ".join(command)  # not needed: see test_two_foreground_servers_share_a_folder
    if "--static" in command:  # the page examples serve their folder (examples/typed has no page)
        assert os.path.isdir(ROOT / command[command.index("--static") + 1]), where
