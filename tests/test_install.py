"""A contributor's first command, ``pip install -e .``, gives a working ``twistd txrealtime``; ``python -m txrealtime``
runs the same service for those who do not know twistd."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
TWISTD = str(Path(sys.executable).parent / "twistd")
# Run twistd's entry point with any interpreter (a venv without Twisted's scripts has no bin/twistd).
RUN_TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"


def copy_checkout(target: Path) -> Path:
    """What packaging reads from the checkout, copied: pip then writes nothing into the shared working tree."""
    target.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dropin.cache")
    shutil.copytree(ROOT / "txrealtime", target / "txrealtime", ignore=ignore)
    shutil.copytree(ROOT / "twisted", target / "twisted", ignore=ignore)
    return target


def borrowing_venv(venv: Path) -> tuple[str, dict[str, str]]:
    """A fresh venv whose dependencies are this one's, borrowed rather than downloaded: its python, and the
    environment to run it in (this checkout is not on its ``sys.path``)."""
    site = Path(sysconfig.get_paths()["purelib"])
    if (site / "twisted" / "plugins" / "txrealtime_plugin.py").exists():
        pytest.skip("this venv has a regular install's plugin module, which a new venv borrowing it would find")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the new venv's sys.path only
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120, env=env)
    python = str(venv / "bin" / "python")
    new_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60, env=env,
    ).stdout.strip()
    # This venv's packages (pip, Twisted, ...) after the new venv's own: a path line, so its .pth files
    # (this checkout's own editable install among them) are not run.
    (Path(new_site) / "zz_borrowed_site_packages.pth").write_text(f"{site}\n")
    return python, env


def test_plain_editable_install_finds_the_twistd_plugin(tmp_path: Path) -> None:
    """``pip install -e <checkout>`` in a fresh venv (dependencies borrowed from this one, not downloaded)."""
    python, env = borrowing_venv(tmp_path / "venv")
    checkout = copy_checkout(tmp_path / "checkout")
    pip = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-e", str(checkout)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    # setuptools warns, in about 40 lines, of a folder that is importable but not declared a package.
    assert "Package would be ignored" not in pip.stdout + pip.stderr, pip.stdout + pip.stderr
    assert "BuildBackendWarning" not in pip.stdout + pip.stderr, pip.stdout + pip.stderr

    done = subprocess.run(
        [python, "-c", RUN_TWISTD, "txrealtime", "--help"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unknown command" not in done.stdout + done.stderr
    assert done.stdout.startswith("Usage: twistd [options] txrealtime [options]"), done.stdout
    assert "--listen=" in done.stdout

    # The plugin twistd loaded, and the package it serves, are the editable checkout's.
    where = subprocess.run(
        [python, "-c", "import json, sys, txrealtime; from twisted.plugin import getPlugins;"
         "from twisted.application.service import IServiceMaker;"
         "names = [p.tapname for p in getPlugins(IServiceMaker)];"
         "print(json.dumps([names, sys.modules['twisted.plugins.txrealtime_plugin'].__file__, txrealtime.__file__]))"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert where.returncode == 0, where.stderr
    names, plugin, package = json.loads(where.stdout.strip().splitlines()[-1])
    assert "txrealtime" in names
    assert Path(plugin).resolve() == (checkout / "twisted" / "plugins" / "txrealtime_plugin.py").resolve()
    assert Path(package).resolve() == (checkout / "txrealtime" / "__init__.py").resolve()


def test_the_chat_tests_run_as_their_docstring_says_after_a_plain_install(tmp_path: Path) -> None:
    """The README installs with ``pip install .``, which leaves ``examples`` in the checkout: the commands
    examples/chat/test_app.py gives run there, and pass."""
    import examples.chat.test_app

    python, env = borrowing_venv(tmp_path / "venv")
    checkout = copy_checkout(tmp_path / "checkout")
    shutil.copytree(ROOT / "examples", checkout / "examples", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = subprocess.run(  # pure Python: the same package as a compiled build, sooner
        [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
         str(checkout)],
        capture_output=True, text=True, timeout=600, env={**env, "TXREALTIME_MYPYC": "0"}, cwd=tmp_path,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert not list(Path(subprocess.run(
        [python, "-c", "import txrealtime, os; print(os.path.dirname(txrealtime.__file__))"],
        capture_output=True, text=True, check=True, timeout=60, env=env, cwd=tmp_path,
    ).stdout.strip()).parent.glob("examples")), "examples was installed"
    doc = examples.chat.test_app.__doc__ or ""
    commands = [shlex.split(line) for line in doc.splitlines() if line.strip().startswith("python -m ")]
    assert [c[:3] for c in commands] == [["python", "-m", "twisted.trial"], ["python", "-m", "pytest"]]
    for command in commands:
        done = subprocess.run(
            [python, *command[1:]], capture_output=True, text=True, timeout=300, env=env, cwd=checkout
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(r"^PASSED \(successes=[1-9]|\b[1-9]\d* passed\b", done.stdout, re.M), done.stdout


def test_the_all_extra_names_every_feature_extra() -> None:
    """``pip install '.[all]'`` brings what every optional feature needs, in one install (one build)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [everything] = extras["all"]
    named = re.fullmatch(r"txrealtime\[([a-z,]+)\]", everything)
    assert named is not None, everything
    assert sorted(named.group(1).split(",")) == sorted(set(extras) - {"all", "bench", "test", "docs"})


