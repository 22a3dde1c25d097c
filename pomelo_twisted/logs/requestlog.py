"""Request ids and the access log: the request-scoped part of structured logs.

A frontend with :class:`RequestLog` as its :class:`~pomelo_twisted.interfaces.IRequestHooks`
starts a call context ``{"rid", "route", "sid", "uid"}`` for each client request and
notify (:mod:`pomelo_twisted.callcontext`): every RPC made for it carries it, so the
lines a backend logs while serving a forwarded request carry the same ``rid`` in JSON
logs (:mod:`.jsonlog`). A request id is this server's id, a random run tag (from the
injected ``random.Random``: a restarted server does not repeat ids) and a counter.

With the access log on (namespace :data:`~.beginning.ACCESS_NAMESPACE` at debug,
decided once when built) each client request logs one line on its frontend (route,
code, milliseconds) and each forwarded request served logs one on its backend; the
backend's side is an :class:`~pomelo_twisted.interfaces.IRpcHooks` on forwards only.
With it off, nothing is timed and no RPC hook is added.
"""

from __future__ import annotations

import random
from itertools import count

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..callcontext import CallContext
from ..gameconfig import ServerInfo
from ..instruments import Instruments
from ..interfaces import CallEnd, IAgent, IRequestHooks, IRpcHooks, RequestEnd
from .beginning import ACCESS_NAMESPACE

__all__ = ["RequestLog", "install_request_log", "outcome_code"]

access = Logger(namespace=ACCESS_NAMESPACE)


def outcome_code(outcome: object) -> str:
    """What a request ended with, for the access log: its body's ``code``, ``ok``, or
    ``failed`` (the handler raised)."""
    if isinstance(outcome, Failure):
        return "failed"
    code = outcome.get("code") if isinstance(outcome, dict) else None
    return str(code) if type(code) is int else "ok"


@implementer(IRequestHooks, IRpcHooks)
class RequestLog:
    """Starts each client request's call context; with ``access``, logs each request
    (frontend) and each forwarded request served (backend: calls of the remote named
    ``forward``, ``(service, method)``), timed on ``clock``."""

    def __init__(
        self,
        server_id: str,
        clock: IReactorTime,
        rng: random.Random,
        access: bool = False,
        forward: tuple[str, str] = ("pomelo.sys", "forward"),
    ) -> None:
        self.prefix = f"{server_id}.{rng.getrandbits(32):08x}."
        self.forward = forward
        self._ids = count(1)
        self._clock = clock
        self.access = access

    def request_started(
        self, agent: IAgent, route: str, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        started: CallContext = dict(context) if context else {}
        started["rid"] = f"{self.prefix}{next(self._ids)}"
        started["route"] = route
        started["sid"] = str(agent.sid)
        uid = getattr(agent.session, "uid", None)
        if uid is not None:
            started["uid"] = str(uid)
        if not self.access:
            return started, None
        began = self._clock.seconds()

        def ended(outcome: object) -> None:
            access.debug(
                "{kind} {route} {code} {ms:.1f} ms",
                kind="notify" if notify else "request",
                route=route,
                code=outcome_code(outcome),
                ms=(self._clock.seconds() - began) * 1000.0,
                call_context=started,
            )

        return started, ended

    def call_started(
        self, server_id: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        return context, None

    def serve_started(
        self, peer: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        if not self.access or not context or (service, method) != self.forward:
            return context, None
        began = self._clock.seconds()
        route = context.get("route", "?")

        def ended(failure: Failure | None) -> None:
            access.debug(
                "forwarded {route} from {peer} {outcome} {ms:.1f} ms",
                route=route,
                peer=peer,
                outcome="ok" if failure is None else "failed",
                ms=(self._clock.seconds() - began) * 1000.0,
                call_context=context,
            )

        return context, ended


def install_request_log(
    instruments: Instruments,
    server: ServerInfo,
    clock: IReactorTime,
    rng: random.Random,
    access: bool,
    forward: tuple[str, str],
) -> RequestLog:
    """Add a :class:`RequestLog` to a server's ``instruments`` (before it starts):
    request hooks on a frontend, RPC hooks when ``access`` (a backend's forwards)."""
    hooks = RequestLog(server.id, clock, rng, access, forward)
    if server.frontend:
        instruments.add_request_hooks(hooks)
    if access:
        instruments.add_rpc_hooks(hooks)
    return hooks
