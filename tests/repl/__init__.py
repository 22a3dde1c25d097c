"""Tests of ``pomelo-twisted repl``: the session, line mode, the terminal, over loopback."""
