"""The dashboard's site in memory (treq's StubTreq): the page, its files, the snapshot
JSON and the Server-Sent Events stream on a Clock."""

from __future__ import annotations

import json
from typing import Any

import treq
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Request

from pomelo_twisted.dashboard.actions import ActionResource
from pomelo_twisted.dashboard.events import EventStream, sse_frame
from pomelo_twisted.dashboard.site import dashboard_resource, dashboard_url
from pomelo_twisted.dashboard.snapshot import Snapshots

from .fakes import FakeCluster

BASE = "http://dashboard.test"


def events_in(chunks: list[bytes]) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a Server-Sent Events body received so far."""
    found = []
    for block in b"".join(chunks).decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


class DashboardCase(SynchronousTestCase):
    """A dashboard site over a fake master, on a Clock, reached through StubTreq."""

    interval = 1.0
    max_clients = 4

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster = FakeCluster()
        self.snapshots = Snapshots(self.cluster, self.clock, stats_timeout=0.5)
        self.events = EventStream(self.snapshots, self.clock, self.interval, self.max_clients)
        actions = ActionResource(self.cluster, b"admin-secret-123")
        self.stub = StubTreq(dashboard_resource(self.snapshots, self.events, actions))

    def get(self, path: str) -> Any:
        d = self.stub.get(BASE + path)
        self.stub.flush()
        return self.successResultOf(d)

    def body(self, response: Any) -> bytes:
        d = response.content()
        self.stub.flush()
        return self.successResultOf(d)  # type: ignore[no-any-return]

    def open_stream(self) -> tuple[list[bytes], Request]:
        """Open /api/events; the chunks received (growing) and the server's request."""
        response = self.get("/api/events")
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.headers.getRawHeaders(b"content-type"), [b"text/event-stream; charset=utf-8"]
        )
        self.assertEqual(response.headers.getRawHeaders(b"cache-control"), [b"no-cache"])
        chunks: list[bytes] = []
        treq.collect(response, chunks.append).addErrback(lambda _: None)
        self.stub.flush()
        return chunks, self.events.clients[-1]

    def close_stream(self, request: Request) -> None:
        """The page goes away: its connection drops."""
        assert request.channel is not None
        request.channel.transport.loseConnection()
        self.stub.flush()


class PageTests(DashboardCase):
    """/, /static/... and /api/servers."""

    def test_page(self) -> None:
        """/ is the HTML page, with its own script and style only (CSP), never framed."""
        response = self.get("/")
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers.getRawHeaders(b"content-type")[0].startswith(b"text/html"))
        csp = response.headers.getRawHeaders(b"content-security-policy")[0]
        self.assertIn(b"default-src 'self'", csp)
        self.assertEqual(response.headers.getRawHeaders(b"x-frame-options"), [b"DENY"])
        page = self.body(response)
        self.assertIn(b'<script src="/static/dashboard.js" defer></script>', page)
        self.assertNotIn(b"http://", page)  # no CDN, nothing from elsewhere
        self.assertNotIn(b"https://", page)

    def test_static_files(self) -> None:
        """The script and the style are served with their types; the folder is not listed."""
        script = self.get("/static/dashboard.js")
        self.assertEqual(script.code, 200)
        self.assertIn(b"javascript", script.headers.getRawHeaders(b"content-type")[0])
        self.assertIn(b'new EventSource("/api/events")', self.body(script))
        style = self.get("/static/dashboard.css")
        self.assertEqual(style.headers.getRawHeaders(b"content-type"), [b"text/css; charset=utf-8"])
        self.assertEqual(self.get("/static/").code, 404)
        self.assertEqual(self.get("/static/nothing.js").code, 404)

    def test_servers_snapshot(self) -> None:
        """/api/servers answers one snapshot as JSON, every server, the master first."""
        response = self.get("/api/servers")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        snapshot = json.loads(self.body(response))
        self.assertEqual(
            [s["id"] for s in snapshot["servers"]], ["master-server-1", "connector-1", "chat-1"]
        )
        self.assertEqual(snapshot["servers"][1]["connections"], 3)

    def test_url(self) -> None:
        """The page's address puts an IPv6 host in brackets."""
        self.assertEqual(dashboard_url("127.0.0.1", 4006), "http://127.0.0.1:4006/")
        self.assertEqual(dashboard_url("::1", 4006), "http://[::1]:4006/")


