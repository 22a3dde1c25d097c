"""libpitaya's C core (pitaya's client behind its Unity and mobile SDKs), built from its
source by ``make libpitaya``, through a chat session against the example game with the
route dictionary on: libpitaya's own handshake, entry/join, a zlib-compressed ``send``
body (flag 0x10), the ``onChat`` push, and a refused request seen as a server error (flag
0x20). The driver is ``libpitaya/driver.c``; the test skips when it was not built."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from pomelo_twisted.client import connect

from ..e2e.cluster import ClusterCase
from .harness import REPO, RealClientCase, run_program, watcher

#: Where ``make libpitaya`` writes the driver; POMELO_LIBPITAYA_DRIVER names another.
DRIVER = Path(os.environ.get("POMELO_LIBPITAYA_DRIVER", REPO / "build/libpitaya/pitaya_driver"))


def driver_missing() -> str | None:
    """Why the driver cannot run here, or None."""
    if not os.access(DRIVER, os.X_OK):
        return (
            f"libpitaya is not built ({DRIVER} missing): `make libpitaya` builds it "
            "(needs cmake, cc, libssl-dev and git or LIBPITAYA_SRC)"
        )
    return None


def peak_memory_kib(pid: int) -> int | None:
    """A process's peak resident memory (Linux's VmHWM) in KiB, or None without /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else None


#: libpitaya compresses this many bytes of one letter to a packet under the 64 KiB limit.
BOMB_BYTES = 60_000_000
STEP = re.compile(r"^STEP ([\w-]+) ?(.*)$", re.MULTILINE)


class LibpitayaTests(RealClientCase):
    """The driver program, run against a fresh copy of the example game."""

    def setUp(self) -> None:
        missing = driver_missing()
        if missing is not None:
            raise self.skipTest(missing)

    @inlineCallbacks
    def test_chat_session(self) -> Any:
        """Every step of the driver passes: connected (JSON), entry, join, a compressed send,
        the onChat push with the sent content, the same send as a compressed notify and
        its push, then entry without uid (connector) and join without rid (chat backend,
        forwarded) fail as PC_RC_SERVER_ERROR carrying the game's message in pitaya's
        shape."""
        game = yield self.started_game()
        out, err, code = yield run_program(
            str(DRIVER), "127.0.0.1", str(game.port), "pitaya-1", "room-pitaya"
        )
        check_session(self, out, err, code, "pitaya-1")

    @inlineCallbacks
    def test_chat_session_with_compressed_answers_and_pushes(self) -> Any:
        """With the connector setting ``compress_bodies``, answers and pushes come
        zlib-compressed (0x10) when smaller, and libpitaya inflates them: the same session
        passes (the onChat push of a 260-byte repetitive content is compressed), and a
        stock JSON client in the room gets the same push uncompressed."""
        game = yield self.started_game(connector={"compress_bodies": True})
        watched = yield watcher(self, game.tcp_target, "json-4", "room-deflated", sender="pitaya-4")
        out, err, code = yield run_program(
            str(DRIVER), "127.0.0.1", str(game.port), "pitaya-4", "room-deflated"
        )
        check_session(self, out, err, code, "pitaya-4")
        pushed = yield watched.pushed
        self.assertEqual(pushed["content"], "hello pitaya " * 20)

    @inlineCallbacks
    def test_chat_session_holding_a_cached_dictionary(self) -> Any:
        """A libpitaya that starts with the game's route dictionary in its local storage
        (what its Unity SDK keeps between sessions) completes the same session."""
        game = yield self.started_game()
        client = yield connect(reactor, game.tcp_target, timeout=5.0)
        dictionary = dict(client.dictionary)
        yield client.close()
        self.assertIn("onChat", dictionary)
        folder = Path(tempfile.mkdtemp(prefix="pitaya-cache-"))
        self.addCleanup(shutil.rmtree, folder, True)
        cache = folder / "cache.json"
        cache.write_text(
            json.dumps(
                {"r2c": dictionary, "c2r": {str(code): route for route, code in dictionary.items()}}
            ),
            encoding="utf-8",
        )
        out, err, code = yield run_program(
            str(DRIVER),
            "127.0.0.1",
            str(game.port),
            "pitaya-2",
            "room-cached",
            "--cache",
            str(cache),
        )
        check_session(self, out, err, code, "pitaya-2")

    @inlineCallbacks
    def test_body_inflating_past_the_cap_is_kicked(self) -> Any:
        """An echo body of 60 MB, which libpitaya itself compresses (0x10) to under 64 KiB,
        inflates past the game's 64 KiB cap: libpitaya is kicked (PC_EV_KICKED_BY_SERVER,
        no answer), the game logs the limit by name, and its peak memory grew by less
        than 10 MB."""
        game = yield self.started_game()
        before = peak_memory_kib(game.process.pid)
        out, err, code = yield run_program(
            str(DRIVER),
            "127.0.0.1",
            str(game.port),
            "pitaya-3",
            "room-big",
            "--inflating",
            str(BOMB_BYTES),
        )
        after = peak_memory_kib(game.process.pid)
        report = f"libpitaya driver:\n{out}\nstderr:\n{err}"
        self.assertEqual(code, 0, report)
        steps = dict(STEP.findall(out))
        self.assertEqual(list(steps), ["version", "connected", "entry", "inflating", "done"])
        self.assertEqual(steps["inflating"], "PC_EV_KICKED_BY_SERVER success=0", report)
        self.assertIn("(max_inflated_body)", game.log())
        if before is not None and after is not None:
            self.assertLess(after - before, 10 * 1024, f"peak memory {before} -> {after} KiB")


