"""ReplSession against the echo server in memory: every command, event and completion."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.client import connect
from pomelo_twisted.repl import COMMANDS, ReplSession, normalize_target

from .helpers import ECHO, ERROR, KICK, PUSH, REFUSED, MemoryConnector, memory_session

CONNECTED = "connected to mem (6 routes in the dictionary, heartbeat 30 s)"


class SessionTestCase(SynchronousTestCase):
    """A session on a memory connector; ``run`` executes a line and returns the new output."""

    def setUp(self) -> None:
        self.session, self.connector, self.lines = memory_session()

    def run_line(self, line: str, settle: bool = True) -> list[str]:
        """Execute ``line``, deliver everything, and return the output it produced."""
        before = len(self.lines)
        d = self.session.execute(line)
        if settle:
            self.connector.settle()
            self.assertIsNone(self.successResultOf(d))
        return self.lines[before:]

    def connect(self) -> None:
        """Connect to the memory server."""
        self.assertEqual(self.run_line("connect mem"), [CONNECTED])


class ConnectTests(SessionTestCase):
    """connect, disconnect and the connection's events."""

    def test_connect_reports_the_connection(self) -> None:
        """connect passes user and timeout to connect() and reports routes and heartbeat."""
        session, connector, lines = memory_session(timeout=3.0, user={"name": "bot"})
        d = session.execute("connect mem")
        self.successResultOf(d)
        self.assertEqual(
            lines,
            [CONNECTED, 'handshake user: {"name": "bot"}'],
        )
        self.assertEqual(
            connector.calls,
            [("mem", {"user": {"name": "bot"}, "timeout": 3.0, "request_timeout": 3.0})],
        )
        self.assertTrue(session.connected)
        self.assertEqual(session.target, "mem")

    def test_connect_failure_is_one_line(self) -> None:
        """A refused connection is reported as one error line naming the target."""
        self.assertEqual(
            self.run_line(f"connect {REFUSED}"),
            [
                f"error: cannot connect to {REFUSED}: "
                "Connection was refused by other side: nothing listens."
            ],
        )
        self.assertFalse(self.session.connected)
        self.assertEqual(self.session.errors, 1)

    def test_connect_raising_is_one_line(self) -> None:
        """A connect function raising at once (bad endpoint string) is one error line."""

        def bad_connect(reactor: Any, target: str, **kwargs: Any) -> Deferred[Any]:
            raise ValueError(f"Unknown endpoint type: {target!r}")

        lines: list[str] = []
        session = ReplSession(self.connector.clock, lines.append, connect=bad_connect)
        self.successResultOf(session.execute("connect foo"))
        self.assertEqual(lines, ["error: cannot connect to foo: Unknown endpoint type: 'foo'"])

    def test_connect_needs_one_endpoint(self) -> None:
        """connect without an endpoint, or with two, shows its usage."""
        usage = ["error: usage: connect ENDPOINT"]
        self.assertEqual(self.run_line("connect"), usage)
        self.assertEqual(self.run_line("connect a b"), usage)

    def test_connect_twice_is_refused(self) -> None:
        """A second connect while connected says to disconnect first."""
        self.connect()
        self.assertEqual(
            self.run_line("connect other"),
            ["error: already connected to mem; disconnect first"],
        )
        self.assertEqual(len(self.connector.connections), 1)

    def test_connect_can_be_cancelled(self) -> None:
        """cancel() abandons a pending connect with one error line."""
        pending: Deferred[Any] = Deferred()
        lines: list[str] = []
        session = ReplSession(self.connector.clock, lines.append, connect=lambda *a, **kw: pending)
        d = session.execute("connect slow")
        self.assertNoResult(d)
        self.assertTrue(session.cancel())
        self.successResultOf(d)
        self.assertEqual(lines, ["error: connect to slow cancelled"])
        self.assertFalse(session.cancel())

    def test_host_port_shorthand(self) -> None:
        """connect HOST:PORT asks for a tcp: endpoint."""
        self.run_line("connect localhost:3010")
        self.assertEqual(self.connector.calls[0][0], "tcp:host=localhost:port=3010")

    def test_disconnect(self) -> None:
        """disconnect closes the connection and reports it once."""
        self.connect()
        self.assertEqual(self.run_line("disconnect"), ["disconnected: closed by client"])
        self.assertFalse(self.session.connected)
        self.assertIsNone(self.session.client)
        self.assertEqual(self.run_line("disconnect"), ["error: not connected"])

    def test_reconnect_after_disconnect(self) -> None:
        """After a disconnect, connect opens a new connection."""
        self.connect()
        self.run_line("disconnect")
        self.connect()
        self.assertEqual(len(self.connector.connections), 2)

    def test_kick_is_shown(self) -> None:
        """A kick is shown with its reason, then the disconnection."""
        self.connect()
        lines = self.run_line(f'request {KICK} {{"reason": "bye"}}')
        self.assertEqual(
            lines,
            [
                'response (0.0 ms): {"code": 200, "kicking": true}',
                "kicked: bye",
                "disconnected: kicked: bye",
            ],
        )
        self.assertFalse(self.session.connected)

    def test_connection_lost_is_shown(self) -> None:
        """The server hanging up is shown as a disconnection with its reason."""
        self.connect()
        self.connector.conn.pump.serverIO.loseConnection()
        self.connector.settle()
        self.assertEqual(len(self.lines), 2)
        self.assertTrue(self.lines[1].startswith("disconnected: "), self.lines[1])
        self.assertIsNone(self.session.client)

    def test_close_is_quiet(self) -> None:
        """close() (the REPL exiting) closes the connection without a disconnected line."""
        self.connect()
        d = self.session.close()
        self.connector.settle()
        self.successResultOf(d)
        self.assertEqual(self.lines, [CONNECTED])
        self.assertFalse(self.session.connected)
        self.successResultOf(self.session.close())  # nothing to close: fires at once


