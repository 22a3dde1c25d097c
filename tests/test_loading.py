"""pomelo_twisted.loading: the one importer of a game's files by path."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.loading import import_file, path_digest


class ImportFileTests(SynchronousTestCase):
    """import_file runs a file as a module, registered under a stable name."""

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.folder)
        self.path = self.folder / "game.py"
        self.path.write_text("RUNS = []\nRUNS.append(1)\n")

    def forget(self, name: str) -> None:
        self.addCleanup(sys.modules.pop, name, None)

    def test_default_name_is_prefix_and_hash(self) -> None:
        """Without a name, the module is prefix + a hash of the path, in sys.modules."""
        name = "pomelo_test_" + path_digest(self.path)
        self.forget(name)
        module = import_file(self.path, "pomelo_test_")
        self.assertEqual(module.__name__, name)
        self.assertIs(sys.modules[name], module)

    def test_once_reuses_the_loaded_module(self) -> None:
        """With once, the same file is not run again; without it, it is."""
        self.forget("pomelo_test_once")
        first = import_file(self.path, name="pomelo_test_once", once=True)
        self.assertIs(import_file(self.path, name="pomelo_test_once", once=True), first)
        again = import_file(self.path, name="pomelo_test_once")
        self.assertIsNot(again, first)
        self.assertEqual(again.RUNS, [1])

    def test_failure_propagates_and_is_forgotten(self) -> None:
        """An exception of the file propagates unchanged; the module leaves sys.modules."""
        self.path.write_text("raise KeyError('boom')\n")
        self.forget("pomelo_test_fail")
        self.assertRaises(KeyError, import_file, self.path, name="pomelo_test_fail")
        self.assertNotIn("pomelo_test_fail", sys.modules)
