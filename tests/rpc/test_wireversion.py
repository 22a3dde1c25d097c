"""RPC wire versions: announced after login, the highest common one spoken, a link with
none in common refused with one line naming both (MemoryNetwork + Clock)."""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.callcontext import CALL_CONTEXT, current_context, within_context
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc import RemoteDispatcher, unpack_plain
from pomelo_twisted.rpc.pb import PbRpcTransport, RpcAvatar
from pomelo_twisted.rpc.wireversion import (
    WIRE_VERSIONS,
    checked_versions,
    common_version,
    mismatch_line,
)
from pomelo_twisted.testing.network import MemoryNetwork

SECRET = b"the-cluster-secret"
CHAT = ServerInfo(id="chat-1", type="chat", host="127.0.0.1", port=4250)


class ContextRemote:
    """Answers with the call context it runs within."""

    def context(self) -> Any:
        return current_context()


class WireCase(SynchronousTestCase):
    """connector-1 calls chat-1; each speaks the versions a test gives it."""

    def start(self, caller: tuple[int, int] | None, callee: tuple[int, int] | None) -> None:
        self.clock = Clock()
        self.network = MemoryNetwork()
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        dispatcher = RemoteDispatcher()
        dispatcher.add("ctx", ContextRemote())
        self.chat = self.transport("chat-1", callee)
        self.chat.register("chat-1", dispatcher)
        self.network.listen(CHAT.rpc_client_endpoint, self.chat.server_factory())
        self.connector = self.transport("connector-1", caller)
        self.connector.add_peer(CHAT)
        self.flush()

    def transport(self, name: str, versions: tuple[int, int] | None) -> PbRpcTransport:
        return PbRpcTransport(
            self.clock,
            name,
            SECRET,
            rng=random.Random(7),
            connect=lambda info: self.network.endpoint(info.rpc_client_endpoint),
            wire_versions=versions,
        )

    def flush(self) -> None:
        for _ in range(100):
            self.network.flush()
            due = [c for c in self.clock.getDelayedCalls() if c.getTime() <= self.clock.seconds()]
            if not due:
                return
            self.clock.advance(0)
        raise AssertionError("the network does not settle")

    def call_with_context(self) -> Deferred[Any]:
        d = within_context({"rid": "r-1"}, self.connector.call, "chat-1", "ctx", "context", [], 5.0)
        self.flush()
        return d

    def wire_version(self) -> int:
        return self.connector._peers["chat-1"].wire_version

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["log_level"] >= LogLevel.warn]


