"""The lowest-versions pass really runs on the lowest versions ``.ci/lowest-constraints.txt`` pins.

run-tests runs this module in ``.venv-lowest`` first; in the main venv it checks that every pin is the lowest
version ``pyproject.toml`` allows (or a documented exception), so that the constraints follow the declarations.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = (ROOT / ".ci/lowest-constraints.txt").read_text()
PINS = {name.lower(): pinned for name, pinned in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", CONSTRAINTS, re.M)}
IN_LOWEST = Path(sys.prefix).name == ".venv-lowest"


def declared() -> dict[str, str]:
    """Lower bounds of the runtime dependencies and the feature extras (the C fast paths among them), by package
    name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    features = ("redis", "metrics", "admin", "emitter", "validation", "speedups", "json")
    specs = project["dependencies"] + [s for extra in features for s in extras[extra]]
    bounds: dict[str, str] = {}
    for spec in specs:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?>=(\S+)", spec)
        assert match, spec
        bounds[match[1].lower()] = match[2]
    return bounds


# Where the lowest installable release is above the declared bound, and why.
NOT_THE_BOUND = {"autobahn": "23.1.1", "bcrypt": "4.1.1"}  # no autobahn 23.1.0 on PyPI; bcrypt 4.1.0 is yanked


def test_every_declared_bound_is_pinned() -> None:
    for name, bound in declared().items():
        expected = NOT_THE_BOUND.get(name, bound)
        assert PINS.get(name) is not None, f"{name} has no pin in .ci/lowest-constraints.txt"
        assert tuple(map(int, PINS[name].split("."))) == tuple(map(int, (expected + ".0.0").split(".")[:3])), name


@pytest.mark.skipif(not IN_LOWEST, reason="only in run-tests' lowest-versions pass (.venv-lowest)")
def test_the_pinned_versions_are_installed() -> None:
    for name, pinned in PINS.items():
        assert version(name) == pinned, name
