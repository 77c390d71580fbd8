"""The modules that moved to txrealtime.protocol still answer at their old paths, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from txrealtime.protocol import acks, handlers, msgpack, packets, parser


@pytest.mark.parametrize(
    "old, name, new",
    [
        ("packets", "Packet", packets),
        ("packets", "MAX_DEPTH", packets),
        ("parser", "Parser", parser),
        ("msgpack", "MsgpackParser", msgpack),
        ("acks", "AckTable", acks),
        ("emitter", "EventEmitter", handlers),
        ("emitter", "NO_ACK", acks),
    ],
)
def test_old_names_warn_and_are_the_new_objects(old: str, name: str, new: object) -> None:
    module = importlib.import_module(f"txrealtime.socketio.{old}")
    with pytest.warns(DeprecationWarning, match=f"txrealtime.socketio.{old}.{name} moved to") as caught:
        value = getattr(module, name)
    assert value is getattr(new, name)
    assert [w.filename for w in caught] == [__file__]


def test_unknown_names_are_still_errors() -> None:
    with pytest.raises(ImportError, match="nothing_here"):
        from txrealtime.socketio.packets import nothing_here  # noqa: F401


def test_the_library_itself_uses_the_new_paths() -> None:
    script = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "import txrealtime.socketio, txrealtime.client, txrealtime.command, txrealtime.emitter\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert (result.stdout, result.stderr) == ("ok\n", "")


def test_the_client_imports_no_module_of_the_socket_io_server() -> None:
    script = (
        "import sys, txrealtime.client\n"
        "print(sorted(m for m in sys.modules if m.startswith('txrealtime.socketio')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"
