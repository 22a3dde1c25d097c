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
    """Where the HTTP client connects: a plain TCP endpoint for an IP address (refused at
    once when etcd is down; Twisted's HostnameEndpoint, kept for host names, waits 0.3 s
    more), TLS around it for https."""

    def __init__(self, reactor: IServerReactor, *, connect_timeout: float) -> None:
        self._reactor = reactor
        self._timeout = connect_timeout
        self._tls = BrowserLikePolicyForHTTPS()

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:  # noqa: N802 (Twisted's name)
        """The endpoint for ``uri``'s host and port."""
        host = uri.host.decode("ascii")
        endpoint: IStreamClientEndpoint
        try:
            version = ipaddress.ip_address(host).version
        except ValueError:
            endpoint = HostnameEndpoint(self._reactor, uri.host, uri.port, timeout=self._timeout)
        else:
            kind = TCP4ClientEndpoint if version == 4 else TCP6ClientEndpoint
            endpoint = kind(self._reactor, host, uri.port, timeout=self._timeout)
        if uri.scheme == b"https":
            endpoint = wrapClientTLS(self._tls.creatorForNetloc(uri.host, uri.port), endpoint)
        return endpoint
