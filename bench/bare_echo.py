"""The loopback baseline: a minimal Twisted echo server of 4-byte-length-prefixed frames.

``python bench/bare_echo.py --port PORT [--interface 127.0.0.1]`` echoes every frame
back unchanged, on the same (default) reactor as ``twistd``; SIGTERM stops it.
No message layer, no JSON, no handshake, no limits: what any Twisted server pays.
"""

from __future__ import annotations

import argparse

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.protocols.basic import Int32StringReceiver
from typing_extensions import override

__all__ = ["BareEcho", "main"]


class BareEcho(Int32StringReceiver):
    """Echo each frame; Nagle off, as the pomelo_twisted TCP acceptor does."""

    def connectionMade(self) -> None:
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)

    @override
    def stringReceived(self, string: bytes) -> None:
        self.sendString(string)


def main(argv: list[str] | None = None) -> None:
    """Listen on ``--interface:--port`` and serve until the reactor stops (SIGTERM)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    args = parser.parse_args(argv)

    from twisted.internet import reactor

    endpoint = TCP4ServerEndpoint(reactor, args.port, interface=args.interface)
    endpoint.listen(Factory.forProtocol(BareEcho))
    reactor.run()


if __name__ == "__main__":
    main()
