"""Load-test statistics: recording, exact merging of several processes, JSON round trip."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.bots.histogram import Histogram
from pomelo_twisted.bots.stats import RouteStats, Stats

SEND = "chat.chatHandler.send"
ENTER = "connector.entryHandler.enter"


def sample_stats() -> Stats:
    stats = Stats()
    for _ in range(3):
        stats.record_bot_started()
    stats.record_bot_connected()
    stats.record_bot_connected()
    stats.record_bot_finished()
    stats.record_response(ENTER, 0.004)
    stats.record_response(SEND, 0.001)
    stats.record_response(SEND, 0.002)
    stats.record_response(SEND, 0.010, "500")
    stats.record_response(SEND, None, "timeout")
    stats.record_notify("chat.chatHandler.typing")
    stats.record_push("onChat")
    stats.record_push("onChat")
    stats.record_push("onAdd")
    stats.record_kick()
    stats.record_connection_failure()
    stats.record_scenario_error("KeyError")
    return stats


def random_events(seed: int, count: int) -> list[Callable[[Stats], None]]:
    """A reproducible mix of everything a bot can record."""
    rng = random.Random(seed)
    routes = [SEND, ENTER, "area.playerHandler.move"]
    events: list[Callable[[Stats], None]] = []
    for _ in range(count):
        kind = rng.randrange(8)
        route = rng.choice(routes)
        if kind < 4:
            latency = rng.expovariate(100)
            error = rng.choice([None, None, None, "500", "timeout"])
            seconds = None if error == "timeout" else latency
            events.append(partial(Stats.record_response, route=route, seconds=seconds, error=error))
        elif kind == 4:
            events.append(partial(Stats.record_push, route=route))
        elif kind == 5:
            events.append(partial(Stats.record_notify, route=route))
        elif kind == 6:
            events.append(Stats.record_bot_started)
        else:
            events.append(rng.choice([Stats.record_kick, Stats.record_connection_failure]))
    return events


class RecordingTests(SynchronousTestCase):
    """What each record_* call counts."""

    def test_responses(self) -> None:
        """Answers (errors too) count as requests with a latency; timeouts without one."""
        stats = sample_stats()
        send = stats.routes[SEND]
        self.assertEqual(send.requests, 4)
        self.assertEqual(send.errors, {"500": 1, "timeout": 1})
        self.assertEqual(send.error_count, 2)
        self.assertEqual(send.latency.count, 3)
        self.assertEqual(send.latency.max, 0.010)
        self.assertEqual(stats.routes[ENTER].requests, 1)
        self.assertEqual(stats.routes[ENTER].errors, {})

    def test_response_needs_latency_or_error(self) -> None:
        """A request with neither latency nor error kind is a ValueError and counts nothing."""
        stats = Stats()
        self.assertRaises(ValueError, stats.record_response, SEND, None)
        self.assertEqual(stats.routes, {})

    def test_other_events(self) -> None:
        """Notifies, pushes, kicks, connection failures, scenario errors and bots count."""
        stats = sample_stats()
        self.assertEqual(stats.notifies, {"chat.chatHandler.typing": 1})
        self.assertEqual(stats.pushes, {"onChat": 2, "onAdd": 1})
        self.assertEqual(stats.kicks, 1)
        self.assertEqual(stats.connection_failures, 1)
        self.assertEqual(stats.scenario_errors, {"KeyError": 1})
        self.assertEqual((stats.bots_started, stats.bots_connected, stats.bots_finished), (3, 2, 1))
        stats.record_bot_disconnected()
        self.assertEqual(stats.bots_connected, 1)

    def test_kick_reasons(self) -> None:
        """A kick with a reason counts under it; merged and read back exactly."""
        stats = Stats()
        stats.record_kick("server restarting")
        stats.record_kick("server restarting")
        stats.record_kick()
        self.assertEqual((stats.kicks, stats.kick_reasons), (3, {"server restarting": 2}))
        other = Stats()
        other.record_kick("another login")
        stats.merge(other)
        self.assertEqual(stats.kick_reasons, {"another login": 1, "server restarting": 2})
        self.assertEqual(Stats.from_dict(stats.to_dict()), stats)
        older = stats.to_dict()
        del older["kick_reasons"]
        self.assertEqual(Stats.from_dict(older).kick_reasons, {})

    def test_totals(self) -> None:
        """totals() sums requests and errors of every route."""
        self.assertEqual(sample_stats().totals(), (5, 2))
        self.assertEqual(Stats().totals(), (0, 0))

    def test_latency_and_errors_over_routes(self) -> None:
        """latency() merges every route's histogram; errors_by_kind() adds their errors."""
        stats = sample_stats()
        stats.record_response(ENTER, None, "timeout")
        latency = stats.latency()
        self.assertEqual((latency.count, latency.min, latency.max), (4, 0.001, 0.010))
        self.assertEqual(stats.errors_by_kind(), {"500": 1, "timeout": 2})


