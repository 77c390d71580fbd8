"""TLS settings of the client, for both transports: which certificates to trust, or none (development).

``TLSOptions()`` trusts the system's certificate authorities, as a browser
does; ``TLSOptions(ca_certs="ca.pem")`` trusts those in a PEM file instead
(a private CA, a self-signed server); ``TLSOptions(verify=False)`` checks
nothing and is for development only; ``TLSOptions(policy=...)`` takes any
``IPolicyForHTTPS`` (Twisted's ``BrowserLikePolicyForHTTPS`` with options of
your own, say). The same policy serves treq's polling requests and the
WebSocket connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import Certificate, CertificateOptions, trustRootFromCertificates
from twisted.web.client import BrowserLikePolicyForHTTPS
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer  # type: ignore[import-untyped]

__all__ = ["TLSOptions"]


@dataclass(frozen=True)
class TLSOptions:
    """Which servers the client trusts over ``https://`` and ``wss://``."""

    ca_certs: str | Path | None = None
    """A PEM file of certificates to trust instead of the system's."""
    verify: bool = True
    """``False`` accepts any certificate: for development against a throwaway server only."""
    policy: IPolicyForHTTPS | None = None
    """A ready policy; when given, the other fields are not used."""

    def https_policy(self) -> IPolicyForHTTPS:
        """The ``IPolicyForHTTPS`` these options describe."""
        if self.policy is not None:
            return self.policy
        if not self.verify:
            return cast(IPolicyForHTTPS, _NoVerification())
        if self.ca_certs is None:
            return cast(IPolicyForHTTPS, BrowserLikePolicyForHTTPS())
        pem = Path(self.ca_certs).read_bytes()
        marker = b"-----END CERTIFICATE-----"
        blocks = [block + marker for block in pem.split(marker) if b"-----BEGIN CERTIFICATE-----" in block]
        if not blocks:
            raise ValueError(f"no PEM certificate in {self.ca_certs}")
        trusted = [Certificate.loadPEM(block) for block in blocks]
        return cast(IPolicyForHTTPS, BrowserLikePolicyForHTTPS(trustRoot=trustRootFromCertificates(trusted)))


@implementer(IPolicyForHTTPS)
class _NoVerification:
    def creatorForNetloc(self, hostname: bytes, port: int) -> _Unverified:
        return _Unverified(hostname)


@implementer(IOpenSSLClientConnectionCreator)
class _Unverified:
    def __init__(self, hostname: bytes) -> None:
        self.hostname = hostname

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        context = CertificateOptions(verify=False).getContext()
        connection = SSL.Connection(context, None)
        connection.set_app_data(tlsProtocol)
        connection.set_tlsext_host_name(self.hostname)
        connection.set_connect_state()
        return connection
