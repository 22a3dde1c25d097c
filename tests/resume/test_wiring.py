"""How a frontend application gets resume: its negotiators, its settings, its stop."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent.negotiation import SerializerNegotiator
from pomelo_twisted.app.components import ConnectorComponent
from pomelo_twisted.app.negotiators import negotiators_of
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.resume import ResumeNegotiator

from ..app.test_application import make_app
from .support import Frontend
from .test_resume import logged_in


class NegotiatorsTests(SynchronousTestCase):
    """negotiators_of puts resume last, on frontends, unless the game turns it off."""

    def test_resume_is_last_on_a_frontend(self) -> None:
        """A frontend resumes by default, after the serializer and the dialects."""
        app = make_app("connector")
        kinds = [type(n) for n in negotiators_of(app)]
        self.assertEqual(kinds[0], SerializerNegotiator)
        self.assertEqual(kinds[-1], ResumeNegotiator)
        (resume,) = [n for n in negotiators_of(app) if isinstance(n, ResumeNegotiator)]
        self.assertEqual(resume.registry.tokens.frontend_id, "connector-1")
        self.assertEqual(resume.registry.window, 60.0)

    def test_settings_apply(self) -> None:
        """``resume: false`` turns it off; ``resume_window`` sets the window."""
        app = make_app("connector")
        app.set("resume_window", 5)
        (resume,) = [n for n in negotiators_of(app) if isinstance(n, ResumeNegotiator)]
        self.assertEqual(resume.registry.window, 5.0)
        app.set("resume", False)
        self.assertNotIn(ResumeNegotiator, [type(n) for n in negotiators_of(app)])

    def test_bad_setting_is_a_config_error(self) -> None:
        """A wrong setting fails the composition, naming the server and the setting."""
        app = make_app("connector")
        app.set("resume_max_pushes", 0)
        with self.assertRaises(ConfigError) as caught:
            negotiators_of(app)
        self.assertIn("connector-1: 'resume_max_pushes'", str(caught.exception))


class StopTests(SynchronousTestCase):
    """Stopping the connector closes the sessions parked for resume."""

    def test_stop_closes_parked_sessions(self) -> None:
        """Parked sessions close (their callbacks run) when the connector stops."""
        frontend = Frontend()
        client = logged_in(frontend)
        session = frontend.sessions.get_by_uid("alice")[0]
        closes = frontend.closed_callbacks(session)
        client.drop()
        component = ConnectorComponent(make_app("connector"))
        component.negotiators = [frontend.negotiator]
        self.successResultOf(component.stopService())
        self.assertEqual(closes, ["server closed"])
        self.assertEqual(frontend.clock.getDelayedCalls(), [])
