"""The ``pomelo-twisted`` command: arguments, output formats, and every command on fakes.

The commands run through :func:`execute` (and the start helpers) with a
``Clock`` as reactor and a fake ``connect`` handing out a fake client: no
sockets, no processes, no global reactor.
"""

from __future__ import annotations

import io
import json
import os
import sys
from argparse import Namespace
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.admin import AdminError, LoginRefused, MasterUnreachable
from pomelo_twisted.admin.cli import (
    CLUSTER_TIMEOUT,
    POLL_INTERVAL,
    START_TIMEOUT,
    STOP_TIMEOUT,
    await_started,
    client_endpoints,
    execute,
    format_table,
    format_uptime,
    load_target,
    main,
    master_argv,
    parse_args,
    parse_entry,
    run_reactor,
    start_daemon,
    start_foreground,
)
from pomelo_twisted.cluster.master import TWISTD
from pomelo_twisted.errors import ConfigError

from .test_client import SECRET, game_dir, temp_dir, write_master

UNREACHABLE = (
    "cannot reach the master at 127.0.0.1:4005 (Connection refused): "
    "is the cluster running? start it with: pomelo-twisted start"
)


class FakeClient:
    """An AdminClient stand-in answering canned results (or failures) per method."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.closed = False
        self.address = "127.0.0.1:4005"

    def _answer(self, method: str, *args: object) -> Deferred[Any]:
        self.calls.append((method, args))
        answer = self.answers.get(method)
        if isinstance(answer, Exception):
            return fail(answer)
        return succeed(answer)

    def __getattr__(self, method: str) -> Any:
        """list, stop, kill, restart, add, command: record the call, answer the canned
        result."""
        if method not in (
            "list",
            "stop",
            "kill",
            "restart",
            "add",
            "command",
            "restart_rolling",
            "drain",
        ):
            raise AttributeError(method)
        return lambda *args: self._answer(method, *args)

    def close(self) -> Deferred[None]:
        """Closed at once."""
        self.closed = True
        return succeed(None)


class FakeConnect:
    """A ``connect`` stand-in: hands out the next result (a client or an error) per attempt."""

    def __init__(self, *results: FakeClient | Exception) -> None:
        self.results = list(results)
        self.attempts: list[tuple[str, bytes, float]] = []

    def __call__(self, reactor: Any, endpoint: str, secret: bytes, timeout: float) -> Any:
        """The next result; the last one repeats."""
        self.attempts.append((endpoint, secret, timeout))
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, Exception):
            return fail(result)
        return succeed(result)


def without_env_secret(case: SynchronousTestCase) -> None:
    """Hide POMELO_CLUSTER_SECRET for this test: the secret comes from master.json."""
    case.patch(os, "environ", {k: v for k, v in os.environ.items() if k != "POMELO_CLUSTER_SECRET"})


class ParseTests(SynchronousTestCase):
    """Command-line parsing."""

    def setUp(self) -> None:
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def test_defaults(self) -> None:
        """--app defaults to . and --env to development."""
        args = parse_args(["list"])
        self.assertEqual((args.command, args.app, args.env), ("list", ".", "development"))

    def test_folder_options_before_or_after_the_command(self) -> None:
        """--app and --env are accepted before the command, after it, or split."""
        for argv in (
            ["--app", "game", "--env", "production", "list"],
            ["list", "--app", "game", "--env", "production"],
            ["--app", "game", "list", "--env", "production"],
        ):
            args = parse_args(argv)
            self.assertEqual((args.app, args.env), ("game", "production"), argv)

    def test_command_arguments(self) -> None:
        """stop takes any number of ids, restart one, start a --daemon flag."""
        self.assertEqual(parse_args(["stop"]).ids, [])
        self.assertEqual(parse_args(["stop", "a", "b", "--app", "g"]).ids, ["a", "b"])
        self.assertEqual(parse_args(["restart", "chat-server-1"]).id, "chat-server-1")
        self.assertFalse(parse_args(["start"]).daemon)
        self.assertTrue(parse_args(["start", "--daemon"]).daemon)

    def test_add_parses_values(self) -> None:
        """add turns port/clientPort into integers and true/false into booleans."""
        words = "host=127.0.0.1 port=4252 type=chat id=chat-server-3 auto-restart=true"
        args = parse_args(["add", *words.split(), "frontend=false", "clientPort=3012", "name=a=b"])
        expected = {"host": "127.0.0.1", "port": 4252, "type": "chat", "id": "chat-server-3"}
        expected |= {"auto-restart": True, "frontend": False, "clientPort": 3012, "name": "a=b"}
        self.assertEqual(args.entry, expected)

    def test_bad_add_arguments_exit_2(self) -> None:
        """A bad add word exits 2 with a message saying what is wrong."""
        cases = {
            ("type=chat",): "add needs id=...",
            ("id=x",): "add needs type=...",
            ("type=chat", "id=x", "port=http"): "port must be a number, got 'http'",
            ("type=chat", "id=x", "oops"): "expected key=value, got 'oops'",
            ("type=chat", "id=x", "id=y"): "id given twice",
        }
        for words, message in cases.items():
            self.stderr.truncate(0)
            with self.assertRaises(SystemExit) as caught:
                parse_args(["add", *words])
            self.assertEqual(caught.exception.code, 2)
            self.assertIn(message, self.stderr.getvalue())

    def test_usage_errors_exit_2(self) -> None:
        """No command, an unknown one, or restart without an id exit 2."""
        for argv in ([], ["frobnicate"], ["restart"], ["add"]):
            with self.assertRaises(SystemExit) as caught:
                parse_args(argv)
            self.assertEqual(caught.exception.code, 2, argv)

    def test_missing_game_folder_exits_2(self) -> None:
        """A command whose --app is missing or not a game folder is a usage error, exit 2."""
        empty = str(temp_dir(self))
        for argv, message in (
            (["--app", empty + "/nope", "list"], "does not exist"),
            (["list", "--app", empty], "is not a game folder (no config/)"),
        ):
            self.stderr.truncate(0)
            with self.assertRaises(SystemExit) as caught:
                main(argv)
            self.assertEqual(caught.exception.code, 2, argv)
            self.assertIn(message, self.stderr.getvalue())

    def test_start_log_level(self) -> None:
        """start --log-level reaches the master's command line; a bad level exits 2."""
        self.assertEqual(parse_args(["start", "--log-level", "warn"]).log_level, "warn")
        with self.assertRaises(SystemExit) as caught:
            parse_args(["start", "--log-level", "loud"])
        self.assertEqual(caught.exception.code, 2)

    def test_parse_entry_directly(self) -> None:
        """parse_entry keeps other values as strings and raises ValueError on bad words."""
        self.assertEqual(
            parse_entry(["type=chat", "id=c", "host=::1"]),
            {"type": "chat", "id": "c", "host": "::1"},
        )
        self.assertRaises(ValueError, parse_entry, ["=x", "type=chat", "id=c"])


