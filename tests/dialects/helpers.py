"""A libpitaya client (:class:`PitayaCodec`) against an echo server's agent, in memory."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from pomelo_twisted.acceptors import AgentPool, PomeloTCPProtocol
from pomelo_twisted.agent import Agent, AgentConfig
from pomelo_twisted.dialects import PitayaNegotiator, PypomeloNegotiator
from pomelo_twisted.testing.pitaya import PitayaCodec, PitayaEvent, PitayaHandshake

from ..agent.helpers import make_agents, open_connection

__all__ = ["PitayaSession", "dialect_agents"]


def dialect_agents(config: AgentConfig | None = None, compress_bodies: bool = False) -> AgentPool:
    """An echo server's agents serving both dialects (as ``negotiators_of`` lists them)."""
    return make_agents(
        config, negotiators=[PitayaNegotiator(compress_bodies), PypomeloNegotiator()]
    )


class PitayaSession:
    """One libpitaya connection to ``agents``, handshaken and acknowledged."""

    def __init__(self, agents: AgentPool, codec: PitayaCodec | None = None) -> None:
        self.codec = codec if codec is not None else PitayaCodec()
        self.protocol: PomeloTCPProtocol
        self.transport: StringTransportWithDisconnection
        self.protocol, self.transport = open_connection(agents)
        clock = agents.clock
        assert isinstance(clock, Clock)
        self.clock = clock
        self.feed(self.codec.handshake())
        (reply,) = self.events()
        assert isinstance(reply, PitayaHandshake), reply
        self.reply: dict[str, Any] = reply.reply
        self.feed(self.codec.ack())
        self.written()

    @property
    def agent(self) -> Agent:
        """The server-side agent."""
        agent = self.protocol.agent
        assert agent is not None
        return agent

    def feed(self, data: bytes) -> None:
        """Deliver bytes to the server."""
        self.protocol.dataReceived(data)

    def written(self) -> bytes:
        """What the server wrote since the last read; clears the transport."""
        data = self.transport.value()
        self.transport.clear()
        return data

    def events(self) -> list[PitayaEvent]:
        """What the server wrote since the last read, as libpitaya reads it."""
        return self.codec.receive(self.written())

    def request(self, msg_id: int, route: str, body: object) -> None:
        """Send a request as libpitaya does (its JSON body compressed when smaller)."""
        self.feed(
            self.codec.request(msg_id, route, json.dumps(body, separators=(",", ":")).encode())
        )
