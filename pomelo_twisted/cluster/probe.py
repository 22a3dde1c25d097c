"""Whether a server already runs: something accepts connections on its RPC port.

The master probes every declared server before it spawns any: one that answers
was left running by a master that died, and is adopted instead of started twice.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.protocol import Factory, Protocol

from ..gameconfig import ServerInfo

__all__ = ["rpc_port_answers"]


def rpc_port_answers(reactor: IReactorTCP, info: ServerInfo, timeout: int = 1) -> Deferred[bool]:
    """Whether something accepts connections on ``info``'s RPC port (``timeout`` s at most)."""
    endpoint = clientFromString(reactor, f"{info.rpc_client_endpoint}:timeout={timeout}")
    factory = Factory.forProtocol(Protocol)
    factory.noisy = False
    d: Deferred[Any] = endpoint.connect(factory)

    def connected(protocol: Protocol) -> bool:
        if protocol.transport is not None:
            protocol.transport.loseConnection()
        return True

    return d.addCallbacks(connected, lambda _: False)
