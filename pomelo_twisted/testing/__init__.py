"""Public test helpers: test handlers and clients without sockets, under trial or pytest.

- :class:`MemoryServer` / :class:`MemoryConnection`: the real agent and the real
  Python client joined in memory on a :class:`~twisted.internet.task.Clock`.
- :class:`GameHarness`: every server of a game folder in memory, clients included.
- :class:`EchoHandler`: a tiny echo server (tests, benchmarks, ``twistd pomelo --type echo``).
"""

from ..app.echo import ECHO_ROUTES, EchoHandler, echo_dictionary
from .game import GameConnection, GameHarness
from .memory import MemoryConnection, MemoryServer, NoResponseYet

__all__ = [
    "ECHO_ROUTES",
    "EchoHandler",
    "GameConnection",
    "GameHarness",
    "MemoryConnection",
    "MemoryServer",
    "NoResponseYet",
    "echo_dictionary",
]
