"""The reconnecting client against an in-memory frontend with resume (iosim, one Clock)."""

from __future__ import annotations

import itertools
from random import Random
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionRefusedError
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.acceptors import TCPFactory
from pomelo_twisted.client import ConnectionClosed, PomeloClient, PomeloClientProtocol
from pomelo_twisted.client.reconnect import ResumingClient

from .support import Frontend


class Network:
    """Opens client connections to ``frontend`` over iosim; ``refuse`` fails the next ones."""

    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        self.pumps: list[iosim.IOPump] = []
        self.refuse = 0
        self.opened: list[dict[str, Any]] = []
        self.opened_at: list[float] = []

    def open(self, resume: dict[str, Any]) -> Deferred[PomeloClient]:
        self.opened.append(resume)
        self.opened_at.append(self.frontend.clock.seconds())
        if self.refuse:
            self.refuse -= 1
            return fail(ConnectionRefusedError())
        factory = TCPFactory(self.frontend.agents)
        client = PomeloClient(self.frontend.clock, resume=resume)
        _, _, pump = iosim.connectedServerAndClient(
            lambda: factory.buildProtocol(None),  # type: ignore[arg-type]
            lambda: PomeloClientProtocol(client),
            greet=False,  # as a network does: the handshake runs once the caller listens
            clock=self.frontend.clock,
        )
        self.pumps.append(pump)
        return client.ready

    def flush(self) -> None:
        for pump in self.pumps:
            pump.flush()

    def drop(self) -> None:
        """The network drops the current connection: what was in flight either way is
        lost, then both sides see it lost."""
        pump = self.pumps[-1]
        pump.serverIO.getOutBuffer()
        pump.clientIO.getOutBuffer()
        pump.clientIO.abortConnection()
        pump.flush()

    def next_call(self) -> None:
        """Run the clock to its next delayed call."""
        clock = self.frontend.clock
        self.advance(min(call.getTime() for call in clock.getDelayedCalls()) - clock.seconds())

    def advance(self, seconds: float) -> None:
        self.frontend.clock.advance(seconds)
        self.flush()


class ResumingClientTests(SynchronousTestCase):
    """A drop is invisible to the game but for the hooks; pushes arrive exactly once."""

    def setUp(self) -> None:
        self.frontend = Frontend(window=60.0)
        self.network = Network(self.frontend)
        self.client = ResumingClient(
            self.frontend.clock, self.network.open, Random(3), initial_delay=1.0, max_delay=8.0
        )
        started = self.client.start()
        self.network.flush()
        self.assertIs(self.successResultOf(started), self.client)
        self.chats: list[int] = []
        self.client.on("onChat", lambda body: self.chats.append(body["n"]))
        self.resumed: list[ResumingClient] = []
        self.failed: list[str] = []
        self.client.on_reconnect(self.resumed.append)
        self.client.on_resume_failed(self.failed.append)
        d = self.client.request("bind", {"uid": "alice"})
        self.network.flush()
        self.successResultOf(d)

    def test_resume_after_a_drop(self) -> None:
        """After a drop the client reconnects, resumes and gets every missed push once."""
        self.frontend.chat(1, 2)
        self.network.flush()
        self.frontend.chat(3)  # written to the socket, lost with it
        self.network.drop()
        self.assertFalse(self.client.connected)
        self.frontend.chat(4)
        self.network.advance(1.0)  # the first retry comes within initial_delay
        self.assertEqual(self.resumed, [self.client])
        self.assertEqual(self.failed, [])
        self.assertEqual(self.chats, [1, 2, 3, 4])
        self.assertEqual(self.network.opened[-1]["received"], 3)  # token push + 2 chats
        self.frontend.chat(5)
        self.network.flush()
        self.assertEqual(self.chats, [1, 2, 3, 4, 5])
        self.assertEqual(self.client.pushes_received, 6)

    def test_request_in_flight_fails_clearly(self) -> None:
        """A request in flight at the drop fails with ConnectionClosed (not replayed);
        requests while reconnecting fail at once."""
        d = self.client.request("echo", {})
        self.network.drop()
        self.failureResultOf(d, ConnectionClosed)
        self.failureResultOf(self.client.request("echo", {}), ConnectionClosed)
        self.network.advance(1.0)
        d = self.client.request("echo", {})
        self.network.flush()
        self.assertEqual(self.successResultOf(d)["echo"], {})

    def test_backoff_is_bounded_and_jittered(self) -> None:
        """Retries wait initial_delay doubling up to max_delay, times a jitter in [0.5, 1)."""
        self.network.refuse = 5
        self.network.drop()
        dropped_at = self.frontend.clock.seconds()
        while not self.client.connected:
            self.network.next_call()
        times = [dropped_at, *self.network.opened_at[-6:]]
        waits = [b - a for a, b in itertools.pairwise(times)]
        for wait, cap in zip(waits, (1.0, 2.0, 4.0, 8.0, 8.0, 8.0), strict=True):
            self.assertTrue(cap / 2 <= wait < cap, (wait, cap))
        self.assertEqual(self.resumed, [self.client])

    def test_gives_up_after_max_attempts(self) -> None:
        """After max_attempts refused connections the session ends with a reason."""
        closes: list[str] = []
        self.client.on_close(closes.append)
        self.network.refuse = 100
        self.network.drop()
        for _ in range(10):
            self.network.advance(8.0)
        self.assertEqual(closes, ["gave up reconnecting after 10 attempts"])
        self.assertEqual(self.frontend.clock.getDelayedCalls(), [])

    def test_refused_resume_calls_the_hook(self) -> None:
        """Past the window the resume is refused: on_resume_failed runs, the push count
        starts again, and the game logs in again on the new session."""
        self.network.refuse = 100
        self.network.drop()
        self.network.advance(60.0)
        self.network.refuse = 0
        self.network.advance(8.0)
        self.assertEqual(len(self.failed), 1)
        self.assertIn("is gone", self.failed[0])
        self.assertEqual(self.resumed, [])
        self.assertEqual(self.client.pushes_received, 0)
        d = self.client.request("bind", {"uid": "alice"})
        self.network.flush()
        self.successResultOf(d)

    def test_kick_does_not_reconnect(self) -> None:
        """A kick ends the session: no reconnect."""
        kicks: list[str] = []
        closes: list[str] = []
        self.client.on_kick(kicks.append)
        self.client.on_close(closes.append)
        self.frontend.sessions.kick("alice", "bye")
        self.network.flush()
        self.assertEqual((kicks, closes), (["bye"], ["kicked: bye"]))
        self.assertEqual(len(self.network.opened), 1)

    def test_close_does_not_reconnect(self) -> None:
        """close() ends the session for good."""
        closed = self.client.close()
        self.network.flush()
        self.assertEqual(self.successResultOf(closed), "closed by client")
        self.assertEqual(self.client.close_reason, "closed by client")
        self.network.advance(60.0)
        self.assertEqual(len(self.network.opened), 1)

    def test_close_ends_the_session_on_the_server_at_once(self) -> None:
        """close() says the client is leaving: the server closes the session, parks nothing."""
        self.client.close()
        self.network.flush()
        self.assertEqual(self.frontend.registry.parked, [])
        self.assertEqual(self.frontend.sessions.get_by_uid("alice"), [])

    def test_a_drop_still_parks(self) -> None:
        """Without close(), the same connection closing parks the session for the window."""
        self.network.drop()
        self.assertEqual(len(self.frontend.registry.parked), 1)
