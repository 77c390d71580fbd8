"""Where a Redis server is and how to log in: ``redis://`` / ``rediss://`` URLs, and the Twisted endpoint they
name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote, urlsplit

__all__ = ["RedisURL"]


@dataclass(frozen=True)
class RedisURL:
    """``redis://[user:password@]host[:port][/db]`` (``rediss://`` for TLS)."""

    host: str = "127.0.0.1"
    """The server's host name or address."""
    port: int = 6379
    """Its port."""
    db: int | None = None
    """The database number (``SELECT``), if given."""
    username: str | None = None
    """The user (Redis 6 ACL), if given."""
    password: str | None = field(default=None, repr=False)
    """The password (``AUTH``), if given; left out of the ``repr``."""
    tls: bool = False
    """Whether to connect over TLS (``rediss://``)."""

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        """Read a URL; ``ValueError`` if it is not a ``redis://`` or ``rediss://`` one."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a redis:// URL: {url!r}")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(f"the database in {url!r} must be a number")
        try:
            port = parts.port or 6379
        except ValueError as e:
            raise ValueError(f"bad port in {url!r}: {e}") from None
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            db=int(db) if db else None,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "rediss",
        )

    def at(self, host: str, port: int) -> RedisURL:
        """The same credentials and TLS setting for another server (a node of the same cluster)."""
        return dataclasses.replace(self, host=host, port=port)

    @property
    def address(self) -> str:
        """``host:port``, as log lines and Redis Cluster name a node."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def endpoint(self, reactor: Any, timeout: float = 10.0) -> Any:
        """The Twisted client endpoint of this server (TLS checked against ``host`` for ``rediss://``)."""
        from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
        from twisted.internet.ssl import optionsForClientTLS

        endpoint = HostnameEndpoint(reactor, self.host, self.port, timeout=timeout)
        if self.tls:
            return wrapClientTLS(optionsForClientTLS(self.host), cast(Any, endpoint))
        return endpoint
