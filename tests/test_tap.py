"""``twistd pomelo``: its options, its service tree and its plugin."""

from __future__ import annotations

from twisted.application.service import IServiceMaker, MultiService
from twisted.internet.testing import MemoryReactor
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.acceptors import AcceptorService
from pomelo_twisted.app.tap import Options, makeService
from pomelo_twisted.serializers import MsgpackSerializer


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """Command-line options and their validation."""

    def test_defaults(self) -> None:
        """With no options: the echo type, id echo-1, hybrid on 127.0.0.1:3010, 30 s heartbeat."""
        options = parse()
        self.assertEqual(
            (options["type"], options["id"], options["listen"], options["acceptor"]),
            ("echo", "echo-1", "tcp:3010:interface=127.0.0.1", "hybrid"),
        )
        self.assertEqual(options["config"].heartbeat, 30.0)

    def test_limits_reach_the_agent_config(self) -> None:
        """--heartbeat, --handshake-timeout, --max-packet-size and --max-pending-bytes are used."""
        config = parse(
            "--heartbeat", "3", "--handshake-timeout", "2.5",
            "--max-packet-size", "1024", "--max-pending-bytes", "4096",
        )["config"]  # fmt: skip
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
        """A MultiService named by the id holding the acceptor, which listens where told."""
        reactor = MemoryReactor()
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

    def test_serializer_choice(self) -> None:
        """--serializer msgpack gives the agents the msgpack serializer."""
        service = makeService(parse("--serializer", "msgpack"), MemoryReactor())
        acceptor = service.getServiceNamed("acceptor")  # type: ignore[attr-defined]
        self.assertIsInstance(acceptor.agents.serializer, MsgpackSerializer)


class PluginTests(SynchronousTestCase):
    """The twistd plugin file."""

    def test_plugin_is_discovered(self) -> None:
        """twistd finds a 'pomelo' service maker that points at pomelo_twisted.app.tap."""
        import twisted.plugins

        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker, twisted.plugins)}
        self.assertIn("pomelo", makers)
        self.assertIsInstance(makers["pomelo"].options(), Options)
