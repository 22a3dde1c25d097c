"""``app.rpc.<type>.<remote>.<method>(route_param, *args)``: calling other servers.

Attribute access builds the call: ``proxies.chat`` is the ``chat`` server type,
``.chatRemote`` one of its declared remotes, ``.leave`` a method. Three ways to
call a method proxy:

- ``leave(route_param, *args, timeout=None)`` — the router picks the server from
  ``route_param``; like Pomelo, the route parameter is used for routing only
  and is *not* sent: the remote receives ``*args``. (Pomelo's rpc client
  ``shift()``s it off the arguments; it is often a session, which is not plain
  data.) A remote that needs the uid takes it as an explicit argument:
  ``chat.chatRemote.leave(session, session.uid, rid)``.
- ``leave.to(server_id)(*args, timeout=None)`` — one given server of the type.
- ``leave.to_all(*args, timeout=None)`` — every server of the type; a Deferred of
  a dict ``server id -> result`` in which a failed call's value is its exception
  instance (``RpcError``, ``RpcTimeout``, ``HandlerError``), never a Failure:
  the Deferred itself fails only when the type has no server.

A routed call of a remote method declared idempotent (:mod:`~pomelo_twisted.rpc.idempotent`)
that could not be sent (``PeerUnavailable``) is sent once more to another server of the
type (:meth:`~pomelo_twisted.rpc.router.Router.fallback`); nothing else is retried.

``timeout`` (seconds) overrides the proxies' default for one call. Every call
returns a Deferred and never raises. Names are not checked here: the callee's
declared remotes refuse unknown ones. The server type must have servers
(``RpcError("no server of type 'x'")``). Attribute names starting with ``_``
raise ``AttributeError`` so that introspection (``copy``, ``pickle``, mocks)
never builds a call by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.python.failure import Failure

from ..errors import PeerUnavailable, RpcError
from ..gameconfig import ServerInfo
from ..interfaces import IRpcTransport
from .calls import DEFAULT_RPC_TIMEOUT
from .router import Router

__all__ = ["MethodProxy", "RemoteProxy", "RpcProxies", "TypeProxy"]


class _Context:
    """What every proxy of one ``RpcProxies`` shares."""

    __slots__ = ("default_timeout", "router", "servers_of", "transport")

    def __init__(
        self,
        transport: IRpcTransport,
        router: Router,
        servers_of: Callable[[str], Sequence[ServerInfo]],
        default_timeout: float,
    ) -> None:
        self.transport = transport
        self.router = router
        self.servers_of = servers_of
        self.default_timeout = default_timeout

    def servers(self, server_type: str) -> Sequence[ServerInfo]:
        servers = self.servers_of(server_type)
        if not servers:
            raise RpcError(f"no server of type {server_type!r}")
        return servers

    def call(
        self,
        server_id: str,
        remote: str,
        method: str,
        args: tuple[Any, ...],
        timeout: float | None,
    ) -> Deferred[Any]:
        seconds = self.default_timeout if timeout is None else timeout
        try:
            result = self.transport.call(server_id, remote, method, args, seconds)
        except Exception:
            return fail()
        return result if isinstance(result, Deferred) else succeed(result)


def _check_name(name: str) -> None:
    if name.startswith("_"):
        raise AttributeError(name)


class RpcProxies:
    """The root of ``app.rpc``: one attribute per server type."""

    __slots__ = ("_context", "_types")

    def __init__(
        self,
        transport: IRpcTransport,
        router: Router,
        servers_of: Callable[[str], Sequence[ServerInfo]],
        default_timeout: float = DEFAULT_RPC_TIMEOUT,
    ) -> None:
        self._context = _Context(transport, router, servers_of, default_timeout)
        self._types: dict[str, TypeProxy] = {}

    def __repr__(self) -> str:
        return "<rpc proxies>"

    def __getattr__(self, server_type: str) -> TypeProxy:
        _check_name(server_type)
        proxy = self._types.get(server_type)
        if proxy is None:
            proxy = self._types[server_type] = TypeProxy(self._context, server_type)
        return proxy


class TypeProxy:
    """``app.rpc.<type>``: one attribute per remote of that server type."""

    __slots__ = ("_context", "_remotes", "_server_type")

    def __init__(self, context: _Context, server_type: str) -> None:
        self._context = context
        self._server_type = server_type
        self._remotes: dict[str, RemoteProxy] = {}

    def __repr__(self) -> str:
        return f"<rpc proxy {self._server_type}>"

    def __getattr__(self, remote: str) -> RemoteProxy:
        _check_name(remote)
        proxy = self._remotes.get(remote)
        if proxy is None:
            proxy = RemoteProxy(self._context, self._server_type, remote)
            self._remotes[remote] = proxy
        return proxy


class RemoteProxy:
    """``app.rpc.<type>.<remote>``: one attribute per method."""

    __slots__ = ("_context", "_methods", "_remote", "_server_type")

    def __init__(self, context: _Context, server_type: str, remote: str) -> None:
        self._context = context
        self._server_type = server_type
        self._remote = remote
        self._methods: dict[str, MethodProxy] = {}

    def __repr__(self) -> str:
        return f"<rpc proxy {self._server_type}.{self._remote}>"

    def __getattr__(self, method: str) -> MethodProxy:
        _check_name(method)
        proxy = self._methods.get(method)
        if proxy is None:
            proxy = MethodProxy(self._context, self._server_type, self._remote, method)
            self._methods[method] = proxy
        return proxy


class MethodProxy:
    """``app.rpc.<type>.<remote>.<method>``: call it routed, on one server, or on all."""

    __slots__ = ("_context", "_key", "_method", "_remote", "_server_type")

    def __init__(self, context: _Context, server_type: str, remote: str, method: str) -> None:
        self._context = context
        self._server_type = server_type
        self._remote = remote
        self._method = method
        self._key = (server_type, remote, method)

    def __repr__(self) -> str:
        return f"<rpc proxy {self._server_type}.{self._remote}.{self._method}>"

    def __call__(
        self, route_param: object, *args: Any, timeout: float | None = None
    ) -> Deferred[Any]:
        """Call the server the router picks for ``route_param`` with ``*args`` (the
        route parameter is not sent); an idempotent method that could not be sent there
        is sent once to another server of the type."""
        context = self._context
        router = context.router
        try:
            servers = context.servers(self._server_type)
            server_id = router.pick(self._server_type, route_param, servers)
        except Exception:
            return fail()
        d = context.call(server_id, self._remote, self._method, args, timeout)
        if self._key in router.idempotent:
            d.addErrback(self._retry, route_param, server_id, args, timeout)
        return d

    def _retry(
        self,
        failure: Failure,
        route_param: object,
        failed: str,
        args: tuple[Any, ...],
        timeout: float | None,
    ) -> Any:
        """The call to ``failed`` was not sent: once to the router's fallback, if any."""
        if not failure.check(PeerUnavailable):
            return failure
        context = self._context
        router = context.router
        servers = context.servers_of(self._server_type)
        try:
            other = router.fallback(self._server_type, route_param, servers, failed)
        except Exception:
            return failure
        if other is None:
            return failure
        router.idempotent.retries += 1
        return context.call(other, self._remote, self._method, args, timeout)

    def to(self, server_id: str) -> Callable[..., Deferred[Any]]:
        """A function ``(*args, timeout=None)`` calling ``server_id`` with exactly ``args``;
        its Deferred fails with ``RpcError`` if ``server_id`` is not of this type."""

        def call_server(*args: Any, timeout: float | None = None) -> Deferred[Any]:
            try:
                servers = self._context.servers(self._server_type)
            except RpcError:
                return fail()
            if not any(server.id == server_id for server in servers):
                return fail(
                    RpcError(f"server {server_id!r} is not a server of type {self._server_type!r}")
                )
            return self._context.call(server_id, self._remote, self._method, args, timeout)

        return call_server

    def to_all(self, *args: Any, timeout: float | None = None) -> Deferred[dict[str, Any]]:
        """Call every server of this type with ``args``: a Deferred of ``{server id:
        result or exception instance}`` (see the module's documentation)."""
        try:
            servers = self._context.servers(self._server_type)
        except RpcError:
            return fail()
        ids = sorted(server.id for server in servers)
        calls = [
            self._context.call(server_id, self._remote, self._method, args, timeout)
            for server_id in ids
        ]
        gathered = DeferredList(calls, consumeErrors=True)
        return gathered.addCallback(_by_server, ids)


def _by_server(outcomes: list[tuple[bool, Any]], ids: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for server_id, (_, value) in zip(ids, outcomes, strict=True):
        results[server_id] = value.value if isinstance(value, Failure) else value
    return results
