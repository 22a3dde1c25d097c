"""Load-test reports: the JSON summary, the final text report and the live progress line.

:func:`summarize` turns (merged) :class:`~pomelo_twisted.bots.stats.Stats` into a JSON-able
summary; :func:`format_report` prints it; :func:`~pomelo_twisted.bots.thresholds.evaluate`
checks ``--fail-if`` thresholds against it.  Latencies in the summary are milliseconds
rounded to the microsecond, and ``None`` (JSON ``null``) when no response came back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pomelo_twisted.bots.histogram import Histogram
from pomelo_twisted.bots.stats import Stats

__all__ = ["format_progress", "format_report", "summarize"]

_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _latency(histogram: Histogram) -> dict[str, float | None]:
    """p50, p90, p99, max and mean in ms; all ``None`` for an empty histogram."""
    names = [name for name, _ in _PERCENTILES]
    if histogram.count == 0:
        return dict.fromkeys([*names, "max", "mean"])
    assert histogram.max is not None
    values = histogram.percentiles(p for _, p in _PERCENTILES)
    result: dict[str, float | None] = {
        name: _ms(value) for name, value in zip(names, values, strict=True)
    }
    result["max"] = _ms(histogram.max)
    result["mean"] = _ms(histogram.mean())
    return result


def summarize(stats: Stats, duration: float) -> dict[str, Any]:
    """The JSON-able summary of a run of ``duration`` seconds.

    Keys: ``duration``; ``bots`` (started, connected, finished, connection_failures,
    kicks); ``requests``, ``errors``, ``error_rate`` (percent, ``None`` without requests),
    ``rate`` (requests/s); ``latency_ms`` (p50, p90, p99, max, mean over every route's
    merged histogram); ``errors_by_kind``; ``routes`` (route -> count, rate, p50, p90,
    p99, max, mean, errors by kind); ``notifies``; ``pushes``; ``pushes_total``;
    ``scenario_errors``; ``counters`` (the scenarios' own, ``bot.count``).
    """
    requests, errors = stats.totals()

    def per_second(n: int) -> float:
        return n / duration if duration > 0 else 0.0

    routes: dict[str, Any] = {}
    for route in sorted(stats.routes):
        route_stats = stats.routes[route]
        routes[route] = {
            "count": route_stats.requests,
            "rate": per_second(route_stats.requests),
            **_latency(route_stats.latency),
            "errors": dict(sorted(route_stats.errors.items())),
        }
    return {
        "duration": duration,
        "bots": {
            "started": stats.bots_started,
            "connected": stats.bots_connected,
            "finished": stats.bots_finished,
            "connection_failures": stats.connection_failures,
            "kicks": stats.kicks,
            "kick_reasons": dict(sorted(stats.kick_reasons.items())),
        },
        "requests": requests,
        "errors": errors,
        "error_rate": errors * 100 / requests if requests else None,
        "rate": per_second(requests),
        "latency_ms": _latency(stats.latency()),
        "errors_by_kind": dict(sorted(stats.errors_by_kind().items())),
        "routes": routes,
        "notifies": dict(sorted(stats.notifies.items())),
        "pushes": dict(sorted(stats.pushes.items())),
        "pushes_total": sum(stats.pushes.values()),
        "scenario_errors": dict(sorted(stats.scenario_errors.items())),
        "counters": dict(sorted(stats.counters.items())),
    }


# -- text ---------------------------------------------------------------------------------


def _count(n: int) -> str:
    return f"{n:,}"


def _rate(value: float) -> str:
    return f"{value:,.1f}"


def _millis(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _percent(errors: int, requests: int) -> str:
    return f"{errors * 100 / requests:.2f}%" if requests else "-"


def _short_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f}ms" if ms < 1 else f"{ms:,.1f}ms"


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "", left: int = 1
) -> list[str]:
    """Columns padded to their widest cell: the first ``left`` left-aligned, others right."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _counts_section(title: str, counts: Mapping[str, int]) -> list[str]:
    if not counts:
        return []
    rows = [[name, _count(n)] for name, n in counts.items()]
    if len(counts) > 1:
        rows.append(["total", _count(sum(counts.values()))])
    return ["", title, *_table(["", ""], rows, "  ")[1:]]


def format_report(summary: Mapping[str, Any]) -> str:
    """An aligned, readable text report of :func:`summarize`'s summary."""
    bots = summary["bots"]
    requests, errors = summary["requests"], summary["errors"]
    latency = summary["latency_ms"]
    lines = [
        f"{summary['duration']:.1f}s"
        f"  bots {_count(bots['started'])} started, {_count(bots['finished'])} finished"
        f"  requests {_count(requests)}  rate {_rate(summary['rate'])}/s"
        f"  errors {_count(errors)} ({_percent(errors, requests)})",
        "latency ms  "
        + "  ".join(f"{name} {_millis(latency[name])}" for name in ("p50", "p90", "p99", "max"))
        + f"  mean {_millis(latency['mean'])}",
    ]
    routes: Mapping[str, Any] = summary["routes"]
    if routes:
        headers = ["route", "count", "rate/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"]
        rows = [
            [
                route,
                _count(data["count"]),
                _rate(data["rate"]),
                *(_millis(data[name]) for name in ("p50", "p90", "p99", "max")),
                _count(sum(data["errors"].values())),
            ]
            for route, data in routes.items()
        ]
        if len(routes) > 1:
            rows.append(
                [
                    "all routes",
                    _count(requests),
                    _rate(summary["rate"]),
                    *(_millis(latency[name]) for name in ("p50", "p90", "p99", "max")),
                    _count(errors),
                ]
            )
        lines += ["", *_table(headers, rows)]
    error_rows = [
        [route, kind, _count(n)]
        for route, data in routes.items()
        for kind, n in data["errors"].items()
    ]
    if error_rows:
        lines += ["", "errors by code", *_table(["route", "code", "count"], error_rows, "  ", 2)]
    lines += _counts_section("pushes received", summary["pushes"])
    lines += _counts_section("notifies sent", summary["notifies"])
    lines += _counts_section("scenario errors", summary["scenario_errors"])
    lines += _counts_section("scenario counters", summary.get("counters", {}))
    lines += _counts_section("kicks by reason", bots.get("kick_reasons", {}))
    lines += [
        "",
        f"connection failures {_count(bots['connection_failures'])}",
        f"kicks {_count(bots['kicks'])}",
    ]
    return "\n".join(lines) + "\n"


def format_progress(elapsed: float, stats: Stats, previous: Stats | None, interval: float) -> str:
    """One line for a live display, e.g.
    ``12.0s  bots 200/200  req/s 1,234  p50 1.2ms  p99 8.9ms  errors 0``.

    ``bots`` is connected/started; ``req/s`` the requests that ended since ``previous``
    (a snapshot taken ``interval`` seconds ago; ``None`` for the first interval);
    percentiles and errors cover the whole run so far.  Connection failures and kicks
    are appended once there are some.
    """
    requests, errors = stats.totals()
    before = previous.totals()[0] if previous is not None else 0
    rate = f"{max(requests - before, 0) / interval:,.0f}" if interval > 0 else "-"
    latency = stats.latency()
    if latency.count:
        p50, p99 = (_short_ms(v) for v in latency.percentiles([50, 99]))
    else:
        p50 = p99 = "-"
    line = (
        f"{elapsed:.1f}s  bots {stats.bots_connected:,}/{stats.bots_started:,}"
        f"  req/s {rate}  p50 {p50}  p99 {p99}  errors {errors:,}"
    )
    if stats.connection_failures:
        line += f"  connection failures {stats.connection_failures:,}"
    if stats.kicks:
        line += f"  kicks {stats.kicks:,}"
    return line
