"""``twistd pomelo``: command-line options and the service tree of one server process.

Today one server type exists, ``echo`` (the echo server of
:mod:`pomelo_twisted.testing.echo`, a hybrid TCP + WebSocket frontend);
game applications arrive with the application runtime.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, MultiService
from twisted.internet.interfaces import IReactorTime
from twisted.python import usage

from ..acceptors import KINDS, AcceptorService, AgentFactory
from ..serializers import get_serializer
from ..session import AgentConfig
from ..testing.echo import EchoHandler, echo_dictionary

__all__ = ["SERVER_TYPES", "Options", "makeService"]

SERVER_TYPES = ("echo",)


def _positive_or_off(value: str) -> float | None:
    seconds = float(value)
    if seconds < 0:
        raise ValueError("must be >= 0 (0 turns it off)")
    return seconds or None


def _positive(value: str) -> float:
    seconds = float(value)
    if seconds <= 0:
        raise ValueError("must be > 0")
    return seconds


class Options(usage.Options):
    """Options of ``twistd pomelo``."""

    synopsis = "[options]"
    longdesc = "Start one pomelo_twisted server (today: --type echo, a hybrid TCP+WS echo server)."

    optParameters: list[list[Any]] = [
        ["type", "t", "echo", f"server type: {', '.join(SERVER_TYPES)}"],
        ["id", None, None, "server id (default: <type>-1)"],
        ["listen", "l", "tcp:3010:interface=127.0.0.1", "client endpoint string"],
        ["acceptor", None, "hybrid", f"client acceptor: {', '.join(KINDS)}"],
        ["serializer", None, "json", "message body serializer: json or msgpack"],
        ["heartbeat", None, 30.0, "heartbeat interval in seconds (0: off)", _positive_or_off],
        ["handshake-timeout", None, 10.0, "seconds to complete handshake + ack", _positive],
        ["max-packet-size", None, 64 * 1024, "largest package body accepted, bytes", int],
        ["max-pending-bytes", None, 1024 * 1024, "send queue limit per client, bytes", int],
        ["request-rate", None, 1000.0, "requests/s per client (0: unlimited)", _positive_or_off],
        ["request-burst", None, 2000, "requests a client may send at once over the rate", int],
        ["max-inflight", None, 1000, "requests of one client handled at once", int],
    ]

    def postOptions(self) -> None:
        """Validate choices and build the connection limits."""
        if self["type"] not in SERVER_TYPES:
            raise usage.UsageError(
                f"unknown server type {self['type']!r}; expected one of {', '.join(SERVER_TYPES)}"
            )
        if self["acceptor"] not in KINDS:
            raise usage.UsageError(
                f"unknown acceptor {self['acceptor']!r}; expected one of {', '.join(KINDS)}"
            )
        try:
            get_serializer(self["serializer"])
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None
        if self["id"] is None:
            self["id"] = f"{self['type']}-1"
        try:
            self["config"] = AgentConfig(
                heartbeat=self["heartbeat"],
                handshake_timeout=self["handshake-timeout"],
                max_packet_size=self["max-packet-size"],
                max_pending_bytes=self["max-pending-bytes"],
                request_rate=self["request-rate"],
                request_burst=self["request-burst"],
                max_inflight=self["max-inflight"],
            )
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None


def makeService(options: Options, reactor: IReactorTime | None = None) -> IService:
    """The service tree of one server: a ``MultiService`` named by the server id.

    ``reactor`` defaults to the global reactor: twistd is the entry point.
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    assert reactor is not None
    server = MultiService()
    server.setName(options["id"])
    agents = AgentFactory(
        EchoHandler(reactor),
        reactor,
        serializer=get_serializer(options["serializer"]),
        config=options["config"],
        dictionary=echo_dictionary(),
    )
    acceptor = AcceptorService(reactor, options["listen"], agents, kind=options["acceptor"])
    acceptor.setName("acceptor")
    acceptor.setServiceParent(server)
    return server
