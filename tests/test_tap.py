"""``twistd pomelo``: its options, its service tree and its plugin."""

from __future__ import annotations

import ast
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import cast

from twisted.application.service import IServiceMaker, MultiService
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.logger import LogBeginner, LogEvent, Logger, LogPublisher, globalLogBeginner
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.acceptors import AcceptorService
from pomelo_twisted.app import tap
from pomelo_twisted.app.application import Application
from pomelo_twisted.app.build import StandaloneService
from pomelo_twisted.app.heap import freeze_heap
from pomelo_twisted.app.process import exit_after_shutdown
from pomelo_twisted.app.tap import Options, filter_log_level, makeService
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.dashboard import DashboardService
from pomelo_twisted.rpc.pb import PbRpcTransport
from pomelo_twisted.serializers import MsgpackSerializer

EXAMPLE = str(Path(__file__).resolve().parents[1] / "example_game")


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """Command-line options and their validation."""

    def test_defaults(self) -> None:
        """Without --app: the echo type; with --app: the master; limits default."""
        options = parse()
        self.assertEqual((options["type"], options["id"], options["listen"]), ("echo", None, None))
        self.assertEqual(options["config"].heartbeat, 30.0)
        self.assertEqual(options["limits"], {})
        self.assertEqual(parse("--app", "example_game")["type"], "master")

    def test_game_type_needs_app(self) -> None:
        """A game server type without --app is a usage error."""
        self.assertRaises(usage.UsageError, parse, "--type", "connector")

    def test_limits_reach_the_agent_config(self) -> None:
        """--heartbeat, --handshake-timeout, --max-packet-size and --max-pending-bytes are used."""
        options = parse(
            "--heartbeat", "3", "--handshake-timeout", "2.5",
            "--max-packet-size", "1024", "--max-pending-bytes", "4096",
        )  # fmt: skip
        config = options["config"]
        self.assertEqual(
            options["limits"],
            {
                "heartbeat": 3.0,
                "handshake_timeout": 2.5,
                "max_packet_size": 1024,
                "max_pending_bytes": 4096,
            },
        )
        self.assertEqual(
            (config.heartbeat, config.handshake_timeout, config.max_packet_size),
            (3.0, 2.5, 1024),
        )
        self.assertEqual(config.max_pending_bytes, 4096)

    def test_rate_limit_options(self) -> None:
        """--request-rate (0 = unlimited), --request-burst and --max-inflight are used."""
        config = parse("--request-rate", "0", "--request-burst", "5", "--max-inflight", "7")[
            "config"
        ]
        self.assertEqual((config.request_rate, config.request_burst), (None, 5))
        self.assertEqual(config.max_inflight, 7)
        self.assertEqual(parse("--request-rate", "50")["config"].request_rate, 50.0)

    def test_heartbeat_zero_turns_heartbeats_off(self) -> None:
        """--heartbeat 0 means no heartbeat and no heartbeat timeout."""
        config = parse("--heartbeat", "0")["config"]
        self.assertIsNone(config.heartbeat)
        self.assertIsNone(config.effective_heartbeat_timeout)

    def test_unknown_choices_are_named(self) -> None:
        """An unknown type, acceptor or serializer is a usage error naming the value."""
        for argv, word in (
            (("--type", "nosuch"), "nosuch"),
            (("--acceptor", "udp"), "udp"),
            (("--serializer", "xml"), "xml"),
        ):
            with self.assertRaises(usage.UsageError) as caught:
                parse(*argv)
            self.assertIn(word, str(caught.exception))

    def test_bad_limits_are_usage_errors(self) -> None:
        """A limit the agent config refuses (packet size over 16 MiB, negative) is a usage error."""
        for argv in (("--max-packet-size", str(1 << 24)), ("--heartbeat", "-1")):
            self.assertRaises(usage.UsageError, parse, *argv)


