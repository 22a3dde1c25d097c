"""The echo frontend (``twistd pomelo --type echo``): one acceptor serving the echo handler.

No game, no cluster: the server tests, benchmarks and ``make run-standalone`` use
to measure the connection layer alone.
"""

from __future__ import annotations

from twisted.application.service import MultiService

from ..acceptors import AcceptorKind, AcceptorService, AgentPool
from ..agent import AgentConfig
from ..gameconfig import listen_endpoint
from ..interfaces import IServerReactor
from ..serializers import get_serializer
from .echo import EchoHandler, echo_dictionary

__all__ = ["DEFAULT_ECHO_ENDPOINT", "build_echo_frontend"]

#: Where the echo frontend listens unless told otherwise.
DEFAULT_ECHO_ENDPOINT = listen_endpoint(3010, "127.0.0.1")


def build_echo_frontend(
    reactor: IServerReactor,
    *,
    server_id: str = "echo-1",
    endpoint: str = DEFAULT_ECHO_ENDPOINT,
    kind: AcceptorKind = "hybrid",
    serializer: str = "json",
    config: AgentConfig | None = None,
) -> MultiService:
    """A MultiService named ``server_id`` holding the echo acceptor (named ``acceptor``)."""
    server = MultiService()
    server.setName(server_id)
    agents = AgentPool(
        EchoHandler(reactor),
        reactor,
        serializer=get_serializer(serializer),
        config=config or AgentConfig(),
        dictionary=echo_dictionary(),
    )
    acceptor = AcceptorService(reactor, endpoint, agents, kind=kind)
    acceptor.setName("acceptor")
    acceptor.setServiceParent(server)
    return server
