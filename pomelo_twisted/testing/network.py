"""MemoryNetwork: stream connections between factories in memory, pumped by the test.

For testing what talks over endpoints (the PB transport between servers, the
master link) without sockets: ``listen(address, factory)`` serves an address,
``endpoint(address)`` connects to it (refused at once when nothing listens),
``flush()`` moves every byte until the network is quiet, ``drop(address)``
cuts every connection to an address (both sides see ``connectionLost``).
Built on Twisted's ``iosim``; time stays with the test's ``Clock``.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.test import iosim
from zope.interface import implementer

__all__ = ["MemoryEndpoint", "MemoryNetwork", "MemoryPort", "MemoryServerEndpoint"]


class _Link:
    """One connection: its pump and the address it reached."""

    __slots__ = ("address", "client", "pump", "server")

    def __init__(self, address: str, pump: iosim.IOPump, client: Any, server: Any) -> None:
        self.address = address
        self.pump = pump
        self.client = client
        self.server = server


@implementer(IListeningPort)
class MemoryPort:
    """What listening on a :class:`MemoryServerEndpoint` gives: ``stopListening`` unlistens."""

    def __init__(self, network: MemoryNetwork, address: str) -> None:
        self.network = network
        self.address = address

    def startListening(self) -> None:
        """Listening started already (at ``listen``)."""

    def stopListening(self) -> Deferred[None]:
        """Stop accepting connections to the address."""
        self.network.unlisten(self.address)
        return succeed(None)

    def getHost(self) -> IPv4Address:
        """A made-up loopback address."""
        return IPv4Address("TCP", "127.0.0.1", 0)


@implementer(IStreamServerEndpoint)
class MemoryServerEndpoint:
    """Listens on ``address`` of a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, address: str) -> None:
        self.network = network
        self.address = address

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """Serve the address with ``protocolFactory``."""
        self.network.listen(self.address, protocolFactory)
        return succeed(MemoryPort(self.network, self.address))


@implementer(IStreamClientEndpoint)
class MemoryEndpoint:
    """Connects to ``address`` on a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, address: str) -> None:
        self.network = network
        self.address = address

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        """A connected client protocol, or ``ConnectionRefusedError`` when nothing listens."""
        return self.network.connect(self.address, protocolFactory)


class MemoryNetwork:
    """Addresses served by factories, and the in-memory connections between them."""

    def __init__(self) -> None:
        self.listeners: dict[str, IProtocolFactory] = {}
        self.links: list[_Link] = []
        self.attempts = 0

    def listen(self, address: str, factory: IProtocolFactory) -> None:
        """Serve ``address`` with ``factory``."""
        self.listeners[address] = factory

    def unlisten(self, address: str) -> None:
        """Stop accepting connections to ``address`` (existing ones stay)."""
        self.listeners.pop(address, None)

    def server_endpoint(self, address: str) -> MemoryServerEndpoint:
        """A server endpoint listening on ``address``."""
        return MemoryServerEndpoint(self, address)

    def endpoint(self, address: str) -> MemoryEndpoint:
        """A client endpoint connecting to ``address``."""
        return MemoryEndpoint(self, address)

    def connect(self, address: str, factory: IProtocolFactory) -> Deferred[Any]:
        """Connect ``factory``'s protocol to the listener of ``address``."""
        self.attempts += 1
        listener = self.listeners.get(address)
        if listener is None:
            return fail(ConnectionRefusedError(address))
        peer = IPv4Address("TCP", "127.0.0.1", 40000 + self.attempts)
        here = IPv4Address("TCP", "127.0.0.1", 1)
        server = listener.buildProtocol(peer)
        client = factory.buildProtocol(here)
        if server is None or client is None:
            return fail(ConnectionRefusedError(address))
        pump = iosim.connect(
            server,
            iosim.FakeTransport(server, isServer=True, hostAddress=here, peerAddress=peer),
            client,
            iosim.FakeTransport(client, isServer=False, hostAddress=peer, peerAddress=here),
            greet=False,
        )
        self.links.append(_Link(address, pump, client, server))
        return succeed(client)

    def flush(self, rounds: int = 1000) -> None:
        """Deliver every pending byte (and disconnect) until nothing moves."""
        for _ in range(rounds):
            moved = False
            for link in list(self.links):
                if link.pump.pump(advanceClock=False):
                    moved = True
            self.links = [
                link
                for link in self.links
                if not (link.pump.clientIO.disconnected and link.pump.serverIO.disconnected)
            ]
            if not moved:
                return
        raise RuntimeError("the memory network did not settle")

    def drop(self, address: str) -> int:
        """Cut every connection to ``address``; the number cut. Call :meth:`flush` after."""
        cut = 0
        for link in self.links:
            if link.address == address and not link.pump.serverIO.disconnecting:
                link.pump.serverIO.loseConnection()
                cut += 1
        return cut

    def connections(self, address: str) -> int:
        """Open connections to ``address``."""
        return sum(
            1
            for link in self.links
            if link.address == address and not link.pump.serverIO.disconnected
        )