class RequestTests(SessionTestCase):
    """request and notify, their bodies and their errors."""

    def setUp(self) -> None:
        super().setUp()
        self.connect()

    def test_request_with_json_body(self) -> None:
        """request sends the JSON body and shows the response as JSON."""
        self.assertEqual(
            self.run_line(f'request {ECHO} {{"a": [1, 2], "t": "héllo"}}'),
            ['response (0.0 ms): {"a": [1, 2], "t": "héllo"}'],
        )

    def test_request_default_body(self) -> None:
        """Without a body, request sends {}."""
        self.assertEqual(self.run_line(f"request {ECHO}"), ["response (0.0 ms): {}"])

    def test_request_latency(self) -> None:
        """The latency shown is the reactor time between sending and the response."""
        d = self.session.execute(f'request {ECHO} {{"delayMs": 250}}')
        self.connector.settle()
        self.assertNoResult(d)
        self.connector.clock.advance(0.25)
        self.connector.settle()
        self.successResultOf(d)
        self.assertEqual(self.lines[-1], 'response (250.0 ms): {"delayMs": 250}')

    def test_error_body_is_a_response(self) -> None:
        """An error body from the server is shown like any response."""
        self.assertEqual(
            self.run_line(f'request {ERROR} {{"code": 501, "msg": "no"}}'),
            ['response (0.0 ms): {"code": 501, "msg": "no"}'],
        )

    def test_bad_json(self) -> None:
        """A body that is not JSON is one error line and sends nothing."""
        lines = self.run_line(f"request {ECHO} {{nope")
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("error: body is not JSON: "), lines[0])
        self.assertEqual(self.connector.conn.client.pending_requests, 0)

    def test_request_needs_a_route(self) -> None:
        """request without a route shows its usage."""
        self.assertEqual(self.run_line("request"), ["error: usage: request ROUTE [JSON]"])

    def test_request_timeout(self) -> None:
        """A request with no response within the timeout is one error line."""
        d = self.session.execute(
            f"request {ECHO}",
        )  # not delivered: no response
        self.connector.clock.advance(10)
        self.successResultOf(d)
        self.assertEqual(
            self.lines[-1],
            f"error: request 1 to '{ECHO}' got no response within 10 s",
        )

    def test_request_can_be_cancelled(self) -> None:
        """cancel() abandons a pending request with one error line."""
        d = self.session.execute(f"request {ECHO}")
        self.assertTrue(self.session.cancel())
        self.successResultOf(d)
        self.assertEqual(self.lines[-1], f"error: request to {ECHO} cancelled")

    def test_notify(self) -> None:
        """notify sends the route and JSON body to the server."""
        self.assertEqual(
            self.run_line('notify chat.chatHandler.typing {"on": true}'),
            ["notify sent to chat.chatHandler.typing"],
        )
        self.assertEqual(
            self.connector.handler.notified, [("chat.chatHandler.typing", {"on": True})]
        )

    def test_notify_bad_json(self) -> None:
        """notify with a body that is not JSON sends nothing."""
        lines = self.run_line("notify a.b.c [1,")
        self.assertTrue(lines[0].startswith("error: body is not JSON: "), lines)
        self.assertEqual(self.connector.handler.notified, [])

    def test_push_is_shown(self) -> None:
        """A push is shown as it arrives, with its route and JSON body."""
        self.assertEqual(
            self.run_line(f'request {PUSH} {{"hi": 1}}'),
            ['push onPush {"hi": 1}', 'response (0.0 ms): {"code": 200}'],
        )
        self.assertEqual(self.run_line(f'notify {PUSH} {{"n": 2}}')[-1], 'push onPush {"n": 2}')

    def test_push_on_any_route(self) -> None:
        """Pushes on routes nobody subscribed to are shown too."""
        self.connector.conn.agent.push("area.onMove", {"x": 1})
        self.connector.settle()
        self.assertEqual(self.lines[-1], 'push area.onMove {"x": 1}')

    def test_route_callbacks_still_run(self) -> None:
        """Showing pushes keeps the client's own per-route callbacks working."""
        received = self.connector.conn.collect("onPush")
        self.run_line(f'request {PUSH} {{"hi": 1}}')
        self.assertEqual(received, [{"hi": 1}])

    def test_lines_wait_their_turn(self) -> None:
        """A line given while one runs waits, then starts on a later reactor turn."""
        first = self.session.execute(f"request {ECHO} 1")
        second = self.session.execute(f"request {ECHO} 2")
        self.assertNoResult(second)
        self.connector.conn.flush()
        self.successResultOf(first)
        self.assertNoResult(second)  # the next turn: the clock has not moved yet
        self.connector.settle()
        self.successResultOf(second)
        self.assertEqual(self.lines[-2:], ["response (0.0 ms): 1", "response (0.0 ms): 2"])