class FormatTests(SynchronousTestCase):
    """The uptime and the list table."""

    def test_uptime(self) -> None:
        """Uptime reads like 45s, 2m05s, 1h02m, 1d01h; None is '-'."""
        cases = {None: "-", 0: "0s", -3: "0s", 45.9: "45s", 125: "2m05s", 3720: "1h02m"}
        for seconds, text in (cases | {90000: "1d01h"}).items():
            self.assertEqual(format_uptime(seconds), text)

    def test_table(self) -> None:
        """The table is aligned, '-' stands for None, IPv6 hosts are bracketed, breakers
        that are not closed are listed."""
        master_host = "127.0.0.1"
        keys = ("id", "type", "state", "pid", "host", "port", "uptime", "connections", "restarts")
        rows: list[dict[str, Any]] = [
            dict(zip(keys, values, strict=True))
            for values in (
                ("master-server-1", "master", "up", 100, master_host, 4005, 3720.5, 3, 0),
                ("chat-server-1", "chat", "down", None, "127.0.0.1", 4250, None, None, 2),
            )
        ]
        rows.append(
            {
                "id": "v6",
                "type": "chat",
                "state": "up",
                "host": "::1",
                "port": 1,
                "breakers": {"chat-1": "open"},
            }
        )
        lines = format_table(rows).splitlines()
        self.assertEqual(
            lines,
            [
                "ID               TYPE    STATE  PID  HOST:PORT       "
                "UPTIME  CONNECTIONS  RESTARTS  BREAKERS",
                "master-server-1  master  up     100  127.0.0.1:4005  1h02m   3            0"
                "         -",
                "chat-server-1    chat    down   -    127.0.0.1:4250  -       -            2"
                "         -",
                "v6               chat    up     -    [::1]:1         -       -            -"
                "         chat-1:open",
            ],
        )

    def test_empty_table(self) -> None:
        """No rows still prints the header."""
        header = [
            "ID",
            "TYPE",
            "STATE",
            "PID",
            "HOST:PORT",
            "UPTIME",
            "CONNECTIONS",
            "RESTARTS",
            "BREAKERS",
        ]
        self.assertEqual(format_table([]).split(), header)


