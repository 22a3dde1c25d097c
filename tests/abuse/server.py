"""The server the bad-input probes run against: an echo hybrid listener under
:data:`~tests.abuse.probes.PROBE_CONFIG` whose handler keeps a SessionService.

Run as ``python -m tests.abuse.server LOGFILE``: it listens on an ephemeral loopback
port, logs at ``info`` (the servers' default level) to ``LOGFILE`` and prints the port
on its first line of output.
"""

from __future__ import annotations

import sys

from twisted.internet.interfaces import IReactorTime
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from pomelo_twisted.acceptors import AcceptorService, AgentPool
from pomelo_twisted.interfaces import IAgent
from pomelo_twisted.session import SessionService
from pomelo_twisted.testing import EchoHandler, echo_dictionary

from .probes import PROBE_CONFIG

LOOPBACK = "tcp:0:interface=127.0.0.1"


class SessionEchoHandler(EchoHandler):
    """The echo handler, with a session per working connection (gone when it closes)."""

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__(clock)
        self.session_service = SessionService("probe-frontend")

    def connected(self, agent: IAgent) -> None:
        """A session for the connection (the echo handler's list is not kept: storms)."""
        self.session_service.create(agent)

    def disconnected(self, agent: IAgent, reason: str) -> None:
        """Forget the connection's session."""
        self.session_service.closed(agent.sid, reason)


def probe_pool(clock: IReactorTime) -> AgentPool:
    """The agent pool of a probed server."""
    return AgentPool(
        SessionEchoHandler(clock), clock, config=PROBE_CONFIG, dictionary=echo_dictionary()
    )


def main(log_path: str) -> None:
    """Serve until killed, logging at info to ``log_path``."""
    from twisted.internet import reactor

    log_file = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (open until exit)
    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(log_file),
                [LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)],
            )
        ],
        redirectStandardIO=False,
    )
    service = AcceptorService(reactor, LOOPBACK, probe_pool(reactor), kind="hybrid")
    service.startService()

    def listening(port: object) -> None:
        print(port.getHost().port, flush=True)

    service.listening.addCallback(listening)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1])
