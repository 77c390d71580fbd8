"""Every public name of the public modules is documented in the API reference, constructor keywords included.

The public modules are those an application imports; their public names are their ``__all__``. Of a class, its
public methods, properties and attributes count, its bases' within txrealtime included, but not those a base outside
txrealtime defines (Twisted's ``connectionMade``, ``render``...: documented there); a method overriding a documented
one of txrealtime's shows that one's docstring. An ``__init__`` taking parameters needs a docstring of its own, where
pydoctor, which builds the reference, shows them. This reads the package as pydoctor does.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from pathlib import Path
from typing import Any

from pydoctor import model
from pydoctor.options import Options

ROOT = Path(__file__).parent.parent
MODULES = [
    "txrealtime.socketio", "txrealtime.engineio", "txrealtime.client", "txrealtime.testing", "txrealtime.emitter",
    "txrealtime.admin", "txrealtime.adapters.redis", "txrealtime.redis", "txrealtime.metrics", "txrealtime.health",
    "txrealtime.web", "txrealtime.service", "txrealtime.command", "txrealtime.pytest_plugin",
    "txrealtime.protocol.dispatch", "txrealtime.protocol.acks", "txrealtime.protocol.handlers",
    "txrealtime.protocol.errors",
]


@cache
def system() -> model.System:
    built = model.System(Options.from_args(["--docformat=restructuredtext", "-q", str(ROOT / "txrealtime")]))
    builder = built.systemBuilder(built)
    builder.addModule(ROOT / "txrealtime")
    builder.buildModules()
    return built


def foreign(cls: type, name: str) -> bool:
    """Whether a base class of ``cls`` outside txrealtime defines ``name``."""
    return any(name in vars(base) and not base.__module__.startswith("txrealtime") for base in cls.__mro__[1:])


def documented(ob: model.Documentable) -> bool:
    if ob.docstring is not None or ob.name.endswith((".setter", ".deleter")):  # a property's: its getter says
        return True
    if isinstance(ob, model.Function) and isinstance(ob.parent, model.Class):
        if ob.name == "__init__":
            return all(name in ("self", "return") for name in ob.annotations)
        overridden = (c.contents.get(ob.name) for c in ob.parent.mro(include_self=False) if isinstance(c, model.Class))
        return any(o is not None and o.docstring is not None for o in overridden)
    return False


def public_objects() -> list[model.Documentable]:
    found: dict[str, model.Documentable] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            thing: Any = getattr(module, attr)
            ob = system().objForFullName(f"{name}.{attr}") or system().objForFullName(
                f"{getattr(thing, '__module__', name)}.{getattr(thing, '__qualname__', attr)}"
            )
            if ob is None:
                continue  # a type alias (SessionEvent...): pydoctor documents the module's variable
            found[ob.fullName()] = ob
            if not (isinstance(ob, model.Class) and inspect.isclass(thing)):
                continue
            for klass in [ob, *(c for c in ob.mro(include_self=False) if isinstance(c, model.Class))]:
                for member in klass.contents.values():
                    if (member.name.startswith("_") and member.name != "__init__") or foreign(thing, member.name):
                        continue
                    if member.name == "__init__" and klass is not ob:
                        continue
                    found.setdefault(member.fullName(), member)
    return list(found.values())


def test_every_public_name_is_documented() -> None:
    missing = sorted(f"{ob.kind.name.lower() if ob.kind else '?'} {ob.fullName()}"
                     for ob in public_objects() if not documented(ob))
    assert missing == []


def test_the_server_constructor_documents_every_keyword() -> None:
    from txrealtime.socketio import Server

    doc = inspect.getdoc(Server.__init__) or ""
    for name in inspect.signature(Server.__init__).parameters:
        if name != "self":
            assert f":param {name}:" in doc, name