class TargetTests(SynchronousTestCase):
    """Finding the game folder and its master."""

    def setUp(self) -> None:
        without_env_secret(self)

    def test_master_from_config(self) -> None:
        """The endpoint and secret come from config/master.json."""
        folder = game_dir(self, port=4105)
        target = load_target(Namespace(app=str(folder), env="development"))
        self.assertEqual(target.endpoint, "tcp:host=127.0.0.1:port=4105")
        self.assertEqual(target.secret, SECRET.encode())
        self.assertEqual(target.config.base_dir, folder.resolve())

    def test_default_port(self) -> None:
        """Without a port in master.json, the master's default port 3005 is used."""
        folder = game_dir(self, port=None)
        target = load_target(Namespace(app=str(folder), env="development"))
        self.assertEqual(target.endpoint, "tcp:host=127.0.0.1:port=3005")

    def test_ipv6_master_and_frontend(self) -> None:
        """An IPv6 master host gives a parsable endpoint; frontends are shown bracketed."""
        folder = game_dir(self, port=None)
        master = {"id": "m", "host": "::1", "secret": "x" + SECRET, "adminSecret": SECRET}
        (folder / "config" / "master.json").write_text(json.dumps({"development": master}))
        target = load_target(Namespace(app=str(folder), env="development"))
        reactor = MemoryReactor()
        clientFromString(reactor, target.endpoint).connect(Factory())
        self.assertEqual(reactor.tcpClients[-1][:2], ("::1", 3005))
        entry = {"id": "c-1", "host": "::1", "port": 1, "clientPort": 3010, "frontend": True}
        servers = {"connector": [entry]}
        (folder / "config" / "servers.json").write_text(json.dumps({"development": servers}))
        self.assertEqual(client_endpoints(target.config), ["c-1: clients connect to [::1]:3010"])

    def test_missing_folder_or_secret(self) -> None:
        """A missing folder, a folder without config/, or no secret are named ConfigErrors."""
        missing = temp_dir(self) / "missing"
        with self.assertRaises(ConfigError) as caught:
            load_target(Namespace(app=str(missing), env="development"))
        self.assertIn(f"no game folder {missing.resolve()}", str(caught.exception))
        missing.mkdir()
        with self.assertRaises(ConfigError) as caught:
            load_target(Namespace(app=str(missing), env="development"))
        self.assertIn("is not a game folder", str(caught.exception))
        folder = game_dir(self)
        write_master(folder, secret=None)
        with self.assertRaises(ConfigError) as caught:
            load_target(Namespace(app=str(folder), env="development"))
        self.assertIn("needs a 'secret'", str(caught.exception))


