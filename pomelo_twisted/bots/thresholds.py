"""``--fail-if`` thresholds: parse ``"p99>50ms,errors>0"`` and check a report against it.

A threshold **crosses** when the condition written in it holds: ``--fail-if p99>50ms``
fails the run when p99 is above 50 ms.  (k6 writes the condition that must hold instead;
the flag's name says which one this is.)

Grammar of one threshold (several are separated by commas; spaces are allowed anywhere
between the parts; metric names and units are case-insensitive)::

    [ROUTE ":"] METRIC OP NUMBER [UNIT]

========================  ==========================================  ============
metric                    meaning                                     units
========================  ==========================================  ============
p50 p90 p99 max mean      response latency                            ms (default),
                                                                      s, us, µs
errors                    failed requests (codes, timeouts, closed)   none
error_rate                errors / requests, in percent               % (optional)
rate                      requests per second                         /s (optional)
requests                  requests that ended                         none
connection_failures       bots that could not connect                 none
kicks                     bots the server kicked                      none
pushes                    pushes received, all routes                 none
scenario_errors           scenarios that raised                       none
========================  ==========================================  ============

``OP`` is one of ``>``, ``>=``, ``<``, ``<=``.  A ``ROUTE:`` prefix applies a latency,
``errors``, ``error_rate``, ``rate`` or ``requests`` threshold to one request route.

A threshold that cannot be measured fails too (a test that measured nothing must not
pass): a per-route threshold on a route without requests ("no requests on ROUTE"), a
latency threshold when no response came back, ``error_rate`` without any request.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["METRICS", "Threshold", "evaluate", "parse_thresholds"]

LATENCY_METRICS = ("p50", "p90", "p99", "max", "mean")
COUNT_METRICS = (
    "errors",
    "requests",
    "connection_failures",
    "kicks",
    "pushes",
    "scenario_errors",
)
#: Every metric a threshold can name.
METRICS = (*LATENCY_METRICS, "error_rate", "rate", *COUNT_METRICS)
ROUTE_METRICS = frozenset({*LATENCY_METRICS, "errors", "error_rate", "rate", "requests"})

# Unit -> factor to the metric's canonical unit (ms for latencies, percent, per second).
_LATENCY_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}
_RATE_UNITS = {"": 1.0, "/s": 1.0}
_PERCENT_UNITS = {"": 1.0, "%": 1.0}
_PLAIN_UNITS = {"": 1.0}

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_OP_PATTERN = re.compile(r">=|<=|>|<")
_VALUE_PATTERN = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(\S*)")


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold; ``value`` is in the metric's canonical unit (ms, %, /s)."""

    metric: str
    op: str
    value: float
    route: str | None
    text: str

    def crossed(self, measured: float) -> bool:
        """Whether ``measured`` (in the canonical unit) makes this threshold fail."""
        return _OPS[self.op](measured, self.value)


def parse_thresholds(spec: str) -> list[Threshold]:
    """Parse a comma-separated ``--fail-if`` value; an empty one means no thresholds.

    Raises ``ValueError`` with a message naming the part that is wrong.
    """
    if not spec.strip():
        return []
    return [_parse_one(item, spec) for item in spec.split(",")]


