"""Route functions: default_route's crc32 mapping and the Router's overrides."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import RpcError
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc import Router, default_route, route_key

TWO = [ServerInfo("chat-2", "chat"), ServerInfo("chat-1", "chat")]
THREE = [ServerInfo("c", "chat"), ServerInfo("a", "chat"), ServerInfo("b", "chat")]


@dataclass
class FakeSession:
    id: int
    uid: str | None = None


class RouteKeyTests(SynchronousTestCase):
    """What the default route hashes."""

    def test_uids(self) -> None:
        """A str uid is itself; other values are their str()."""
        self.assertEqual(route_key("u1"), "u1")
        self.assertEqual(route_key(42), "42")

    def test_session(self) -> None:
        """A session-like object gives its uid, or its id while it has none."""
        self.assertEqual(route_key(FakeSession(7, "u1")), "u1")
        self.assertEqual(route_key(FakeSession(7)), "7")


class DefaultRouteTests(SynchronousTestCase):
    """crc32(key) modulo the number of servers, the servers sorted by id."""

    def test_crc32_is_stable(self) -> None:
        """Pinned crc32 values: the mapping never changes between runs or versions."""
        self.assertEqual(zlib.crc32(b"u1"), 1112514422)
        self.assertEqual(zlib.crc32(b"u4"), 841313273)
        self.assertEqual((zlib.crc32(b"u1") % 2, zlib.crc32(b"u4") % 2), (0, 1))
        self.assertEqual([zlib.crc32(k) % 3 for k in [b"u6", b"u7", b"u1"]], [0, 1, 2])

    def test_two_servers(self) -> None:
        """u1 (crc32 even) goes to chat-1, u4 (odd) to chat-2: sorted ids, not list order."""
        self.assertEqual(default_route("u1", TWO), "chat-1")
        self.assertEqual(default_route("u4", TWO), "chat-2")

    def test_three_servers(self) -> None:
        """crc32 % 3 indexes the servers sorted by id."""
        self.assertEqual([default_route(u, THREE) for u in ["u6", "u7", "u1"]], ["a", "b", "c"])

    def test_order_does_not_matter(self) -> None:
        """The choice is the same whatever the order of the server list."""
        for uid in ["u1", "u4", "u6", "u7", "alice"]:
            self.assertEqual(default_route(uid, THREE), default_route(uid, THREE[::-1]))

    def test_session_routes_like_its_uid(self) -> None:
        """A bound session routes like its uid, an unbound one like its id."""
        self.assertEqual(default_route(FakeSession(1, "u4"), TWO), default_route("u4", TWO))
        self.assertEqual(default_route(FakeSession(1001), TWO), default_route("1001", TWO))

    def test_no_servers(self) -> None:
        """An empty server list is an RpcError."""
        self.assertRaises(RpcError, default_route, "u1", [])


class RouterTests(SynchronousTestCase):
    """Per-type overrides."""

    def test_default(self) -> None:
        """Without an override, pick uses default_route."""
        self.assertEqual(Router().pick("chat", "u4", TWO), "chat-2")

    def test_override(self) -> None:
        """set() replaces the route of one type only."""
        router = Router()
        seen: list[object] = []

        def first(param: object, servers: Sequence[ServerInfo]) -> str:
            seen.append(param)
            return min(s.id for s in servers)

        router.set("area", first)
        self.assertEqual(router.pick("area", "u4", TWO), "chat-1")
        self.assertEqual(router.pick("chat", "u4", TWO), "chat-2")
        self.assertEqual(seen, ["u4"])
        self.assertIs(router.get("area"), first)

    def test_bad_override(self) -> None:
        """A route returning an id not in the list is an RpcError naming it."""
        router = Router()
        router.set("chat", lambda param, servers: "chat-9")
        with self.assertRaises(RpcError) as caught:
            router.pick("chat", "u1", TWO)
        self.assertIn("'chat-9'", str(caught.exception))

    def test_not_callable(self) -> None:
        """set() refuses a route that is not callable."""
        self.assertRaises(TypeError, Router().set, "chat", "chat-1")

    def test_empty_type(self) -> None:
        """No server of the type: RpcError naming the type, the route never runs."""
        router = Router()
        router.set("chat", lambda param, servers: str(1 / 0))
        with self.assertRaises(RpcError) as caught:
            router.pick("chat", "u1", [])
        self.assertIn("no server of type 'chat'", str(caught.exception))