# -- python -m txrealtime ---------------------------------------------------------------------------


def main(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "txrealtime", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def options_part(help_text: str) -> str:
    return help_text[help_text.index("Options:") :]


def test_main_help_is_twistd_txrealtimes() -> None:
    done = main("--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("Usage: python -m txrealtime [options]\n")
    twistd = subprocess.run([TWISTD, "txrealtime", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert options_part(done.stdout) == options_part(twistd.stdout)  # the same options, the same words


def test_main_version_and_usage_errors() -> None:
    import txrealtime

    assert main("--version").stdout.startswith(f"txrealtime {txrealtime.__version__} (Twisted ")
    done = main("--listen", "foo:bar")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "python -m txrealtime: --listen foo:bar: Unknown endpoint type: 'foo' (e.g. tcp:8080 or "
        "ssl:8443:privateKey=key.pem); see python -m txrealtime --help\n"
    )


def test_main_runs_the_service_in_the_foreground(tmp_path: Path) -> None:
    """The echo example through ``python -m txrealtime``: it serves, echoes, and stops cleanly on SIGTERM."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # examples.echo, from a scratch working directory
    process = subprocess.Popen(
        [sys.executable, "-m", "txrealtime", "--listen", "tcp:0:interface=127.0.0.1", "--engineio",
         "--app", "examples.echo.app:setup", "--shutdown-grace", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env,
    )
    log: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)
            match = re.search(r"Site starting on (\d+)", line)
            if match:
                break
        else:
            raise AssertionError("it did not start:\n" + "".join(log))
        base = f"http://127.0.0.1:{match.group(1)}/engine.io/?EIO=4&transport=polling"
        with urllib.request.urlopen(base, timeout=30) as response:
            opened = response.read().decode()
        assert opened.startswith("0{"), opened
        sid = json.loads(opened[1:])["sid"]
        post = urllib.request.Request(f"{base}&sid={sid}", data=b"4hello", method="POST")
        with urllib.request.urlopen(post, timeout=30) as response:
            assert response.read() == b"ok"
        with urllib.request.urlopen(f"{base}&sid={sid}", timeout=30) as response:
            assert response.read() == b"4hello"
        close = urllib.request.Request(f"{base}&sid={sid}", data=b"1", method="POST")
        with urllib.request.urlopen(close, timeout=30) as response:  # leave: the stop is then clean
            assert response.read() == b"ok"
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
        log.append(out)
    assert process.returncode == 0, "".join(log)
    assert "Traceback" not in "".join(log)
    assert list(tmp_path.iterdir()) == []  # no twistd.pid, no twistd.log