class MakeServiceTests(SynchronousTestCase):
    """The service tree makeService builds."""

    def test_tree_and_listener(self) -> None:
        """The echo type: a MultiService holding the acceptor, listening where told."""
        reactor = MemoryReactorClock()
        service = makeService(
            parse("--id", "front-7", "--listen", "tcp:4123:interface=127.0.0.1"), reactor
        )
        self.assertIsInstance(service, MultiService)
        self.assertEqual(service.name, "front-7")
        acceptor = service.getServiceNamed("acceptor")  # type: ignore[attr-defined]
        self.assertIsInstance(acceptor, AcceptorService)
        service.startService()
        port, _factory, _backlog, interface = reactor.tcpServers[0]
        self.assertEqual((port, interface), (4123, "127.0.0.1"))
        service.stopService()

    def test_game_standalone(self) -> None:
        """--type all (production: one frontend): one Application per server, --listen on it."""
        reactor = MemoryReactorClock()
        service = makeService(
            parse(
                "--app",
                EXAMPLE,
                "--env",
                "production",
                "--type",
                "all",
                "--listen",
                "tcp:4555:interface=127.0.0.1",
            ),
            reactor,
        )
        self.assertIsInstance(service, StandaloneService)
        assert isinstance(service, StandaloneService)
        self.assertEqual(
            sorted(app.server_id for app in service.apps), ["chat-server-1", "connector-server-1"]
        )
        service.startService()
        reactor.advance(0)
        self.assertEqual([(p, i) for p, _f, _b, i in reactor.tcpServers], [(4555, "127.0.0.1")])
        self.assertIsNone(self.successResultOf(service.all_started))
        service.stopService()
        reactor.advance(0)

    def test_game_single_server(self) -> None:
        """--type chat --id chat-server-1 builds that one server's Application."""
        service = makeService(
            parse("--app", EXAMPLE, "--type", "chat", "--id", "chat-server-1"),
            MemoryReactorClock(),
        )
        self.assertIsInstance(service, Application)
        assert isinstance(service, Application)
        self.assertEqual((service.server_id, service.server_type), ("chat-server-1", "chat"))
        self.assertIsInstance(service.rpc_transport, PbRpcTransport)
        self.assertEqual(
            list(service.components),
            ["rpc_server", "sessions", "cron", "metrics", "monitor", "drain"],
        )

    def test_etcd_discovery_replaces_the_monitor(self) -> None:
        """--discovery etcd://... builds a server registering in etcd, with no monitor."""
        service = makeService(
            parse(
                "--app",
                EXAMPLE,
                "--type",
                "chat",
                "--id",
                "chat-server-1",
                "--discovery",
                "etcd://127.0.0.1:2379/game",
            ),
            MemoryReactorClock(),
        )
        assert isinstance(service, Application)
        self.assertEqual(
            list(service.components),
            ["rpc_server", "sessions", "cron", "metrics", "discovery", "drain"],
        )
        discovery = service.components["discovery"].discovery  # type: ignore[attr-defined]
        self.assertEqual(discovery.prefix, "/game")

    def test_bad_discovery_is_a_usage_error(self) -> None:
        """A --discovery that is not an etcd URL is a usage error naming the option."""
        with self.assertRaises(usage.UsageError) as caught:
            makeService(
                parse("--app", EXAMPLE, "--type", "chat", "--discovery", "etcd://:x/"),
                MemoryReactorClock(),
            )
        self.assertIn("--discovery", str(caught.exception))

    def test_cluster_server_listens_for_rpc_and_joins_peers(self) -> None:
        """A cluster server listens on its RPC port and connects to every other server."""
        reactor = MemoryReactorClock()
        service = makeService(
            parse("--app", EXAMPLE, "--type", "connector", "--id", "connector-server-2"), reactor
        )
        assert isinstance(service, Application)
        service.startService()
        reactor.advance(0)
        listening = sorted(port for port, _f, _b, _i in reactor.tcpServers)
        self.assertEqual(listening, [3011, 4151, 9151])  # clients, RPC, metrics
        assert isinstance(service.rpc_transport, PbRpcTransport)
        self.assertEqual(
            sorted(service.rpc_transport.peers()),
            ["chat-server-1", "chat-server-2", "connector-server-1"],
        )
        connecting = sorted(port for _h, port, *_ in reactor.tcpClients)
        self.assertEqual(connecting, [4005, 4150, 4250, 4251])  # the peers, then the master
        service.stopService()

    def test_server_entry_from_the_command_line(self) -> None:
        """--server JSON runs a server servers.json does not declare (the admin add)."""
        entry = '{"id": "chat-server-3", "host": "127.0.0.1", "port": 4252}'
        service = makeService(
            parse("--app", EXAMPLE, "--type", "chat", "--id", "chat-server-3", "--server", entry),
            MemoryReactorClock(),
        )
        assert isinstance(service, Application)
        self.assertEqual((service.server_id, service.server.port), ("chat-server-3", 4252))
        self.assertIn("chat-server-3", [s.id for s in service.servers_of("chat")])
        with self.assertRaises(usage.UsageError) as caught:
            makeService(
                parse("--app", EXAMPLE, "--type", "chat", "--server", "[1"), MemoryReactorClock()
            )
        self.assertIn("--server", str(caught.exception))

    def test_master_is_the_default_with_app(self) -> None:
        """--app alone builds the master of the game's cluster, listening on master.json's port
        (then its dashboard, as the example's master.json has a dashboardPort)."""
        reactor = MemoryReactorClock()
        process = makeService(parse("--app", EXAMPLE), reactor)
        service, dashboard = list(cast(MultiService, process))
        self.assertIsInstance(dashboard, DashboardService)
        assert isinstance(service, MasterService)
        self.assertEqual(service.listen_endpoint, "tcp:4005:interface=127.0.0.1")
        self.assertEqual(
            list(service.declared),
            ["connector-server-1", "connector-server-2", "chat-server-1", "chat-server-2"],
        )

    def test_master_limits_from_master_json(self) -> None:
        """master.json tunes the stop timeout and the restart backoff; bad values are named."""
        game = Path(tempfile.mkdtemp()) / "game"
        self.addCleanup(shutil.rmtree, game.parent)
        shutil.copytree(EXAMPLE, game)
        master = {"id": "m", "port": 4005, "secret": "a-long-secret", "stopTimeout": 3}
        master |= {"restartMinDelay": 2, "restartMaxDelay": 8}
        (game / "config" / "master.json").write_text(json.dumps(master))
        service = makeService(parse("--app", str(game)), MemoryReactorClock())
        assert isinstance(service, MasterService)
        self.assertEqual((service.stop_timeout, service.supervisor.min_delay), (3.0, 2.0))
        for bad in ({"stopTimeout": 0}, {"restartMinDelay": 9, "restartMaxDelay": 8}):
            (game / "config" / "master.json").write_text(json.dumps(master | bad))
            with self.assertRaises(usage.UsageError) as caught:
                makeService(parse("--app", str(game)), MemoryReactorClock())
            self.assertIn("master.json", str(caught.exception))

    def test_cluster_needs_a_secret(self) -> None:
        """Without a cluster secret, a cluster server or the master is a usage error."""
        game = Path(tempfile.mkdtemp()) / "game"
        self.addCleanup(shutil.rmtree, game.parent)
        self.patch(os, "environ", {k: v for k, v in os.environ.items() if "POMELO" not in k})
        shutil.copytree(EXAMPLE, game)
        (game / "config" / "master.json").write_text('{"id": "m", "port": 4005}')
        for argv in (("--type", "chat"), ()):
            with self.assertRaises(usage.UsageError) as caught:
                makeService(parse("--app", str(game), *argv), MemoryReactorClock())
            self.assertIn("master.json", str(caught.exception))

    def test_unknown_server_is_a_usage_error(self) -> None:
        """An id that servers.json does not declare is named in a usage error."""
        with self.assertRaises(usage.UsageError) as caught:
            makeService(parse("--app", EXAMPLE, "--type", "chat", "--id", "nope"), MemoryReactor())
        self.assertIn("nope", str(caught.exception))

    def test_exit_helper_before_the_loop_runs(self) -> None:
        """A failure during startup (loop not running yet) stops the reactor once it runs."""
        reactor = MemoryReactorClock()
        exit_after_shutdown(reactor, 1)
        self.assertEqual([hook[0] for hook in reactor.whenRunningHooks], [reactor.stop])

    def test_start_failure_exits(self) -> None:
        """A frontend that cannot listen makes the process exit (non-zero) after shutdown."""
        reactor = MemoryReactorClock()
        exits: list[object] = []
        service = makeService(
            parse("--app", EXAMPLE, "--env", "production", "--type", "all", "--listen", "tcp:x"),
            reactor,
            exit_process=exits.append,
        )
        service.startService()
        reactor.advance(0)
        self.assertEqual(exits, [reactor])
        self.flushLoggedErrors()

    def test_heap_is_frozen_once_running(self) -> None:
        """Every server type freezes the startup heap when the reactor runs, unless told not to."""
        for argv in [(), ("--app", EXAMPLE), ("--app", EXAMPLE, "--type", "chat")]:
            reactor = MemoryReactorClock()
            makeService(parse(*argv), reactor)
            self.assertIn(freeze_heap, [hook[0] for hook in reactor.whenRunningHooks], argv)
            reactor = MemoryReactorClock()
            makeService(parse("--no-gc-freeze", *argv), reactor)
            self.assertNotIn(freeze_heap, [hook[0] for hook in reactor.whenRunningHooks], argv)

    def test_serializer_choice(self) -> None:
        """--serializer msgpack gives the agents the msgpack serializer."""
        service = makeService(parse("--serializer", "msgpack"), MemoryReactor())
        acceptor = service.getServiceNamed("acceptor")  # type: ignore[attr-defined]
        self.assertIsInstance(acceptor.agents.serializer, MsgpackSerializer)


