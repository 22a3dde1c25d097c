"""negotiators_of lists the client dialects after the serializer, from the settings."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent.negotiation import SerializerNegotiator
from pomelo_twisted.app.negotiators import negotiators_of
from pomelo_twisted.dialects import PitayaNegotiator, PypomeloNegotiator
from pomelo_twisted.errors import ConfigError

from ..app.test_application import make_app


class WiringTests(SynchronousTestCase):
    """The 'dialects' setting and the connector's compress_bodies."""

    def test_default_order(self) -> None:
        """By default: serializer, pitaya, pypomelo; pitaya without compressed bodies."""
        negotiators = negotiators_of(make_app("connector"))
        self.assertEqual(
            [type(n) for n in negotiators],
            [SerializerNegotiator, PitayaNegotiator, PypomeloNegotiator],
        )
        pitaya = negotiators[1]
        assert isinstance(pitaya, PitayaNegotiator)
        self.assertFalse(pitaya.compress_bodies)

    def test_compress_bodies_from_the_connector(self) -> None:
        """The connector setting compress_bodies (overrides included) reaches pitaya's."""
        app = make_app("connector").set("connector", {"compress_bodies": False})
        app.set("connector_overrides", {"compress_bodies": True})
        pitaya = negotiators_of(app)[1]
        assert isinstance(pitaya, PitayaNegotiator)
        self.assertTrue(pitaya.compress_bodies)

    def test_dialects_setting(self) -> None:
        """'dialects' picks among the known ones; an unknown name or a non-list is refused."""
        app = make_app("connector").set("dialects", ["pypomelo"])
        self.assertEqual([n.name for n in negotiators_of(app)], ["serializer", "pypomelo"])
        app.set("dialects", [])
        self.assertEqual([n.name for n in negotiators_of(app)], ["serializer"])
        app.set("dialects", ["pitaya", "libpomelo"])
        exc = self.assertRaises(ConfigError, negotiators_of, app)
        self.assertIn("unknown dialect(s) libpomelo", str(exc))
        app.set("dialects", "pitaya")
        self.assertRaises(ConfigError, negotiators_of, app)
