"""The REPL against the echo server on real loopback sockets: TCP, WebSocket, line mode."""

from __future__ import annotations

import argparse
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import TestCase

from pomelo_twisted.repl import ReplSession, run

from .helpers import ECHO, PUSH, LoopbackEchoServer

TIMEOUT = 5.0


class LoopbackTests(TestCase):
    """A ReplSession with the real connect() against an in-process echo server."""

    async def serve(self) -> LoopbackEchoServer:
        """Start the echo server; stopped (and its connections gone) on cleanup."""
        server = await LoopbackEchoServer(reactor).start()
        self.addCleanup(lambda: ensureDeferred(server.stop()))
        return server

    def session(self) -> tuple[ReplSession, list[str]]:
        """A session on the real reactor; its connection is closed on cleanup."""
        lines: list[str] = []
        session = ReplSession(reactor, lines.append, timeout=TIMEOUT, user={"name": "bot"})
        self.addCleanup(session.close)
        return session, lines

    async def round_trip(self, target: str) -> list[str]:
        """Connect to ``target``, request, push, list routes, disconnect: the output."""
        session, lines = self.session()
        await session.execute(f"connect {target}")
        await session.execute(f'request {ECHO} {{"text": "héllo"}}')
        await session.execute(f'request {PUSH} {{"n": 1}}')
        await session.execute("routes")
        await session.execute("disconnect")
        self.assertFalse(session.connected)
        self.assertEqual(session.errors, 0)
        return [line.split("(", 1)[0] if line.startswith("response") else line for line in lines]

    def expected(self, target: str) -> list[str]:
        """What round_trip shows (latencies cut off)."""
        return [
            f"connected to {target} (6 routes in the dictionary, heartbeat 30 s)",
            'handshake user: {"name": "bot"}',
            "response ",
            'push onPush {"n": 1}',
            "response ",
            "connector.entryHandler.echo",
            "connector.entryHandler.error",
            "connector.entryHandler.fail",
            "connector.entryHandler.kick",
            "connector.entryHandler.push",
            "onPush",
            "disconnected: closed by client",
        ]

    async def test_tcp(self) -> None:
        """Over TCP: connect, request, push, routes and disconnect work."""
        server = await self.serve()
        target = f"tcp:127.0.0.1:{server.port}"
        self.assertEqual(await self.round_trip(target), self.expected(target))

    async def test_websocket(self) -> None:
        """Over ws://: connect, request, push, routes and disconnect work."""
        server = await self.serve()
        target = f"ws://127.0.0.1:{server.port}/"
        self.assertEqual(await self.round_trip(target), self.expected(target))

    async def test_refused(self) -> None:
        """A refused connection is one error line."""
        server = await self.serve()
        port = server.port
        await server.stop()
        session, lines = self.session()
        await session.execute(f"connect tcp:127.0.0.1:{port}")
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith(f"error: cannot connect to tcp:127.0.0.1:{port}: "))

    def test_line_mode_script(self) -> Deferred[Any]:
        """run() in line mode: a script piped to stdin runs against the server; status 0."""

        async def script() -> None:
            server = await self.serve()
            stdin_r, stdin_w = os.pipe()
            out_r, out_w = os.pipe()
            self.addCleanup(os.close, out_r)
            # The last request makes sure the notify's push has arrived before the end.
            commands = f'request {ECHO} {{"a": 1}}\nnotify {PUSH} [2]\nrequest {ECHO}\n'
            os.write(stdin_w, commands.encode())
            os.close(stdin_w)
            args = argparse.Namespace(endpoint=f"127.0.0.1:{server.port}", timeout=TIMEOUT)
            status = await run(reactor, args, stdin_fd=stdin_r, stdout_fd=out_w)
            self.assertEqual(status, 0)
            lines = os.read(out_r, 65536).decode().splitlines()
            self.assertEqual(
                [line.split(" (")[0] for line in lines],
                [
                    f"connected to tcp:host=127.0.0.1:port={server.port}",
                    "response",
                    f"notify sent to {PUSH}",
                    "push onPush [2]",
                    "response",
                ],
            )

        return ensureDeferred(script())
