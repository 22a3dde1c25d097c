"""A server built with ``request_ids`` (JSON logs set it) starts a call context per request."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.app.build import build_application
from pomelo_twisted.logs.requestlog import RequestLog
from pomelo_twisted.rpc.pb import PbRpcTransport

from ..app.test_build_wiring import CHAT, CONNECTORS, SERVERS


def built(server: Any, settings: dict[str, Any]) -> Any:
    """``server`` built (never started) with these settings."""
    clock = Clock()
    return build_application(
        server,
        reactor=clock,
        rpc=PbRpcTransport(clock, server.id, b"secret"),
        servers=SERVERS,
        config=None,
        settings=settings,
    )


class WiringTests(SynchronousTestCase):
    """Which hooks request ids add, by server kind and access log."""

    def test_off_by_default(self) -> None:
        """Without the setting no hook is added (nothing costs anything)."""
        app = built(CONNECTORS[0], {})
        self.assertEqual((app.instruments.requests, app.instruments.rpc), (None, None))

    def test_frontend_gets_request_hooks(self) -> None:
        """A frontend starts a call context per request; no RPC hook without access log."""
        app = built(CONNECTORS[0], {"request_ids": True})
        self.assertIsInstance(app.instruments.requests, RequestLog)
        self.assertIsNone(app.instruments.rpc)

    def test_backend_access_log(self) -> None:
        """A backend with the access log watches the forwards it serves."""
        app = built(CHAT, {"request_ids": True, "access_log": True})
        self.assertIsNone(app.instruments.requests)
        self.assertIsInstance(app.instruments.rpc, RequestLog)
        self.assertIs(app.rpc_transport.hooks, app.instruments.rpc)