class CommandTests(SynchronousTestCase):
    """Each master command through ``execute`` with a fake client."""

    def setUp(self) -> None:
        without_env_secret(self)
        self.clock = Clock()
        self.folder = game_dir(self)
        self.out = io.StringIO()
        self.err = io.StringIO()

    def start(self, connect: FakeConnect, command: str, **options: Any) -> Deferred[int]:
        """Start one command on the Clock."""
        args = Namespace(command=command, app=str(self.folder), env="development", **options)
        return execute(self.clock, args, self.out, self.err, connect=connect)

    def finish(self, connect: FakeConnect, command: str, **options: Any) -> int:
        """Run one command to its exit status (it must not wait on the clock)."""
        code: int = self.successResultOf(self.start(connect, command, **options))
        return code

    def test_list(self) -> None:
        """list logs in with the game's endpoint and secret, prints the table, exits 0."""
        rows = [{"id": "chat-server-1", "type": "chat", "state": "down", "port": 4250}]
        client = FakeClient(list=rows)
        connect = FakeConnect(client)
        self.assertEqual(self.finish(connect, "list"), 0)
        self.assertEqual(self.out.getvalue(), format_table(rows))
        self.assertEqual(connect.attempts, [("tcp:host=127.0.0.1:port=4005", SECRET.encode(), 5.0)])
        self.assertTrue(client.closed)
        self.assertEqual(self.err.getvalue(), "")

    def test_command_prints_the_answer_as_json(self) -> None:
        """command ID NAME relays name and values, prints a dict answer as JSON."""
        client = FakeClient(command={"drained": True})
        code = self.finish(
            FakeConnect(client), "command", id="chat-1", name="drain", values={"g": 1}, timeout=9.0
        )
        self.assertEqual(code, 0)
        self.assertEqual(client.calls, [("command", ("chat-1", "drain", {"g": 1}, 9.0))])
        self.assertEqual(self.out.getvalue(), '{\n  "drained": true\n}\n')

    def test_command_refused_is_one_line(self) -> None:
        """A refused command is reported on stderr as one line, exit 1."""
        client = FakeClient(command=AdminError("server chat-1 has no command 'x'"))
        code = self.finish(
            FakeConnect(client), "command", id="chat-1", name="x", values={}, timeout=9.0
        )
        self.assertEqual(code, 1)
        self.assertEqual(
            self.err.getvalue(), "pomelo-twisted: error: server chat-1 has no command 'x'\n"
        )

    def test_list_malformed(self) -> None:
        """A list answer that is not rows is an error, exit 1."""
        self.assertEqual(self.finish(FakeConnect(FakeClient(list={"x": 1})), "list"), 1)
        self.assertIn("malformed server list", self.err.getvalue())

    def test_stop_ids(self) -> None:
        """stop with ids prints the stopped servers."""
        client = FakeClient(stop={"stopped": ["a", "b"]})
        self.assertEqual(self.finish(FakeConnect(client), "stop", ids=["a", "b"]), 0)
        self.assertEqual(client.calls, [("stop", (["a", "b"],))])
        self.assertEqual(self.out.getvalue(), "stopped: a, b\n")

    def test_stop_cluster_waits_until_gone(self) -> None:
        """stop without ids waits until the master refuses connections, then says so."""
        client = FakeClient(stop={"stopping": "cluster"})
        still_up = FakeClient()
        connect = FakeConnect(client, still_up, MasterUnreachable(UNREACHABLE))
        d = self.start(connect, "stop", ids=[])
        self.assertNoResult(d)
        stopping = "stopping the cluster (frontends, then backends, then the master)\n"
        self.assertEqual(self.out.getvalue(), stopping)
        self.assertEqual(client.calls, [("stop", ([],))])
        self.assertTrue(still_up.closed)
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual(self.successResultOf(d), 0)
        self.assertTrue(self.out.getvalue().endswith("\nstopped\n"))
        self.assertEqual(len(connect.attempts), 3)

    def test_stop_cluster_gives_up(self) -> None:
        """A master still answering after the stop timeout is an error, exit 1."""
        connect = FakeConnect(FakeClient(stop={"stopping": "cluster"}))
        d = self.start(connect, "stop", ids=[])
        for _ in range(int(STOP_TIMEOUT / POLL_INTERVAL) + 1):
            self.clock.advance(POLL_INTERVAL)
        self.assertEqual(self.successResultOf(d), 1)
        self.assertIn("the master still answers after 60s", self.err.getvalue())

    def test_stop_cluster_retries_a_failed_login(self) -> None:
        """While waiting, a login failing mid-way (master going down) is retried."""
        connect = FakeConnect(
            FakeClient(stop={}), AdminError("closed the connection"), MasterUnreachable("gone")
        )
        d = self.start(connect, "stop", ids=[])
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual(self.successResultOf(d), 0)

    def test_kill(self) -> None:
        """kill prints the killed servers (or that there were none)."""
        client = FakeClient(kill={"killed": ["chat-server-1", "connector-server-1"]})
        self.assertEqual(self.finish(FakeConnect(client), "kill"), 0)
        self.assertEqual(self.out.getvalue(), "killed: chat-server-1, connector-server-1\n")
        self.out = io.StringIO()
        self.assertEqual(self.finish(FakeConnect(FakeClient(kill={"killed": []})), "kill"), 0)
        self.assertEqual(self.out.getvalue(), "killed: no server process\n")

    def test_restart(self) -> None:
        """restart prints the new pid."""
        client = FakeClient(restart={"restarted": "chat-server-1", "pid": 4242})
        self.assertEqual(self.finish(FakeConnect(client), "restart", id="chat-server-1"), 0)
        self.assertEqual(client.calls, [("restart", ("chat-server-1",))])
        self.assertEqual(self.out.getvalue(), "restarted chat-server-1 (pid 4242)\n")

    def test_restart_rolling(self) -> None:
        """restart --rolling TYPE prints one line per restarted server."""
        rows = [{"id": "chat-server-1", "pid": 5}, {"id": "chat-server-2", "pid": 6}]
        client = FakeClient(restart_rolling=rows)
        code = self.finish(FakeConnect(client), "restart", id=None, rolling="chat")
        self.assertEqual(code, 0)
        self.assertEqual(client.calls, [("restart_rolling", ("chat",))])
        self.assertEqual(
            self.out.getvalue(),
            "restarted chat-server-1 (pid 5)\nrestarted chat-server-2 (pid 6)\n",
        )

    def test_drain(self) -> None:
        """drain sends the id and grace and prints the server's report."""
        report = {"kicked": 3, "left": 0, "waited": 0.25, "state": "draining"}
        client = FakeClient(drain=report)
        code = self.finish(FakeConnect(client), "drain", id="connector-server-1", grace=2.0)
        self.assertEqual(code, 0)
        self.assertEqual(client.calls, [("drain", ("connector-server-1", 2.0))])
        self.assertEqual(
            self.out.getvalue(),
            "drained connector-server-1: 3 clients kicked, 0 requests left after 0.25s\n",
        )

    def test_restart_and_drain_arguments(self) -> None:
        """restart takes an ID or --rolling TYPE (exactly one); drain's grace is >= 0."""
        self.assertEqual(parse_args(["restart", "--rolling", "chat"]).rolling, "chat")
        self.assertEqual(parse_args(["drain", "c-1", "--grace", "3"]).grace, 3.0)
        for argv in (
            ["restart"],
            ["restart", "c-1", "--rolling", "chat"],
            ["drain", "c-1", "--grace", "-1"],
        ):
            with self.assertRaises(SystemExit):
                parse_args(argv)

    def test_add(self) -> None:
        """add sends the parsed entry and prints the new server's pid."""
        entry = parse_args(["add", "type=chat", "id=chat-server-3", "port=4252"]).entry
        client = FakeClient(add={"added": "chat-server-3", "pid": 77})
        self.assertEqual(self.finish(FakeConnect(client), "add", entry=entry), 0)
        self.assertEqual(client.calls, [("add", (entry,))])
        self.assertEqual(entry, {"type": "chat", "id": "chat-server-3", "port": 4252})
        self.assertEqual(self.out.getvalue(), "added chat-server-3 (pid 77)\n")

    def test_master_not_running(self) -> None:
        """Every command reports an unreachable master on stderr and exits 1."""
        for command, options in (
            ("list", {}),
            ("stop", {"ids": []}),
            ("kill", {}),
            ("restart", {"id": "x"}),
            ("add", {"entry": {"type": "chat", "id": "x"}}),
        ):
            self.err = io.StringIO()
            connect = FakeConnect(MasterUnreachable(UNREACHABLE))
            self.assertEqual(self.finish(connect, command, **options), 1, command)
            self.assertEqual(self.err.getvalue(), f"pomelo-twisted: error: {UNREACHABLE}\n")
        self.assertEqual(self.out.getvalue(), "")

    def test_refusal_closes_and_exits_1(self) -> None:
        """A command the master refuses prints its message, exits 1, and still closes."""
        client = FakeClient(restart=AdminError("server 'x' was not started by this master"))
        self.assertEqual(self.finish(FakeConnect(client), "restart", id="x"), 1)
        message = "pomelo-twisted: error: server 'x' was not started by this master\n"
        self.assertEqual(self.err.getvalue(), message)
        self.assertTrue(client.closed)

    def test_missing_game_folder(self) -> None:
        """A missing game folder is named in the error, exit 1, without connecting."""
        connect = FakeConnect(FakeClient())
        self.folder = temp_dir(self) / "missing"
        self.assertEqual(self.finish(connect, "list"), 1)
        self.assertIn(f"no game folder {self.folder.resolve()}", self.err.getvalue())
        self.assertEqual(connect.attempts, [])

    def test_bugs_are_not_swallowed(self) -> None:
        """An unexpected exception fails the Deferred instead of printing a tidy error."""
        d = self.start(FakeConnect(ZeroDivisionError()), "list")
        self.failureResultOf(d, ZeroDivisionError)