class LibpitayaClusterTests(ClusterCase):
    """The driver against the example game as a real cluster (master, 2 connectors, 2 chat
    servers, real RPC between them)."""

    def setUp(self) -> None:
        missing = driver_missing()
        if missing is not None:
            raise self.skipTest(missing)

    @inlineCallbacks
    def test_chat_session_across_connectors(self) -> Any:
        """libpitaya on one connector completes the whole session (the chat backend's
        refusal crossing a real RPC), and a stock JSON client of the same room on the other
        connector gets its onChat push."""
        cluster = yield self.started()
        rid = "room-cluster"
        other = f"tcp:127.0.0.1:{cluster.client_port('connector-server-2')}"
        watched = yield watcher(self, other, "json-5", rid, sender="pitaya-5")
        port = cluster.client_port("connector-server-1")
        out, err, code = yield run_program(str(DRIVER), "127.0.0.1", str(port), "pitaya-5", rid)
        check_session(self, out, err, code, "pitaya-5")
        pushed = yield watched.pushed
        self.assertEqual(pushed["content"], "hello pitaya " * 20)
        self.assertEqual(cluster.tracebacks(), {})


def check_session(case: TestCase, out: str, err: str, code: int, uid: str) -> None:
    """The driver's steps all passed, with the answers of the example game."""
    report = f"libpitaya driver:\n{out}\nstderr:\n{err}"
    case.assertEqual(code, 0, report)
    steps = dict(STEP.findall(out))
    case.assertEqual(
        list(steps),
        [
            "version",
            "connected",
            "entry",
            "join",
            "send",
            "push",
            "notify",
            "error",
            "forwarded-error",
            "done",
        ],
        report,
    )
    case.assertTrue(steps["connected"].startswith("serializer=json "), report)
    case.assertEqual(steps["entry"], f'{{"code":200,"uid":"{uid}"}}', report)
    case.assertIn(f'"{uid}"]', steps["join"], report)  # the last member
    case.assertEqual(steps["send"], '{"code":200}', report)
    case.assertTrue(steps["push"].startswith("onChat {"), report)
    case.assertTrue(steps["notify"].startswith("onChat {"), report)
    case.assertTrue(steps["error"].startswith("PC_RC_SERVER_ERROR "), report)
    case.assertIn("uid required", steps["error"], report)
    case.assertEqual(
        steps["forwarded-error"],
        'PC_RC_SERVER_ERROR {"code":"PIT-500","msg":"rid required","metadata":{}}',
        report,
    )
