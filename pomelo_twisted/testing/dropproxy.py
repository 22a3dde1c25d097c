"""DroppingProxy: a TCP proxy standing for the network between clients and a server, whose
connections a test or a benchmark kills like a mobile network does.

``DroppingProxy(host, port)`` is a Twisted proxy factory: listen with it (on a loopback
port) and point clients at that port instead of the server's. ``kill(connection,
server_side_first)`` aborts both legs of one proxied connection (the server's socket first,
or the client's): the bytes in flight inside the proxy are lost, as they are when a
network drops. Nothing else changes the bytes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import ITCPTransport
from twisted.protocols.portforward import ProxyFactory, ProxyServer

__all__ = ["DroppingProxy"]


class DroppingProxy(ProxyFactory):
    """A proxy to ``host:port`` that remembers its connections, to kill them."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.connections: list[ProxyServer] = []
        """Every client connection accepted, oldest first (killed ones included)."""
        self.killed = 0

    def buildProtocol(self, addr: Any) -> ProxyServer:
        """The proxy's side of a new client connection (remembered)."""
        protocol = super().buildProtocol(addr)
        assert isinstance(protocol, ProxyServer)
        self.connections.append(protocol)
        return protocol

    def kill(self, connection: ProxyServer | None = None, server_side_first: bool = True) -> bool:
        """Abort ``connection`` (default: the newest), both legs, the server's socket first
        (the server sees the drop first) or the client's; False when it was already gone."""
        downstream = connection if connection is not None else self.connections[-1]
        upstream = downstream.peer
        legs = [upstream, downstream] if server_side_first else [downstream, upstream]
        alive = False
        for leg in legs:
            transport = ITCPTransport(leg.transport, None) if leg is not None else None
            if transport is not None and getattr(transport, "connected", True):
                alive = True
                transport.abortConnection()
        if alive:
            self.killed += 1
        return alive