class StartTests(SynchronousTestCase):
    """start: the master's command line, exec in the foreground, the daemon and its wait."""

    def setUp(self) -> None:
        without_env_secret(self)
        self.folder = game_dir(self)
        self.target = load_target(Namespace(app=str(self.folder), env="development"))
        self.out = io.StringIO()
        self.err = io.StringIO()

    def started(self, connect: FakeConnect) -> tuple[Clock, Deferred[int]]:
        """await_started on a Clock with this connect."""
        clock = Clock()
        coroutine = await_started(clock, self.target, self.out, self.err, connect)
        return clock, Deferred.fromCoroutine(coroutine)

    def test_master_argv(self) -> None:
        """Foreground runs twistd -n without pidfile; the daemon writes logs/ pid and log."""
        base = str(self.folder.resolve())
        tail = ["pomelo", "--app", base, "--env", "development", "--type", "master"]
        config = self.target.config
        pidfile, logfile = f"{base}/logs/master.pid", f"{base}/logs/master.log"
        self.assertEqual(master_argv(config, daemon=False), [*TWISTD, "-n", "--pidfile=", *tail])
        self.assertEqual(master_argv(config, False, "debug")[-2:], ["--log-level", "debug"])
        self.assertEqual(
            master_argv(config, daemon=True),
            [*TWISTD, "--pidfile", pidfile, "--logfile", logfile, *tail],
        )

    def test_foreground_execs_the_master(self) -> None:
        """start in the foreground replaces this process with the master (execv)."""
        calls: list[tuple[str, list[str]]] = []
        start_foreground(self.target, self.out, execv=lambda path, argv: calls.append((path, argv)))
        self.assertEqual(calls, [(TWISTD[0], master_argv(self.target.config, daemon=False))])

    def test_daemon_runs_twistd(self) -> None:
        """start --daemon creates logs/ and runs the daemonizing twistd; its status is kept."""
        runs: list[list[str]] = []

        def run(argv: list[str]) -> int:
            runs.append(argv)
            return 0

        status = start_daemon(self.target, self.err, run=run)
        self.assertEqual((status, runs), (0, [master_argv(self.target.config, daemon=True)]))
        self.assertTrue((self.folder / "logs").is_dir())
        (self.folder / "logs" / "master.log").write_text("one\nboom: cannot listen\n")
        self.assertEqual(start_daemon(self.target, self.err, run=lambda argv: 1), 1)
        self.assertIn("twistd could not start the master (exit status 1)", self.err.getvalue())
        self.assertIn("boom: cannot listen", self.err.getvalue())

    def test_started_reports_endpoints(self) -> None:
        """Once the master answers and every server is up, the logs folder and the
        frontends' client ports are shown."""
        starting = FakeClient(list=[{"id": "m", "state": "up"}, {"id": "c1", "state": "starting"}])
        up = FakeClient(list=[{"id": "m", "state": "up"}, {"id": "c1", "state": "up"}])
        clock, d = self.started(FakeConnect(MasterUnreachable("not yet"), starting, starting, up))
        self.assertNoResult(d)
        clock.advance(POLL_INTERVAL)
        self.assertNoResult(d)
        clock.advance(POLL_INTERVAL)
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual(
            self.out.getvalue(),
            f"master running; logs in {self.folder.resolve() / 'logs'}\n"
            "every server is up\n"
            "connector-server-1: clients connect to 127.0.0.1:3010\n",
        )
        self.assertTrue(starting.closed and up.closed)

    def test_started_names_servers_that_never_come_up(self) -> None:
        """Servers still not up after the wait are named with their logs; exit 1."""
        starting = FakeClient(list=[{"id": "m", "state": "up"}, {"id": "c1", "state": "down"}])
        clock, d = self.started(FakeConnect(starting))
        clock.pump([POLL_INTERVAL] * int(CLUSTER_TIMEOUT / POLL_INTERVAL + 2))
        self.assertEqual(self.successResultOf(d), 1)
        self.assertIn("not up after 30s: c1 (see logs/c1.log)", self.err.getvalue())

    def test_started_gives_up_with_the_log(self) -> None:
        """A master that never answers is exit 1 with the last error and the log's tail."""
        (self.folder / "logs").mkdir()
        (self.folder / "logs" / "master.log").write_text("master cannot listen on 4005\n")
        clock, d = self.started(FakeConnect(MasterUnreachable("cannot reach the master")))
        for _ in range(int(START_TIMEOUT / POLL_INTERVAL) + 1):
            clock.advance(POLL_INTERVAL)
        self.assertEqual(self.successResultOf(d), 1)
        self.assertIn("did not answer within 15s: cannot reach the master", self.err.getvalue())
        self.assertIn("master cannot listen on 4005", self.err.getvalue())
        self.assertEqual(self.out.getvalue(), "")

    def test_started_wrong_secret(self) -> None:
        """A refused login is raised at once instead of waiting out the timeout."""
        connect = FakeConnect(LoginRefused("wrong cluster secret?"))
        _, d = self.started(connect)
        self.failureResultOf(d, LoginRefused)
        self.assertEqual(len(connect.attempts), 1)


