"""``/api/action``: restart, stop or drain a server from the page, behind the admin secret.

``POST`` a JSON object ``{"action": "restart" | "stop" | "drain", "server": ID}`` with
``Authorization: Bearer <adminSecret>`` (compared in constant time). The answer is JSON:
``200 {"ok": true, "action", "server", "result"}``; ``401`` without the right secret;
``403`` when the master has no admin secret (actions are off); ``400`` naming the bad
field; ``409 {"ok": false, "error": ...}`` with the master's refusal
(:class:`~pomelo_twisted.cluster.interfaces.CommandRefused`: unknown server, stopping,
no ``drain`` command on that server...); ``413`` past ``max_body`` bytes.

``restart`` and ``stop`` are the master's own (as ``pomelo-twisted restart/stop``);
``drain`` is the server's operator command ``drain``, relayed by the master.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ..cluster.interfaces import CommandRefused, IClusterView

__all__ = ["ACTIONS", "ACTION_TIMEOUT", "MAX_BODY", "ActionResource"]

log = Logger()

#: What the page may ask.
ACTIONS = ("restart", "stop", "drain")
#: Seconds a server has to answer ``drain`` (it answers once drained, or at once).
ACTION_TIMEOUT = 60.0
#: The largest request body read, in bytes.
MAX_BODY = 4096


def _json(request: Request, code: int, data: dict[str, Any]) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(data, default=str).encode() + b"\n"


def _error(request: Request, code: int, message: str) -> bytes:
    return _json(request, code, {"ok": False, "error": message})


class ActionResource(Resource):
    """Runs an action of the page (see the module docstring)."""

    isLeaf = True  # noqa: N815 (twisted.web's name)

    def __init__(
        self,
        cluster: IClusterView,
        admin_secret: bytes | None,
        timeout: float = ACTION_TIMEOUT,
        max_body: int = MAX_BODY,
    ) -> None:
        super().__init__()
        self.cluster = cluster
        self.admin_secret = admin_secret
        self.timeout = timeout
        self.max_body = max_body

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        """Actions are POSTed: 405."""
        request.setHeader(b"allow", b"POST")
        return _error(request, 405, 'POST a JSON object {"action", "server"}')

    def render_POST(self, request: Request) -> bytes | int:  # noqa: N802 (twisted.web's name)
        """Check the secret and the body, then run the action (answered when it is done)."""
        if self.admin_secret is None:
            return _error(
                request, 403, "the master has no adminSecret: dashboard actions are disabled"
            )
        if not self._authorized(request):
            log.info(
                "dashboard: refused an action from {peer}: wrong or no admin secret",
                peer=str(request.getClientAddress()),
            )
            request.setHeader(b"www-authenticate", b'Bearer realm="pomelo-twisted dashboard"')
            return _error(request, 401, "the admin secret is missing or wrong")
        assert request.content is not None
        body = request.content.read(self.max_body + 1)
        if len(body) > self.max_body:
            return _error(request, 413, f"the body is over {self.max_body} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _error(request, 400, 'the body must be a JSON object {"action", "server"}')
        action, server = data.get("action"), data.get("server")
        if action not in ACTIONS:
            return _error(request, 400, f"'action' must be one of {', '.join(ACTIONS)}")
        if not isinstance(server, str) or not server:
            return _error(request, 400, "'server' must be a server id")
        d = maybeDeferred(self._run, action, server)
        d.addCallbacks(
            self._done,
            self._refused,
            callbackArgs=(request, action, server),
            errbackArgs=(request,),
        )
        return NOT_DONE_YET

    def _authorized(self, request: Request) -> bool:
        assert self.admin_secret is not None
        header = request.getHeader(b"authorization") or b""
        scheme, _, token = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.admin_secret)

    def _run(self, action: str, server: str) -> Deferred[Any]:
        if action == "restart":
            return self.cluster.restart(server)
        if action == "stop":
            return self.cluster.stop([server])
        return self.cluster.server_command(server, "drain", {}, self.timeout)

    def _done(self, result: Any, request: Request, action: str, server: str) -> None:
        log.info("dashboard: {action} {server} done", action=action, server=server)
        answer = {"ok": True, "action": action, "server": server, "result": result}
        self._answer(request, _json(request, 200, answer))

    def _refused(self, failure: Failure, request: Request) -> None:
        if failure.check(CommandRefused):
            self._answer(request, _error(request, 409, failure.getErrorMessage()))
            return
        log.failure("a dashboard action failed", failure)
        self._answer(request, _error(request, 500, f"internal error: {failure.getErrorMessage()}"))

    @staticmethod
    def _answer(request: Request, body: bytes) -> None:
        if request.finished or request.channel is None:
            return  # the page went away meanwhile
        request.write(body)
        request.finish()
