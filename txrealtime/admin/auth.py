"""Logging in to the admin namespace: basic credentials (a bcrypt hash or a plain password) and session ids.

As in ``@socket.io/admin-ui``, the UI sends ``{"username", "password"}`` in
its CONNECT packet's ``auth``; a valid login is given a session id (the
``session`` event) which the UI sends instead (``{"sessionId"}``) when it
comes back, so the operator does not log in again.
"""

from __future__ import annotations

import hmac
import re
import secrets
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, Protocol

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._logging import Throttle, gate
from .._reactor import Clock, now
from ..socketio import ConnectionRefused, Socket
from .throttle import BUSY, CheckQueue, LoginThrottle, QueueFull

__all__ = ["BasicAuth", "Login", "MemorySessionStore", "SessionStore", "is_bcrypt_hash"]

log = Logger(__name__, observer=gate)
noisy = Throttle(log)

_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")

INVALID_CREDENTIALS = "invalid credentials"
"""The CONNECT_ERROR message of a refused login (the UI reopens its login form on exactly this)."""


def is_bcrypt_hash(password: str) -> bool:
    """Whether ``password`` is a bcrypt hash (``$2a$``, ``$2b$`` or ``$2y$``), not a plain password."""
    return _BCRYPT.fullmatch(password) is not None


@dataclass(frozen=True)
class BasicAuth:
    """A username and its password: a bcrypt hash (checked with the ``bcrypt`` package) or the plain text.

    The password is left out of ``repr`` so that no log line carries it.
    """

    username: str
    """The user's name."""
    password: str = field(repr=False)
    """The bcrypt hash of the password, or the password itself."""

    def __post_init__(self) -> None:
        if not isinstance(self.username, str) or not isinstance(self.password, str):
            raise TypeError("BasicAuth takes a username and a password, both strings")
        if not self.password:
            raise ValueError("the admin password is empty")
        if self.password.startswith(("$2a$", "$2b$", "$2y$")):
            if not is_bcrypt_hash(self.password):
                raise ValueError("the admin password looks like a bcrypt hash but is not a valid one")
            try:
                import bcrypt  # noqa: F401
            except ImportError:
                raise ImportError("a bcrypt password hash needs the bcrypt package: pip install 'txrealtime[admin]'") \
                    from None

    @classmethod
    def parse(cls, text: str) -> BasicAuth:
        """``USER:PASSWORD`` (the password may hold ``:``, and be a bcrypt hash)."""
        username, sep, password = text.partition(":")
        if not sep or not username or not password:
            raise ValueError("expected USER:PASSWORD")
        return cls(username, password)

    @property
    def hashed(self) -> bool:
        """Whether the password is a bcrypt hash."""
        return is_bcrypt_hash(self.password)

    def check(self, username: str, password: str) -> bool:
        """Whether these credentials match, in time independent of where they differ (blocking with bcrypt)."""
        same_user = hmac.compare_digest(username.encode(), self.username.encode())
        if self.hashed:
            import bcrypt

            try:
                same_password = bcrypt.checkpw(password.encode(), self.password.encode())
            except ValueError:
                same_password = False
        else:
            same_password = hmac.compare_digest(password.encode(), self.password.encode())
        return same_user and same_password


class SessionStore(Protocol):
    """Where the session ids of logged-in UIs are kept (Node's ``Store``); answers may be Deferreds."""

    def exists(self, session_id: str) -> bool | Deferred[bool]:
        """Whether ``session_id`` was saved and has not expired."""

    def save(self, session_id: str) -> object:
        """Remember ``session_id``."""


class MemorySessionStore:
    """Session ids in this process's memory, each valid ``ttl`` seconds; beyond ``max_sessions``, the oldest go."""

    def __init__(self, reactor: Clock, ttl: float = 86400.0, max_sessions: int = 1000) -> None:
        """An empty store.

        :param reactor: The clock the ids expire by.
        :param ttl: Seconds a session id stays valid.
        :param max_sessions: Most ids kept.
        """
        self.reactor = reactor
        """The clock ids expire by."""
        self.ttl = ttl
        """Seconds a session id stays valid (a day, as Node's ``RedisStore``)."""
        self.max_sessions = max_sessions
        """Most ids kept."""
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def exists(self, session_id: str) -> bool:
        """Whether ``session_id`` was saved less than ``ttl`` seconds ago (an expired one is forgotten)."""
        expiry = self._expiry.get(session_id)
        if expiry is None:
            return False
        if expiry <= now(self.reactor):
            del self._expiry[session_id]
            return False
        return True

    def save(self, session_id: str) -> None:
        """Remember ``session_id`` for ``ttl`` seconds, forgetting the oldest beyond ``max_sessions``."""
        self._expiry[session_id] = now(self.reactor) + self.ttl
        self._expiry.move_to_end(session_id)
        while len(self._expiry) > self.max_sessions:
            self._expiry.popitem(last=False)