class MergeTests(SynchronousTestCase):
    """Merging the statistics of several processes."""

    def test_merge_of_several_equals_one(self) -> None:
        """Events dealt to four processes and merged equal one process recording them all."""
        events = random_events(42, 4000)
        whole = Stats()
        parts = [Stats() for _ in range(4)]
        for i, event in enumerate(events):
            event(whole)
            event(parts[i % 4])
        merged = Stats()
        for part in parts:
            merged.merge(Stats.from_dict(json.loads(json.dumps(part.to_dict()))))
        self.assertEqual(merged, whole)
        self.assertEqual(merged.to_dict(), whole.to_dict())
        self.assertEqual(merged.totals(), whole.totals())
        for p in (50, 90, 99, 100):
            self.assertEqual(merged.latency().percentile(p), whole.latency().percentile(p))

    def test_merge_adds_every_counter(self) -> None:
        """Merging two sample stats doubles every counter, connected bots included."""
        stats = sample_stats()
        stats.merge(sample_stats())
        self.assertEqual(stats.totals(), (10, 4))
        self.assertEqual(stats.routes[SEND].errors, {"500": 2, "timeout": 2})
        self.assertEqual(stats.routes[SEND].latency.count, 6)
        self.assertEqual(stats.pushes, {"onChat": 4, "onAdd": 2})
        self.assertEqual(stats.notifies, {"chat.chatHandler.typing": 2})
        self.assertEqual(stats.scenario_errors, {"KeyError": 2})
        self.assertEqual(
            (
                stats.kicks,
                stats.connection_failures,
                stats.bots_started,
                stats.bots_connected,
                stats.bots_finished,
            ),
            (2, 2, 6, 4, 2),
        )

    def test_merge_does_not_share_state(self) -> None:
        """After a merge, recording into the source leaves the target unchanged."""
        source = sample_stats()
        target = Stats()
        target.merge(source)
        source.record_response(SEND, 0.5, "500")
        source.record_push("onChat")
        self.assertEqual(target, sample_stats())

    def test_copy_is_a_snapshot(self) -> None:
        """copy() is equal and independent."""
        stats = sample_stats()
        snapshot = stats.copy()
        self.assertEqual(snapshot, stats)
        stats.record_response(SEND, 0.1)
        self.assertEqual(snapshot.totals(), (5, 2))


class DictTests(SynchronousTestCase):
    """to_dict / from_dict."""

    def test_round_trip_through_json(self) -> None:
        """to_dict goes through JSON and from_dict reads back equal stats."""
        stats = Stats()
        for event in random_events(7, 500):
            event(stats)
        data = json.loads(json.dumps(stats.to_dict()))
        back = Stats.from_dict(data)
        self.assertEqual(back, stats)
        self.assertEqual(back.to_dict(), stats.to_dict())
        for route, route_stats in stats.routes.items():
            self.assertEqual(back.routes[route].latency, route_stats.latency)

    def test_round_trip_empty(self) -> None:
        """Empty stats survive the round trip."""
        self.assertEqual(Stats.from_dict(json.loads(json.dumps(Stats().to_dict()))), Stats())

    def test_route_stats_round_trip(self) -> None:
        """RouteStats alone round-trips too."""
        route = RouteStats(3, {"500": 1}, Histogram())
        route.latency.record(0.25)
        self.assertEqual(RouteStats.from_dict(route.to_dict()), route)

    def test_from_dict_errors(self) -> None:
        """Malformed or inconsistent data raises ValueError naming the problem."""

        def mutated(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
            data = json.loads(json.dumps(sample_stats().to_dict()))
            change(data)
            return data

        cases: list[tuple[str, Any]] = [
            ("stats must be a mapping", [1]),
            ("stats is missing kicks", mutated(lambda d: d.pop("kicks"))),
            ("unknown keys: extra", mutated(lambda d: d.update(extra=1))),
            ("stats kicks must be", mutated(lambda d: d.update(kicks=-1))),
            ("stats bots_started must be", mutated(lambda d: d.update(bots_started=1.5))),
            ("stats bots_connected must be", mutated(lambda d: d.update(bots_connected="2"))),
            ("stats pushes must be a mapping", mutated(lambda d: d.update(pushes=[]))),
            ("stats pushes onChat", mutated(lambda d: d["pushes"].update(onChat=True))),
            ("stats routes must be", mutated(lambda d: d.update(routes=None))),
            (
                f"route {SEND} requests",
                mutated(lambda d: d["routes"][SEND].update(requests=None)),
            ),
            (
                f"route {SEND} has more errors",
                mutated(lambda d: d["routes"][SEND].update(requests=1)),
            ),
            (
                f"route {ENTER} has more latencies",
                mutated(lambda d: d["routes"][ENTER].update(requests=0)),
            ),
            (
                f"route {SEND} latency: histogram is missing count",
                mutated(lambda d: d["routes"][SEND]["latency"].pop("count")),
            ),
        ]
        for fragment, data in cases:
            with self.assertRaises(ValueError, msg=fragment) as caught:
                Stats.from_dict(data)
            self.assertIn(fragment, str(caught.exception))