class NegotiationTests(WireCase):
    """Which version a link speaks, and what its calls carry."""

    def test_two_current_peers_carry_the_context(self) -> None:
        """Two servers of this release agree on version 2: the context travels."""
        self.start(WIRE_VERSIONS, WIRE_VERSIONS)
        self.assertEqual(self.wire_version(), 2)
        self.assertEqual(self.successResultOf(self.call_with_context()), {"rid": "r-1"})
        self.assertEqual(self.errors(), [])

    def test_peer_announcing_nothing_gets_six_item_calls(self) -> None:
        """A peer of the previous release (announces nothing) speaks version 1: calls reach
        it without the context item (it would refuse 7 items) and are answered; its answer
        to the announcement is an error it sends without logging; nothing is logged above
        info on either side."""
        sizes: list[int] = []
        run_batch = RpcAvatar.run_batch

        def strict(avatar: RpcAvatar, batch: object) -> None:
            assert type(batch) is bytes
            sizes.extend(len(item) for item in unpack_plain(batch))
            run_batch(avatar, batch)

        self.patch(RpcAvatar, "run_batch", strict)
        self.start(WIRE_VERSIONS, None)
        self.assertEqual(self.wire_version(), 1)
        self.assertIsNone(self.successResultOf(self.call_with_context()))
        self.assertEqual(sizes, [6, 6])  # the announcement, then the call
        self.assertEqual(self.errors(), [])

    def test_version_1_until_the_answer_and_again_after_a_reconnection(self) -> None:
        """A link speaks version 1 from its login until the peer's answer arrives, and
        announces again on each new login."""
        at_login: list[int] = []
        up = PbRpcTransport._up

        def recording_up(transport: PbRpcTransport, server_id: str) -> None:
            up(transport, server_id)  # the announcement is queued, not answered
            if transport is self.connector:
                at_login.append(self.wire_version())

        self.patch(PbRpcTransport, "_up", recording_up)
        self.start(WIRE_VERSIONS, WIRE_VERSIONS)
        self.assertEqual(self.wire_version(), 2)
        self.network.drop(CHAT.rpc_client_endpoint)
        self.flush()
        self.assertEqual(self.connector.peers(), {"chat-1": "down"})
        self.clock.advance(1)
        self.flush()
        self.assertEqual(self.connector.peers(), {"chat-1": "up"})
        self.assertEqual(self.wire_version(), 2)
        self.assertEqual(at_login, [1, 1])

    def test_peer_speaking_only_v1_gets_six_item_calls(self) -> None:
        """A peer announcing 1–1 is spoken to in version 1."""
        self.start(WIRE_VERSIONS, (1, 1))
        self.assertEqual(self.wire_version(), 1)
        self.assertIsNone(self.successResultOf(self.call_with_context()))

    def test_old_caller_is_served(self) -> None:
        """A caller of the previous release (no announcement) is served by a current one."""
        self.start(None, WIRE_VERSIONS)
        self.assertEqual(self.connector.peers(), {"chat-1": "up"})
        self.assertIsNone(self.successResultOf(self.call_with_context()))
        self.assertIsNone(CALL_CONTEXT.get())

    def test_highest_common_version(self) -> None:
        """The highest version both ranges hold; None when they are disjoint."""
        self.assertEqual(common_version((1, 2), (1, 5)), 2)
        self.assertEqual(common_version((2, 4), (1, 3)), 3)
        self.assertIsNone(common_version((1, 2), (3, 4)))

    def test_checked_versions(self) -> None:
        """A version range is two ints, 1 <= low <= high; anything else names itself."""
        self.assertEqual(checked_versions([1, 2, "x"]), (1, 2))
        for bad in ([2, 1], [0, 1], ["1", 2], [1], "1-2"):
            with self.assertRaises(ValueError):
                checked_versions(bad)


class MismatchTests(WireCase):
    """Disjoint ranges: the link is refused, one clear line per side."""

    def test_disjoint_versions_refuse_the_link(self) -> None:
        """A caller speaking 1–2 and a callee speaking 3–4: the caller logs one line
        naming both ranges and closes; the callee logs its own; calls fail as down."""
        self.start(WIRE_VERSIONS, (3, 4))
        line = mismatch_line("chat-1", (3, 4), "connector-1", (1, 2))
        self.assertEqual(
            line,
            "peer chat-1 speaks RPC wire versions 3\u20134; this server (connector-1) "
            "speaks 1\u20132: upgrade one of them",
        )
        errors = self.errors()
        caller = [e for e in errors if e.get("line") == line]
        self.assertEqual(len(caller), 1)
        self.assertEqual(caller[0]["log_level"], LogLevel.error)
        theirs = "connector-1 speaks RPC wire versions 1\u20132"
        callee = [e for e in errors if theirs in str(e.get("line"))]
        self.assertEqual(len(callee), 1)
        self.assertEqual(self.connector.peers(), {"chat-1": "down"})
        self.failureResultOf(self.call_with_context())

    def test_refusal_is_logged_once_across_retries(self) -> None:
        """Reconnection attempts refused for the same reason add no line on the caller."""
        self.start(WIRE_VERSIONS, (3, 4))
        for _ in range(5):
            self.clock.advance(3)
            self.flush()
        line = mismatch_line("chat-1", (3, 4), "connector-1", (1, 2))
        self.assertEqual(len([e for e in self.events if e.get("line") == line]), 1)
        self.assertGreater(self.connector._peers["chat-1"].connection.connections, 1)
