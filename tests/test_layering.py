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


PACKAGE_DIR = REPO_ROOT / "pomelo_twisted"
ROOT_PACKAGE = "pomelo_twisted"


def module_names(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    names: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Which modules of the package each module imports: every import statement anywhere
    in the file (``TYPE_CHECKING`` blocks and function bodies included), resolved to the
    module it names and to the packages Python initialises on the way, except the
    importer's own (already initialising) ancestors."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        base = name.split(".") if is_package else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base[: len(base) - node.level + 1]
                    module = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                found = []
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    found.append(sub if sub in modules else module)
            else:
                continue
            for target in found:
                if target not in modules:
                    continue
                mine = set(_ancestors(name)) | {name}
                targets.update(t for t in [*_ancestors(target), target] if t not in mine)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded onto the first-level packages and modules of the root."""

    def top(module: str) -> str:
        return ".".join(module.split(".")[:2])

    folded: dict[str, set[str]] = {}
    for source, targets in graph.items():
        if source == ROOT_PACKAGE:
            continue
        folded.setdefault(top(source), set()).update(
            top(t) for t in targets if t != ROOT_PACKAGE and top(t) != top(source)
        )
    return folded


class ImportGraphTests(SynchronousTestCase):
    """No import circle inside pomelo_twisted, between modules or between packages."""

    def test_graph_sees_type_checking_and_relative_imports(self) -> None:
        """The walk resolves relative imports and counts imports under TYPE_CHECKING."""
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
        self.assertEqual(cycles(graph), [["a", "b", "c"]])
        modules = module_names()
        edges = import_graph(modules)
        self.assertIn("pomelo_twisted.protocol.packet", edges["pomelo_twisted.protocol.connection"])

    def test_no_module_circle(self) -> None:
        """No module of pomelo_twisted imports, however indirectly, itself."""
        self.assertEqual(cycles(import_graph(module_names())), [])

    def test_no_package_circle(self) -> None:
        """No first-level package of pomelo_twisted imports, however indirectly, itself."""
        self.assertEqual(cycles(package_graph(import_graph(module_names()))), [])
