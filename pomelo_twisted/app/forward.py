"""The forward hop: a client request for another server type, frontend -> backend -> frontend.

The frontend does not decode what it only passes on. A forwarded request is one call
``rpc(backend_id, "pomelo.sys", "forward", args)`` with ``args``::

    (frontend_id, sid, uid, settings_version, settings or None,
     route, serializer name, body bytes, notify)

- the body is the client's bytes as they came; the backend decodes them once with the
  client's serializer, runs its filters and handler, and answers the response body
  encoded once in that serializer (an error body too: failures are mapped at the
  backend by :func:`~pomelo_twisted.responses.failure_response` or its error handler);
  the frontend writes those bytes to the client as an ``EncodedBody``;
- the route is the route string (the agent has already resolved a compressed route
  code against the frontend's dictionary; a string needs no agreement between the two
  servers' dictionaries, and the backend splits it once, in its dispatcher's bounded
  route cache);
- the session is a delta: ``settings`` travel only when that backend has not seen the
  session's current ``settings_version`` (``Session.backend_versions`` remembers, per backend,
  the version it acknowledged); the backend keeps them in a bounded
  :class:`~pomelo_twisted.session.backend.SessionCache`. A backend that does not hold
  them (restarted, or evicted) answers :data:`SESSION_NEEDED` and the frontend sends
  the request again, once, with the settings.

The request's deadline is the frontend's ``rpc_timeout`` (the forward call's timeout),
cut to a current deadline if the request is forwarded while serving a call
(:mod:`~pomelo_twisted.budget`): it travels with the call as its budget, and the
resend after :data:`SESSION_NEEDED` gets only what is left of it.

Failures of the hop itself, at the frontend: no server type of that name -> 404, no
server of the type or the call failed (peer down, refused) -> 503, the call timed out
-> 504, a route function that fails -> 500; details go to the log only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..budget import current_deadline, within_deadline
from ..callcontext import CALL_CONTEXT
from ..errors import (
    INTERNAL_ERROR,
    BadRequest,
    RouteNotFound,
    RpcError,
    RpcTimeout,
    SerializationError,
    ServerUnavailable,
    error_response,
)
from ..gameconfig import ServerInfo
from ..handlers.dispatch import Dispatcher
from ..instruments import end_request
from ..interfaces import IHandlerHooks, ISerializer, RequestEnd
from ..responses import EncodedBody
from ..rpc import Router
from ..rpc.logagg import RepeatedWarning
from ..serializers import MsgpackSerializer, get_serializer
from ..session.backend import SYS_SERVICE, BackendSession, RpcCall, SessionCache

__all__ = ["FORWARD", "SESSION_NEEDED", "ForwardReceiver", "Forwarder"]

log = Logger()

FORWARD = "forward"
"""The method of the system service a backend serves forwarded requests with."""

SESSION_NEEDED = 0
"""A backend's answer to a forwarded request whose session settings it does not hold."""

_MSGPACK = MsgpackSerializer()

_MAX_WARNED_SERVERS = 1024
"""Backends whose failed hops are aggregated at once (more: forgotten, a bound)."""


class Forwarder:
    """The frontend side of the hop: where a request goes, what it carries, and what its
    failures mean to the client."""

    def __init__(
        self,
        frontend_id: str,
        servers: Mapping[str, Sequence[ServerInfo]],
        router: Router,
        rpc: RpcCall,
        *,
        seconds: Callable[[], float] | None = None,
        timeout: Callable[[], float] | None = None,
        warn_interval: float = 10.0,
    ) -> None:
        self.frontend_id = frontend_id
        self._servers = servers
        self._router = router
        self._rpc = rpc
        self._seconds = seconds
        self._timeout = timeout
        """The forward call's timeout (the ``rpc_timeout`` setting): with ``seconds``, what
        bounds a resend after SESSION_NEEDED."""
        self._warn_interval = warn_interval
        self._warnings: dict[str, RepeatedWarning] = {}
        """Per backend: its failed hops, one warning line per interval with a count."""

    def forward(
        self, session: Any, server_type: str, route: str, serializer: str, body: bytes, notify: bool
    ) -> Deferred[Any]:
        """Send a request (``body`` in the client's ``serializer``) to the server of
        ``server_type`` the route function picks; a Deferred of the response bytes
        (None for a notify). Raises ``RouteNotFound``, ``ServerUnavailable`` or the
        route function's own error; the Deferred fails with ``ServerUnavailable`` or
        ``RpcTimeout``."""
        servers = self._servers.get(server_type)
        if not servers:
            if servers is None:  # no such server type in the cluster at all
                log.debug("no server type serves {route!r}", route=route)
                raise RouteNotFound(f"no route {route!r}")
            raise ServerUnavailable()
        server_id = self._router.pick(server_type, session, servers)
        version = session.settings_version
        seen = session.backend_versions
        full = seen is None or seen.get(server_id) != version
        args = (
            self.frontend_id,
            session.id,
            session.uid,
            version,
            session.export()["settings"] if full else None,
            route,
            serializer,
            body,
            notify,
        )
        d = self._rpc(server_id, SYS_SERVICE, FORWARD, args)
        d.addCallback(self._answered, session, server_id, full, args, self._deadline())
        d.addErrback(self._failed, server_id, route)
        return d

    def _deadline(self) -> float | None:
        """When the request being forwarded now must be answered (a time of ``seconds``),
        None when the forwarder knows no timeout."""
        if self._timeout is None or self._seconds is None:
            return current_deadline()
        deadline = self._seconds() + self._timeout()
        current = current_deadline()
        return deadline if current is None or deadline < current else current

    def _answered(
        self,
        result: Any,
        session: Any,
        server_id: str,
        full: bool,
        args: tuple[Any, ...],
        deadline: float | None,
    ) -> Any:
        if type(result) is int:  # SESSION_NEEDED: the backend does not hold the settings
            if full:
                raise RpcError(f"{server_id} asked again for the session it was sent")
            log.debug("{server} needs session {sid}: sending it", server=server_id, sid=args[1])
            again = (*args[:4], session.export()["settings"], *args[5:])
            if deadline is None:
                d = self._rpc(server_id, SYS_SERVICE, FORWARD, again)
            else:  # the same request: only what is left of its deadline
                d = within_deadline(deadline, self._rpc, server_id, SYS_SERVICE, FORWARD, again)
            return d.addCallback(self._answered, session, server_id, True, again, None)
        if full:  # the backend holds this version now
            seen = session.backend_versions
            if seen is None:
                seen = session.backend_versions = {}
            seen[server_id] = args[3]
        return result

    def _warning(self, server_id: str) -> RepeatedWarning:
        """The aggregated warning of the hops to ``server_id`` that failed (a server
        down fails every request to it: one line per interval, with a count)."""
        warning = self._warnings.get(server_id)
        if warning is None:
            if len(self._warnings) >= _MAX_WARNED_SERVERS:
                self._warnings.clear()
            if self._seconds is None:
                warning = RepeatedWarning(log, self._warn_interval)
            else:
                warning = RepeatedWarning(log, self._warn_interval, self._seconds)
            self._warnings[server_id] = warning
        return warning

    def _failed(self, failure: Failure, server_id: str, route: str) -> Failure:
        exc = failure.value
        if isinstance(exc, RpcError) and not isinstance(exc, RpcTimeout):
            self._warning(server_id).warn(
                "forwarding {route} to {server} failed: {error}",
                route=route,
                server=server_id,
                error=str(exc),
            )
            return Failure(ServerUnavailable())
        return failure

    def forward_decoded(
        self, session: Any, server_type: str, route: str, msg: object, notify: bool
    ) -> Deferred[Any]:
        """:meth:`forward` of a body already decoded (a request dispatched by game code,
        not a client's): it travels as msgpack, the answer is decoded back."""
        d = self.forward(session, server_type, route, _MSGPACK.name, _MSGPACK.encode(msg), notify)
        return d.addCallback(lambda answer: None if answer is None else _MSGPACK.decode(answer))