class CompositionTests(SynchronousTestCase):
    """tap.py composes trees that their owners build; product code stays off testing/."""

    def test_product_code_imports_nothing_from_testing(self) -> None:
        """No module of pomelo_twisted outside testing/ imports pomelo_twisted.testing."""
        package = Path(__file__).resolve().parents[1] / "pomelo_twisted"
        offenders = []
        for path in sorted(package.rglob("*.py")):
            if "testing" in path.relative_to(package).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom):
                    continue
                module = node.module or ""
                ours = node.level > 0 or module.startswith("pomelo_twisted")
                if ours and "testing" in module.split("."):
                    offenders.append(f"{path.relative_to(package)}:{node.lineno}")
        self.assertEqual(offenders, [])

    def test_echo_handler_is_product_code(self) -> None:
        """The echo frontend serves pomelo_twisted.app.echo's handler; testing re-exports it."""
        from pomelo_twisted import testing
        from pomelo_twisted.app import echo

        self.assertIs(testing.EchoHandler, echo.EchoHandler)
        service = makeService(parse(), MemoryReactor())
        assert isinstance(service, MultiService)
        acceptor = service.getServiceNamed("acceptor")
        self.assertIsInstance(acceptor.agents.handler, echo.EchoHandler)


class PluginTests(SynchronousTestCase):
    """The twistd plugin file."""

    def test_plugin_is_discovered(self) -> None:
        """twistd finds a 'pomelo' service maker that points at pomelo_twisted.app.tap."""
        import twisted.plugins

        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker, twisted.plugins)}
        self.assertIn("pomelo", makers)
        self.assertIsInstance(makers["pomelo"].options(), Options)


