"""What a load test counts: requests per route, their errors and latencies, pushes, bots.

Every bot process fills one :class:`Stats`; worker processes send theirs to the parent as
JSON (:meth:`Stats.to_dict`), which merges them with :meth:`Stats.merge`.  Merging only adds
counters and histogram buckets, so the merged statistics are exactly those one process
would have recorded for all the bots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pomelo_twisted.bots.histogram import Histogram

__all__ = ["RouteStats", "Stats"]

_COUNTERS = ("kicks", "connection_failures", "bots_started", "bots_connected", "bots_finished")
_TABLES = ("notifies", "pushes", "scenario_errors", "counters", "kick_reasons")
_STATS_KEYS = frozenset({"routes", *_COUNTERS, *_TABLES})
_ROUTE_KEYS = frozenset({"requests", "errors", "latency"})


@dataclass
class RouteStats:
    """One request route: how many requests ended, how many failed and how, and latencies.

    ``errors`` maps an error kind (a response code such as ``"500"``, or ``"timeout"``,
    ``"closed"``) to its count.  ``latency`` holds every response that came back, errors
    included; timeouts and requests cut by a closed connection have no latency.
    """

    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)

    @property
    def error_count(self) -> int:
        """The errors of every kind."""
        return sum(self.errors.values())

    def merge(self, other: RouteStats) -> None:
        """Add ``other``'s counts to these."""
        self.requests += other.requests
        _add_table(self.errors, other.errors)
        self.latency.merge(other.latency)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form that :meth:`from_dict` reads back exactly."""
        return {
            "requests": self.requests,
            "errors": dict(sorted(self.errors.items())),
            "latency": self.latency.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "route") -> RouteStats:
        """Read :meth:`to_dict`'s form back, checking it; ``ValueError`` names the problem."""
        _check_keys(data, _ROUTE_KEYS, where)
        requests = _count(data["requests"], f"{where} requests")
        errors = _table(data["errors"], f"{where} errors")
        try:
            latency = Histogram.from_dict(data["latency"])
        except ValueError as e:
            raise ValueError(f"{where} latency: {e}") from None
        if sum(errors.values()) > requests:
            raise ValueError(f"{where} has more errors than requests ({requests})")
        if latency.count > requests:
            raise ValueError(f"{where} has more latencies than requests ({requests})")
        return cls(requests, errors, latency)


