"""Per-connection limits and protocol settings of a frontend server."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from ..protocol import DEFAULT_MAX_PACKET_SIZE
from ..protocol.packet import MAX_BODY_LENGTH

__all__ = ["AgentConfig"]


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Every limit a client connection is held to, each with a safe default.

    - ``heartbeat``: interval H in seconds announced to clients (``None``: no heartbeats).
    - ``heartbeat_timeout``: close after this long without any package from
      the client once working (default 2 × H).
    - ``handshake_timeout``: close a connection that has not completed
      handshake + ack within this many seconds.
    - ``max_packet_size``: largest package body accepted; a header declaring
      more closes the connection before the body is read.
    - ``max_pending_bytes``: bytes queued for a client that does not read
      (beyond the transport's own buffer); over it the client is closed.
    - ``request_rate`` / ``request_burst``: token bucket on requests and
      notifies per connection (``request_rate=None`` disables it); a request
      over the limit is answered with code 429.
    - ``max_inflight``: requests of one connection being handled at once; more
      are answered with code 503.
    - ``max_refusals`` / ``refusal_window``: a connection refused (429, or a notify
      dropped over the rate limit) more than ``max_refusals`` times within one
      ``refusal_window`` seconds is kicked.
    - ``max_ignored_packages``: packages the protocol state ignores (heartbeats before
      the ack, a second handshake, ...) a connection may send in its life; one more and
      it is kicked. Each also spends a rate-limit token.
    - ``slice_events`` / ``slice_bytes`` / ``slice_seconds``: packages of one connection
      handled, bytes decoded, and seconds spent handling them, in one reactor turn; the
      rest of a read waits (the transport paused) for the next turn, so one client's
      burst cannot hold the reactor (the time is looked at only on reads of more than
      16 packages; see :mod:`.reading`).
    - ``max_connections`` / ``max_connections_per_ip``: connections a listener holds at
      once, in all and from one IP address; one more is closed as it is accepted
      (counted in ``ConnectionMetrics.refused``). The per-IP cap is generous: players
      behind one NAT share an address.
    - ``close_grace``: after a graceful close, abort the socket if the client
      has not taken the last bytes within this many seconds.
    - ``use_dict``: compress routes with the route dictionary.
    - ``max_upgrade_bytes`` / ``max_upgrade_headers`` / ``upgrade_timeout``: a
      WebSocket client's HTTP upgrade request must end within this many bytes and
      header lines, and arrive within this many seconds; else it is refused (431 or
      a drop), counted in the metrics, not logged above debug.
    - ``legacy_route_maps``: also send ``routeToCode``/``codeToRoute`` in the
      handshake (pomelo 2.x clients such as pypomelo read only those).
    - ``max_inflated_body``: the most bytes a compressed request or notify body (flag
      0x10, pitaya's clients) may inflate to; a body inflating past it is a protocol
      violation (the client is kicked, the reason naming this limit).
    - ``compress_bodies``: zlib-compress response and push bodies with flag 0x10, when
      that makes them smaller, for the clients that read it (pitaya's: libpitaya).
    """

    heartbeat: float | None = 30.0
    heartbeat_timeout: float | None = None
    handshake_timeout: float = 10.0
    max_packet_size: int = DEFAULT_MAX_PACKET_SIZE
    max_pending_bytes: int = 1024 * 1024
    request_rate: float | None = 1000.0
    request_burst: int = 2000
    max_inflight: int = 1000
    max_refusals: int = 1000
    refusal_window: float = 10.0
    max_ignored_packages: int = 100
    slice_events: int = 256
    slice_bytes: int = 4 * 1024
    slice_seconds: float = 0.0001
    max_connections: int = 100_000
    max_connections_per_ip: int = 10_000
    close_grace: float = 5.0
    use_dict: bool = True
    legacy_route_maps: bool = True
    max_upgrade_bytes: int = 16 * 1024
    max_upgrade_headers: int = 100
    upgrade_timeout: float = 10.0
    max_inflated_body: int = DEFAULT_MAX_PACKET_SIZE
    compress_bodies: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, not {value}")
        if self.heartbeat is not None and self.heartbeat <= 0:
            raise ValueError("heartbeat must be positive or None")
        if self.heartbeat_timeout is not None and self.heartbeat_timeout <= 0:
            raise ValueError("heartbeat_timeout must be positive or None")
        for name in (
            "handshake_timeout",
            "close_grace",
            "upgrade_timeout",
            "refusal_window",
            "slice_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in (
            "max_packet_size",
            "max_pending_bytes",
            "request_burst",
            "max_inflight",
            "max_upgrade_bytes",
            "max_upgrade_headers",
            "max_refusals",
            "slice_events",
            "slice_bytes",
            "max_connections",
            "max_connections_per_ip",
            "max_inflated_body",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_ignored_packages < 0:
            raise ValueError("max_ignored_packages must be at least 0")
        if self.max_packet_size > MAX_BODY_LENGTH:
            raise ValueError(f"max_packet_size must be at most {MAX_BODY_LENGTH}")
        if self.request_rate is not None and self.request_rate <= 0:
            raise ValueError("request_rate must be positive or None")

    @property
    def effective_heartbeat_timeout(self) -> float | None:
        """The idle limit once working: ``heartbeat_timeout``, else 2 × heartbeat."""
        if self.heartbeat_timeout is not None:
            return self.heartbeat_timeout
        return 2 * self.heartbeat if self.heartbeat is not None else None

    @classmethod
    def from_mapping(cls, settings: dict[str, Any]) -> AgentConfig:
        """Build from a settings mapping, refusing unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown connector setting(s): {', '.join(unknown)}")
        try:
            return replace(cls(), **settings)
        except TypeError as exc:
            raise ValueError(f"bad connector setting: {exc}") from None
