"""The dashboard's web site and the Service that serves it on the master.

Routes: ``/`` the page; ``/static/...`` its script and style (package data, no CDN);
``/api/servers`` a JSON snapshot (:class:`~pomelo_twisted.dashboard.snapshot.Snapshots`);
``/api/events`` the live stream (:class:`~pomelo_twisted.dashboard.events.EventStream`);
``/api/action`` the actions (:class:`~pomelo_twisted.dashboard.actions.ActionResource`).
Every answer forbids framing and sniffing; the page runs only its own script
(``Content-Security-Policy: default-src 'self'``).

:class:`DashboardService` listens on master.json's ``dashboardPort`` (on
``dashboardHost``, by default the master's host) as a child of the master's process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from ..cluster.interfaces import IClusterView
from ..interfaces import IServerReactor
from .actions import ACTION_TIMEOUT, ActionResource
from .events import EventStream
from .snapshot import Snapshots

__all__ = ["STATIC", "DashboardService", "ServersResource", "dashboard_resource", "dashboard_url"]

log = Logger()

#: The page's files (package data).
STATIC = Path(__file__).resolve().parent / "static"

_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"content-security-policy": b"default-src 'self'; frame-ancestors 'none'",
}


def dashboard_url(host: str, port: int) -> str:
    """The page's address: ``http://HOST:PORT/`` (an IPv6 host in brackets)."""
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{int(port)}/"


def _harden(request: Request) -> None:
    for name, value in _HEADERS.items():
        request.setHeader(name, value)


#: The page's files: name -> content type.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


class _Asset(Resource):
    """One file of the page, served from memory."""

    isLeaf = True  # noqa: N815 (twisted.web's name)

    def __init__(self, content: bytes, kind: str) -> None:
        super().__init__()
        self.content = content
        self.kind = kind.encode()

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        """The file, with its type."""
        request.setHeader(b"content-type", self.kind)
        return self.content


class _Folder(Resource):
    """Named children only: anything else, and the folder itself, is 404."""

    def getChild(self, path: bytes, request: Request) -> IResource:  # noqa: N802 (twisted.web's name)
        """No such child: 404."""
        return notFound()

    def render(self, request: Request) -> bytes:
        """The folder itself: 404."""
        return notFound().render(request)


class ServersResource(Resource):
    """``/api/servers``: one JSON snapshot of the cluster."""

    isLeaf = True  # noqa: N815 (twisted.web's name)

    def __init__(self, snapshots: Snapshots) -> None:
        super().__init__()
        self.snapshots = snapshots

    def render_GET(self, request: Request) -> int:  # noqa: N802 (twisted.web's name)
        """Take a snapshot; answer it once every server answered (or timed out)."""

        def answer(snapshot: dict[str, Any]) -> None:
            if request.channel is None:
                return
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"cache-control", b"no-store")
            request.write(json.dumps(snapshot, allow_nan=False, default=str).encode() + b"\n")
            request.finish()

        def failed(failure: Failure) -> None:
            log.failure("the dashboard could not take a snapshot of the cluster", failure)
            if request.channel is not None:
                request.setResponseCode(500)
                request.finish()

        self.snapshots.take().addCallbacks(answer, failed)
        return NOT_DONE_YET


class _Root(_Folder):
    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:  # noqa: N802
        _harden(request)
        return super().getChildWithDefault(path, request)


def dashboard_resource(
    snapshots: Snapshots,
    events: EventStream,
    actions: ActionResource,
    static: Path = STATIC,
) -> Resource:
    """The site's root: the page, its files (read once, from ``static``) and the API
    (see the module docstring)."""
    root = _Root()
    files = {name: _Asset((static / name).read_bytes(), kind) for name, kind in FILES.items()}
    root.putChild(b"", files.pop("index.html"))
    folder = _Folder()
    for name, page_file in files.items():
        folder.putChild(name.encode(), page_file)
    root.putChild(b"static", folder)
    api = _Folder()
    api.putChild(b"servers", ServersResource(snapshots))
    api.putChild(b"events", events)
    api.putChild(b"action", actions)
    root.putChild(b"api", api)
    return root


class _QuietSite(Site):
    """A Site that keeps no access log (the stream and the polls would flood the master's)."""

    noisy = False
    displayTracebacks = False  # noqa: N815 (twisted.web's name)

    def log(self, request: object) -> None:
        """Keep no access log."""


class DashboardService(Service):
    """Serves the dashboard of the master's cluster on ``endpoint`` (see the module docstring)."""

    def __init__(
        self,
        reactor: IServerReactor,
        cluster: IClusterView,
        endpoint: str,
        *,
        admin_secret: bytes | None,
        interval: float = 1.0,
        stats_timeout: float | None = None,
        action_timeout: float = ACTION_TIMEOUT,
        on_listen_failure: Callable[[], object] | None = None,
    ) -> None:
        self.setName("dashboard")
        self.reactor = reactor
        self.endpoint = endpoint
        #: Servers have this long to answer their stats (default: one interval, at most 2 s).
        timeout = min(interval, 2.0) if stats_timeout is None else stats_timeout
        self.snapshots = Snapshots(cluster, reactor, timeout)
        self.events = EventStream(self.snapshots, reactor, interval)
        self.actions = ActionResource(cluster, admin_secret, action_timeout)
        self.site = _QuietSite(dashboard_resource(self.snapshots, self.events, self.actions))
        self.on_listen_failure = on_listen_failure
        self.port: IListeningPort | None = None
        #: The page's address once listening.
        self.url: str | None = None

    def startService(self) -> None:
        """Listen; log the page's address (or, failing, why, and call on_listen_failure)."""
        super().startService()
        d: Deferred[IListeningPort] = serverFromString(self.reactor, self.endpoint).listen(
            self.site
        )
        d.addCallbacks(self._listening, self._failed)

    def _listening(self, port: IListeningPort) -> None:
        if not self.running:
            port.stopListening()
            return
        self.port = port
        address = port.getHost()
        self.url = dashboard_url(getattr(address, "host", "127.0.0.1"), address.port)  # type: ignore[attr-defined]
        log.info("dashboard of the cluster at {url}", url=self.url)

    def _failed(self, failure: Failure) -> None:
        log.critical(
            "the dashboard cannot listen on {endpoint}: {error}",
            endpoint=self.endpoint,
            error=failure.getErrorMessage(),
        )
        if self.on_listen_failure is not None:
            self.on_listen_failure()

    def stopService(self) -> Deferred[None] | None:
        """End the open streams and stop listening."""
        super().stopService()
        self.events.close()
        port, self.port = self.port, None
        if port is None:
            return None
        d: Deferred[Any] = port.stopListening()  # type: ignore[assignment]
        return d.addCallback(lambda _: None)
