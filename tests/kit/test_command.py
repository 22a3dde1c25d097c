"""``pomelo-twisted conformance``: its checks against the example game in memory, its
output, its exit status and its errors."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.admin.arguments import folder_error, parse_args
from pomelo_twisted.conformance import load_vectors, run
from pomelo_twisted.testing.game import GameHarness

from .memory import MemoryTarget
from .test_transcript import ScriptedServer

REPO = Path(__file__).resolve().parents[2]


def _args(*extra: str) -> Any:
    return parse_args(["conformance", "tcp:127.0.0.1:3010", *extra])


class CommandAgainstExampleGameTests(SynchronousTestCase):
    """The command run on the example game in memory (TCP)."""

    def setUp(self) -> None:
        self.harness = GameHarness(REPO / "example_game")
        self.addCleanup(self.harness.stop)
        self.target = MemoryTarget(self.harness)

    def run_command(self, *extra: str) -> tuple[int, list[str]]:
        out = io.StringIO()
        status = self.target.drive(
            run(self.harness.reactor, _args(*extra), out, connect=self.target.dialer)  # type: ignore[arg-type]
        )
        return status, out.getvalue().splitlines()

    def test_every_built_check_passes(self) -> None:
        """Every check that applies to TCP passes on our server; exit status 0."""
        status, lines = self.run_command()
        self.assertEqual(status, 0, "\n".join(lines))
        self.assertEqual([line for line in lines if line.startswith("FAIL")], [])
        self.assertIn("PASS  request-byte-by-byte [reference]", lines)
        self.assertIn("PASS  unknown-route-404 [ours]", lines)
        self.assertIn("PASS  chat-push [reference]", lines)
        self.assertIn("SKIP  two-packages-one-ws-message [ours]: ws only", lines)
        self.assertIn("PASS  resume [ours]", lines)
        self.assertIn("PASS  id-bytes-echoed [ours]", lines)
        self.assertRegex(lines[-1], r"^26 checks: \d+ passed, 0 failed, \d+ skipped$")

    def test_failure_is_reported_and_exits_1(self) -> None:
        """A check the server fails is one FAIL line naming the step and the difference."""
        # A route the game serves given as the one nobody serves: the 404 check fails.
        status, lines = self.run_command(
            "--only", "unknown-route-404", "--missing-route", "connector.entryHandler.entry"
        )
        self.assertEqual(status, 1)
        self.assertEqual(
            lines[1],
            "FAIL  unknown-route-404 [ours]: step 5 (expect response): code: expected 404, got 500",
        )
        self.assertEqual(lines[-1], "1 checks: 0 passed, 1 failed, 0 skipped")

    def test_reference_runs_only_reference_checks(self) -> None:
        """--reference leaves out every check of our stricter choices, as a SKIP."""
        status, lines = self.run_command("--reference")
        self.assertEqual(status, 0, "\n".join(lines))
        ours = [line for line in lines if "[ours]" in line]
        self.assertTrue(ours)
        self.assertTrue(
            all(line.endswith("our stricter choice (--reference)") for line in ours), ours
        )

    def test_route_and_body_options(self) -> None:
        """--route and --body choose the request the server must answer without error
        (the entry route without a uid is refused)."""
        status, lines = self.run_command(
            "--only", "request", "--route", "connector.entryHandler.entry", "--body", "{}"
        )
        self.assertEqual(status, 1)
        self.assertIn("code: expected 200, got 500", lines[1])

    def test_missing_route_option(self) -> None:
        """--missing-route names the route that must be answered 404."""
        status, lines = self.run_command(
            "--only", "unknown-route-404", "--missing-route", "connector.entryHandler.echo"
        )
        self.assertEqual(status, 1)
        self.assertIn("step 5 (expect response): code: missing", lines[1])


class CommandErrorTests(SynchronousTestCase):
    """Timeouts, unreachable targets and bad arguments."""

    def test_timeout_names_the_step(self) -> None:
        """A server that never answers fails the check at the step that waited."""
        clock = MemoryReactorClock()
        server = ScriptedServer(clock, lambda data: [])  # takes every byte, never answers
        out = io.StringIO()
        d = Deferred.fromCoroutine(
            run(clock, _args("--only", "handshake", "--timeout", "2"), out, connect=server.dial)  # type: ignore[arg-type]
        )
        clock.advance(2)
        self.assertEqual(self.successResultOf(d), 1)
        self.assertIn(
            "FAIL  handshake [reference]: step 2 (expect handshake): nothing arrived within 2s",
            out.getvalue(),
        )
        self.assertTrue(server.written[0].startswith(b"\x01\x00\x00"))

    def test_unreachable_target_stops_the_run(self) -> None:
        """A refused connection is one error line naming the target, exit status 1."""
        out = io.StringIO()
        d = Deferred.fromCoroutine(
            run(
                MemoryReactorClock(),  # type: ignore[arg-type]
                _args(),
                out,
                connect=lambda: fail(ConnectionRefusedError("127.0.0.1:3010")),
            )
        )
        self.assertEqual(self.successResultOf(d), 1)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[1].startswith("error: cannot connect to tcp:127.0.0.1:3010: "))

    def test_missing_vector_folder(self) -> None:
        """--vectors naming no folder is an error line saying what to pass."""
        out = io.StringIO()
        d = Deferred.fromCoroutine(
            run(MemoryReactorClock(), _args("--vectors", "/nonexistent"), out)  # type: ignore[arg-type]
        )
        self.assertEqual(self.successResultOf(d), 1)
        self.assertIn("no vector folder at /nonexistent: pass --vectors DIR", out.getvalue())

    def test_only_naming_no_check(self) -> None:
        """--only that matches no check is an error line, not an empty success."""
        out = io.StringIO()
        d = Deferred.fromCoroutine(
            run(MemoryReactorClock(), _args("--only", "nosuch*"), out)  # type: ignore[arg-type]
        )
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual(out.getvalue().splitlines()[-1], "error: no check is named nosuch*")

    def test_arguments(self) -> None:
        """The command needs no game folder; IPv6 endpoint strings and JSON bodies parse."""
        args = parse_args(["conformance", "tcp:\\:\\:1:3010", "--body", '{"uid": 7}'])
        self.assertEqual((args.endpoint, args.body), ("tcp:\\:\\:1:3010", {"uid": 7}))
        self.assertIsNone(folder_error(args))
        self.assertEqual(args.timeout, 5.0)

    def test_runner_uses_defaults_of_the_vectors(self) -> None:
        """The transcripts' variables default to the example game's routes."""
        vectors = load_vectors()
        self.assertEqual(
            vectors.defaults,
            {
                "route": "connector.entryHandler.entry",
                "body": {"uid": "conformance"},
                "missing_route": "connector.entryHandler.noSuchRoute",
            },
        )
