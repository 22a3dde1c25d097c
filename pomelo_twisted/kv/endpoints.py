"""Where the etcd client's HTTP connections go: :class:`EtcdEndpoints`."""

from __future__ import annotations

import ipaddress

from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.web.client import URI, BrowserLikePolicyForHTTPS
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from ..interfaces import IServerReactor

__all__ = ["EtcdEndpoints"]


@implementer(IAgentEndpointFactory)
class EtcdEndpoints:
    """Where the etcd client's HTTP connections go: always to the one etcd it talks to.

    An IP address gets a plain TCP endpoint (refused at once when etcd is down; Twisted's
    HostnameEndpoint, kept for host names, waits its 0.3 s attempt delay first); https
    wraps it in TLS checked against ``host``.  The request URLs name :attr:`url_host`,
    which is ``host`` except for an IPv6 address (the URL library in treq's path cannot
    IDNA-encode one), where it is ``etcd``: only the Host header shows it.
    """

    def __init__(
        self, reactor: IServerReactor, host: str, port: int, *, tls: bool, connect_timeout: float
    ) -> None:
        self.host = host
        self.port = port
        self._reactor = reactor
        self._timeout = connect_timeout
        self._tls = BrowserLikePolicyForHTTPS() if tls else None
        try:
            self._version: int | None = ipaddress.ip_address(host).version
        except ValueError:
            self._version = None
        self.url_host = "etcd" if self._version == 6 else host

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:  # noqa: N802 (Twisted's name)
        """The endpoint of the etcd (``uri`` only chose this client)."""
        endpoint: IStreamClientEndpoint
        if self._version is None:
            endpoint = HostnameEndpoint(
                self._reactor, self.host.encode("idna"), self.port, timeout=self._timeout
            )
        else:
            kind = TCP4ClientEndpoint if self._version == 4 else TCP6ClientEndpoint
            endpoint = kind(self._reactor, self.host, self.port, timeout=self._timeout)
        if self._tls is not None:
            creator = self._tls.creatorForNetloc(self.host.encode("idna"), self.port)
            endpoint = wrapClientTLS(creator, endpoint)
        return endpoint
