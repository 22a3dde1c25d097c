"""Discovery of servers/<type>/handler|remote/*.py in a game folder."""

from __future__ import annotations

import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import ConfigError
from pomelo_twisted.handlers import discover, discover_classes, discover_routes
from pomelo_twisted.handlers.discovery import module_name

ENTRY = """
    from collections import OrderedDict  # imported classes are not candidates
    from dataclasses import dataclass


    class EntryHandler:
        def __init__(self, app):
            self.app = app

        def entry(self, session, msg):
            return {"code": 200}

        def _private(self):
            pass

        def init(self):
            pass
"""


class DiscoveryTests(SynchronousTestCase):
    """discover(), discover_classes() and discover_routes()."""

    def setUp(self) -> None:
        # Not self.mktemp(): under pytest it would create folders in the repository.
        self.base = self.tempdir()
        prefix = module_name(self.base, "x", "x", "x").split(".")[0] + "."
        self.addCleanup(self._forget, prefix)

    def tempdir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="pomelo-discovery-"))
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path

    def _forget(self, prefix: str) -> None:
        for name in [n for n in sys.modules if n.startswith(prefix)]:
            del sys.modules[name]

    def write(self, server_type: str, kind: str, filename: str, source: str) -> Path:
        folder = self.base / "servers" / server_type / kind
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / filename
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    def test_camel_case_file(self) -> None:
        """entryHandler.py is served as entryHandler, instantiated with the app."""
        self.write("connector", "handler", "entryHandler.py", ENTRY)
        app = object()
        [(name, handler)] = discover(self.base, "connector", "handler", app)
        self.assertEqual(name, "entryHandler")
        self.assertEqual(type(handler).__name__, "EntryHandler")
        self.assertIs(handler.app, app)  # type: ignore[attr-defined]

    def test_snake_case_file(self) -> None:
        """entry_handler.py is served as entry_handler (the stem as written)."""
        self.write("connector", "handler", "entry_handler.py", ENTRY)
        self.assertEqual(
            [name for name, _ in discover(self.base, "connector", "handler", None)],
            ["entry_handler"],
        )

    def test_route_name_attribute(self) -> None:
        """A route_name class attribute overrides the file stem."""
        self.write(
            "chat",
            "handler",
            "chat.py",
            "class Chat:\n    route_name = 'chatHandler'\n"
            "    def __init__(self, app): pass\n    def send(self, s, m): pass\n",
        )
        self.assertEqual(discover_routes(self.base, "chat"), ["chat.chatHandler.send"])

    def test_routes_without_instantiating(self) -> None:
        """discover_routes lists public methods sorted, constructing nothing."""
        self.write("connector", "handler", "entryHandler.py", ENTRY)
        self.write(
            "connector",
            "handler",
            "auth.py",
            "class Auth:\n    def __init__(self, app): raise AssertionError\n"
            "    def login(self, s, m): pass\n    def logout(self, s, m): pass\n",
        )
        self.assertEqual(
            discover_routes(self.base, "connector"),
            ["connector.auth.login", "connector.auth.logout", "connector.entryHandler.entry"],
        )

    def test_skips_private_and_other_files(self) -> None:
        """Files starting with _ and non-.py files are not handlers; results are by file name."""
        self.write("connector", "handler", "_helpers.py", "class Helper: pass\nclass Other: pass\n")
        self.write("connector", "handler", "notes.txt", "not python")
        self.write("connector", "handler", "b.py", "class B:\n    def __init__(self, app): pass\n")
        self.write("connector", "handler", "a.py", "class A:\n    def __init__(self, app): pass\n")
        self.assertEqual(
            [name for name, _ in discover(self.base, "connector", "handler", None)], ["a", "b"]
        )

    def test_remote_kind(self) -> None:
        """kind='remote' reads servers/<type>/remote/."""
        self.write(
            "chat",
            "remote",
            "chatRemote.py",
            "class ChatRemote:\n    def __init__(self, app): pass\n",
        )
        self.write(
            "chat",
            "handler",
            "chatHandler.py",
            "class ChatHandler:\n    def __init__(self, app): pass\n",
        )
        self.assertEqual(
            [name for name, _ in discover(self.base, "chat", "remote", None)], ["chatRemote"]
        )

    def test_missing_folder(self) -> None:
        """A type or kind folder that does not exist yields no handlers."""
        self.assertEqual(discover(self.base, "gate", "handler", None), [])
        self.assertEqual(discover(self.base / "nowhere", "gate", "remote", None), [])

    def test_unknown_kind(self) -> None:
        """Only 'handler' and 'remote' are kinds."""
        self.assertRaises(ValueError, discover, self.base, "gate", "filter", None)

    def test_several_classes_need_handler(self) -> None:
        """Several public classes are a ConfigError naming the file unless __handler__ picks."""
        path = self.write(
            "chat", "handler", "chat.py", "class A: pass\nclass B: pass\nclass _C: pass\n"
        )
        with self.assertRaises(ConfigError) as caught:
            discover(self.base, "chat", "handler", None)
        self.assertIn(str(path), str(caught.exception))
        self.assertIn("several public classes (A, B)", str(caught.exception))
        self._forget(module_name(self.base, "chat", "handler", "chat"))
        path.write_text(
            "__handler__ = 'B'\nclass A: pass\nclass B:\n    def __init__(self, app): pass\n"
        )
        [(name, handler)] = discover(self.base, "chat", "handler", None)
        self.assertEqual((name, type(handler).__name__), ("chat", "B"))

    def test_handler_naming_no_class(self) -> None:
        """__handler__ naming no public class of the file is a ConfigError naming the file."""
        path = self.write("chat", "handler", "chat.py", "__handler__ = 'Nope'\nclass A: pass\n")
        with self.assertRaises(ConfigError) as caught:
            discover(self.base, "chat", "handler", None)
        self.assertIn(str(path), str(caught.exception))
        self.assertIn("'Nope'", str(caught.exception))

    def test_no_class(self) -> None:
        """A file defining no public class is a ConfigError naming the file."""
        path = self.write("chat", "handler", "chat.py", "from collections import OrderedDict\n")
        with self.assertRaises(ConfigError) as caught:
            discover(self.base, "chat", "handler", None)
        self.assertEqual(str(caught.exception), f"{path}: defines no public class")

    def test_import_error(self) -> None:
        """A failing import is a ConfigError naming the file, chained to the original,
        and is not cached: the fixed file then loads."""
        path = self.write("chat", "handler", "chat.py", "import no_such_module_here\n")
        with self.assertRaises(ConfigError) as caught:
            discover(self.base, "chat", "handler", None)
        self.assertIn(str(path), str(caught.exception))
        self.assertIsInstance(caught.exception.__cause__, ImportError)
        path.write_text("class Chat:\n    def __init__(self, app): pass\n")
        self.assertEqual([n for n, _ in discover(self.base, "chat", "handler", None)], ["chat"])

    def test_syntax_error(self) -> None:
        """A syntax error is a ConfigError naming the file."""
        path = self.write("chat", "handler", "chat.py", "class (:\n")
        with self.assertRaises(ConfigError) as caught:
            discover_classes(self.base, "chat", "handler")
        self.assertIn(str(path), str(caught.exception))
        self.assertIsInstance(caught.exception.__cause__, SyntaxError)

    def test_constructor_error(self) -> None:
        """A constructor failure is a ConfigError naming the file and class."""
        path = self.write(
            "chat", "handler", "chat.py", "class Chat:\n    def __init__(self, app): 1/0\n"
        )
        with self.assertRaises(ConfigError) as caught:
            discover(self.base, "chat", "handler", None)
        self.assertIn(f"{path}: Chat(app) failed: ZeroDivisionError", str(caught.exception))

    def test_bad_route_name(self) -> None:
        """A file stem that cannot be a route part is a ConfigError naming the file."""
        path = self.write("chat", "handler", "chat.v2.py", "class Chat: pass\n")
        with self.assertRaises(ConfigError) as caught:
            discover_classes(self.base, "chat", "handler")
        self.assertIn(str(path), str(caught.exception))

    def test_stable_module_name(self) -> None:
        """Classes live in a stable per-game module, imported once; instances are fresh."""
        self.write("connector", "handler", "entryHandler.py", ENTRY)
        [(_, first)] = discover(self.base, "connector", "handler", None)
        [(_, second)] = discover(self.base, "connector", "handler", None)
        self.assertIs(type(first), type(second))
        self.assertIsNot(first, second)
        expected = module_name(self.base, "connector", "handler", "entryHandler")
        self.assertEqual(type(first).__module__, expected)
        self.assertTrue(expected.startswith("pomelo_game_"))
        self.assertTrue(expected.endswith(".connector.handler.entryHandler"))
        other = self.base / "other"
        self.assertNotEqual(module_name(other, "connector", "handler", "entryHandler"), expected)