class OtherCommandTests(SessionTestCase):
    """routes, help, quit, unknown commands, history."""

    def test_routes(self) -> None:
        """routes lists the handshake dictionary's routes, sorted."""
        self.connect()
        self.assertEqual(
            self.run_line("routes"),
            [
                "connector.entryHandler.echo",
                "connector.entryHandler.error",
                "connector.entryHandler.fail",
                "connector.entryHandler.kick",
                "connector.entryHandler.push",
                "onPush",
            ],
        )

    def test_routes_without_dictionary(self) -> None:
        """A server without a dictionary is said to have sent none."""
        session, connector, lines = memory_session(MemoryConnector(plain=True))
        session.execute("connect mem")
        session.execute("routes")
        connector.settle()
        self.assertEqual(
            lines[-2:],
            [
                "connected to mem (0 routes in the dictionary, heartbeat 30 s)",
                "the server sent no route dictionary",
            ],
        )

    def test_not_connected(self) -> None:
        """request, notify and routes without a connection say how to connect."""
        for line in (f"request {ECHO}", "notify a.b.c", "routes"):
            self.assertEqual(self.run_line(line), ["error: not connected; use: connect ENDPOINT"])

    def test_unknown_command(self) -> None:
        """An unknown command is one error line suggesting help."""
        self.assertEqual(
            self.run_line("fly me"),
            ["error: unknown command 'fly'; type help for the list of commands"],
        )

    def test_commands_are_case_insensitive(self) -> None:
        """Command names match whatever their case."""
        self.assertEqual(self.run_line("ROUTES"), ["error: not connected; use: connect ENDPOINT"])

    def test_help_lists_every_command(self) -> None:
        """help has a line for every command but the exit alias."""
        lines = self.run_line("help")
        for name in COMMANDS:
            if name != "exit":
                self.assertTrue(any(line.strip().startswith(name) for line in lines), name)

    def test_quit_and_exit(self) -> None:
        """quit and exit set done; later lines do nothing."""
        for word in ("quit", "exit"):
            session, _, lines = memory_session()
            self.successResultOf(session.execute(word))
            self.assertTrue(session.done)
            self.successResultOf(session.execute("help"))
            self.assertEqual(lines, [])

    def test_blank_lines_and_comments(self) -> None:
        """Blank lines and # comments do nothing and stay out of the history."""
        self.assertEqual(self.run_line("   "), [])
        self.assertEqual(self.run_line("# a comment"), [])
        self.assertEqual(self.session.history, [])

    def test_history(self) -> None:
        """Every executed line is in the history, stripped, in order."""
        self.run_line("  help ")
        self.run_line("nope")
        self.assertEqual(self.session.history, ["help", "nope"])

    def test_default_connect_is_the_clients(self) -> None:
        """Without a connect argument the session uses pomelo_twisted.client.connect."""
        session = ReplSession(self.connector.clock, self.lines.append)
        self.assertIs(session._connect, connect)