class StreamTests(DashboardCase):
    """/api/events: SSE framing, one snapshot per interval while some page listens."""

    def test_frame(self) -> None:
        """An event is its name, its data as one line of JSON, and a blank line."""
        self.assertEqual(
            sse_frame("snapshot", {"a": [1, "x\ny"]}),
            b'event: snapshot\ndata: {"a":[1,"x\\ny"]}\n\n',
        )

    def test_no_polling_without_a_page(self) -> None:
        """Nobody listens: the servers are never asked, however long the clock runs."""
        self.clock.advance(10)
        self.assertEqual(self.cluster.stats_calls, [])
        self.assertFalse(self.events.polling)

    def test_snapshot_at_once_then_each_interval(self) -> None:
        """A page gets the retry delay and a snapshot at once, then one per interval."""
        chunks, _ = self.open_stream()
        self.assertTrue(b"".join(chunks).startswith(b"retry: 2000\n\n"))
        self.assertEqual(len(events_in(chunks)), 1)
        self.cluster.table[2]["pid"] = 777
        self.clock.advance(self.interval)
        self.stub.flush()
        events = events_in(chunks)
        self.assertEqual([name for name, _ in events], ["snapshot", "snapshot"])
        self.assertEqual(events[1][1]["servers"][2]["pid"], 777)
        self.assertEqual(events[1][1]["time"], self.interval)

    def test_polling_stops_when_the_last_page_leaves(self) -> None:
        """Two pages share one poll per interval; once both left, polling stops."""
        first, first_request = self.open_stream()
        second, second_request = self.open_stream()
        self.assertEqual(len(events_in(second)), 1)  # the latest snapshot at once
        asked = len(self.cluster.stats_calls)
        self.assertEqual(asked, 2)  # one snapshot taken for both
        self.close_stream(first_request)
        self.clock.advance(self.interval)
        self.stub.flush()
        self.assertEqual(len(events_in(second)), 2)
        self.assertEqual(len(events_in(first)), 1)
        self.close_stream(second_request)
        self.assertFalse(self.events.polling)
        calls = len(self.cluster.stats_calls)
        self.clock.advance(10 * self.interval)
        self.assertEqual(len(self.cluster.stats_calls), calls)

    def test_slow_snapshot_skips_ticks(self) -> None:
        """While a snapshot waits for a slow server, ticks take no other (no pile-up);
        it is sent when it completes."""
        slow: Deferred[dict[str, Any] | None] = Deferred()
        self.cluster.pending["chat-1"] = slow
        chunks, _ = self.open_stream()
        self.assertEqual(events_in(chunks), [])
        self.clock.advance(3 * self.interval)
        self.assertEqual([c for c, _ in self.cluster.stats_calls], ["connector-1", "chat-1"])
        slow.callback({"connections": 9})
        self.stub.flush()
        events = events_in(chunks)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0][1]["servers"][2]["connections"], 9)

    def test_head_opens_no_stream(self) -> None:
        """HEAD answers the stream's headers and opens no stream (nothing is polled)."""
        d = self.stub.head(BASE + "/api/events")
        self.stub.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 200)
        self.assertEqual(self.events.clients, [])
        self.assertFalse(self.events.polling)

    def test_too_many_streams(self) -> None:
        """Past max_clients open streams, a new one is refused with 503 naming the limit."""
        for _ in range(self.max_clients):
            self.open_stream()
        response = self.get("/api/events")
        self.assertEqual(response.code, 503)
        self.assertIn(b"at most 4", self.body(response))

    def test_close_ends_every_stream(self) -> None:
        """close() (the dashboard stopping) ends the streams and stops polling."""
        _, request = self.open_stream()
        self.events.close()
        self.stub.flush()
        self.assertTrue(request.finished)
        self.assertFalse(self.events.polling)
        self.assertEqual(self.events.clients, [])
