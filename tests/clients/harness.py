"""What the real-client tests share: the example game in one process, client programs run
as child processes, and the game's log checked for tracebacks afterwards."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from pomelo_twisted.client import connect
from pomelo_twisted.testing.gamecopy import child_env

from ..e2e.game import REPO, GameProcess, log_problems

__all__ = [
    "HERE",
    "REPO",
    "WATCH_TIMEOUT",
    "RealClientCase",
    "Watcher",
    "python",
    "run_program",
    "watcher",
]

HERE = Path(__file__).resolve().parent
#: How long a watcher waits, from the moment it joined, for the push it expects.
WATCH_TIMEOUT = 30.0
#: Appended to the game copy's app.py: its configure, then connector settings over the
#: game's (the command line's connection limits use the same key).
OVERRIDE = """

_configure_of_the_game = configure


def configure(app):
    _configure_of_the_game(app)
    app.set("connector_overrides", {{**app.get("connector_overrides", {{}}), **{settings}}})
"""


@inlineCallbacks
def run_program(executable: str, *args: str) -> Any:
    """Run a client program to its end without blocking the reactor; fires with
    (stdout, stderr, exit code), both outputs decoded."""
    out, err, code = yield getProcessOutputAndValue(
        executable, list(args), env=child_env(REPO), path=str(REPO), reactor=reactor
    )
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code


class Watcher:
    """A stock JSON client's view of one room: ``pushed`` fires with the body of the first
    ``onChat`` push from ``sender`` (failing WATCH_TIMEOUT seconds after the join)."""

    def __init__(self, sender: str) -> None:
        self.sender = sender
        self.pushed: Deferred[Any] = Deferred()

    def on_chat(self, body: Any) -> None:
        """The client's ``onChat`` callback."""
        if isinstance(body, dict) and body.get("from") == self.sender and not self.pushed.called:
            self.pushed.callback(body)


@inlineCallbacks
def watcher(case: TestCase, target: str, uid: str, rid: str, sender: str) -> Any:
    """A stock JSON client (pomelo_twisted.client: dictionary-compressed routes, plain
    bodies) on ``target`` (an endpoint string), entered as ``uid`` and joined to ``rid``
    before a real client joins, so that one broadcast reaches both, each in its own
    format. Fires with its :class:`Watcher` of ``sender``'s pushes; the client is closed
    at ``case``'s cleanup."""
    client = yield connect(reactor, target, timeout=5.0)
    case.addCleanup(client.close)
    watch = Watcher(sender)
    client.on("onChat", watch.on_chat)
    entered = yield client.request("connector.entryHandler.entry", {"uid": uid, "rid": rid})
    case.assertEqual(entered, {"code": 200, "uid": uid})
    joined = yield client.request("chat.chatHandler.join", {"rid": rid})
    case.assertEqual(joined["members"], [uid])
    watch.pushed.addTimeout(WATCH_TIMEOUT, reactor)
    return watch


class RealClientCase(TestCase):
    """A trial TestCase with the example game (dictionary on) running in one process."""

    timeout = 120

    @inlineCallbacks
    def started_game(self, connector: dict[str, Any] | None = None) -> Any:
        """A ready :class:`GameProcess` of a fresh copy of the example game, with the
        ``connector`` settings (if any) over the game's own; at cleanup it is stopped and
        its log must hold no traceback."""
        game = GameProcess()
        if connector:
            with (game.game / "app.py").open("a", encoding="utf-8") as app_py:
                app_py.write(OVERRIDE.format(settings=repr(connector)))
        self.addCleanup(game.stop)
        self.addCleanup(self.assert_clean_log, game)
        game.start()
        yield game.wait_ready()
        return game

    def assert_clean_log(self, game: GameProcess) -> None:
        """No traceback in the game's log (the real clients made it fail nowhere)."""
        self.assertEqual(log_problems(game.log(), 0), [], game.log())


def python() -> str:
    """This interpreter (its environment has pypomelo and Tornado 5 from the test extras)."""
    return sys.executable