class Stats:
    """A load test's counters, in one process or merged from several.

    ``bots_connected`` is how many bots are connected right now (merging adds the
    processes' figures); ``scenario_errors`` counts the exceptions that ended a bot's
    scenario, by exception type name.
    """

    def __init__(self) -> None:
        self.routes: dict[str, RouteStats] = {}
        self.notifies: dict[str, int] = {}
        self.pushes: dict[str, int] = {}
        self.kicks = 0
        self.connection_failures = 0
        self.bots_started = 0
        self.bots_connected = 0
        self.bots_finished = 0
        self.scenario_errors: dict[str, int] = {}
        #: The scenarios' own counters (``bot.count(name)``), summed over bots.
        self.counters: dict[str, int] = {}
        #: The kicks by the reason the server gave (e.g. "server restarting").
        self.kick_reasons: dict[str, int] = {}

    # -- recording --------------------------------------------------------------------

    def record_response(self, route: str, seconds: float | None, error: str | None = None) -> None:
        """One request ended: answered after ``seconds`` (maybe with an ``error`` code), or
        without an answer (``seconds`` None: ``error`` says why, e.g. timeout or closed).
        """
        if seconds is None and error is None:
            raise ValueError(f"a request on {route} without a latency needs an error kind")
        stats = self.routes.get(route)
        if stats is None:
            stats = self.routes[route] = RouteStats()
        stats.requests += 1
        if error is not None:
            stats.errors[error] = stats.errors.get(error, 0) + 1
        if seconds is not None:
            stats.latency.record(seconds)

    def record_notify(self, route: str) -> None:
        """A notify (a request without a response) was sent on ``route``."""
        self.notifies[route] = self.notifies.get(route, 0) + 1

    def record_push(self, route: str) -> None:
        """A bot received a push on ``route``."""
        self.pushes[route] = self.pushes.get(route, 0) + 1

    def record_kick(self, reason: str | None = None) -> None:
        """The server kicked a bot (with ``reason``, counted in ``kick_reasons``)."""
        self.kicks += 1
        if reason is not None:
            self.kick_reasons[reason] = self.kick_reasons.get(reason, 0) + 1

    def record_connection_failure(self) -> None:
        """A bot could not connect (or handshake)."""
        self.connection_failures += 1

    def record_scenario_error(self, kind: str) -> None:
        """A bot's scenario raised an exception of type ``kind``."""
        self.scenario_errors[kind] = self.scenario_errors.get(kind, 0) + 1

    def record_counter(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` (>= 0) to the scenario counter ``name``."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValueError(f"counter {name!r}: add a whole number >= 0, not {amount!r}")
        self.counters[name] = self.counters.get(name, 0) + amount

    def record_bot_started(self) -> None:
        """A bot began (before connecting)."""
        self.bots_started += 1

    def record_bot_connected(self) -> None:
        """A bot is now connected."""
        self.bots_connected += 1

    def record_bot_disconnected(self) -> None:
        """A connected bot lost or closed its connection."""
        self.bots_connected -= 1

    def record_bot_finished(self) -> None:
        """A bot ended, however its scenario went."""
        self.bots_finished += 1

    # -- reading ----------------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        """(requests, errors) over all routes."""
        requests = errors = 0
        for stats in self.routes.values():
            requests += stats.requests
            errors += stats.error_count
        return requests, errors

    def latency(self) -> Histogram:
        """Every route's latencies merged in one histogram."""
        merged = Histogram()
        for stats in self.routes.values():
            merged.merge(stats.latency)
        return merged

    def errors_by_kind(self) -> dict[str, int]:
        """Error counts by kind over all routes."""
        merged: dict[str, int] = {}
        for stats in self.routes.values():
            _add_table(merged, stats.errors)
        return merged

    # -- merging and serializing ------------------------------------------------------

    def merge(self, other: Stats) -> None:
        """Add ``other``'s counts to these (exact: counters and histogram buckets add)."""
        for route, stats in list(other.routes.items()):
            mine = self.routes.get(route)
            if mine is None:
                mine = self.routes[route] = RouteStats()
            mine.merge(stats)
        _add_table(self.notifies, other.notifies)
        _add_table(self.pushes, other.pushes)
        _add_table(self.scenario_errors, other.scenario_errors)
        _add_table(self.counters, other.counters)
        _add_table(self.kick_reasons, other.kick_reasons)
        self.kicks += other.kicks
        self.connection_failures += other.connection_failures
        self.bots_started += other.bots_started
        self.bots_connected += other.bots_connected
        self.bots_finished += other.bots_finished

    def copy(self) -> Stats:
        """An independent copy (a snapshot, e.g. to compute rates over the next interval)."""
        clone = Stats()
        clone.merge(self)
        return clone

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form that :meth:`from_dict` reads back exactly."""
        return {
            "routes": {route: self.routes[route].to_dict() for route in sorted(self.routes)},
            "notifies": dict(sorted(self.notifies.items())),
            "pushes": dict(sorted(self.pushes.items())),
            "kicks": self.kicks,
            "connection_failures": self.connection_failures,
            "bots_started": self.bots_started,
            "bots_connected": self.bots_connected,
            "bots_finished": self.bots_finished,
            "scenario_errors": dict(sorted(self.scenario_errors.items())),
            "counters": dict(sorted(self.counters.items())),
            "kick_reasons": dict(sorted(self.kick_reasons.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stats:
        """Read :meth:`to_dict`'s form back, checking it; ``ValueError`` names the problem."""
        if isinstance(data, Mapping) and "kick_reasons" not in data:  # before kick reasons
            data = {**data, "kick_reasons": {}}
        _check_keys(data, _STATS_KEYS, "stats")
        stats = cls()
        routes = data["routes"]
        if not isinstance(routes, Mapping):
            raise ValueError("stats routes must be a mapping of route to route stats")
        for route, value in routes.items():
            if not isinstance(route, str):
                raise ValueError(f"stats route name {route!r} is not a string")
            stats.routes[route] = RouteStats.from_dict(value, f"route {route}")
        for name in _TABLES:
            setattr(stats, name, _table(data[name], f"stats {name}"))
        for name in _COUNTERS:
            if name == "bots_connected":
                value = data[name]
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"stats {name} must be an integer, got {value!r}")
            else:
                value = _count(data[name], f"stats {name}")
            setattr(stats, name, value)
        return stats

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stats):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        requests, errors = self.totals()
        return f"<Stats requests={requests} errors={errors} routes={len(self.routes)}>"


def _add_table(into: dict[str, int], other: Mapping[str, int]) -> None:
    for key, n in list(other.items()):
        into[key] = into.get(key, 0) + n


def _check_keys(data: object, expected: frozenset[str], where: str) -> None:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    missing = sorted(expected - set(data))
    if missing:
        raise ValueError(f"{where} is missing {', '.join(missing)}")
    unknown = sorted(str(key) for key in set(data) - expected)
    if unknown:
        raise ValueError(f"{where} has unknown keys: {', '.join(unknown)}")


def _count(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
    return value


def _table(value: object, where: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping of name to count")
    table: dict[str, int] = {}
    for key, n in value.items():
        if not isinstance(key, str):
            raise ValueError(f"{where}: name {key!r} is not a string")
        table[key] = _count(n, f"{where} {key}")
    return table
