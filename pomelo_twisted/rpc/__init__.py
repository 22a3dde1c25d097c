"""Server-to-server calls: declared remotes, transports, route functions and proxies.

- :class:`RemoteDispatcher` — the remote services a server declares (callee side);
- :class:`LocalRpcTransport` — calls between servers of one process
  (a Perspective Broker transport implements the same ``IRpcTransport``);
- :class:`Router`, :func:`default_route` (crc32 mod n), :func:`consistent_hash_route`
  (a hash ring) — which server of a type serves a call;
- :class:`RpcProxies` — ``app.rpc.<type>.<remote>.<method>(route_param, *args)``;
- :func:`idempotent` — marks a remote method a routed call may retry on another server.
"""

from .hashring import ConsistentHashRoute, consistent_hash_route, route_function
from .idempotent import IdempotentRemotes, idempotent
from .local import LocalRpcTransport
from .metrics import RpcCounters
from .payload import copy_plain, pack_plain, unpack_plain
from .proxies import MethodProxy, RemoteProxy, RpcProxies, TypeProxy
from .remotes import LIFECYCLE_HOOKS, RemoteDispatcher, ServeRemote, declared_methods
from .router import RouteFunction, Router, default_route, route_key

__all__ = [
    "LIFECYCLE_HOOKS",
    "ConsistentHashRoute",
    "IdempotentRemotes",
    "LocalRpcTransport",
    "MethodProxy",
    "RemoteDispatcher",
    "RemoteProxy",
    "RouteFunction",
    "Router",
    "RpcCounters",
    "RpcProxies",
    "ServeRemote",
    "TypeProxy",
    "consistent_hash_route",
    "copy_plain",
    "declared_methods",
    "default_route",
    "idempotent",
    "pack_plain",
    "route_function",
    "route_key",
    "unpack_plain",
]