class CompletionTests(SessionTestCase):
    """complete(): commands, routes, endpoints."""

    def test_commands(self) -> None:
        """The first word completes to command names."""
        self.assertEqual(self.session.complete(""), sorted(COMMANDS))
        self.assertEqual(self.session.complete("r"), ["request", "routes"])
        self.assertEqual(self.session.complete("req"), ["request"])
        self.assertEqual(self.session.complete("  di"), ["disconnect"])
        self.assertEqual(self.session.complete("zz"), [])

    def test_routes_from_dictionary(self) -> None:
        """The word after request/notify completes to the dictionary's routes."""
        self.connect()
        self.assertEqual(
            self.session.complete("request connector.entryHandler.e"),
            ["connector.entryHandler.echo", "connector.entryHandler.error"],
        )
        self.assertEqual(self.session.complete("notify on"), ["onPush"])
        self.assertEqual(len(self.session.complete("request ")), 6)

    def test_used_routes(self) -> None:
        """Routes used successfully stay offered; routes answered with an error code do not."""
        self.connect()
        self.run_line('notify chat.chatHandler.typing {"on": true}')
        self.run_line("request chat.chatHandler.send")  # code 500: no handler
        self.run_line("disconnect")
        self.assertEqual(self.session.complete("request c"), ["chat.chatHandler.typing"])

    def test_nothing_after_the_route(self) -> None:
        """The body and other commands' arguments have no candidates."""
        self.connect()
        self.assertEqual(self.session.complete(f"request {ECHO} "), [])
        self.assertEqual(self.session.complete("help r"), [])

    def test_endpoints(self) -> None:
        """The word after connect completes to endpoints connected to before."""
        self.connect()
        self.assertEqual(self.session.complete("connect m"), ["mem"])
        self.assertEqual(self.session.complete("connect x"), [])


class NormalizeTargetTests(SynchronousTestCase):
    """The HOST:PORT shorthand."""

    def test_shorthand(self) -> None:
        """localhost and dotted hosts with a port become tcp: endpoints."""
        self.assertEqual(normalize_target("localhost:3010"), "tcp:host=localhost:port=3010")
        self.assertEqual(normalize_target("10.0.0.2:80"), "tcp:host=10.0.0.2:port=80")
        self.assertEqual(
            normalize_target("game.example.com:3010"), "tcp:host=game.example.com:port=3010"
        )

    def test_endpoints_unchanged(self) -> None:
        """Endpoint strings and URLs are left alone."""
        for target in ("tcp:127.0.0.1:3010", "ws://h:1/", "unix:/tmp/x", "tcp:3010", "tls:a:1"):
            self.assertEqual(normalize_target(target), target)
