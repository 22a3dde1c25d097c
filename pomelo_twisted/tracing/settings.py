"""What the standard ``OTEL_*`` environment variables ask of tracing, parsed once.

Tracing is off unless the environment configures it: ``OTEL_TRACES_EXPORTER`` names an
exporter other than ``none``, or (without it) ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set. ``OTEL_SDK_DISABLED=true`` keeps it off
whatever else is set. The environment is an argument (a ``Mapping``, ``os.environ`` at
the entry points), never read at import.

Read here (the OpenTelemetry specification's meaning and defaults):

==========================================  ============================================
``OTEL_SDK_DISABLED``                        ``true``: off
``OTEL_TRACES_EXPORTER``                     ``otlp``, ``console``, ``none`` (comma list)
``OTEL_SERVICE_NAME``                        resource ``service.name`` (else ``pomelo``)
``OTEL_RESOURCE_ATTRIBUTES``                 more resource attributes, ``k=v,k2=v2``
``OTEL_TRACES_SAMPLER`` / ``_ARG``           ``parentbased_always_on`` (default),
                                             ``always_on``, ``always_off``,
                                             ``traceidratio``, ``parentbased_*``
``OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT``     the collector (``http://localhost:4318``)
``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL``     ``http/protobuf`` only
``OTEL_EXPORTER_OTLP[_TRACES]_HEADERS``      ``k=v,k2=v2`` (URL-encoded values)
``OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT``      milliseconds (10000)
``OTEL_EXPORTER_OTLP[_TRACES]_COMPRESSION``  ``gzip`` or ``none``
``OTEL_BSP_SCHEDULE_DELAY``, ``_EXPORT_TIMEOUT``, ``_MAX_QUEUE_SIZE``,
``_MAX_EXPORT_BATCH_SIZE``                   the batch span processor (5000, 30000 ms;
                                             2048, 512 spans)
==========================================  ============================================

A value that cannot be used is a :class:`~pomelo_twisted.errors.ConfigError` naming the
variable and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError

__all__ = ["DEFAULT_SERVICE_NAME", "SAMPLERS", "TracingSettings"]

DEFAULT_SERVICE_NAME = "pomelo"
"""The resource's ``service.name`` when the environment names none."""

SAMPLERS = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)
"""The values ``OTEL_TRACES_SAMPLER`` may take."""

_EXPORTERS = frozenset({"otlp", "console", "none"})
_DEFAULT_ENDPOINT = "http://localhost:4318"
_TRACES_PATH = "v1/traces"


@dataclass(frozen=True)
class TracingSettings:
    """Tracing as the environment configures it (see the module's table)."""

    exporters: tuple[str, ...] = ("otlp",)
    service_name: str = DEFAULT_SERVICE_NAME
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    sampler: str = "parentbased_always_on"
    sampler_ratio: float = 1.0
    endpoint: str = f"{_DEFAULT_ENDPOINT}/{_TRACES_PATH}"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    """Seconds one export may take."""
    compression: str = "none"
    schedule_delay_millis: int = 5000
    export_timeout_millis: int = 30000
    max_queue_size: int = 2048
    max_export_batch_size: int = 512

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TracingSettings | None:
        """The settings ``environ`` asks for, or None when tracing stays off."""
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return None
        exporters = _exporters(environ)
        if not exporters:
            return None
        attributes = _resource_attributes(environ)
        service_name = (
            environ.get("OTEL_SERVICE_NAME", "").strip()
            or attributes.get("service.name")
            or DEFAULT_SERVICE_NAME
        )
        sampler, ratio = _sampler(environ)
        protocol = _otlp(environ, "PROTOCOL") or "http/protobuf"
        if "otlp" in exporters and protocol != "http/protobuf":
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: only 'http/protobuf' is supported"
            )
        compression = (_otlp(environ, "COMPRESSION") or "none").lower()
        if compression not in ("gzip", "none"):
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_COMPRESSION={compression!r}: use 'gzip' or 'none'"
            )
        return cls(
            exporters=exporters,
            service_name=service_name,
            resource_attributes=attributes,
            sampler=sampler,
            sampler_ratio=ratio,
            endpoint=_endpoint(environ),
            headers=_pairs(_otlp_name(environ, "HEADERS"), _otlp(environ, "HEADERS") or ""),
            timeout=_positive(environ, _otlp_name(environ, "TIMEOUT"), 10000) / 1000,
            compression=compression,
            schedule_delay_millis=_positive(environ, "OTEL_BSP_SCHEDULE_DELAY", 5000),
            export_timeout_millis=_positive(environ, "OTEL_BSP_EXPORT_TIMEOUT", 30000),
            max_queue_size=_positive(environ, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
            max_export_batch_size=_positive(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        )


def _exporters(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters asked for; () when none (tracing off)."""
    value = environ.get("OTEL_TRACES_EXPORTER")
    if value is None or not value.strip():
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return ("otlp",) if any(environ.get(name, "").strip() for name in endpoints) else ()
    names = tuple(dict.fromkeys(n.strip().lower() for n in value.split(",") if n.strip()))
    for name in names:
        if name not in _EXPORTERS:
            raise ConfigError(
                f"OTEL_TRACES_EXPORTER={value!r}: unknown exporter {name!r} "
                f"(use {', '.join(sorted(_EXPORTERS))})"
            )
    return tuple(n for n in names if n != "none")


def _otlp_name(environ: Mapping[str, str], what: str) -> str:
    """``OTEL_EXPORTER_OTLP_TRACES_<what>`` when set, else ``OTEL_EXPORTER_OTLP_<what>``."""
    specific = f"OTEL_EXPORTER_OTLP_TRACES_{what}"
    return specific if environ.get(specific, "").strip() else f"OTEL_EXPORTER_OTLP_{what}"


def _otlp(environ: Mapping[str, str], what: str) -> str | None:
    value = environ.get(_otlp_name(environ, what), "").strip()
    return value or None


def _endpoint(environ: Mapping[str, str]) -> str:
    """The traces URL: the traces endpoint as it is, else the base endpoint + v1/traces."""
    specific = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        name, url = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", specific
    else:
        name = "OTEL_EXPORTER_OTLP_ENDPOINT"
        base = environ.get(name, "").strip() or _DEFAULT_ENDPOINT
        url = f"{base.rstrip('/')}/{_TRACES_PATH}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}={url!r}: not an http:// or https:// URL")
    return url


def _sampler(environ: Mapping[str, str]) -> tuple[str, float]:
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name not in SAMPLERS:
        raise ConfigError(
            f"OTEL_TRACES_SAMPLER={name!r}: unknown sampler (use {', '.join(sorted(SAMPLERS))})"
        )
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if not name.endswith("traceidratio") or not arg:
        return name, 1.0
    try:
        ratio = float(arg)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={arg!r}: a ratio from 0 to 1")
    return name, ratio


def _pairs(name: str, value: str) -> dict[str, str]:
    """``k=v,k2=v2`` (values URL-encoded) as a dict; ConfigError naming a bad item."""
    pairs: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{name}: {item.strip()!r} is not key=value")
        pairs[unquote(key.strip())] = unquote(val.strip())
    return pairs


def _resource_attributes(environ: Mapping[str, str]) -> dict[str, str]:
    return _pairs("OTEL_RESOURCE_ATTRIBUTES", environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigError(f"{name}={value!r}: a positive whole number")
    return number
