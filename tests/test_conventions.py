"""The project's code rules, checked mechanically so they cannot drift."""

from __future__ import annotations

import ast
import importlib
import re
import unittest
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pomelo_twisted"
LOG_METHODS = {"debug", "info", "warn", "error", "critical", "failure"}


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


class ConventionTests(SynchronousTestCase):
    """Rules from the developers' brief."""

    def test_every_test_has_a_docstring(self) -> None:
        """Every test (generated ones included) has a docstring naming what it pins."""
        missing = []
        for path in python_files(ROOT / "tests"):
            if not path.name.startswith("test_"):
                continue
            module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            module = importlib.import_module(module_name)
            for name, value in vars(module).items():
                if name.startswith("test") and callable(value) and not value.__doc__:
                    missing.append(f"{module_name}.{name}")
                if isinstance(value, type) and issubclass(value, unittest.TestCase):
                    for attr in dir(value):
                        method = getattr(value, attr, None)
                        if attr.startswith("test") and callable(method) and not method.__doc__:
                            missing.append(f"{module_name}.{value.__name__}.{attr}")
        self.assertEqual(sorted(set(missing)), [])

    def test_log_calls_use_format_fields(self) -> None:
        """Logger calls pass a format string with fields, never an f-string."""
        offenders = []
        for path in python_files(PACKAGE):
            for node in ast.walk(parse(path)):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in LOG_METHODS
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "log"
                    and node.args
                    and isinstance(node.args[0], ast.JoinedStr)
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        self.assertEqual(offenders, [])

    def test_listeners_come_from_endpoint_strings(self) -> None:
        """The framework never calls listenTCP/listenSSL directly: endpoints only."""
        pattern = re.compile(r"\.listen(TCP|SSL|UNIX)\(")
        offenders = [
            str(path.relative_to(ROOT))
            for path in python_files(PACKAGE)
            if pattern.search(path.read_text(encoding="utf-8"))
        ]
        self.assertEqual(offenders, [])

    def test_global_reactor_only_at_entry_points(self) -> None:
        """Only the twistd entry point and client.connect import the global reactor."""
        allowed = {
            "pomelo_twisted/app/tap.py",
            "pomelo_twisted/client/connect.py",
            "pomelo_twisted/admin/cli.py",
        }
        importers = set()
        for path in python_files(PACKAGE):
            for node in ast.walk(parse(path)):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.module == "twisted.internet"
                    and any(alias.name == "reactor" for alias in node.names)
                ):
                    importers.add(str(path.relative_to(ROOT)))
        self.assertLessEqual(importers, allowed)

    def test_every_implementer_is_verified(self) -> None:
        """Each interface named in an @implementer is checked by verifyObject in a test."""
        declared = set()
        for path in python_files(PACKAGE):
            for node in ast.walk(parse(path)):
                if isinstance(node, ast.ClassDef):
                    for deco in node.decorator_list:
                        if (
                            isinstance(deco, ast.Call)
                            and isinstance(deco.func, ast.Name)
                            and deco.func.id == "implementer"
                        ):
                            declared.update(ast.unparse(arg) for arg in deco.args)
        verified = set()
        for path in python_files(ROOT / "tests"):
            verified.update(re.findall(r"verifyObject\((\w+)", path.read_text(encoding="utf-8")))
        self.assertEqual(declared - verified, set())

    def test_modules_stay_small(self) -> None:
        """Framework modules stay at 500 lines or less (one concept each)."""
        large = {
            str(path.relative_to(ROOT)): n
            for path in python_files(PACKAGE)
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500
        }
        self.assertEqual(large, {})
