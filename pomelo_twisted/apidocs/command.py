"""``pomelo-twisted docs --out DIR`` and ``pomelo-twisted stubs --lang L --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from .writing import write_docs, write_stubs

__all__ = ["write_api"]


def write_api(args: argparse.Namespace, out: TextIO) -> int:
    """Write the docs or stubs the command line asks for, name the files on ``out``;
    the exit status. A handler file that fails to load is a ``ConfigError``."""
    base_dir, folder = Path(args.app), Path(args.out)
    if args.command == "docs":
        written = write_docs(base_dir, folder)
    else:
        written = [write_stubs(base_dir, args.lang, folder)]
    for path in written:
        out.write(f"wrote {path}\n")
    return 0
