"""pypomelo 1.0.1 (PyPI), unmodified, through a whole chat session against the example game
with the route dictionary on (issue 15: it crashed on the first dictionary-compressed push)."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

from twisted.internet.defer import inlineCallbacks

from .harness import HERE, RealClientCase, python, run_program, watcher

SESSION = HERE / "pypomelo_session.py"


def pypomelo_missing() -> str | None:
    """Why pypomelo cannot run here, or None."""
    if importlib.util.find_spec("pypomelo") is None:
        return "pypomelo is not installed (pip install -e '.[test]' installs pypomelo==1.0.1)"
    if importlib.util.find_spec("tornado") is None:
        return "tornado is not installed (pypomelo's TornadoClient needs tornado<6)"
    import tornado

    if tornado.version_info[0] >= 6:
        return f"tornado {tornado.version} removed the callbacks pypomelo's TornadoClient uses"
    return None


class PypomeloTests(RealClientCase):
    """pypomelo's own TornadoClient (its sockets, its IOLoop) in a child process."""

    def setUp(self) -> None:
        missing = pypomelo_missing()
        if missing is not None:
            raise self.skipTest(missing)

    @inlineCallbacks
    def test_chat_session_with_the_dictionary_on(self) -> Any:
        """Handshake (dictionary received), entry, join and send are answered, and the
        ``onChat`` push of its own message arrives with its route and body; a stock JSON
        client in the room gets the same push in its own format."""
        game = yield self.started_game()
        watched = yield watcher(self, game.tcp_target, "json-1", "room-py", sender="py-1")
        out, err, code = yield run_program(
            python(), str(SESSION), "127.0.0.1", str(game.port), "py-1", "room-py"
        )
        steps = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        report = f"pypomelo's steps:\n{out}\nstderr:\n{err}"
        self.assertEqual(code, 0, report)
        by_step = {step["step"]: step for step in steps}
        self.assertEqual(by_step["connected"], {"step": "connected", "dictionary": True}, report)
        self.assertEqual(by_step["entry"]["body"], {"code": 200, "uid": "py-1"}, report)
        self.assertEqual(
            by_step["join"]["body"],
            {"code": 200, "rid": "room-py", "members": ["json-1", "py-1"]},
            report,
        )
        self.assertEqual(by_step["send"]["body"], {"code": 200}, report)
        self.assertEqual(by_step["push"]["route"], "onChat", report)
        self.assertEqual(
            by_step["push"]["body"],
            {"rid": "room-py", "from": "py-1", "content": "hello from pypomelo"},
            report,
        )
        self.assertNotIn("error", by_step, report)
        pushed = yield watched.pushed
        self.assertEqual(pushed, by_step["push"]["body"])
