"""The HTTP edge over real loopback: CORS with "*" and origin lists."""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.hardening.test_limits import base, handshake, http, serve, websocket_handshake
from txrealtime.engineio import EngineIOOptions
from txrealtime.pytest_plugin import Realtime

# -- CORS and origins ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_cors_star_is_a_literal_star_without_credentials(realtime: Realtime) -> None:
    running, _ = await serve(realtime, cors_allowed_origins="*")
    for origin in ("null", "https://evil.example"):
        code, _, headers = await handshake(running, {"Origin": origin})
        assert code == 200
        assert headers.getRawHeaders("access-control-allow-origin") == ["*"]
        assert not headers.hasHeader("access-control-allow-credentials")
        preflight = await http.request(
            "OPTIONS", base(running), headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.code == 204
        assert preflight.headers.getRawHeaders("access-control-allow-origin") == ["*"]
        assert preflight.headers.getRawHeaders("access-control-allow-methods") == ["GET, POST, OPTIONS"]
        assert not preflight.headers.hasHeader("access-control-allow-credentials")

    # A list keeps reflecting the listed origin, with credentials, and says nothing to others.
    listed, _ = await serve(realtime, cors_allowed_origins=["https://app.example"])
    _, _, headers = await handshake(listed, {"Origin": "https://app.example"})
    assert headers.getRawHeaders("access-control-allow-origin") == ["https://app.example"]
    assert headers.getRawHeaders("access-control-allow-credentials") == ["true"]
    _, _, headers = await handshake(listed, {"Origin": "null"})
    assert not headers.hasHeader("access-control-allow-origin")
    assert not headers.hasHeader("access-control-allow-credentials")


def test_origins_must_be_lists_not_strings() -> None:
    with pytest.raises(TypeError, match="allowed_origins must be a list"):
        EngineIOOptions(allowed_origins="https://good.example")
    with pytest.raises(TypeError, match="allowed_origins must be a list"):
        EngineIOOptions(allowed_origins="*")
    with pytest.raises(TypeError, match='cors_allowed_origins must be "\\*" or a list'):
        EngineIOOptions(cors_allowed_origins="https://good.example")
    assert EngineIOOptions(cors_allowed_origins="*").cors_allowed_origins == "*"
    assert list(EngineIOOptions(allowed_origins=("https://good.example",)).allowed_origins or []) == [
        "https://good.example"
    ]


@pytest_twisted.ensureDeferred
async def test_part_of_an_allowed_origin_is_refused(realtime: Realtime) -> None:
    running, _ = await serve(realtime, allowed_origins=["https://good.example"])
    ws_url = f"{running.url}/socket.io/?EIO=4&transport=websocket"
    for origin in ("h", "https://good", "good.example", "https://good.example.evil"):
        code, _, _ = await handshake(running, {"Origin": origin})
        assert code == 403, origin
        assert await websocket_handshake(ws_url, origin=origin) == 403, origin
    code, _, _ = await handshake(running, {"Origin": "https://good.example"})
    assert code == 200
