"""The sans-I/O codec in pomelo_twisted.protocol must not depend on Twisted."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

PROTOCOL_DIR = Path(__file__).resolve().parent.parent / "pomelo_twisted" / "protocol"
REPO_ROOT = PROTOCOL_DIR.parent.parent


def _is_twisted(module: str | None) -> bool:
    return module is not None and (module == "twisted" or module.startswith("twisted."))


def twisted_imports(source: str, filename: str) -> list[str]:
    """Return "line: statement" for every import of twisted in ``source``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        found.extend(f"{node.lineno}: {name}" for name in names if _is_twisted(name))
    return found


class ImportScanTests(SynchronousTestCase):
    """The AST scan used below."""

    def test_detector(self) -> None:
        """The scan catches both import forms and ignores look-alikes and relative imports."""
        source = (
            "import os, twisted\n"
            "from twisted.internet import reactor\n"
            "import twistedish\n"
            "from . import twisted\n"
        )
        self.assertEqual(twisted_imports(source, "<test>"), ["1: twisted", "2: twisted.internet"])


class ProtocolLayeringTests(SynchronousTestCase):
    """pomelo_twisted.protocol is importable and usable without Twisted."""

    def setUp(self) -> None:
        if not PROTOCOL_DIR.is_dir():
            raise self.skipTest("pomelo_twisted/protocol/ does not exist yet")

    def test_no_twisted_imports(self) -> None:
        """No .py file under pomelo_twisted/protocol/ imports twisted in any form."""
        offenders = []
        for path in sorted(PROTOCOL_DIR.rglob("*.py")):
            for hit in twisted_imports(path.read_text(encoding="utf-8"), str(path)):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{hit}")
        self.assertEqual(offenders, [])

    def test_import_loads_no_twisted(self) -> None:
        """Importing pomelo_twisted.protocol in a fresh interpreter loads no twisted module."""
        code = (
            "import pomelo_twisted.protocol, sys; "
            "loaded = sorted(m for m in sys.modules"
            " if m == 'twisted' or m.startswith('twisted.')); "
            "assert not loaded, loaded"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
