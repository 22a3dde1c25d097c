"""What a drain needs of the state a server hands to its next incarnation."""

from __future__ import annotations

from zope.interface import Attribute, Interface

__all__ = ["IStateHandoff"]


class IStateHandoff(Interface):
    """A piece of a server's state that survives its restart (e.g. channel members).

    Before a drained server exits, ``snapshot()`` of each is written to its hand-off file
    (msgpack: plain data only); its next incarnation, once started, passes each its own
    part to ``restore``.
    """

    name = Attribute("str: the key of this state in the hand-off file (unique per server)")

    def snapshot() -> object:
        """This state now, as plain data (dicts, lists, str, int, float, bool, None)."""

    def restore(state: object) -> None:
        """Take back what ``snapshot`` gave (from the previous incarnation); may raise
        ValueError when ``state`` is malformed (it is then ignored and logged)."""
