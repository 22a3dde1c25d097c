"""AgentConfig: validation, from_mapping, the effective heartbeat timeout."""

from __future__ import annotations

import dataclasses

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.protocol import HandshakeAck

from .helpers import connect


class ValidationTests(SynchronousTestCase):
    """Values that cannot work are refused when the config is built."""

    def test_defaults(self) -> None:
        """The defaults are the documented ones and valid."""
        config = AgentConfig()
        self.assertEqual(
            (config.heartbeat, config.handshake_timeout, config.max_packet_size),
            (30.0, 10.0, 64 * 1024),
        )
        self.assertEqual(config.effective_heartbeat_timeout, 60.0)

    def test_non_positive_values_refused(self) -> None:
        """Every numeric setting refuses zero or negative values, naming the setting."""
        bad = {
            "heartbeat": (0, -1.0),
            "heartbeat_timeout": (0, -5.0),
            "handshake_timeout": (0, -1.0),
            "close_grace": (0, -0.5),
            "max_packet_size": (0, -1),
            "max_pending_bytes": (0, -1),
            "request_burst": (0, -1),
            "max_inflight": (0, -1),
            "request_rate": (0, -2.0),
        }
        for name, values in bad.items():
            for value in values:
                with self.assertRaises(ValueError, msg=f"{name}={value}") as caught:
                    AgentConfig(**{name: value})
                self.assertIn(name, str(caught.exception))

    def test_none_allowed_where_documented(self) -> None:
        """heartbeat, heartbeat_timeout and request_rate may be None."""
        config = AgentConfig(heartbeat=None, heartbeat_timeout=None, request_rate=None)
        self.assertIsNone(config.effective_heartbeat_timeout)

    def test_max_packet_size_within_the_length_field(self) -> None:
        """max_packet_size is at most 0xFFFFFF (the 24-bit length field); more is refused."""
        self.assertEqual(AgentConfig(max_packet_size=0xFFFFFF).max_packet_size, 0xFFFFFF)
        with self.assertRaises(ValueError) as caught:
            AgentConfig(max_packet_size=0x1000000)
        self.assertIn("max_packet_size", str(caught.exception))

    def test_frozen(self) -> None:
        """A config cannot be changed after it is built."""
        config = AgentConfig()
        with self.assertRaises(dataclasses.FrozenInstanceError):
            config.heartbeat = 1  # type: ignore[misc]


class AbuseLimitTests(SynchronousTestCase):
    """The fairness limits of issue 12: safe defaults, bad values refused."""

    def test_defaults(self) -> None:
        """Defaults: 1000 refusals per 10 s, 100 ignored, slices of 256 / 4 KiB / 0.1 ms."""
        config = AgentConfig()
        self.assertEqual((config.max_refusals, config.refusal_window), (1000, 10.0))
        self.assertEqual(config.max_ignored_packages, 100)
        self.assertEqual((config.slice_events, config.slice_bytes), (256, 4096))
        self.assertEqual(config.slice_seconds, 0.0001)

    def test_bad_values_refused(self) -> None:
        """Zero slices or refusals, a non-positive window, negative ignored counts."""
        for field, value in (
            ("max_refusals", 0),
            ("slice_events", 0),
            ("slice_bytes", 0),
            ("refusal_window", 0.0),
            ("slice_seconds", 0.0),
            ("max_ignored_packages", -1),
        ):
            self.assertRaises(ValueError, AgentConfig, **{field: value})
        self.assertEqual(AgentConfig(max_ignored_packages=0).max_ignored_packages, 0)


class FromMappingTests(SynchronousTestCase):
    """AgentConfig.from_mapping."""

    def test_known_keys(self) -> None:
        """Known keys set their fields; the others keep their defaults."""
        config = AgentConfig.from_mapping({"heartbeat": 3, "max_inflight": 7})
        self.assertEqual((config.heartbeat, config.max_inflight), (3, 7))
        self.assertEqual(config.handshake_timeout, AgentConfig().handshake_timeout)

    def test_unknown_keys_refused_by_name(self) -> None:
        """Unknown keys are refused, each named in the message."""
        with self.assertRaises(ValueError) as caught:
            AgentConfig.from_mapping({"heartbeat": 3, "hearbeat": 3, "zzz": 1})
        message = str(caught.exception)
        self.assertIn("hearbeat", message)
        self.assertIn("zzz", message)
        self.assertNotIn("'heartbeat'", message)

    def test_values_validated(self) -> None:
        """Values from a mapping are validated like constructor arguments."""
        with self.assertRaises(ValueError):
            AgentConfig.from_mapping({"handshake_timeout": -1})

    def test_empty_mapping(self) -> None:
        """An empty mapping gives the defaults."""
        self.assertEqual(AgentConfig.from_mapping({}), AgentConfig())


class EffectiveHeartbeatTimeoutTests(SynchronousTestCase):
    """The idle limit once working."""

    def test_twice_the_heartbeat_by_default(self) -> None:
        """Without heartbeat_timeout it is 2 x heartbeat."""
        self.assertEqual(AgentConfig(heartbeat=3).effective_heartbeat_timeout, 6)
        self.assertEqual(AgentConfig(heartbeat=2.5).effective_heartbeat_timeout, 5.0)

    def test_explicit_timeout_wins(self) -> None:
        """heartbeat_timeout overrides 2 x heartbeat, even without a heartbeat."""
        self.assertEqual(
            AgentConfig(heartbeat=3, heartbeat_timeout=10).effective_heartbeat_timeout, 10
        )
        self.assertEqual(
            AgentConfig(heartbeat=None, heartbeat_timeout=4).effective_heartbeat_timeout, 4
        )

    def test_timeout_without_heartbeat_applies(self) -> None:
        """With heartbeat=None and heartbeat_timeout set, no heartbeat is sent but idling closes."""
        conn = connect(AgentConfig(heartbeat=None, heartbeat_timeout=4), ack=False)
        conn.send(HandshakeAck())
        self.assertEqual(conn.written(), b"")
        conn.clock.advance(3.5)
        self.assertTrue(conn.open)
        conn.clock.advance(0.5)
        self.assertFalse(conn.open)
        self.assertEqual(conn.agent.close_reason, "heartbeat timeout")
