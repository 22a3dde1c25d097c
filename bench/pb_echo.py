"""The RPC baseline: a bare Perspective Broker server whose root echoes bytes.

``python bench/pb_echo.py --port PORT [--interface 127.0.0.1]`` serves a ``pb.Root``
with ``remote_echo(data) -> data`` on the same (default) reactor as ``twistd``; SIGTERM
stops it. No portal, no login, no envelope, no msgpack: one PB round trip between two
processes is all a client of it pays, the floor of any RPC over PB.
"""

from __future__ import annotations

import argparse

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.spread import pb

__all__ = ["EchoRoot", "main"]


class EchoRoot(pb.Root):
    """Answer every ``echo`` call with its argument."""

    def remote_echo(self, data: bytes) -> bytes:
        """The bytes sent, unchanged."""
        return data


def main(argv: list[str] | None = None) -> None:
    """Listen on ``--interface:--port`` and serve until the reactor stops (SIGTERM)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    args = parser.parse_args(argv)

    from twisted.internet import reactor

    endpoint = TCP4ServerEndpoint(reactor, args.port, interface=args.interface)
    endpoint.listen(pb.PBServerFactory(EchoRoot()))
    reactor.run()


if __name__ == "__main__":
    main()
