"""The handshake: its timeout (handshake + ack within ``handshake_timeout``) and its reply."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent import AgentConfig, CloseReason
from pomelo_twisted.protocol import HandshakeAck
from pomelo_twisted.testing import echo_dictionary

from .helpers import SYS, connect, make_agents, open_connection, raw_handshake


class HandshakeTimeoutTests(SynchronousTestCase):
    """A connection must complete handshake and ack within ``handshake_timeout``."""

    def test_no_handshake_closes_at_the_timeout(self) -> None:
        """A client that sends nothing is closed exactly at ``handshake_timeout``."""
        agents = make_agents(AgentConfig(handshake_timeout=10))
        protocol, transport = open_connection(agents)
        agent = protocol.agent
        assert agent is not None
        agents.clock.advance(9.5)
        self.assertTrue(transport.connected)
        agents.clock.advance(0.5)
        self.assertFalse(transport.connected)
        self.assertEqual(agent.close_reason, CloseReason.HANDSHAKE_TIMEOUT)
        self.assertEqual(agent.close_reason, "handshake timeout")
        self.assertEqual(agents.metrics.closed, {"handshake timeout": 1})
        self.assertEqual(transport.value(), b"")
        self.assertEqual(agents.agents, {})

    def test_handshake_without_ack_closes_at_the_timeout(self) -> None:
        """A client that handshakes but never acks is closed at ``handshake_timeout``."""
        conn = connect(AgentConfig(handshake_timeout=10), ack=False)
        conn.clock.advance(9.5)
        self.assertTrue(conn.open)
        conn.clock.advance(0.5)
        self.assertFalse(conn.open)
        self.assertEqual(conn.agent.close_reason, "handshake timeout")
        self.assertEqual(conn.agents.metrics.closed["handshake timeout"], 1)
        self.assertEqual(conn.handler.closes, [])

    def test_ack_in_time_cancels_the_timeout(self) -> None:
        """An ack just before ``handshake_timeout`` keeps the connection open past it."""
        conn = connect(AgentConfig(handshake_timeout=10, heartbeat=None), ack=False)
        conn.clock.advance(9.5)
        conn.send(HandshakeAck())
        conn.clock.advance(100)
        self.assertTrue(conn.open)
        self.assertIsNone(conn.agent.close_reason)
        self.assertEqual(conn.agents.metrics.closed, {})
        self.assertEqual(conn.clock.getDelayedCalls(), [])


class HandshakeReplyTests(SynchronousTestCase):
    """What the server answers to a handshake, through the handler's hook."""

    def test_reply_carries_dictionary_serializer_and_heartbeat(self) -> None:
        """A first handshake gets code 200, the dictionary, useDict, heartbeat and serializer."""
        agents = make_agents(AgentConfig(heartbeat=3))
        dictionary = echo_dictionary()
        _, transport, reply = raw_handshake(agents, json.dumps({"sys": SYS}).encode())
        self.assertEqual(reply["code"], 200)
        sys = reply["sys"]
        self.assertEqual(sys["heartbeat"], 3)
        self.assertEqual(sys["dict"], dictionary.route_to_code())
        self.assertEqual(sys["dictVersion"], dictionary.version)
        self.assertIs(sys["useDict"], True)
        self.assertEqual(sys["serializer"], "json")
        self.assertNotIn("user", reply)
        self.assertTrue(transport.connected)

    def test_user_data_echoed(self) -> None:
        """The hook's result (EchoHandler: the client's ``user``) comes back as ``user``."""
        user = {"name": "u1", "level": 3}
        _, _, reply = raw_handshake(make_agents(), json.dumps({"sys": SYS, "user": user}).encode())
        self.assertEqual(reply["code"], 200)
        self.assertEqual(reply["user"], user)

    def test_known_dict_version_omits_the_dictionary(self) -> None:
        """A handshake carrying the current dictVersion gets useDict but no dict."""
        agents = make_agents()
        version = echo_dictionary().version
        body = json.dumps({"sys": {**SYS, "dictVersion": version}}).encode()
        _, _, reply = raw_handshake(agents, body)
        self.assertEqual(reply["code"], 200)
        sys = reply["sys"]
        for key in ("dict", "dictVersion", "routeToCode", "codeToRoute"):
            self.assertNotIn(key, sys)
        self.assertIs(sys["useDict"], True)
        self.assertEqual(sys["serializer"], "json")

    def test_stale_dict_version_gets_the_dictionary(self) -> None:
        """A handshake carrying another dictVersion gets the current dictionary."""
        body = json.dumps({"sys": {**SYS, "dictVersion": "old"}}).encode()
        _, _, reply = raw_handshake(make_agents(), body)
        self.assertEqual(reply["sys"]["dict"], echo_dictionary().route_to_code())

    def test_rejected_handshake_answers_501_then_closes(self) -> None:
        """A hook raising HandshakeRejected answers {"code":501,"msg":reason} and closes."""
        agents = make_agents()
        agents.handler.reject = "server full"
        protocol, transport, reply = raw_handshake(agents, json.dumps({"sys": SYS}).encode())
        self.assertEqual(reply, {"code": 501, "msg": "server full"})
        self.assertFalse(transport.connected)
        self.assertFalse(transport.disconnected)
        assert protocol.agent is not None
        self.assertEqual(protocol.agent.close_reason, "handshake rejected: server full")
        self.assertEqual(agents.metrics.closed, {"handshake rejected": 1})
        self.assertEqual(agents.handler.closes, [])

    def test_bad_handshake_json_answers_500_then_closes(self) -> None:
        """A handshake body that is not JSON is answered {"code":500} alone, then closed."""
        agents = make_agents()
        protocol, transport, reply = raw_handshake(agents, b"{not json")
        self.assertEqual(reply, {"code": 500})
        self.assertFalse(transport.connected)
        assert protocol.agent is not None
        self.assertEqual(protocol.agent.close_reason.split(":")[0], "bad handshake")
        self.assertEqual(agents.metrics.closed, {"bad handshake": 1})

    def test_handshake_without_sys_answers_500_then_closes(self) -> None:
        """A JSON handshake without ``sys`` is answered {"code":500}, then closed."""
        agents = make_agents()
        _, transport, reply = raw_handshake(agents, b'{"user":{}}')
        self.assertEqual(reply, {"code": 500})
        self.assertFalse(transport.connected)

    def test_failing_hook_answers_500_then_closes(self) -> None:
        """A hook raising anything else answers code 500 with a message, then closes."""
        agents = make_agents()

        def broken(agent: object, handshake: object) -> object:
            raise RuntimeError("hook bug")

        agents.handler.handshake = broken  # type: ignore[method-assign]
        protocol, transport, reply = raw_handshake(agents, json.dumps({"sys": SYS}).encode())
        self.assertEqual(reply, {"code": 500, "msg": "handshake hook failed"})
        self.assertFalse(transport.connected)
        assert protocol.agent is not None
        self.assertEqual(protocol.agent.close_reason, "handshake rejected: handshake hook failed")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
