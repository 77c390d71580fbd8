"""The optional mypyc build (setup.py): compiled where asked, pure Python where no compiler is found.

run-tests runs part of the suite a second time against a wheel built with ``TXREALTIME_MYPYC=1``,
with ``TXREALTIME_EXPECT_COMPILED=1`` set: :func:`test_compiled_modules_are_imported` then makes sure
those tests really ran the compiled modules rather than the checkout's sources.
"""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def compiled_modules() -> list[str]:
    """The module names setup.py compiles (its ``MYPYC_MODULES``)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MYPYC_MODULES" for t in node.targets):
            paths = ast.literal_eval(node.value)
            return [path.removesuffix(".py").replace("/", ".") for path in paths]
    raise AssertionError("setup.py has no MYPYC_MODULES")


def test_compiled_modules_exist() -> None:
    """Every module setup.py names is a module of the package (a typo would silently compile nothing)."""
    names = compiled_modules()
    assert names
    for name in names:
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name


@pytest.mark.skipif(os.environ.get("TXREALTIME_EXPECT_COMPILED") != "1", reason="run-tests' compiled pass only")
def test_compiled_modules_are_imported() -> None:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name in compiled_modules():
        module = importlib.import_module(name)
        where = Path(str(module.__file__))
        assert where.name.endswith(suffix), f"{name} is not compiled: {where}"
        assert not where.is_relative_to(ROOT / "txrealtime"), f"{name} comes from the checkout: {where}"


def test_no_compiler_builds_a_pure_wheel(tmp_path: Path) -> None:
    """Without a C compiler, ``pip wheel .`` still succeeds: a pure wheel with every module's source."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        (checkout / name).write_bytes((ROOT / name).read_bytes())
    for package in ("txrealtime", "twisted"):
        shutil.copytree(ROOT / package, checkout / package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    env = {k: v for k, v in os.environ.items() if k not in ("TXREALTIME_MYPYC", "PYTHONPATH")}
    env["CC"] = str(tmp_path / "no-such-cc")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
         "-w", str(tmp_path / "dist"), str(checkout)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "txrealtime: no C compiler found; installing pure Python" in built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("txrealtime-*.whl")
    assert "-py3-none-any.whl" in wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    for module in compiled_modules():
        assert module.replace(".", "/") + ".py" in names
    assert not [n for n in names if n.endswith(".so") or n.endswith(".pyd")]
