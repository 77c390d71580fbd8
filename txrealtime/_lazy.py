"""Names imported on first use: what a package exports without loading every module, and what a module that
moved still answers to, with a deprecation warning."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["deprecated_aliases", "lazy_attributes", "moved_module"]


def lazy_attributes(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``modules`` is imported from its submodule when
    first asked for, then kept on the package; any other name is an ``AttributeError``."""

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


def deprecated_aliases(module: str, aliases: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``module``: each old name of ``aliases`` gives the module's attribute of its
    new name, with a ``DeprecationWarning`` saying which; any other name is an ``AttributeError``."""

    def __getattr__(name: str) -> Any:
        new = aliases.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} is deprecated: use {module}.{new}", DeprecationWarning, stacklevel=2)
        return getattr(sys.modules[module], new)

    return __getattr__


def moved_module(old: str, *new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old``, whose names moved to the modules ``new``: each of their public
    names is still found, with a ``DeprecationWarning`` at the line that asked for it; any other name is an
    ``AttributeError``."""

    def __getattr__(name: str) -> Any:
        if not name.startswith("_"):
            for module in new:
                target = importlib.import_module(module)
                if hasattr(target, name):
                    warnings.warn(
                        f"{old}.{name} moved to {module}.{name}; {old} will be removed",
                        DeprecationWarning,
                        stacklevel=2,
                    )
                    return getattr(target, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
