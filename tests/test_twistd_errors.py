"""`twistd txrealtime` mistakes end in one clear line on stderr, never a traceback nor the whole --help; --help and
--version say what they should."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher

import twisted
import txrealtime
from txrealtime.service import Options, make_process_service

ROOT = Path(__file__).parent.parent
TWISTD = str(Path(sys.executable).parent / "twistd")
EXAMPLE = "(e.g. tcp:8080 or ssl:8443:privateKey=key.pem)"


def twistd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TWISTD, "-n", "--pidfile=", "txrealtime", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def lines_with(text: str, output: str) -> list[str]:
    return [line for line in output.splitlines() if text in line]


def python_m(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "txrealtime", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line on stderr a usage error ends with (status 1, nothing on stdout)."""
    assert (done.returncode, done.stdout) == (1, ""), done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    return line


@pytest.mark.parametrize(
    "endpoint, error",
    [
        ("foo:bar", "Unknown endpoint type: 'foo'"),
        ("tcpp:8080", "Unknown endpoint type: 'tcpp'"),
        ("tcp:notaport", "'notaport' is not a number"),
        ("ssl:8443:privateKey=no-such-key.pem", "No such file or directory"),
    ],
)
def test_bad_endpoint_is_a_usage_error(endpoint: str, error: str) -> None:
    line = one_line(twistd("--listen", "tcp:0", "--listen", endpoint))
    assert line.startswith(f"twistd txrealtime: --listen {endpoint}: "), line
    assert error in line and line.endswith(f"{EXAMPLE}; see twistd txrealtime --help"), line


@pytest.mark.parametrize(
    "args, error",
    [
        (["--bogus"], "option --bogus not recognized"),
        (["--listen"], "option --listen requires argument"),
        (["--ping-interval", "soon"], "--ping-interval takes a number, not 'soon'"),
        (["--max-payload", "1.5"], "--max-payload takes a whole number, not '1.5'"),
        (["--path", "socket.io"], "--path must start with /"),
        (["--log-level", "loud"], "--log-level must be one of"),
        (["--metrics-listen", "tcp:x"], "--metrics-listen tcp:x: 'x' is not a number"),
    ],
)
@pytest.mark.parametrize("command", ["twistd txrealtime", "python -m txrealtime"])
def test_usage_error_is_one_line_on_stderr(command: str, args: list[str], error: str) -> None:
    """Not the 130 lines of --help on stdout that twistd prints for a usage error: the mistake, and where to look."""
    line = one_line(twistd(*args) if command.startswith("twistd") else python_m(*args))
    assert line.startswith(f"{command}: {error}"), line
    assert line.endswith(f"; see {command} --help"), line


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("command", ["twistd txrealtime", "python -m txrealtime"])
def test_busy_port_is_one_line_naming_the_endpoint(busy_port: int, command: str) -> None:
    endpoint = f"tcp:{busy_port}:interface=127.0.0.1"
    done = twistd("--listen", endpoint) if command.startswith("twistd") else python_m("--listen", endpoint)
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert "Traceback" not in output and "CannotListenError" not in output
    [line] = lines_with("Cannot listen", done.stdout)  # the log
    assert line.endswith(f"[txrealtime.service#error] Cannot listen on {endpoint}: Address already in use"), line
    # and on stderr, where a usage error's line goes (`2>err.log` keeps it)
    assert done.stderr == f"txrealtime: Cannot listen on {endpoint}: Address already in use\n"


def test_busy_port_among_several_names_that_one(busy_port: int) -> None:
    endpoint = f"tcp:{busy_port}:interface=127.0.0.1"
    done = twistd("--listen", "tcp:0:interface=127.0.0.1", "--listen", endpoint)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    [line] = lines_with("Cannot listen", done.stdout)
    assert line.endswith(f"Cannot listen on {endpoint}: Address already in use"), line
    assert done.stderr == f"txrealtime: Cannot listen on {endpoint}: Address already in use\n"


def test_service_started_without_twistd_exits_the_same_way(busy_port: int) -> None:
    """startService alone (no privilegedStartService first, as outside twistd) also names the endpoint."""
    options = Options()
    options.parseOptions(["--listen", f"tcp:{busy_port}:interface=127.0.0.1"])  # type: ignore[no-untyped-call]
    service = make_process_service(options)
    logged: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        logged.append(formatEvent(event))

    observer = cast(ILogObserver, observe)
    globalLogPublisher.addObserver(observer)
    try:
        with pytest.raises(SystemExit) as exit:
            service.startService()
    finally:
        globalLogPublisher.removeObserver(observer)
        service.manager.shutdown()
    assert exit.value.code == 1
    assert f"Cannot listen on tcp:{busy_port}:interface=127.0.0.1: Address already in use" in logged


def test_help_documents_the_default_endpoint() -> None:
    done = twistd("--help")
    assert done.returncode == 0
    words = " ".join(done.stdout.split())
    assert "--listen= Endpoint string to listen on" in words
    assert "(repeatable) [default: tcp:8080, on every interface]" in words


def test_help_lists_user_options_only_in_plain_words() -> None:
    """No internal option (the channel a --workers master gives its workers), no unformatted placeholder."""
    done = twistd("--help")
    assert done.returncode == 0
    assert "worker-channel" not in done.stdout and "internal" not in done.stdout
    assert not re.search(r"\{\w+\}", done.stdout), done.stdout
    words = " ".join(done.stdout.split())
    assert "--no-serve-client Do not serve the browser client socket.io.js under --path (by default it is " \
        "served, at /socket.io/socket.io.js)." in words


def test_version_is_txrealtimes() -> None:
    done = twistd("--version")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"txrealtime {txrealtime.__version__} (Twisted {twisted.__version__})\n"


def test_setup_py_reads_the_version_from_the_package() -> None:
    done = subprocess.run(
        [sys.executable, "setup.py", "--version"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == txrealtime.__version__
    assert 'version="' not in (ROOT / "setup.py").read_text()


def test_app_hook_given_the_wrong_object_is_one_line() -> None:
    done = twistd("--listen", "tcp:0", "--engineio", "--app", "examples.chat.app:setup")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "txrealtime: --app examples.chat.app:setup: it takes a Server, not a SessionManager: " \
        "drop --engineio\n"
