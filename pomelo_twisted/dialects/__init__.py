"""Client dialects: clients that speak the Pomelo wire protocol their own way, each
recognised by its handshake and served as the servers it was written for serve it.

- :mod:`.pitaya`: libpitaya (pitaya's C client, behind its Unity and mobile SDKs);
- :mod:`.pypomelo`: pypomelo 1.0.1 (PyPI).

Each is an :class:`~pomelo_twisted.interfaces.IHandshakeNegotiator`
(:func:`pomelo_twisted.app.negotiators.negotiators_of` lists them after the serializer).
"""

from __future__ import annotations

from .pitaya import PitayaNegotiator, PitayaResponses, is_libpitaya, pitaya_error
from .pypomelo import PypomeloNegotiator, is_pypomelo

__all__ = [
    "PitayaNegotiator",
    "PitayaResponses",
    "PypomeloNegotiator",
    "is_libpitaya",
    "is_pypomelo",
    "pitaya_error",
]
