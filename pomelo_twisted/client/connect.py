"""``connect()``: open a Pomelo session over TCP, TLS or WebSocket.

Targets:

* ``"ws://host:port/path"`` and ``"wss://host:port/path"``: WebSocket (autobahn) over a
  :class:`~twisted.internet.endpoints.HostnameEndpoint`, TLS for ``wss`` with
  ``tls_options`` or :func:`~twisted.internet.ssl.optionsForClientTLS` for the host;
* anything else: a Twisted client endpoint string (:func:`clientFromString`), e.g.
  ``"tcp:127.0.0.1:3010"``, ``"tls:example.com:3010"``; given ``tls_options``, the
  endpoint is wrapped in TLS with them (use it with a ``tcp:`` string).
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, clientFromString, wrapClientTLS
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.python.failure import Failure

from ..interfaces import IServerReactor
from .core import DEFAULT_CLIENT_MAX_PACKET_SIZE, PomeloClient
from .errors import ConnectTimeout
from .transports import (
    ClientMaker,
    PomeloClientFactory,
    PomeloClientProtocol,
    PomeloWebSocketClientFactory,
    PomeloWebSocketClientProtocol,
)

__all__ = ["connect", "endpoint_for"]


def endpoint_for(
    reactor: IServerReactor,
    target: str,
    make_client: ClientMaker,
    tls_options: IOpenSSLClientConnectionCreator | None = None,
    timeout: float = 30.0,
) -> tuple[IStreamClientEndpoint, IProtocolFactory]:
    """The endpoint and protocol factory for ``target`` (see the module docstring).

    ``reactor`` provides ``IReactorTCP`` and ``IReactorTime`` (and what the endpoint
    string needs); ``timeout`` is the connect timeout of a WebSocket's endpoint.
    ``make_client`` is called once per connection and returns a new
    :class:`PomeloClient`. Raises ``ValueError`` for a malformed WebSocket URL.
    """
    scheme = target.split(":", 1)[0].lower()
    if scheme in ("ws", "wss"):
        parts = urlsplit(target)
        host = parts.hostname
        if not host:
            raise ValueError(f"no host in WebSocket URL {target!r}")
        port = parts.port or (443 if scheme == "wss" else 80)
        endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
        if scheme == "wss":
            if tls_options is None:
                from twisted.internet.ssl import optionsForClientTLS

                tls_options = optionsForClientTLS(host)
            endpoint = wrapClientTLS(tls_options, endpoint)
        return endpoint, PomeloWebSocketClientFactory(target, make_client, reactor)
    endpoint = clientFromString(reactor, target)
    if tls_options is not None:
        endpoint = wrapClientTLS(tls_options, endpoint)
    return endpoint, PomeloClientFactory(make_client)


def connect(
    reactor: IServerReactor | None,
    target: str,
    *,
    user: Any = None,
    timeout: float = 10.0,
    request_timeout: float | None = 10.0,
    tls_options: IOpenSSLClientConnectionCreator | None = None,
    client_type: str = "python-twisted",
    version: str = "0.1.0",
    max_packet_size: int = DEFAULT_CLIENT_MAX_PACKET_SIZE,
    serializer: str | None = None,
    resume: dict[str, Any] | None = None,
) -> Deferred[PomeloClient]:
    """Connect to a Pomelo server; fires with a :class:`PomeloClient` once handshake + ack are done.

    ``reactor`` may be ``None`` for the global reactor. ``timeout`` applies to the
    transport connection (failing with :class:`ConnectTimeout`) and again to the
    WebSocket upgrade, TLS and Pomelo handshake (failing with :class:`HandshakeTimeout`);
    a handshake answered with a code other than 200 fails with
    :class:`HandshakeRejected`. ``user`` is sent as the handshake's ``user`` data,
    ``client_type`` / ``version`` as ``sys.type`` / ``sys.version``.
    ``request_timeout`` is the default timeout of :meth:`PomeloClient.request`.
    ``serializer`` (e.g. ``"msgpack"``) asks the server for that body serializer in the
    handshake; the client uses whichever the server answers with. ``resume`` is sent as
    ``sys.resume`` (see :mod:`pomelo_twisted.client.reconnect`, which uses it).
    Cancelling the Deferred abandons the attempt and closes the connection.

    From ``async def`` code::

        client = await connect(None, "ws://127.0.0.1:3010/", user={"name": "bot"})
        print(await client.request("connector.entryHandler.entry", {"uid": 1}))
        await client.close()
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = cast(IServerReactor, global_reactor)

    def make_client() -> PomeloClient:
        return PomeloClient(
            reactor,
            user=user,
            handshake_timeout=timeout,
            request_timeout=request_timeout,
            client_type=client_type,
            version=version,
            max_packet_size=max_packet_size,
            serializer=serializer,
            resume=resume,
        )

    endpoint, factory = endpoint_for(reactor, target, make_client, tls_options, timeout)

    def connect_timed_out(result: object, seconds: float) -> Failure:
        return Failure(ConnectTimeout(target, seconds))

    def endpoint_timed_out(failure: Failure) -> Failure:
        # The endpoint's own connect timeout (e.g. ``timeout=`` in the string) fired first.
        failure.trap(error.TimeoutError)
        return Failure(ConnectTimeout(target, timeout))

    d: Deferred[Any] = endpoint.connect(factory)
    d.addTimeout(timeout, reactor, onTimeoutCancel=connect_timed_out)
    d.addErrback(endpoint_timed_out)
    return d.addCallback(_handshake_done)


def _handshake_done(
    proto: PomeloClientProtocol | PomeloWebSocketClientProtocol,
) -> Deferred[PomeloClient]:
    return proto.client.ready
