"""SessionService with a directory: binds wait for the claim; binds and closes reported."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import HandlerError
from pomelo_twisted.session import SessionService

from .fakes import FakeAgent


class RecordingClaims:
    """Claims answered by the test (one Deferred per claim); records every hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.pending: list[Deferred[None]] = []
        self.refuse: Exception | None = None

    def claim(self, uid: str, sid: int) -> Deferred[None]:
        self.calls.append(("claim", uid, sid))
        if self.refuse is not None:
            return fail(self.refuse)
        d: Deferred[None] = Deferred()
        self.pending.append(d)
        return d

    def bound(self, uid: str, sid: int) -> None:
        self.calls.append(("bound", uid, sid))

    def released(self, uid: str, sid: int) -> None:
        self.calls.append(("released", uid, sid))


def make(unique: bool = True) -> tuple[SessionService, RecordingClaims, list[FakeAgent]]:
    claims = RecordingClaims()
    service = SessionService("f1", directory=claims, cluster_unique=unique)
    agents = [FakeAgent(sid) for sid in (1, 2)]
    for agent in agents:
        service.create(agent)
    return service, claims, agents


class ClaimTests(SynchronousTestCase):
    """The bind of a frontend with cluster-wide unique login."""

    def test_bind_waits_for_the_claim(self) -> None:
        """The bind fires only once the claim did; then the directory hears of it."""
        service, claims, _ = make()
        d = service.bind(1, "u")
        self.assertNoResult(d)
        self.assertEqual(service.uids(), [])
        claims.pending[0].callback(None)
        self.successResultOf(d)
        self.assertEqual(claims.calls, [("claim", "u", 1), ("bound", "u", 1)])

    def test_refused_claim_fails_the_bind(self) -> None:
        """A refused claim fails the bind with its error; the session stays unbound and
        can bind again."""
        service, claims, _ = make()
        claims.refuse = HandlerError(500, "u is held elsewhere")
        self.failureResultOf(service.bind(1, "u"), HandlerError)
        self.assertEqual(service.get(1).uid, None)  # type: ignore[union-attr]
        claims.refuse = None
        d = service.bind(1, "u")
        claims.pending[0].callback(None)
        self.successResultOf(d)

    def test_close_during_the_claim(self) -> None:
        """A session closed while its claim runs is not bound; the claim is released."""
        service, claims, _ = make()
        d = service.bind(1, "u")
        service.closed(1, "gone")
        claims.pending[0].callback(None)
        failure = self.failureResultOf(d, HandlerError)
        self.assertIn("closed while binding u", failure.getErrorMessage())
        self.assertEqual(claims.calls[-1], ("released", "u", 1))
        self.assertEqual(service.uids(), [])

    def test_second_bind_during_the_claim(self) -> None:
        """A second bind of a session whose claim runs fails, naming the pending uid."""
        service, _, _ = make()
        service.bind(1, "u")
        failure = self.failureResultOf(service.bind(1, "v"), HandlerError)
        self.assertIn("being bound to u", failure.getErrorMessage())

    def test_unique_kicks_older_local_sessions(self) -> None:
        """Cluster-wide unique login implies one session per uid here too."""
        service, claims, (a1, a2) = make()
        d1 = service.bind(1, "u")
        claims.pending[0].callback(None)
        self.successResultOf(d1)
        d2 = service.bind(2, "u")
        claims.pending[1].callback(None)
        self.successResultOf(d2)
        self.assertEqual((a1.kicks, a2.kicks), (["another login"], []))
        self.assertIn(("released", "u", 1), claims.calls)

    def test_unique_off_binds_at_once_and_reports(self) -> None:
        """Without unique login a bind does not claim (as before) but is still reported,
        and so are unbind and close."""
        service, claims, _ = make(unique=False)
        self.successResultOf(service.bind(1, "u"))
        self.successResultOf(service.bind(2, "u"))
        self.successResultOf(service.unbind(1, "u"))
        service.closed(2, "bye")
        self.assertEqual(
            claims.calls,
            [("bound", "u", 1), ("bound", "u", 2), ("released", "u", 1), ("released", "u", 2)],
        )

    def test_backend_bind_claims_too(self) -> None:
        """A backend session's bind (remote_session) goes through the claim."""
        service, claims, _ = make()
        d = service.remote_session("bind", 1, ["u"])
        self.assertNoResult(d)
        claims.pending[0].callback(None)
        self.assertTrue(self.successResultOf(d))
