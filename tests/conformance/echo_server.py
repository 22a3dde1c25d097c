"""A WebSocket echo server built from the production acceptor, for the Autobahn TestSuite.

``python -m tests.conformance.echo_server [--port N]`` listens on 127.0.0.1 (port 0: a
free one) and prints ``listening on PORT`` once it does. Each connection is the
production :class:`~pomelo_twisted.acceptors.PomeloWebSocketProtocol`: autobahn's
opening handshake under our limits, then our frame codec (``protocol/wsframe.py``),
pings, closes and failures. The only difference is the tiny echo hook below: no
Pomelo agent is opened, and each message goes back whole with its own opcode (text
or binary), which is what the TestSuite's cases expect of a server.
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort

from pomelo_twisted.acceptors import AgentPool, PomeloWebSocketProtocol, WebSocketFactory
from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.protocol.packet import MAX_BODY_LENGTH
from pomelo_twisted.protocol.wsframe import OPCODE_BINARY, OPCODE_TEXT, encode_frame
from pomelo_twisted.testing import EchoHandler

__all__ = ["EchoProtocol", "echo_factory", "main"]


class EchoProtocol(PomeloWebSocketProtocol):
    """The production WebSocket protocol with every message echoed instead of an agent."""

    def session_opened(self) -> None:
        """No Pomelo session: messages are echoed."""

    def message_received(self, payload: bytes, text: bool) -> None:
        """Send the message back, whole, with its opcode."""
        self.write_frame(encode_frame(OPCODE_TEXT if text else OPCODE_BINARY, payload))


def echo_factory() -> WebSocketFactory:
    """The production factory, messages up to ~64 MiB (case 9.x sends 16 MiB), echoing."""
    config = AgentConfig(max_packet_size=MAX_BODY_LENGTH, heartbeat=None)
    agents = AgentPool(EchoHandler(reactor), reactor, config=config)
    factory = WebSocketFactory(agents)
    factory.protocol = EchoProtocol
    return factory


def main(argv: list[str] | None = None) -> int:
    """Listen, print the port, serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0: a free port (default)")
    args = parser.parse_args(argv)

    def listening(port: IListeningPort) -> None:
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        print(f"listening on {address.port}", flush=True)

    endpoint = serverFromString(reactor, f"tcp:{args.port}:interface=127.0.0.1")
    d = endpoint.listen(echo_factory())
    d.addCallback(listening)
    d.addErrback(lambda failure: (print(failure, file=sys.stderr), reactor.stop()))
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
