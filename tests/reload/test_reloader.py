"""CodeReloader: handlers, remotes and cron handlers anew from disk, all or nothing."""

from __future__ import annotations

import gc
import sys
import textwrap
import weakref
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.cron import CronService, CronSpec
from pomelo_twisted.errors import RouteNotFound
from pomelo_twisted.handlers import HandlerRegistry, discover
from pomelo_twisted.handlers.discovery import module_name
from pomelo_twisted.reload import CodeReloader, ReloadError, register_reload_command
from pomelo_twisted.rpc import RemoteDispatcher
from pomelo_twisted.servercommands import ServerCommandError, ServerCommands

from ..cron.test_config import GameFolder

HANDLER = """
    from twisted.internet.defer import Deferred

    REPLY = {reply!r}


    class ChatHandler:
        def __init__(self, app):
            self.app = app

        def hello(self, session, msg):
            return REPLY

        def slow(self, session, msg):
            d = Deferred()
            self.app.pending.append(d)
            return d.addCallback(lambda _: REPLY)
"""

REMOTE = """
    class ChatRemote:
        def __init__(self, app):
            self.app = app

        def version(self):
            return {reply!r}
"""

CRON = """
    class ChatCron:
        def __init__(self, app):
            self.app = app

        def tick(self):
            self.app.ticks.append({reply!r})
"""


class FakeApp:
    """What the game's classes are built with here: a place to leave traces."""

    def __init__(self) -> None:
        self.pending: list[Deferred[None]] = []
        self.ticks: list[str] = []
        self.hooks: list[str] = []