class LogLevelTests(SynchronousTestCase):
    """``--log-level``: servers log at info unless told otherwise."""

    def test_default_is_info_and_unknown_is_a_usage_error(self) -> None:
        """--log-level defaults to info; an unknown level is a usage error."""
        self.assertEqual(parse()["log-level"], "info")
        self.assertEqual(parse("--log-level", "debug")["log-level"], "debug")
        self.assertRaises(usage.UsageError, parse, "--log-level", "loud")

    def test_filter_drops_events_below_the_level(self) -> None:
        """The observers twistd begins logging to see info and above, not debug."""
        publisher = LogPublisher()
        beginner = LogBeginner(publisher, io.StringIO(), sys, warnings)
        filter_log_level("info", beginner)
        filter_log_level("debug", beginner)  # applied once: the first level holds
        seen: list[LogEvent] = []
        beginner.beginLoggingTo([seen.append], discardBuffer=True, redirectStandardIO=False)
        log = Logger(observer=publisher)
        log.debug("hidden")
        log.info("shown")
        self.assertEqual([e["log_format"] for e in seen], ["shown"])

    def test_only_under_twistd(self) -> None:
        """makeService filters the global beginner only when run by twistd (options.parent)."""
        options = parse()
        makeService(options, MemoryReactorClock(), exit_process=lambda _r: None)
        self.assertNotIn("_pomelo_log_setup", vars(globalLogBeginner))


