"""The conformance kit: the protocol vectors of ``tests/vectors`` and the checks that run
them against a live server (``pomelo-twisted conformance ENDPOINT``).

- :mod:`.vectors`: load and check the vector files (:func:`load_vectors`);
- :mod:`.patterns`: the JSON patterns answers must match, and the templates sent;
- :mod:`.wire`: a raw client connection over TCP or WebSocket (:func:`dial`);
- :mod:`.transcript`: one session transcript, step by step (:class:`TranscriptRunner`);
- :mod:`.command`: the ``conformance`` subcommand (:func:`add_parser`, :func:`run`).

See ``docs/protocol.md`` for the protocol the vectors describe.
"""

from .command import add_parser, run
from .patterns import match, substitute
from .transcript import Outcome, TranscriptRunner, Unreachable
from .vectors import DEFAULT_VECTORS_DIR, Session, VectorError, Vectors, load_vectors
from .wire import Closed, Dialer, StepTimeout, Wire, dial

__all__ = [
    "DEFAULT_VECTORS_DIR",
    "Closed",
    "Dialer",
    "Outcome",
    "Session",
    "StepTimeout",
    "TranscriptRunner",
    "Unreachable",
    "VectorError",
    "Vectors",
    "Wire",
    "add_parser",
    "dial",
    "load_vectors",
    "match",
    "run",
    "substitute",
]
