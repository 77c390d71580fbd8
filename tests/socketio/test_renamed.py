"""Names that changed still import, with a DeprecationWarning naming the new one."""

from __future__ import annotations

import importlib

import pytest

from txrealtime.socketio import Connection
from txrealtime.socketio import connection as connection_module

MODULES = ["txrealtime.socketio", "txrealtime.socketio.connection", "txrealtime.socketio.server"]


@pytest.mark.parametrize("module", MODULES)
def test_client_is_connection_with_a_warning(module: str) -> None:
    with pytest.warns(DeprecationWarning, match=rf"{module}\.Client is deprecated: use {module}\.Connection"):
        old = importlib.import_module(module).Client
    assert old is Connection


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Klient'"):
        connection_module.Klient  # noqa: B018


def test_the_emitters_broadcast_operator_is_emitter_operator_with_a_warning() -> None:
    from txrealtime.emitter import EmitterOperator

    with pytest.warns(DeprecationWarning, match=r"txrealtime\.emitter\.BroadcastOperator is deprecated: use "
                                                r"txrealtime\.emitter\.EmitterOperator"):
        old = importlib.import_module("txrealtime.emitter").BroadcastOperator
    assert old is EmitterOperator


def test_make_service_of_one_process_is_make_process_service_with_a_warning() -> None:
    from txrealtime.service import make_process_service

    with pytest.warns(DeprecationWarning, match=r"txrealtime\.service\.makeService is deprecated: use "
                                                r"txrealtime\.service\.make_process_service"):
        old = importlib.import_module("txrealtime.service").makeService
    assert old is make_process_service