class ReloaderTests(SynchronousTestCase):
    """Reloading a server type's code from a game folder."""

    def setUp(self) -> None:
        self.game = GameFolder(self)
        self.app = FakeApp()
        self.write("handler", "chatHandler.py", HANDLER.format(reply="v1"))
        self.write("remote", "chatRemote.py", REMOTE.format(reply="v1"))
        self.write("cron", "chatCron.py", CRON.format(reply="v1"))
        base = self.game.base
        self.handlers = HandlerRegistry()
        for name, obj in discover(base, "chat", "handler", self.app):
            self.handlers.register("chat", name, obj)
        self.remotes = RemoteDispatcher()
        self.remotes.add_function("sys", "ping", lambda: "pong")
        for name, obj in discover(base, "chat", "remote", self.app):
            self.remotes.add(name, obj)
        self.clock = Clock()
        self.crons = CronService(self.clock, dict(discover(base, "chat", "cron", self.app)))
        self.crons.add(
            CronSpec.parse({"id": "t", "time": "* * * * * *", "action": "chatCron.tick"})
        )
        self.crons.startService()
        self.addCleanup(self.crons.stopService)
        self.reloader = CodeReloader(
            base, "chat", self.app, self.handlers, self.remotes, self.crons, "chat-1"
        )

    def write(self, kind: str, filename: str, source: str) -> None:
        folder = self.game.base / "servers" / "chat" / kind
        folder.mkdir(parents=True, exist_ok=True)
        (folder / filename).write_text(textwrap.dedent(source), encoding="utf-8")

    def hello(self) -> Any:
        return self.handlers.lookup("chat", "chatHandler", "hello")(None, {})

    def reload(self) -> dict[str, Any]:
        summary: dict[str, Any] = self.successResultOf(self.reloader.reload())
        return summary

    def refused(self) -> str:
        return self.failureResultOf(self.reloader.reload(), ReloadError).getErrorMessage()

    def test_new_reply_after_reload(self) -> None:
        """A handler rewritten on disk (same size, same second) answers anew after a reload."""
        self.assertEqual(self.hello(), "v1")
        self.write("handler", "chatHandler.py", HANDLER.format(reply="v2"))
        self.assertEqual(self.hello(), "v1")  # nothing changes before the reload
        summary = self.reload()
        self.assertEqual(self.hello(), "v2")
        self.assertEqual(summary["generation"], 1)
        self.assertEqual(summary["handlers"], ["chatHandler"])
        self.assertEqual((summary["routes_added"], summary["routes_removed"]), ([], []))

    def test_in_flight_request_finishes_on_old_code(self) -> None:
        """A request dispatched before the reload answers with the old code; later ones new."""
        in_flight = self.handlers.lookup("chat", "chatHandler", "slow")(None, {})
        self.write("handler", "chatHandler.py", HANDLER.format(reply="v2"))
        self.reload()
        later = self.handlers.lookup("chat", "chatHandler", "slow")(None, {})
        for pending in self.app.pending:
            pending.callback(None)
        self.assertEqual(self.successResultOf(in_flight), "v1")
        self.assertEqual(self.successResultOf(later), "v2")

    def test_syntax_error_keeps_the_old_code(self) -> None:
        """A file that does not compile: the answer names file and line; nothing changes."""
        prefix = module_name(self.game.base, "chat", "handler", "x").rsplit(".", 1)[0]
        old_module = sys.modules[f"{prefix}.chatHandler"]
        self.write("handler", "chatHandler.py", HANDLER.format(reply="v2") + "\n    def (:\n")
        why = self.refused()
        self.assertIn("chat-1: reload refused, old code kept:", why)
        self.assertIn("chatHandler.py, line 19: import failed: SyntaxError", why)
        self.assertEqual(self.hello(), "v1")
        self.assertIs(sys.modules[f"{prefix}.chatHandler"], old_module)
        self.assertEqual(self.reloader.generation, 0)

    def test_error_in_a_later_file_changes_nothing(self) -> None:
        """A handler that imports, then a remote that raises at import: both stay old."""
        self.write("handler", "chatHandler.py", HANDLER.format(reply="v2"))
        self.write("remote", "chatRemote.py", "x = 1\nraise RuntimeError('no db')\n")
        why = self.refused()
        self.assertIn("chatRemote.py, line 2: import failed: RuntimeError: no db", why)
        self.assertEqual(self.hello(), "v1")
        self.assertEqual(self.remotes.invoke("chatRemote", "version", []), "v1")
        self.write("remote", "chatRemote.py", REMOTE.format(reply="v2"))
        self.reload()  # fixed: both change
        self.assertEqual(self.hello(), "v2")

    def test_remote_reloaded_too(self) -> None:
        """Remotes serve the new code; function services (system remotes) stay."""
        self.write("remote", "chatRemote.py", REMOTE.format(reply="v2"))
        self.reload()
        self.assertEqual(self.remotes.invoke("chatRemote", "version", []), "v2")
        self.assertEqual(self.remotes.invoke("sys", "ping", []), "pong")

    def test_routes_added_and_removed(self) -> None:
        """A reload may add and remove routes; a removed one is a RouteNotFound."""
        self.write(
            "handler",
            "chatHandler.py",
            "class ChatHandler:\n    def __init__(self, app): pass\n"
            "    def hi(self, session, msg): return 'hi'\n",
        )
        summary = self.reload()
        self.assertEqual(summary["routes_added"], ["chat.chatHandler.hi"])
        self.assertEqual(
            summary["routes_removed"], ["chat.chatHandler.hello", "chat.chatHandler.slow"]
        )
        with self.assertRaises(RouteNotFound):
            self.hello()
        self.assertEqual(self.handlers.lookup("chat", "chatHandler", "hi")(None, {}), "hi")

    def test_cron_handler_reloaded(self) -> None:
        """The next cron run uses the reloaded cron handler."""
        self.clock.advance(1)
        self.write("cron", "chatCron.py", CRON.format(reply="v2"))
        self.reload()
        self.clock.advance(1)
        self.assertEqual(self.app.ticks, ["v1", "v2"])

    def test_cron_action_gone_is_refused(self) -> None:
        """New cron code without a configured cron's method is refused, naming the cron."""
        self.write("cron", "chatCron.py", CRON.format(reply="v2").replace("def tick", "def tock"))
        why = self.refused()
        self.assertIn("cron 't' (chatCron.tick)", why)
        self.clock.advance(1)
        self.assertEqual(self.app.ticks, ["v1"])

    def test_lifecycle_hooks(self) -> None:
        """New objects get init/after_init before the swap, old ones the shutdown hooks after."""
        hooks = """
            class ChatHandler:
                def __init__(self, app):
                    self.app = app

                def hello(self, session, msg):
                    return {v!r}

                def init(self):
                    self.app.hooks.append("init {v}")

                def after_init(self):
                    self.app.hooks.append("after_init {v}")

                def shutdown(self):
                    self.app.hooks.append("shutdown {v}")
        """
        self.write("handler", "chatHandler.py", hooks.format(v="v2"))
        self.reload()
        self.write("handler", "chatHandler.py", hooks.format(v="v3"))
        self.reload()
        self.assertEqual(
            self.app.hooks, ["init v2", "after_init v2", "init v3", "after_init v3", "shutdown v2"]
        )

    def test_failing_init_keeps_the_old_code(self) -> None:
        """A new object whose init fails: refused with the hook and why, old code serves."""
        self.write(
            "handler",
            "chatHandler.py",
            "class ChatHandler:\n    def __init__(self, app): pass\n"
            "    def hello(self, s, m): return 'v2'\n"
            "    def init(self): raise ValueError('bad config')\n",
        )
        prefix = module_name(self.game.base, "chat", "handler", "x").rsplit(".", 1)[0]
        old_module = sys.modules[f"{prefix}.chatHandler"]
        why = self.refused()
        self.assertIn("init of handler chatHandler: bad config", why)
        self.assertEqual(self.hello(), "v1")
        self.assertIs(sys.modules[f"{prefix}.chatHandler"], old_module)

    def test_constructor_failure_is_refused(self) -> None:
        """A class whose constructor raises is refused, naming the file."""
        self.write(
            "handler", "chatHandler.py", "class ChatHandler:\n    def __init__(self, app): 1 / 0\n"
        )
        self.assertIn("chatHandler.py: ChatHandler(app) failed: ZeroDivisionError", self.refused())
        self.assertEqual(self.hello(), "v1")

    def test_what_the_swap_would_refuse_is_refused_first(self) -> None:
        """Repeated names, a framework remote's name, a methodless remote: refused up front."""
        twin = "class Twin:\n    route_name = 'chatHandler'\n    def __init__(self, app): pass\n"
        self.write("handler", "twin.py", twin + "    def hello(self, s, m): return 'twin'\n")
        self.assertIn("'chatHandler' is given twice", self.refused())
        (self.game.base / "servers" / "chat" / "handler" / "twin.py").unlink()
        self.write("remote", "sys.py", "class Sys:\n    def __init__(self, app): pass\n"
                   "    def ping(self): return 'hijacked'\n")  # fmt: skip
        self.assertIn("'sys' is the name of a framework remote", self.refused())
        (self.game.base / "servers" / "chat" / "remote" / "sys.py").unlink()
        self.write("remote", "empty.py", "class Empty:\n    def __init__(self, app): pass\n")
        self.assertIn("remote 'empty' (Empty) has no public method", self.refused())
        self.assertEqual(self.hello(), "v1")
        self.assertEqual(self.remotes.invoke("sys", "ping", []), "pong")

    def test_one_reload_at_a_time(self) -> None:
        """A reload while another waits on a hook is refused."""
        self.write(
            "handler",
            "chatHandler.py",
            "class ChatHandler:\n    def __init__(self, app): self.app = app\n"
            "    def hello(self, s, m): return 'v2'\n"
            "    def init(self):\n"
            "        from twisted.internet.defer import Deferred\n"
            "        d = Deferred(); self.app.pending.append(d); return d\n",
        )
        first = self.reloader.reload()
        self.assertIn("in progress", self.refused())
        self.app.pending[0].callback(None)
        self.assertEqual(self.successResultOf(first)["generation"], 1)
        self.assertEqual(self.hello(), "v2")

    def test_no_leak_on_repeated_reloads(self) -> None:
        """Modules keep their names; old code is freed; a deleted file's module is dropped."""
        old_class = weakref.ref(type(self.handlers.get("chat", "chatHandler")))
        prefix = module_name(self.game.base, "chat", "x", "x").rsplit(".", 2)[0] + "."
        count = len([n for n in sys.modules if n.startswith(prefix)])
        for version in range(5):
            self.write("handler", "chatHandler.py", HANDLER.format(reply=f"v{version}"))
            self.reload()
        self.assertEqual(len([n for n in sys.modules if n.startswith(prefix)]), count)
        gc.collect()
        self.assertIsNone(old_class())
        (self.game.base / "servers" / "chat" / "remote" / "chatRemote.py").unlink()
        summary = self.reload()
        self.assertEqual(summary["remotes_removed"], ["chatRemote.version"])
        self.assertNotIn(f"{prefix}remote.chatRemote", sys.modules)

    def test_reload_command(self) -> None:
        """The reload command answers the summary, or the error as a ServerCommandError."""
        commands = ServerCommands("chat-1")
        register_reload_command(commands, self.reloader)
        self.write("handler", "chatHandler.py", HANDLER.format(reply="v2"))
        answer = self.successResultOf(commands.run("reload", {}))
        self.assertEqual(answer["generation"], 1)
        self.write("handler", "chatHandler.py", "class (:\n")
        failure = self.failureResultOf(commands.run("reload", {}), ServerCommandError)
        self.assertIn("chatHandler.py, line 1", failure.getErrorMessage())
        self.failureResultOf(commands.run("reload", {"x": 1}), ServerCommandError)
