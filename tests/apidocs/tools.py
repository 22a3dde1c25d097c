"""The checkers of generated files: the AsyncAPI 3 JSON Schema and tsc (npm packages in
``tests/apidocs/node``, installed by ``npm ci`` on first use), mypy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SkipTest

NODE_DIR = Path(__file__).resolve().parent / "node"
MODULES = NODE_DIR / "node_modules"
ASYNCAPI_SCHEMA = MODULES / "@asyncapi" / "specs" / "schemas" / "3.0.0.json"
TSC = MODULES / "typescript" / "bin" / "tsc"


def node_modules() -> None:
    """Skip unless node and npm exist; ``npm ci`` when the packages are missing."""
    if ASYNCAPI_SCHEMA.is_file() and TSC.is_file():
        return
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise SkipTest(f"{tool} is not installed (needed for the AsyncAPI schema and tsc)")
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
        capture_output=True,
        timeout=300,
    )


def asyncapi_errors(document: dict[str, Any]) -> list[str]:
    """What is wrong with ``document`` by the published AsyncAPI 3.0.0 JSON Schema."""
    import jsonschema

    node_modules()
    schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


def tsc(*files: Path) -> subprocess.CompletedProcess[str]:
    """``tsc --noEmit --strict`` of ``files``."""
    node_modules()
    if shutil.which("node") is None:
        raise SkipTest("node is not installed (needed for tsc)")
    return subprocess.run(
        ["node", str(TSC), "--noEmit", "--strict", "--target", "es2020", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def mypy(*files: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` of ``files`` (no cache written)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir=/dev/null",
            "--config-file=",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
