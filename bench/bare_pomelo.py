"""The floor: a bare Twisted Pomelo echo server, no framework.

``python bench/bare_pomelo.py --port PORT [--interface 127.0.0.1]`` speaks just enough
of the Pomelo protocol for a load generator: it answers the handshake (code 200, no
heartbeat, no dictionary), ignores the ack, answers heartbeats, and answers every
request with a response carrying its id and its body bytes unchanged (notifies are
dropped). No session, no route lookup, no JSON, no limits: what any Twisted server
speaking Pomelo pays, against which the framework is measured. SIGTERM stops it.
"""

from __future__ import annotations

import argparse

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol

__all__ = ["BarePomeloEcho", "main"]

HANDSHAKE, ACK, HEARTBEAT, DATA = 1, 2, 3, 4
HANDSHAKE_REPLY = b'{"code":200,"sys":{}}'


def _package(kind: int, body: bytes) -> bytes:
    n = len(body)
    return bytes((kind, n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF)) + body


class BarePomeloEcho(Protocol):
    """One connection: packages in, echoed responses out."""

    def __init__(self) -> None:
        self.buffer = b""

    def connectionMade(self) -> None:
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)

    def dataReceived(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        out = []
        offset, end = 0, len(buffer)
        while end - offset >= 4:
            kind = buffer[offset]
            length = (buffer[offset + 1] << 16) | (buffer[offset + 2] << 8) | buffer[offset + 3]
            if end - offset - 4 < length:
                break
            body = buffer[offset + 4 : offset + 4 + length]
            offset += 4 + length
            if kind == DATA:
                reply = self._respond(body)
                if reply is not None:
                    out.append(reply)
            elif kind == HANDSHAKE:
                out.append(_package(HANDSHAKE, HANDSHAKE_REPLY))
            elif kind == HEARTBEAT:
                out.append(_package(HEARTBEAT, b""))
        self.buffer = buffer[offset:]
        if out:
            assert self.transport is not None
            self.transport.write(b"".join(out))

    @staticmethod
    def _respond(message: bytes) -> bytes | None:
        flag = message[0]
        if (flag >> 1) & 7 != 0:  # only requests are answered
            return None
        position = 1
        while message[position] & 0x80:  # the id, a base-128 varint
            position += 1
        id_bytes = message[1 : position + 1]
        position += 1
        if flag & 1:  # compressed route: a 2-byte code
            position += 2
        else:
            position += 1 + message[position]
        body = message[position:]
        return _package(DATA, b"\x04" + id_bytes + body)


def main(argv: list[str] | None = None) -> None:
    """Listen on ``--interface:--port`` and serve until the reactor stops (SIGTERM)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    args = parser.parse_args(argv)

    from twisted.internet import reactor

    endpoint = TCP4ServerEndpoint(reactor, args.port, interface=args.interface)
    endpoint.listen(Factory.forProtocol(BarePomeloEcho))
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
