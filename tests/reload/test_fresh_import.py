"""import_file(fresh=True): the source as it is on disk, never a stale bytecode cache."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import shutil
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.loading import import_file


class FreshImportTests(SynchronousTestCase):
    """A file rewritten with the same size and modification time is read anew."""

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pomelo-fresh-"))
        self.addCleanup(shutil.rmtree, self.folder, ignore_errors=True)
        self.name = f"pomelo_fresh_test_{id(self)}"
        self.addCleanup(sys.modules.pop, self.name, None)

    def test_same_size_same_mtime(self) -> None:
        """A .pyc matching the rewritten file's size and mtime: plain import stale, fresh new."""
        path = self.folder / "reply.py"
        path.write_text("REPLY = 'v1'\n", encoding="utf-8")
        stamp = path.stat().st_mtime_ns
        py_compile.compile(str(path), cfile=importlib.util.cache_from_source(str(path)))
        path.write_text("REPLY = 'v2'\n", encoding="utf-8")
        os.utime(path, ns=(stamp, stamp))
        self.assertEqual(import_file(path, name=self.name).REPLY, "v1")  # the stale cache
        module = import_file(path, name=self.name, fresh=True)
        self.assertEqual(module.REPLY, "v2")
        self.assertIs(sys.modules[self.name], module)

    def test_failure_drops_the_half_run_module(self) -> None:
        """A fresh import that raises leaves no half-run module behind (the caller restores)."""
        path = self.folder / "broken.py"
        path.write_text("X = 1\nraise KeyError('x')\n", encoding="utf-8")
        with self.assertRaises(KeyError):
            import_file(path, name=self.name, fresh=True)
        self.assertNotIn(self.name, sys.modules)
