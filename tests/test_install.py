"""A contributor's first command, ``pip install -e .``, gives a working ``twistd txrealtime``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
TWISTD = str(Path(sys.executable).parent / "twistd")
# Run twistd's entry point with any interpreter (a venv without Twisted's scripts has no bin/twistd).
RUN_TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"


def copy_checkout(target: Path) -> Path:
    """What packaging reads from the checkout, copied: pip then writes nothing into the shared working tree."""
    target.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dropin.cache")
    shutil.copytree(ROOT / "txrealtime", target / "txrealtime", ignore=ignore)
    shutil.copytree(ROOT / "twisted", target / "twisted", ignore=ignore)
    return target


def test_plain_editable_install_finds_the_twistd_plugin(tmp_path: Path) -> None:
    """``pip install -e <checkout>`` in a fresh venv (dependencies borrowed from this one, not downloaded)."""
    site = Path(sysconfig.get_paths()["purelib"])
    if (site / "twisted" / "plugins" / "txrealtime_plugin.py").exists():
        pytest.skip("this venv has a regular install's plugin module, which a new venv borrowing it would find")
    checkout = copy_checkout(tmp_path / "checkout")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    new_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    # This venv's packages (pip, Twisted, ...) after the new venv's own: a path line, so its .pth files
    # (this checkout's own editable install among them) are not run.
    (Path(new_site) / "zz_borrowed_site_packages.pth").write_text(f"{site}\n")
    pip = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-e", str(checkout)],
        capture_output=True, text=True, timeout=600,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr

    done = subprocess.run(
        [python, "-c", RUN_TWISTD, "txrealtime", "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path
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
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    names, plugin, package = json.loads(where.stdout.strip().splitlines()[-1])
    assert "txrealtime" in names
    assert Path(plugin).resolve() == (checkout / "twisted" / "plugins" / "txrealtime_plugin.py").resolve()
    assert Path(package).resolve() == (checkout / "txrealtime" / "__init__.py").resolve()
