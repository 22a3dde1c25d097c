"""Tracing into memory: a TracingSetup whose servers export to one in-memory exporter,
and the span trees it holds, for tests of traces (``GameHarness(..., tracing=setup)``)::

    setup, exporter = memory_tracing()
    game = GameHarness("example_game", tracing=setup)
    ...
    assert span_tree(exporter.get_finished_spans())[0] == (0, "SERVER", route)
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from ..tracing import TracingSetup

__all__ = ["memory_tracing", "span_tree"]


def memory_tracing(
    sampler: Sampler | None = None, seed: int = 7
) -> tuple[TracingSetup, InMemorySpanExporter]:
    """A setup whose every server exports to one in-memory exporter, synchronously
    (``sampler``: the servers' sampler, parent-based always-on by default; ``seed``: of
    the ids' random source)."""
    exporter = InMemorySpanExporter()
    setup = TracingSetup(
        lambda: [SimpleSpanProcessor(exporter)], rng=random.Random(seed), sampler=sampler
    )
    return setup, exporter


def span_tree(spans: Sequence[ReadableSpan]) -> list[tuple[int, str, str]]:
    """The spans as (depth, kind, name), parents before children, siblings by start."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {span.context.span_id for span in spans}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        by_parent.setdefault(parent if parent in ids else None, []).append(span)
    out: list[tuple[int, str, str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in sorted(by_parent.get(parent, []), key=lambda s: (s.start_time, s.name)):
            out.append((depth, span.kind.name, span.name))
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return out