def _parse_one(item: str, spec: str) -> Threshold:
    text = item.strip()
    if not text:
        raise ValueError(f"empty threshold in {spec!r} (stray comma?)")
    route: str | None = None
    rest = text
    if ":" in text:
        route_part, _, rest = text.partition(":")
        route = route_part.strip()
        if ":" in rest:
            raise ValueError(f"threshold {text!r} has more than one ':'")
        if not route:
            raise ValueError(f"threshold {text!r} has an empty route before ':'")
    match = _OP_PATTERN.search(rest)
    if match is None:
        hint = "'=' is not a comparison; " if "=" in rest else ""
        raise ValueError(f"threshold {text!r} has no comparison: {hint}use >, >=, < or <=")
    metric = rest[: match.start()].strip().lower()
    op = match.group()
    if not metric:
        raise ValueError(f"threshold {text!r} has no metric before {op!r}")
    if metric not in METRICS:
        raise ValueError(
            f"unknown metric {metric!r} in threshold {text!r} (known: {', '.join(METRICS)})"
        )
    if route is not None and metric not in ROUTE_METRICS:
        raise ValueError(
            f"metric {metric!r} cannot be limited to a route (in {text!r}); per-route metrics"
            f" are {', '.join(m for m in METRICS if m in ROUTE_METRICS)}"
        )
    value_text = rest[match.end() :].strip()
    value_match = _VALUE_PATTERN.fullmatch(value_text)
    if value_match is None:
        raise ValueError(
            f"bad value {value_text!r} in threshold {text!r}: expected a non-negative number"
            " with an optional unit"
        )
    number, unit = value_match.groups()
    units = _units(metric)
    factor = units.get(unit.lower())
    if factor is None:
        allowed = ", ".join(u for u in units if u) or "none"
        raise ValueError(
            f"unit {unit!r} does not fit metric {metric!r} in threshold {text!r} (units: {allowed})"
        )
    return Threshold(metric, op, float(number) * factor, route, text)


def _units(metric: str) -> dict[str, float]:
    if metric in LATENCY_METRICS:
        return _LATENCY_UNITS
    if metric == "rate":
        return _RATE_UNITS
    if metric == "error_rate":
        return _PERCENT_UNITS
    return _PLAIN_UNITS


def evaluate(thresholds: list[Threshold], summary: Mapping[str, Any]) -> list[str]:
    """The thresholds ``summary`` (from :func:`~pomelo_twisted.bots.report.summarize`)
    crosses, each described like ``"p99 = 63.2 ms > 50 ms"``; empty when all pass.
    """
    failures = []
    for threshold in thresholds:
        failure = _check(threshold, summary)
        if failure is not None:
            failures.append(failure)
    return failures


def _check(threshold: Threshold, summary: Mapping[str, Any]) -> str | None:
    metric, route = threshold.metric, threshold.route
    if route is None:
        label = metric
        scope = summary
        requests = int(summary["requests"])
        errors = int(summary["errors"])
        latency = summary["latency_ms"]
        where = ""
    else:
        label = f"{route} {metric}"
        scope = summary["routes"].get(route) or {}
        requests = int(scope.get("count", 0))
        if requests == 0:
            return f"{threshold.text}: no requests on {route}"
        errors = sum(scope["errors"].values())
        latency = scope
        where = f" on {route}"
    if metric in LATENCY_METRICS:
        measured = latency.get(metric)
        if measured is None:
            return f"{threshold.text}: no responses{where}"
    elif metric == "error_rate":
        if requests == 0:
            return f"{threshold.text}: no requests"
        measured = errors * 100 / requests
    elif metric == "errors":
        measured = errors
    elif metric == "requests":
        measured = requests
    elif metric == "rate":
        measured = scope["rate"]
    elif metric == "pushes":
        measured = summary["pushes_total"]
    elif metric == "scenario_errors":
        measured = sum(summary["scenario_errors"].values())
    else:  # connection_failures, kicks
        measured = summary["bots"][metric]
    if not threshold.crossed(measured):
        return None
    return f"{label} = {_with_unit(metric, measured)} {threshold.op} " + _with_unit(
        metric, threshold.value
    )


def _with_unit(metric: str, value: float) -> str:
    if metric in LATENCY_METRICS:
        return f"{_number(value)} ms"
    if metric == "error_rate":
        return f"{_number(value)}%"
    if metric == "rate":
        return f"{_number(value)}/s"
    return _number(value)


def _number(value: float) -> str:
    """``value`` with at most three decimals (three digits below 0.1), no trailing zeros."""
    text = f"{value:.3f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3g}"
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
