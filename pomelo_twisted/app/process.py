"""How a server process ends: SIGTERM stops it gracefully, a failed start exits non-zero."""

from __future__ import annotations

import os
import signal
import sys

from twisted.internet.interfaces import IReactorCore, IReactorFromThreads

__all__ = ["exit_after_shutdown", "graceful_sigterm"]


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


def graceful_sigterm(reactor: IReactorCore) -> None:
    """On SIGTERM stop the reactor (services stop in order) and exit 0.

    twistd's own handler re-raises the signal after shutdown, so a supervisor
    would see the process as killed; ours is installed once the reactor has
    installed its handlers, at startup.
    """

    def install() -> None:
        wake = IReactorFromThreads(reactor)  # a signal handler may only wake the loop
        signal.signal(signal.SIGTERM, lambda _sig, _frame: wake.callFromThread(reactor.stop))

    reactor.addSystemEventTrigger("during", "startup", install)
