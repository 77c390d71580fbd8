"""The official Socket.IO admin UI (``@socket.io/admin-ui``) for txrealtime servers: :func:`instrument`.

::

    from txrealtime.admin import instrument

    instrument(io, auth=("admin", "$2b$10$..."))   # a bcrypt hash, or the plain password
"""

from .auth import BasicAuth, MemorySessionStore, SessionStore, is_bcrypt_hash
from .instrument import Auth, Instrumentation, instrument
from .wire import Feature

__all__ = [
    "Auth",
    "BasicAuth",
    "Feature",
    "Instrumentation",
    "MemorySessionStore",
    "SessionStore",
    "instrument",
    "is_bcrypt_hash",
]
