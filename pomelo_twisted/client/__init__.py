"""The Python Pomelo client: connect, request, notify, receive pushes (bots, load tests).

:func:`connect` opens a session over TCP (any Twisted client endpoint string, which
includes ``tls:``), ``ws://`` or ``wss://`` and fires with a :class:`PomeloClient` once the
handshake is done (:func:`connect_resumable`: a :class:`ResumingClient` that reconnects
and resumes its session after a drop). The client is transport-agnostic: the same core
runs over TCP, WebSocket or an in-memory transport. Every Deferred it returns can be awaited::

    from twisted.internet import defer, task

    from pomelo_twisted.client import RequestTimeout, connect


    async def main(reactor) -> None:
        client = await connect(reactor, "tcp:127.0.0.1:3010", user={"name": "bot"})
        client.on("onChat", lambda msg: print("push:", msg))
        client.on_kick(lambda reason: print("kicked:", reason))
        try:
            reply = await client.request("connector.entryHandler.entry", {"uid": 1})
        except RequestTimeout as exc:
            print(exc)
        else:
            print("reply:", reply)  # error bodies such as {"code": 500} arrive here too
        client.notify("chat.chatHandler.typing", {})
        print("closed:", await client.close())


    task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
"""

from .connect import connect, endpoint_for
from .core import DEFAULT_CLIENT_MAX_PACKET_SIZE, PomeloClient, TransportAdapter
from .errors import (
    ClientError,
    ConnectionClosed,
    ConnectTimeout,
    HandshakeRejected,
    HandshakeTimeout,
    RequestTimeout,
)
from .reconnect import ResumingClient, connect_resumable
from .timers import MAX_REQUEST_ID
from .transports import (
    PomeloClientFactory,
    PomeloClientProtocol,
    PomeloWebSocketClientFactory,
    PomeloWebSocketClientProtocol,
)

__all__ = [
    "DEFAULT_CLIENT_MAX_PACKET_SIZE",
    "MAX_REQUEST_ID",
    "ClientError",
    "ConnectTimeout",
    "ConnectionClosed",
    "HandshakeRejected",
    "HandshakeTimeout",
    "PomeloClient",
    "PomeloClientFactory",
    "PomeloClientProtocol",
    "PomeloWebSocketClientFactory",
    "PomeloWebSocketClientProtocol",
    "RequestTimeout",
    "ResumingClient",
    "TransportAdapter",
    "connect",
    "connect_resumable",
    "endpoint_for",
]
