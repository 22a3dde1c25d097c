"""The conformance vectors: ``tests/vectors/*.json`` of the checkout, or another folder.

The vectors are read from a path, not shipped as package data: there is one copy, where a
client author browsing the repository finds it next to its ``README.md``; an edited or
extended copy is used with ``--vectors DIR`` without reinstalling anything; and the kit's
users (client authors, operators of a server under test) work from a checkout, which
``make install`` installs in editable mode. An installed copy without the checkout must be
given ``--vectors``; :func:`load_vectors` says so when the folder is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_VECTORS_DIR",
    "FILES",
    "ORIGINS",
    "Session",
    "VectorError",
    "Vectors",
    "load_vectors",
]

#: ``tests/vectors`` of the checkout this package belongs to.
DEFAULT_VECTORS_DIR = Path(__file__).resolve().parents[2] / "tests" / "vectors"
#: The files of the kit and the schema each declares.
FILES = {
    "packages": "pomelo-twisted/packages/1",
    "messages": "pomelo-twisted/messages/1",
    "handshakes": "pomelo-twisted/handshakes/1",
    "sessions": "pomelo-twisted/sessions/1",
}
#: ``reference``: pomelo/pinus behave so too; ``ours``: our stricter (or kinder) choice.
ORIGINS = ("reference", "ours")
TRANSPORTS = ("tcp", "ws")


class VectorError(ValueError):
    """A vector file is missing or malformed (the message names the file and the vector)."""


@dataclass(frozen=True)
class Session:
    """One transcript of ``sessions.json``, its ``use`` fragments expanded."""

    name: str
    origin: str
    description: str
    steps: list[dict[str, Any]]
    transports: tuple[str, ...] = TRANSPORTS
    requires: tuple[str, ...] = ()
    dialect: str | None = None


@dataclass(frozen=True)
class Vectors:
    """Every file of the kit, as parsed JSON, and the sessions ready to run."""

    folder: Path
    documents: dict[str, dict[str, Any]]
    sessions: list[Session] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)

    def vectors(self, kind: str) -> list[dict[str, Any]]:
        """The ``vectors`` list of ``packages`` or ``messages``."""
        return list(self.documents[kind]["vectors"])


def load_vectors(folder: Path | str | None = None) -> Vectors:
    """Read and check the kit in ``folder`` (default :data:`DEFAULT_VECTORS_DIR`)."""
    path = Path(folder) if folder is not None else DEFAULT_VECTORS_DIR
    if not path.is_dir():
        raise VectorError(
            f"no vector folder at {path}: pass --vectors DIR (tests/vectors of a checkout)"
        )
    documents = {}
    for kind, schema in FILES.items():
        file = path / f"{kind}.json"
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise VectorError(f"{file}: {exc}") from None
        if not isinstance(document, dict) or document.get("schema") != schema:
            raise VectorError(f'{file}: expected "schema": "{schema}"')
        for vector in document.get("vectors", []):
            _check_origin(file, vector)
        documents[kind] = document
    sessions_doc = documents["sessions"]
    defaults = {name: spec["default"] for name, spec in sessions_doc["variables"].items()}
    fragments = sessions_doc.get("fragments", {})
    sessions = [
        _session(path / "sessions.json", raw, fragments) for raw in sessions_doc["sessions"]
    ]
    names = [session.name for session in sessions]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise VectorError(f"{path / 'sessions.json'}: duplicate session names {duplicates}")
    return Vectors(path, documents, sessions, defaults)


def _check_origin(file: Path, vector: dict[str, Any]) -> None:
    if vector.get("origin") not in ORIGINS:
        raise VectorError(
            f"{file}: vector {vector.get('name')!r} has origin {vector.get('origin')!r}, "
            f"not one of {', '.join(ORIGINS)}"
        )


def _session(file: Path, raw: dict[str, Any], fragments: dict[str, Any]) -> Session:
    _check_origin(file, raw)
    name = raw["name"]
    steps: list[dict[str, Any]] = []
    for step in raw["steps"]:
        if "use" in step:
            if step["use"] not in fragments:
                raise VectorError(f"{file}: session {name!r} uses unknown fragment {step['use']!r}")
            steps.extend(fragments[step["use"]])
        elif {"send", "expect", "reconnect"} & step.keys():
            steps.append(step)
        else:
            raise VectorError(f"{file}: session {name!r} has a step of no known kind: {step}")
    transports = tuple(raw.get("transports", TRANSPORTS))
    if not set(transports) <= set(TRANSPORTS):
        raise VectorError(f"{file}: session {name!r} names unknown transports {transports}")
    return Session(
        name=name,
        origin=raw["origin"],
        description=raw["description"],
        steps=steps,
        transports=transports,
        requires=tuple(raw.get("requires", ())),
        dialect=raw.get("dialect"),
    )
