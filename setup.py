"""What pyproject.toml cannot say: the package layout twistd's plugin discovery needs, and the optional mypyc build.

twistd finds ``twistd txrealtime`` by listing ``twisted/plugins/`` folders under sys.path entries,
not by importing. With the root mapped to "." (a src-like layout to setuptools), ``pip install -e .``
puts the checkout on sys.path, as ``editable_mode=compat`` does, where by default it installs an
import hook that twistd's listing never sees. Regular wheels are unchanged. Everything else
(name, version, dependencies, extras, entry points) is in pyproject.toml's ``[project]`` table.

A regular build (``pip install .``, ``pip wheel .``) compiles :data:`MYPYC_MODULES` with mypyc
(a build requirement) when a C compiler works, and installs them as pure Python when not: the
``.py`` files are in the wheel either way. ``TXREALTIME_MYPYC=0`` never compiles; ``=1`` always
does and fails the build if it cannot. Editable installs stay pure unless ``TXREALTIME_MYPYC=1``
(compiled modules in the checkout would shadow edits to their sources).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from typing import Any

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

MYPYC_MODULES = [
    "txrealtime/_autobahn.py",
    "txrealtime/engineio/packets.py",
    "txrealtime/engineio/session.py",
    "txrealtime/protocol/msgpack.py",
    "txrealtime/protocol/packets.py",
    "txrealtime/protocol/dispatch.py",
]
"""The pure hot modules worth compiling (bench/README.md has the figures)."""

CHOICE = os.environ.get("TXREALTIME_MYPYC", "auto").strip().lower()
if CHOICE not in ("auto", "0", "1"):
    sys.exit(f"TXREALTIME_MYPYC must be 0, 1 or unset, not {CHOICE!r}")


def warn(message: str) -> None:
    print(f"txrealtime: {message}; installing pure Python", file=sys.stderr)


def has_compiler() -> bool:
    """Whether the C compiler Python was built with (``CC``, as build_ext runs it) is on PATH."""
    command = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    return bool(command) and shutil.which(command[0]) is not None


def mypyc_extensions() -> list[Any]:
    """The extension modules mypyc generates, or none when it cannot or should not run."""
    if CHOICE == "0" or not {"bdist_wheel", "build", "build_ext", "install", "editable_wheel"} & set(sys.argv):
        return []  # metadata only (egg_info, dist_info), or pure asked for
    if CHOICE == "auto" and "editable_wheel" in sys.argv:
        return []
    if CHOICE == "auto" and not has_compiler():
        warn("no C compiler found")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        if CHOICE == "1":
            raise
        warn("mypyc is not available")
        return []
    # Not pyproject's [tool.mypy] (the strict checking is CI's): an isolated build environment has
    # no Twisted or Autobahn, whose types are then Any, which strict mode would refuse.
    os.makedirs("build", exist_ok=True)
    config = os.path.join("build", "mypyc.ini")
    with open(config, "w") as f:
        f.write("[mypy]\nignore_missing_imports = True\nfollow_imports = silent\n")
    try:
        return list(mypycify(["--config-file", config, *MYPYC_MODULES], opt_level="3", group_name="txrealtime"))
    except (Exception, SystemExit) as e:  # mypy's type errors end in SystemExit
        if CHOICE == "1":
            raise
        warn(f"mypyc could not compile ({type(e).__name__}: {e})")
        return []


class BuildPy(build_py):
    """``build_py`` that drops compiled modules an earlier build left in the build directory.

    bdist_wheel packs the whole build directory: a pure build after a compiled one would otherwise
    ship the old ``.so`` files next to newer sources. build_ext, which runs after, builds them afresh.
    """

    def run(self) -> None:
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        for folder, _, files in os.walk(self.build_lib):
            for name in files:
                if name.endswith(suffix) and (name.startswith("txrealtime__mypyc") or "txrealtime" in folder):
                    os.remove(os.path.join(folder, name))
        super().run()


class OptionalBuildExt(build_ext):
    """``build_ext`` that leaves the modules pure when compiling fails, or in editable installs."""

    def run(self) -> None:
        if not self.extensions:
            return
        if (self.inplace or getattr(self, "editable_mode", False)) and CHOICE != "1":
            return  # pure sources in the checkout stay what is imported
        try:
            super().run()
        except Exception as e:
            if CHOICE == "1":
                raise
            warn(f"the C compiler failed ({type(e).__name__}: {e})")
            for path in self.get_outputs():  # none half built: the shims need their shared library
                if os.path.exists(path):
                    os.remove(path)
            shutil.rmtree(self.build_temp, ignore_errors=True)
            self.extensions = []


setup(
    package_dir={"": "."},
    # client_dist holds no Python: a data-only package, named so that setuptools ships it without
    # warning that an importable folder is missing from ``packages``.
    packages=[*find_packages(include=["txrealtime", "txrealtime.*"]), "txrealtime.socketio.client_dist",
              "twisted.plugins"],
    package_data={
        "txrealtime": ["py.typed"],
        "txrealtime.socketio.client_dist": ["*"],
        "twisted": ["plugins/txrealtime_plugin.py"],
    },
    ext_modules=mypyc_extensions(),
    cmdclass={"build_py": BuildPy, "build_ext": OptionalBuildExt},
)
