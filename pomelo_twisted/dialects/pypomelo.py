"""pypomelo 1.0.1 (PyPI), served unmodified with the dictionary on.

Its handshake's ``sys`` is exactly ``{"version": "1.1.1", "type": "socket"}``
(``Protocol.syc("socket", "1.1.1")``). It reads the route maps from the reply's legacy
``routeToCode``/``codeToRoute`` (the connector setting ``legacy_route_maps``, on by
default) and may send route codes; but it resolves a compressed push route by looking
the code up as an integer in ``codeToRoute``, whose JSON keys are strings, and fails.
:class:`PypomeloNegotiator` keeps the dictionary for its requests and sends its pushes
with string routes (``compress_pushes = False``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zope.interface import implementer

from ..agent.negotiation import ConnectionOffer
from ..interfaces import IAgent, IHandshakeNegotiator
from ..protocol import ClientHandshake

__all__ = ["PYPOMELO_SYS", "PypomeloNegotiator", "is_pypomelo"]

PYPOMELO_SYS = {"version": "1.1.1", "type": "socket"}
"""The ``sys`` of pypomelo 1.0.1's handshake, exactly."""


def is_pypomelo(sys: Mapping[str, Any]) -> bool:
    """Whether a handshake's ``sys`` is pypomelo 1.0.1's (exactly :data:`PYPOMELO_SYS`)."""
    return dict(sys) == PYPOMELO_SYS


@implementer(IHandshakeNegotiator)
class PypomeloNegotiator:
    """Pushes to pypomelo carry string routes; anything else is left as it is."""

    name = "pypomelo"

    def negotiate(self, agent: IAgent, handshake: ClientHandshake, offer: object) -> None:
        """Turn off compressed push routes for pypomelo."""
        assert isinstance(offer, ConnectionOffer)
        if is_pypomelo(handshake.sys):
            offer.compress_pushes = False
            offer.features.append("pypomelo")
