"""The README's examples are tests: what a studio copies must work."""

from __future__ import annotations

import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


class ReadmeTests(SynchronousTestCase):
    """Code blocks of README.md."""

    def test_testing_example_runs(self) -> None:
        """The 'test without sockets' example runs as written and its asserts hold."""
        blocks = [block for block in python_blocks() if "MemoryServer" in block]
        self.assertEqual(len(blocks), 1)
        exec(compile(blocks[0], str(README), "exec"), {})

    def test_client_example_compiles(self) -> None:
        """The client example is valid Python using the public client API."""
        blocks = [block for block in python_blocks() if "pomelo_twisted.client" in block]
        self.assertTrue(blocks)
        for block in blocks:
            compile(block, str(README), "exec")