class Login:
    """The admin namespace's middleware: a session id, or credentials checked off the reactor thread.

    Attempts are throttled per client address (:class:`LoginThrottle`: a
    burst of wrong passwords, then one every few seconds, one check at a time),
    and bcrypt, slow by design, runs in the reactor's thread pool through a
    :class:`CheckQueue` (at most ``concurrency`` at once, ``max_waiting``
    waiting; when full, the address that failed most is refused, not the
    newcomer), so a flood of attempts neither blocks the reactor, nor grows
    memory, nor locks the operator out.
    """

    def __init__(
        self,
        auth: BasicAuth,
        store: SessionStore,
        reactor: Any,
        concurrency: int = 2,
        max_waiting: int = 32,
        throttle: LoginThrottle | None = None,
    ) -> None:
        """Check logins against ``auth``, keeping session ids in ``store``.

        :param auth: The user and password.
        :param store: Where session ids are kept.
        :param reactor: The reactor (its thread pool runs bcrypt; its clock refills allowances).
        :param concurrency: bcrypt checks at once.
        :param max_waiting: Checks that may wait.
        :param throttle: The per-address allowances (default: :class:`LoginThrottle`'s defaults).
        """
        self.auth = auth
        """The user and password."""
        self.store = store
        """Where session ids are kept."""
        self.reactor = reactor
        """The reactor."""
        self.throttle = throttle if throttle is not None else LoginThrottle(reactor)
        """Wrong passwords allowed per address."""
        self.queue = CheckQueue(concurrency, max_waiting)
        """The password checks running and waiting."""
        self._new: weakref.WeakKeyDictionary[Socket, str] = weakref.WeakKeyDictionary()

    def __call__(self, socket: Socket) -> Deferred[None]:
        auth = socket.handshake.auth if isinstance(socket.handshake.auth, Mapping) else {}
        session_id = auth.get("sessionId")
        d: Deferred[Any] = (
            maybeDeferred(self.store.exists, session_id) if isinstance(session_id, str) and session_id
            else succeed(False)
        )

        def by_session(known: bool) -> Deferred[bool] | bool:
            if known:
                return True
            username, password = auth.get("username"), auth.get("password")
            if not isinstance(username, str) or not isinstance(password, str):
                return False
            return self._check(socket, username, password)

        def forget_password(result: object) -> object:
            # The password has done its job: it stays neither in the handshake nor in what other nodes fetch.
            if "password" in auth:
                socket.handshake = replace(
                    socket.handshake, auth={k: v for k, v in auth.items() if k != "password"}
                )
            return result

        def decided(accepted: object) -> None:
            if not accepted:
                noisy.info("Admin UI: login refused for {address}", address=socket.handshake.address)
                raise ConnectionRefused(INVALID_CREDENTIALS)

        d.addCallback(by_session).addBoth(forget_password).addCallback(decided)
        return d

    def _check(self, socket: Socket, username: str, password: str) -> Deferred[bool]:
        address = socket.handshake.address
        refusal = self.throttle.admit(address)
        if refusal is not None:
            noisy.info("Admin UI: login refused for {address}: {refusal}", address=address, refusal=refusal)
            raise ConnectionRefused(refusal)

        def checked(ok: bool) -> bool:
            self.throttle.done(address, ok)
            if ok:
                session_id = secrets.token_hex(16)
                self.store.save(session_id)
                self._new[socket] = session_id
            return ok

        def refused(failure: Failure) -> NoReturn:
            self.throttle.done(address, False)
            if failure.check(QueueFull):
                noisy.info("Admin UI: login refused for {address}: {refusal}", address=address, refusal=BUSY)
                raise ConnectionRefused(BUSY)
            failure.raiseException()
            raise AssertionError("unreachable")

        return self.queue.run(self.throttle.failures(address),
                              lambda: self._run_check(username, password)).addCallbacks(checked, refused)

    def _run_check(self, username: str, password: str) -> Deferred[bool]:
        check: Callable[[], bool] = lambda: self.auth.check(username, password)  # noqa: E731
        if self.auth.hashed and IReactorThreads.providedBy(self.reactor):
            from twisted.internet.threads import deferToThreadPool

            return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), check)
        return maybeDeferred(check)

    def new_session(self, socket: Socket) -> str | None:
        """The session id ``socket`` was given by logging in just now (once), if any."""
        return self._new.pop(socket, None)
