"""Reading a registry as a scraper does: the text format, parsed back."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``registry``'s text exposition, parsed back with prometheus_client's
    parser, by (sample name, sorted labels without server_id/server_type)."""
    text = generate_latest(registry).decode("utf-8")
    return parse(text)


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a text exposition (see :func:`scrape`)."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(
                sorted(
                    (k, v)
                    for k, v in sample.labels.items()
                    if k not in ("server_id", "server_type")
                )
            )
            samples[(sample.name, labels)] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """One sample's value (0.0 when absent, as a counter not yet seen)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
