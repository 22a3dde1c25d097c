"""How a server process ends: SIGTERM drains and stops it gracefully, a failed start
exits non-zero."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ReactorNotRunning
from twisted.internet.interfaces import IReactorCore, IReactorFromThreads
from twisted.logger import Logger

__all__ = ["SigtermDrain", "exit_after_shutdown", "graceful_sigterm"]

log = Logger()


def exit_after_shutdown(reactor: IReactorCore, code: int = 1) -> None:
    """Stop the reactor, and exit with ``code`` once shutdown has finished."""

    def leave() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    reactor.addSystemEventTrigger("after", "shutdown", leave)
    if reactor.running:
        reactor.stop()
    else:  # failed during startup (twistd starts services before the loop runs)
        reactor.callWhenRunning(reactor.stop)


class SigtermDrain:
    """What SIGTERM does: drain (when a drain is set, :mod:`pomelo_twisted.drain`; the
    drain stops the process once drained) or stop the reactor; a second SIGTERM while
    draining stops at once."""

    def __init__(self, reactor: IReactorCore) -> None:
        self.reactor = reactor
        #: The server's drain (fires once drained), set once the service is composed.
        self.drain: Callable[[], Deferred[Any]] | None = None
        self.draining = False

    def __call__(self) -> None:
        drain = self.drain
        if drain is None or self.draining:
            self.stop()
            return
        self.draining = True
        log.info("SIGTERM: draining before stopping")
        drain().addErrback(lambda _: self.stop())

    def stop(self) -> None:
        """Stop the reactor (nothing when it is stopping already)."""
        with suppress(ReactorNotRunning):
            self.reactor.stop()


def graceful_sigterm(reactor: IReactorCore) -> SigtermDrain:
    """On SIGTERM drain (once ``drain`` is set on the answer), stop the reactor (services
    stop in order) and exit 0.

    twistd's own handler re-raises the signal after shutdown, so a supervisor
    would see the process as killed; ours is installed once the reactor has
    installed its handlers, at startup.
    """
    on_term = SigtermDrain(reactor)

    def install() -> None:
        wake = IReactorFromThreads(reactor)  # a signal handler may only wake the loop
        signal.signal(signal.SIGTERM, lambda _sig, _frame: wake.callFromThread(on_term))

    reactor.addSystemEventTrigger("during", "startup", install)
    return on_term
