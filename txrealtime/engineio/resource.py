"""The Engine.IO endpoint as one ``twisted.web`` resource serving both transports."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from autobahn.twisted.resource import WebSocketResource
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import pages
from twisted.web.http import Request
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from .. import _compat
from .._logging import gate
from .cors import apply_cors
from .elsewhere import Elsewhere
from .events import requested_protocol
from .manager import Session, SessionError, SessionManager
from .polling import PollingTransport, error_response, handshake_from_request, query_of
from .websocket import EngineIOWebSocketFactory

__all__ = ["EngineIOResource", "check_protocol"]

log = Logger(__name__, observer=gate)


def _given(**values: str | None) -> dict[str, str]:
    """The values that are not ``None``: a refusal's context names only what the request said."""
    return {key: value for key, value in values.items() if value is not None}


def _upgrade(request: Request) -> bool:
    """Whether ``request`` asks for a protocol upgrade (``Upgrade`` and ``Connection: upgrade``), which Node's
    HTTP server hands engine.io as an ``upgrade`` event rather than a request."""
    connection = b",".join(request.requestHeaders.getRawHeaders(b"connection", [])).lower()
    return request.requestHeaders.hasHeader(b"upgrade") and b"upgrade" in [t.strip() for t in connection.split(b",")]


def _refuse_upgrade(request: Request, error: SessionError) -> bytes:
    """Refuse an upgrade request as Node's engine.io does (its ``abortUpgrade``): 400 whatever the code, the bare
    message as ``text/html``, and the connection closed after it."""
    request.setResponseCode(400)
    request.setHeader(b"content-type", b"text/html")
    request.setHeader(b"connection", b"close")
    channel = request.channel  # twisted.web lets go of it once the request finished
    request.notifyFinish().addBoth(lambda _: channel.loseConnection())
    return error.upgrade_body()


def check_protocol(session: Session | None, sid: str, protocol: int) -> Session:
    """The session a request names, if it exists and speaks the request's protocol revision (as Node checks)."""
    if session is None:
        raise SessionError(SessionError.UNKNOWN_SID, details={"sid": sid})
    if session.protocol != protocol:
        mismatch = {"name": "PROTOCOL_MISMATCH", "protocol": str(protocol), "previousProtocol": str(session.protocol)}
        raise SessionError(SessionError.BAD_REQUEST, "protocol revision differs from the session's", mismatch)
    return session