class EntryPointTests(SynchronousTestCase):
    """run_reactor and main."""

    def setUp(self) -> None:
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def test_run_reactor_returns_the_status(self) -> None:
        """run_reactor returns the work's status and stops the reactor."""
        fake = MemoryReactor()
        self.assertEqual(run_reactor(lambda reactor: succeed(3), fake), 3)
        self.assertTrue(fake.hasStopped)

    def test_run_reactor_crash(self) -> None:
        """A crash in the work is printed with its traceback and is exit status 1."""
        fake = MemoryReactor()
        failed: Deferred[int] = fail(Failure(ZeroDivisionError("oops")))
        self.assertEqual(run_reactor(lambda reactor: failed, fake), 1)
        self.assertTrue(fake.hasStopped)
        self.assertIn("ZeroDivisionError", self.stderr.getvalue())

    def test_start_missing_folder(self) -> None:
        """start with a missing game folder prints the usage, names the folder, exits 2."""
        missing = (temp_dir(self) / "missing").resolve()
        with self.assertRaises(SystemExit) as caught:
            main(["start", "--app", str(missing)])
        self.assertEqual(caught.exception.code, 2)
        self.assertTrue(self.stderr.getvalue().startswith("usage: pomelo-twisted"))
        self.assertIn(f"error: {missing} does not exist: pass --app DIR", self.stderr.getvalue())


class CommandLineTests(SynchronousTestCase):
    """The installed ``pomelo-twisted`` command."""

    def test_usage_error_exits_2_without_traceback(self) -> None:
        """No command: the usage and the error on stderr, status 2, no traceback."""
        import subprocess

        result = subprocess.run(
            [sys.executable, "-c", "from pomelo_twisted.admin.cli import main; main()"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 2)
        self.assertIn("usage: pomelo-twisted", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
