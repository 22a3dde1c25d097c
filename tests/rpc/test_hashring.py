"""The consistent-hash route: stable across processes, few keys move when servers change."""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import ConfigError, RpcError
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc import Router, default_route
from pomelo_twisted.rpc.hashring import (
    ConsistentHashRoute,
    HashRing,
    consistent_hash_route,
    key_hash,
    route_function,
)

UIDS = [f"uid-{n}" for n in range(10_000)]


def chat(n: int) -> list[ServerInfo]:
    """``n`` chat servers, chat-1 .. chat-n."""
    return [ServerInfo(f"chat-{i}", "chat") for i in range(1, n + 1)]


def moved(route: object, before: list[ServerInfo], after: list[ServerInfo]) -> float:
    """The fraction of UIDS whose server differs between the two memberships."""
    assert callable(route)
    changed = sum(1 for uid in UIDS if route(uid, before) != route(uid, after))
    return changed / len(UIDS)


class KeyHashTests(SynchronousTestCase):
    """The position of a key on the ring."""

    def test_pinned(self) -> None:
        """BLAKE2b-64 of the key's UTF-8 and a 3-server ring: pinned, never changed."""
        self.assertEqual(key_hash("u1"), 0x92994D683F4E6AD5)
        self.assertEqual(key_hash(""), 0xE4A6A0577479B2B4)
        ring = HashRing(["a", "b", "c"])
        self.assertEqual([ring.owner(f"u{i}") for i in range(8)], list("caabbaaa"))

    def test_same_in_another_process(self) -> None:
        """Another interpreter (another hash seed) computes the same owners."""
        servers = ", ".join(f"'chat-{i}'" for i in range(1, 6))
        code = (
            "from pomelo_twisted.rpc.hashring import HashRing; "
            f"r = HashRing([{servers}]); "
            "print(','.join(r.owner(f'uid-{n}') for n in range(200)))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "12345"},
        ).stdout.strip()
        ring = HashRing([f"chat-{i}" for i in range(1, 6)])
        self.assertEqual(out, ",".join(ring.owner(f"uid-{n}") for n in range(200)))


class HashRingTests(SynchronousTestCase):
    """The ring of one membership."""

    def test_refuses_empty(self) -> None:
        """No server, or no point per server, is refused with the reason."""
        self.assertRaises(ValueError, HashRing, [])
        self.assertRaises(ValueError, HashRing, ["a"], 0)

    def test_balance(self) -> None:
        """With 160 points each, every one of 10 servers owns 10% ± 4% of 10,000 uids."""
        ring = HashRing([s.id for s in chat(10)])
        counts: dict[str, int] = {}
        for uid in UIDS:
            owner = ring.owner(uid)
            counts[owner] = counts.get(owner, 0) + 1
        self.assertEqual(len(counts), 10)
        for owner, n in counts.items():
            self.assertTrue(600 <= n <= 1400, f"{owner} owns {n} of 10000")

    def test_successors(self) -> None:
        """The successors start with the owner and name every server once."""
        ring = HashRing(["a", "b", "c"])
        for uid in UIDS[:100]:
            order = ring.successors(uid)
            self.assertEqual(order[0], ring.owner(uid))
            self.assertEqual(sorted(order), ["a", "b", "c"])

    def test_successor_is_owner_without_it(self) -> None:
        """The second successor is the owner on the ring without the first."""
        full = HashRing(["a", "b", "c", "d"])
        for uid in UIDS[:300]:
            first, second = full.successors(uid)[:2]
            smaller = HashRing([i for i in ("a", "b", "c", "d") if i != first])
            self.assertEqual(smaller.owner(uid), second)


