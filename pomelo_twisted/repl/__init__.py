"""``pomelo-twisted repl``: an interactive Pomelo client, like pitaya's repl.

- :class:`ReplSession`: the commands (``connect``, ``request``, ``notify``, ``routes``,
  ...), completion and history, writing through a callable: no terminal needed.
- :mod:`.terminal`: the interactive front end (line editing, history, TAB completion,
  pushes shown without breaking the line being typed).
- :mod:`.lines`: line mode for scripts, when stdin is not a TTY.
- :func:`add_parser` / :func:`run`: the ``repl`` subcommand of ``pomelo-twisted``.
"""

from .command import add_parser, run
from .session import COMMANDS, ReplSession, normalize_target

__all__ = ["COMMANDS", "ReplSession", "add_parser", "normalize_target", "run"]