class ForwardReceiver:
    """The backend side of the hop: the session from the cache, the body decoded once,
    the response encoded once."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        rpc: RpcCall,
        cache_size: Callable[[], int],
    ) -> None:
        self.dispatcher = dispatcher
        self.sessions = SessionCache()
        self._rpc = rpc
        self._cache_size = cache_size
        self._serializers: dict[str, ISerializer] = {}
        #: Called around each handler (tracing), or None (the default).
        self.hooks: IHandlerHooks | None = None

    def serve(
        self,
        frontend_id: str,
        sid: int,
        uid: str | None,
        version: int,
        settings: dict[str, Any] | None,
        route: str,
        serializer_name: str,
        body: bytes,
        notify: bool,
    ) -> Any:
        """Answer one forwarded request: the response bytes, None for a notify, or
        :data:`SESSION_NEEDED` (a Deferred of one of them when the handler answers later)."""
        cache = self.sessions
        if settings is None:
            kept = cache.get(frontend_id, sid, version)
            if kept is None:
                return SESSION_NEEDED
        else:
            cache.limit = self._cache_size()
            kept = cache.put(frontend_id, sid, uid, version, settings)
        session = BackendSession.cached(frontend_id, sid, uid, kept, self._rpc)
        serializer = self._serializers.get(serializer_name)
        if serializer is None:
            serializer = self._serializers[serializer_name] = get_serializer(serializer_name)
        try:
            msg = serializer.decode(body)
        except SerializationError:
            if notify:
                log.debug(
                    "notify {route}: body is not valid {name}", route=route, name=serializer_name
                )
                return None
            return serializer.encode(BadRequest(f"body is not valid {serializer.name}").response())
        if self.hooks is None:
            result = self.dispatcher.call(route, msg, session, notify)
        else:
            result = self._observed(self.hooks, route, msg, session, notify)
        if notify:
            return result.addCallback(_nothing) if isinstance(result, Deferred) else None
        if isinstance(result, Deferred):
            return result.addCallback(_encode, serializer, route)
        return _encode(result, serializer, route)

    def _observed(
        self, hooks: IHandlerHooks, route: str, msg: object, session: object, notify: bool
    ) -> Any:
        """The dispatcher's answer, with ``hooks`` around it (and within their context)."""
        context = current = CALL_CONTEXT.get()
        end: RequestEnd | None = None
        try:
            context, end = hooks.handler_started(route, session, notify, current)
        except Exception:
            log.failure("a handler hook failed; skipped for this request")
        if context is current:  # metrics alone leave it as it is: nothing to set
            result = self.dispatcher.call(route, msg, session, notify)
        else:
            token = CALL_CONTEXT.set(context)
            try:
                result = self.dispatcher.call(route, msg, session, notify)
            finally:
                CALL_CONTEXT.reset(token)
        if end is not None:
            # (a dict, the usual answer, skips the slower isinstance of an ABC)
            if type(result) is not dict and isinstance(result, Deferred):
                result.addBoth(end_request, end, "handler")
            else:
                end_request(result, end, "handler")
        return result


def _nothing(_: object) -> None:
    return None


def _encode(body: object, serializer: ISerializer, route: str) -> bytes:
    if type(body) is EncodedBody:
        return body
    try:
        return serializer.encode(body)
    except SerializationError as exc:
        log.error("response of {route} cannot be encoded: {error}", route=route, error=str(exc))
        return serializer.encode(error_response(500, INTERNAL_ERROR))