class GrowthTests(SynchronousTestCase):
    """What moves when the membership changes, on 10,000 uids."""

    def test_adding_one_moves_about_one_in_n_plus_one(self) -> None:
        """Adding a server to n (2..10) moves 1/(n+1) ± 25% of them, all to the new one."""
        route = consistent_hash_route()
        for n in range(2, 11):
            before, after = chat(n), chat(n + 1)
            fraction = moved(route, before, after)
            expected = 1 / (n + 1)
            self.assertTrue(
                0.75 * expected <= fraction <= 1.25 * expected,
                f"{n} -> {n + 1}: {fraction:.3f} moved, expected about {expected:.3f}",
            )
            for uid in UIDS[:2000]:
                if route(uid, before) != route(uid, after):
                    self.assertEqual(route(uid, after), f"chat-{n + 1}")

    def test_removing_one_moves_only_its_keys(self) -> None:
        """Removing a server moves exactly the keys it owned; the others stay."""
        route = consistent_hash_route()
        for n in range(3, 11):
            before = chat(n)
            gone = f"chat-{(n // 2) + 1}"
            after = [s for s in before if s.id != gone]
            for uid in UIDS:
                owner = route(uid, before)
                if owner != gone:
                    self.assertEqual(route(uid, after), owner)
                else:
                    self.assertNotEqual(route(uid, after), gone)

    def test_crc32_mod_n_moves_most(self) -> None:
        """The default route moves most uids when a server joins (the reason for the ring)."""
        for n in range(2, 11):
            self.assertGreater(moved(default_route, chat(n), chat(n + 1)), 0.5)


class RouteFunctionTests(SynchronousTestCase):
    """ConsistentHashRoute as a route function."""

    def test_order_does_not_matter(self) -> None:
        """The list order of the servers does not change a pick."""
        route = ConsistentHashRoute()
        servers = chat(4)
        for uid in UIDS[:200]:
            self.assertEqual(route(uid, servers), route(uid, list(reversed(servers))))

    def test_ring_rebuilt_only_on_change(self) -> None:
        """The same membership reuses its ring; another builds a new one."""
        route = ConsistentHashRoute(vnodes=8)
        ring = route.ring(chat(3))
        self.assertIs(route.ring(list(reversed(chat(3)))), ring)
        self.assertIsNot(route.ring(chat(4)), ring)

    def test_no_server(self) -> None:
        """No server raises RpcError naming the parameter."""
        self.assertRaises(RpcError, ConsistentHashRoute(), "u1", [])

    def test_bad_vnodes(self) -> None:
        """vnodes must be a positive integer."""
        self.assertRaises(ValueError, ConsistentHashRoute, 0)
        self.assertRaises(ValueError, ConsistentHashRoute, 1.5)

    def test_router_uses_it(self) -> None:
        """app.route(type, consistent_hash_route()) makes the Router pick with the ring."""
        router = Router()
        route = consistent_hash_route()
        router.set("chat", route)
        servers = chat(5)
        for uid in UIDS[:100]:
            self.assertEqual(router.pick("chat", uid, servers), route(uid, servers))

    def test_router_fallback_is_next_on_ring(self) -> None:
        """The Router's fallback of a ring route is the owner once the failed one is gone."""
        router = Router()
        router.set("chat", consistent_hash_route())
        servers = chat(4)
        for uid in UIDS[:100]:
            owner = router.pick("chat", uid, servers)
            without = [s for s in servers if s.id != owner]
            self.assertEqual(
                router.fallback("chat", uid, servers, owner), router.pick("chat", uid, without)
            )

    def test_router_fallback_default_is_next_sorted(self) -> None:
        """Without a ring the fallback is the next id in sorted order (wrapping), None alone."""
        router = Router()
        servers = chat(3)
        self.assertEqual(router.fallback("chat", "u", servers, "chat-1"), "chat-2")
        self.assertEqual(router.fallback("chat", "u", servers, "chat-3"), "chat-1")
        self.assertIsNone(router.fallback("chat", "u", chat(1), "chat-1"))


class RouteSettingTests(SynchronousTestCase):
    """route_function: a route setting's name to its function."""

    def test_names(self) -> None:
        """crc32 is the default route; consistent-hash a ring, with its points if given."""
        self.assertIs(route_function("crc32"), default_route)
        ring = route_function("consistent-hash")
        assert isinstance(ring, ConsistentHashRoute)
        self.assertEqual(ring.vnodes, 160)
        ring = route_function("consistent-hash:32")
        assert isinstance(ring, ConsistentHashRoute)
        self.assertEqual(ring.vnodes, 32)

    def test_unknown_names_are_refused(self) -> None:
        """Another name, or a bad point count, is a ConfigError naming the setting."""
        for spec in ("md5", "consistent-hash:0", "consistent-hash:x", "crc32:4", ""):
            error = self.assertRaises(ConfigError, route_function, spec)
            self.assertIn("route setting", str(error))