TWISTD = (sys.executable, "-c", "from twisted.scripts.twistd import run; run()")


def run_twistd(*argv: str) -> subprocess.CompletedProcess[str]:
    """``twistd -n pomelo ARGV`` in a subprocess of this interpreter."""
    return subprocess.run(
        [TWISTD[0], TWISTD[1], TWISTD[2], "-n", "--pidfile=", "pomelo", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(Path(EXAMPLE).parent),
    )


class UsageErrorTests(SynchronousTestCase):
    """A usage error of ``twistd pomelo`` prints the usage and exits 2, no traceback."""

    def parse_under_twistd(self, *argv: str) -> tuple[int, str]:
        from twisted.scripts.twistd import ServerOptions

        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit) as caught:
            ServerOptions().parseOptions(["pomelo", *argv])
        code = caught.exception.code
        assert isinstance(code, int)
        return code, stderr.getvalue()

    def test_bad_option_value(self) -> None:
        """A bad option value under twistd: usage and the error on stderr, status 2."""
        code, err = self.parse_under_twistd("--heartbeat", "-1")
        self.assertEqual(code, 2)
        self.assertIn("Usage:", err)
        self.assertIn("twistd pomelo: error: Parameter type enforcement failed", err)

    def test_post_options_error(self) -> None:
        """A check of postOptions under twistd exits 2 too."""
        code, err = self.parse_under_twistd("--type", "connector")
        self.assertEqual(code, 2)
        self.assertIn("needs --app DIR", err)

    def test_make_service_error_exits_2(self) -> None:
        """--listen on a game with two frontends (found by makeService): status 2."""
        from twisted.scripts.twistd import ServerOptions

        config = ServerOptions()
        config.parseOptions(["pomelo", "--app", EXAMPLE, "--type", "all", "--listen", "tcp:0"])
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        self.patch(tap, "filter_log_level", lambda level: None)  # not this process's logs
        with self.assertRaises(SystemExit) as caught:
            makeService(config.subOptions, MemoryReactorClock(), exit_process=lambda _r: None)
        self.assertEqual(caught.exception.code, 2)
        self.assertIn("--listen needs exactly one frontend, the game has 2", stderr.getvalue())

    def test_real_twistd(self) -> None:
        """The real command: status 2, the message, no traceback."""
        result = run_twistd("--app", EXAMPLE, "--type", "all", "--listen", "tcp:0")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("twistd pomelo: error: --listen needs exactly one frontend", result.stderr)
        self.assertNotIn("Traceback", result.stdout + result.stderr)


class AbuseLimitOptionTests(SynchronousTestCase):
    """The fairness limits of issue 12 are settable from the command line."""

    def test_abuse_limits_reach_the_agent_config(self) -> None:
        """--max-refusals, --refusal-window, --max-ignored-packages, --slice-*, and the
        connection caps are used."""
        config = parse(
            "--max-refusals", "5", "--refusal-window", "2", "--max-ignored-packages", "3",
            "--slice-events", "16", "--slice-bytes", "4096", "--slice-seconds", "0.0005",
        )["config"]  # fmt: skip
        self.assertEqual(
            (config.max_refusals, config.refusal_window, config.max_ignored_packages),
            (5, 2.0, 3),
        )
        self.assertEqual((config.slice_events, config.slice_bytes), (16, 4096))
        self.assertEqual(config.slice_seconds, 0.0005)
        self.assertRaises(usage.UsageError, parse, "--slice-events", "0")
        caps = parse("--max-connections", "9", "--max-connections-per-ip", "3")["config"]
        self.assertEqual((caps.max_connections, caps.max_connections_per_ip), (9, 3))
