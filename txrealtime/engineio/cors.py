"""CORS headers as Node's ``cors`` package writes them, from the ``cors_*`` fields of :class:`EngineIOOptions`.

An actual request from an allowed origin gets ``Access-Control-Allow-Origin``
(and ``Vary: Origin`` when it is reflected), ``Access-Control-Allow-Credentials``
and ``Access-Control-Expose-Headers``; a preflight (``OPTIONS``) also gets the
methods, the allowed headers (those asked for if none are set, with ``Vary:
Access-Control-Request-Headers``) and ``Access-Control-Max-Age``, and is
answered 204 with no body. Two departures from the package, both safer:
``"*"`` never goes with credentials, and an origin not allowed gets no CORS
header at all.
"""

from __future__ import annotations

import inspect
from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import Request

from .._logging import gate
from .options import EngineIOOptions

__all__ = ["apply_cors"]

log = Logger(__name__, observer=gate)


def apply_cors(options: EngineIOOptions, request: Request) -> Deferred[None] | None:
    """Add the CORS headers ``options`` call for to ``request``; answer a preflight from an allowed origin.

    Returns a Deferred while an origin function (``OriginCheck``) decides, else ``None``.
    """
    allowed = options.cors_allowed_origins
    if allowed is None:
        return None
    raw = request.getHeader(b"origin")
    origin = raw.decode("latin-1") if raw is not None else None
    if isinstance(allowed, str):  # "*": any site may read the answers, so they must not carry the user's cookies
        _answer(options, request, b"*", credentials=False)
        return None
    if not callable(allowed):
        _decided(options, request, origin, origin is not None and origin in allowed)
        return None
    try:
        verdict = allowed(origin)
    except Exception:
        log.failure("The cors_allowed_origins function failed")
        verdict = False
    if isinstance(verdict, Deferred) or inspect.isawaitable(verdict):
        waiting = verdict if isinstance(verdict, Deferred) else ensureDeferred(cast(Any, verdict))

        def failed(failure: Failure) -> bool:
            log.failure("The cors_allowed_origins function failed", failure)
            return False

        return waiting.addErrback(failed).addCallback(lambda ok: _decided(options, request, origin, ok is True))
    _decided(options, request, origin, verdict is True)
    return None


def _decided(options: EngineIOOptions, request: Request, origin: str | None, ok: bool) -> None:
    if ok and origin is not None:
        _answer(options, request, origin.encode("latin-1"), options.cors_credentials, vary=[b"Origin"])


def _answer(
    options: EngineIOOptions, request: Request, origin: bytes, credentials: bool, vary: list[bytes] | None = None
) -> None:
    vary = list(vary or [])
    request.setHeader(b"access-control-allow-origin", origin)
    if credentials:
        request.setHeader(b"access-control-allow-credentials", b"true")
    preflight = request.method == b"OPTIONS"
    if preflight:
        request.setHeader(b"access-control-allow-methods", ",".join(options.cors_methods).encode("latin-1"))
        headers = options.cors_allowed_headers
        if headers is None:
            vary.append(b"Access-Control-Request-Headers")
            wanted = request.getHeader(b"access-control-request-headers")
        else:
            wanted = ",".join(headers).encode("latin-1")
        if wanted:
            request.setHeader(b"access-control-allow-headers", wanted)
        if options.cors_max_age is not None:
            request.setHeader(b"access-control-max-age", b"%d" % options.cors_max_age)
    if options.cors_exposed_headers:
        request.setHeader(b"access-control-expose-headers", ",".join(options.cors_exposed_headers).encode("latin-1"))
    if vary:
        request.setHeader(b"vary", b", ".join(vary))
    if preflight:
        request.setResponseCode(204)
        request.setHeader(b"content-length", b"0")
        request.finish()