class EngineIOResource(Resource):
    """Serves HTTP long-polling and WebSocket for ``manager`` on one path.

    Mount it as a child of any ``twisted.web`` resource tree, e.g.
    ``root.putChild(b"engine.io", EngineIOResource(manager))``.
    """

    isLeaf = True
    reads_form_args = False
    """It never reads form fields from ``request.args``: :class:`txrealtime.web.BoundedSite` skips
    twisted.web's parse of form bodies sent to it (a JSONP POST's form is read after the session check)."""

    def __init__(self, manager: SessionManager) -> None:
        """Serve ``manager``'s sessions."""
        super().__init__()  # type: ignore[no-untyped-call]
        self.manager = manager
        """The session manager served."""
        self.websocket_factory = EngineIOWebSocketFactory(manager)
        """Autobahn's factory for the WebSocket connections (its settings follow the manager's options)."""
        self._websocket = WebSocketResource(self.websocket_factory)

    @property
    def elsewhere(self) -> Elsewhere | None:
        """Serves the requests of sessions the manager does not hold (:mod:`txrealtime.forwarding`); ``None``:
        they are answered "Session ID unknown"."""
        return self.websocket_factory.elsewhere

    @elsewhere.setter
    def elsewhere(self, value: Elsewhere | None) -> None:
        self.websocket_factory.elsewhere = value

    def drain(self, grace: float = 5.0) -> Deferred[bool]:
        """After sessions were closed, wait until their CLOSE packets went out and connections ended.

        Fires with ``True`` once drained, or ``False`` after ``grace`` seconds,
        when whatever is left is dropped.
        """
        return ensureDeferred(self._drain(grace))

    async def _drain(self, grace: float) -> bool:
        reactor = cast(Any, self.manager.reactor)
        deadline = self.manager.now() + grace
        while not (self.manager.drained and not self.websocket_factory.connections):
            if self.manager.now() >= deadline:
                left = len(self.manager.sessions) + len(self.websocket_factory.connections)
                log.warn("Shutdown grace period over: dropping {left} connections", left=left)
                self.manager.shutdown(drop_lingering=True)
                for protocol in list(self.websocket_factory.connections):
                    protocol.abort()
                return False
            await deferLater(reactor, 0.05, lambda: None)
        return True

    def render(self, request: Request) -> object:
        """Serve one request: the path check, CORS, the ``middleware``, then the transports."""
        options = self.manager.options
        if options.add_trailing_slash and getattr(request, "postpath", None) == []:
            # "/engine.io" without its slash: not the endpoint, as in Node (unless add_trailing_slash is off).
            return cast(Any, pages.notFound()).render(request)
        if options.cors_allowed_origins is None and not options.middleware:
            return self._answer(request)  # the common case, without the steps' machinery
        steps: list[Callable[[Request], object]] = [partial(apply_cors, options), *options.middleware]
        return self._run(request, steps, 0)

    def _run(self, request: Request, steps: list[Callable[[Request], object]], start: int) -> object:
        """Run ``steps`` from ``start`` on, then answer: synchronously while each step is, else once it fired."""
        for index in range(start, len(steps)):
            try:
                outcome = steps[index](request)
            except Exception:
                return self._failed(request, Failure(), synchronous=True)
            if request.finished:
                return NOT_DONE_YET  # answered by the step (a CORS preflight, a refusal)
            if isinstance(outcome, Deferred) or inspect.isawaitable(outcome):
                waiting = outcome if isinstance(outcome, Deferred) else ensureDeferred(cast(Any, outcome))
                self._resume_after(waiting, request, steps, index + 1)
                return NOT_DONE_YET
        return self._answer(request)

    def _resume_after(
        self, waiting: Deferred[Any], request: Request, steps: list[Callable[[Request], object]], after: int
    ) -> None:
        """Go on with the steps after a middleware's Deferred fired, unless the client left meanwhile."""
        lost: list[Failure] = []
        request.notifyFinish().addErrback(lost.append)

        def resume(_: object) -> None:
            if lost or request.finished:
                return
            answer = self._run(request, steps, after)
            if answer is not NOT_DONE_YET and not request.finished:
                request.write(cast(bytes, answer))
                request.finish()

        def failed(failure: Failure) -> None:
            if not lost and not request.finished:
                self._failed(request, failure, synchronous=False)

        waiting.addCallbacks(resume, failed)

    def _failed(self, request: Request, failure: Failure, synchronous: bool) -> object:
        """A middleware step raised or failed: 400, as Node's ``MIDDLEWARE_FAILURE``."""
        log.failure("An Engine.IO middleware failed", failure)
        error = SessionError(SessionError.BAD_REQUEST, "middleware failed", {"name": "MIDDLEWARE_FAILURE"})
        self.manager.refused(error, handshake_from_request(request), request.method.decode("latin-1"))
        body = error_response(request, error, error.status)
        if synchronous:
            return body
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()
        return NOT_DONE_YET

    def _answer(self, request: Request) -> object:
        method = request.method
        if method == b"OPTIONS":
            request.setResponseCode(204)
            return b""
        try:
            return self._dispatch(request, method)
        except SessionError as e:
            upgrade = _upgrade(request)
            self.manager.refused(e, handshake_from_request(request), method.decode("latin-1"), upgrade)
            if upgrade:
                return _refuse_upgrade(request, e)
            return error_response(request, e, e.status)

    def _dispatch(self, request: Request, method: bytes) -> object:
        query = query_of(request)
        transport = query.get("transport")
        if transport not in self.manager.options.transports:
            # Checked first, as Node's engine.io does.
            raise SessionError(SessionError.UNKNOWN_TRANSPORT, details=_given(transport=transport))
        protocol = requested_protocol(query)
        sid = query.get("sid") or None  # an empty sid asks for a new session, as in Node
        if protocol == 3 and sid is None and not self.manager.options.allow_eio3:
            raise SessionError(SessionError.UNSUPPORTED_PROTOCOL_VERSION, details=_given(protocol=query.get("EIO")))
        origin = request.getHeader(b"origin")
        self.manager.check_origin(origin.decode("latin-1") if origin is not None else None)
        if transport == "websocket":
            # In Node's order: a handshake's method, the session named (unknown, another protocol revision),
            # then whether it is an upgrade at all.
            if sid is None and method != b"GET":
                raise SessionError(SessionError.BAD_HANDSHAKE_METHOD, details={"method": method.decode("latin-1")})
            if sid is not None:
                session = self.manager.get(sid)
                if session is not None or self.websocket_factory.elsewhere is None:
                    check_protocol(session, sid, protocol)
            if method != b"GET" or (request.getHeader(b"upgrade") or b"").lower() != b"websocket":
                name = "TRANSPORT_MISMATCH" if sid is not None else "TRANSPORT_HANDSHAKE_ERROR"
                raise SessionError(SessionError.BAD_REQUEST, "expected a WebSocket upgrade", {"name": name})
            channel: Any = request.channel
            connection = channel.transport
            # Headers CORS and the middleware set go with the 101 (Autobahn writes it, calling onConnect in here).
            self.websocket_factory.upgrade_headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, values in request.responseHeaders.getAllRawHeaders()
                for value in values
            ]
            self.websocket_factory.upgrade_request = request
            try:
                answer = self._websocket.render(request)
            finally:
                self.websocket_factory.upgrade_headers = []
                self.websocket_factory.upgrade_request = None
            if connection is not None and channel.transport is None:
                _compat.release_upgraded(request)
            return answer
        if sid is None:
            if method != b"GET":
                raise SessionError(SessionError.BAD_HANDSHAKE_METHOD, details={"method": method.decode("latin-1")})
            return PollingTransport.open(self.manager, request)
        found = self.manager.for_poll(sid) if method == b"GET" else self.manager.get(sid)
        if found is None and self.websocket_factory.elsewhere is not None and method in (b"GET", b"POST"):
            return self.websocket_factory.elsewhere.poll(request, sid)
        session = check_protocol(found, sid, protocol)
        polling = session.transport
        if not isinstance(polling, PollingTransport):
            mismatch = {"name": "TRANSPORT_MISMATCH", "transport": "polling", "previousTransport": polling.name}
            raise SessionError(SessionError.BAD_REQUEST, "session is not on polling", mismatch)
        if method == b"GET":
            return polling.on_get(request)
        if method == b"POST":
            return polling.on_post(request)
        unsupported = {"name": "UNSUPPORTED_METHOD", "method": method.decode("latin-1")}
        raise SessionError(SessionError.BAD_REQUEST, "unsupported method", unsupported)
