"""/api/action: the admin secret (401/403), the body (400/413), the master's answer (200)
or refusal (409), through the dashboard's site in memory."""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.dashboard.actions import ActionResource
from pomelo_twisted.dashboard.events import EventStream
from pomelo_twisted.dashboard.site import dashboard_resource
from pomelo_twisted.dashboard.snapshot import Snapshots

from .fakes import FakeCluster

URL = "http://dashboard.test/api/action"
SECRET = "admin-secret-123"


class ActionCase(SynchronousTestCase):
    """The dashboard's site over a fake master whose admin secret is ``secret``."""

    secret: bytes | None = SECRET.encode()

    def setUp(self) -> None:
        clock = Clock()
        self.cluster = FakeCluster()
        snapshots = Snapshots(self.cluster, clock, 0.5)
        actions = ActionResource(self.cluster, self.secret, timeout=7.0, max_body=256)
        events = EventStream(snapshots, clock, 1.0)
        self.stub = StubTreq(dashboard_resource(snapshots, events, actions))

    def post(
        self, body: Any, authorization: str | None = f"Bearer {SECRET}"
    ) -> tuple[int, dict[str, Any], Any]:
        """POST ``body`` (JSON unless bytes); the status, the answer and the response."""
        headers = {"Content-Type": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        d = self.stub.post(URL, data=data, headers=headers)
        self.stub.flush()
        response = self.successResultOf(d)
        content = response.content()
        self.stub.flush()
        return response.code, json.loads(self.successResultOf(content)), response


class ActionTests(ActionCase):
    """POST /api/action against a fake master."""

    def test_restart(self) -> None:
        """restart with the secret calls the master's restart; 200 with the new pid."""
        code, answer, _ = self.post({"action": "restart", "server": "chat-1"})
        self.assertEqual(code, 200)
        self.assertEqual(
            answer, {"ok": True, "action": "restart", "server": "chat-1", "result": 4242}
        )
        self.assertEqual(self.cluster.calls, [("restart", "chat-1")])

    def test_stop(self) -> None:
        """stop calls the master's stop with that one server."""
        code, answer, _ = self.post({"action": "stop", "server": "chat-1"})
        self.assertEqual((code, answer["result"]), (200, ["chat-1"]))
        self.assertEqual(self.cluster.calls, [("stop", ["chat-1"])])

    def test_drain(self) -> None:
        """drain relays the server's operator command 'drain' with the action timeout."""
        code, answer, _ = self.post({"action": "drain", "server": "connector-1"})
        self.assertEqual((code, answer["result"]), (200, {"drained": True}))
        self.assertEqual(self.cluster.calls, [("command", "connector-1", "drain", {}, 7.0)])

    def test_refusal(self) -> None:
        """A refusal of the master is 409 with its text, for the page to show."""
        self.cluster.refusal = "no command 'drain' on connector-1"
        code, answer, _ = self.post({"action": "drain", "server": "connector-1"})
        self.assertEqual(code, 409)
        self.assertEqual(answer, {"ok": False, "error": "no command 'drain' on connector-1"})

    def test_no_or_wrong_secret(self) -> None:
        """Without the header, with another scheme or a wrong secret: 401, nothing done."""
        for authorization in (None, f"Basic {SECRET}", "Bearer wrong-secret", "Bearer"):
            code, answer, response = self.post(
                {"action": "stop", "server": "chat-1"}, authorization
            )
            self.assertEqual(code, 401, authorization)
            self.assertIn("admin secret", answer["error"])
            self.assertTrue(response.headers.getRawHeaders(b"www-authenticate"))
        self.assertEqual(self.cluster.calls, [])

    def test_bad_fields(self) -> None:
        """A body that is not an object, a bad action or a bad server: 400 naming it."""
        cases = [
            (b"not json", "JSON object"),
            ([1, 2], "JSON object"),
            ({"action": "explode", "server": "chat-1"}, "'action' must be one of restart"),
            ({"server": "chat-1"}, "'action'"),
            ({"action": "stop", "server": ""}, "'server'"),
            ({"action": "stop", "server": 3}, "'server'"),
        ]
        for body, expected in cases:
            code, answer, _ = self.post(body)
            self.assertEqual(code, 400, body)
            self.assertIn(expected, answer["error"])
        self.assertEqual(self.cluster.calls, [])

    def test_body_too_large(self) -> None:
        """A body over max_body bytes is 413 naming the limit."""
        code, answer, _ = self.post({"action": "stop", "server": "x" * 300})
        self.assertEqual(code, 413)
        self.assertIn("256 bytes", answer["error"])

    def test_answer_after_a_slow_action(self) -> None:
        """The answer waits for the master (a restart takes a while)."""
        later: Deferred[int] = Deferred()
        self.cluster.restart = lambda server_id: later  # type: ignore[method-assign]
        d = self.stub.post(
            URL,
            data=json.dumps({"action": "restart", "server": "chat-1"}).encode(),
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        self.stub.flush()
        self.assertNoResult(d)
        later.callback(5150)
        self.stub.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 200)

    def test_get_is_not_allowed(self) -> None:
        """Only POST runs an action."""
        d = self.stub.get(URL)
        self.stub.flush()
        self.assertEqual(self.successResultOf(d).code, 405)


class NoAdminSecretTests(ActionCase):
    """A master without an adminSecret: every action is refused (403)."""

    secret = None

    def test_refused(self) -> None:
        """403 naming the missing adminSecret; the master is not asked."""
        code, answer, _ = self.post({"action": "restart", "server": "chat-1"})
        self.assertEqual(code, 403)
        self.assertIn("no adminSecret", answer["error"])
        self.assertEqual(self.cluster.calls, [])
