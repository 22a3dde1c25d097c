"""The RPC wire version of a link: which call format two servers agree to speak.

Version 1 is a call of 5 or 6 items (the release before the call context); version 2
adds the call context as a 7th item (:mod:`pomelo_twisted.callcontext`). A server of the
previous release refuses a 7-item call as malformed, so a caller sends the 7th item only
to a peer that agreed to version 2 or later.

Once a link is logged in, the caller announces the versions it speaks as one call to
the reserved target :data:`WIRE_TARGET` (no server has an empty id):
``[id, "", "pomelo.wire", "versions", [low, high, caller_id], timeout]``. A server of
this release answers ``[low, high]`` (:class:`WireVersionServer`); one of the previous
release answers, without logging anything, that ``''`` is not served at its address:
that peer speaks version 1 only. (A new Banana verb or PB method would not do: the
previous release drops a connection sending an unknown verb, and logs a traceback for
an unknown PB method.) Both sides take the highest version both speak; until the
answer arrives a link speaks version 1 (no context item; nothing is lost but the
context of the calls of that first round trip).

Two servers with no version in common refuse the link: each logs ONE line naming both
sides' versions (:func:`mismatch_line`) and the caller closes the connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..deadlines import DeadlineScheduler
from ..errors import RpcError
from .logagg import RepeatedWarning
from .payload import pack_plain
from .pbpeer import Channel, PbCall, Peer
from .remotes import ServeRemote

__all__ = [
    "CONTEXT_VERSION",
    "UNANNOUNCED",
    "WIRE_SERVICE",
    "WIRE_TARGET",
    "WIRE_VERSIONS",
    "WireVersionServer",
    "agree_wire_version",
    "checked_versions",
    "common_version",
    "mismatch_line",
    "served_to_peers",
]

log = Logger()

#: The RPC wire versions this release speaks, lowest and highest.
WIRE_VERSIONS = (1, 2)
#: The versions of a peer that announces none (the release before announcements).
UNANNOUNCED = (1, 1)
#: The first version whose calls carry the call context (a 7th item).
CONTEXT_VERSION = 2
#: The call target of the announcement: no server has an empty id.
WIRE_TARGET = ""
#: The service and method of the announcement.
WIRE_SERVICE = "pomelo.wire"
WIRE_METHOD = "versions"
#: What the previous release answers to a call for a target it does not serve.
NOT_SERVED = "is not served at this address"

Versions = tuple[int, int]

#: Refused links on the callee side: one line per interval, with a count.
_refused = RepeatedWarning(log)


def spoken(versions: Versions) -> str:
    """``1–2``, or ``1`` for a single version."""
    low, high = versions
    return str(low) if low == high else f"{low}\u2013{high}"


def common_version(mine: Versions, theirs: Versions) -> int | None:
    """The highest version both ranges hold, or None."""
    highest = min(mine[1], theirs[1])
    return highest if highest >= max(mine[0], theirs[0]) else None


def mismatch_line(peer: str, theirs: Versions, me: str, mine: Versions) -> str:
    """The one line telling an operator that two servers cannot talk."""
    return (
        f"peer {peer} speaks RPC wire versions {spoken(theirs)}; this server ({me}) speaks "
        f"{spoken(mine)}: upgrade one of them"
    )


def checked_versions(value: object) -> Versions:
    """``value`` as ``(low, high)`` when it is two ints ``1 <= low <= high``; else
    ``ValueError`` saying what it is."""
    if (
        type(value) is list
        and len(value) >= 2
        and type(value[0]) is int
        and type(value[1]) is int
        and 1 <= value[0] <= value[1]
    ):
        return (value[0], value[1])
    raise ValueError(f"not a range of RPC wire versions: {value!r:.80}")


class WireVersionServer:
    """The callee's answer to an announcement (a ``ServeRemote`` for :data:`WIRE_TARGET`):
    the versions this server speaks; a caller speaking none of them is logged."""

    def __init__(self, name: str, versions: Versions = WIRE_VERSIONS) -> None:
        self.name = name
        self.versions = versions

    def __call__(self, service: str, method: str, args: Sequence[Any]) -> list[int]:
        if service != WIRE_SERVICE or method != WIRE_METHOD:
            raise RpcError(f"unknown wire service {service}.{method}")
        try:
            theirs = checked_versions(list(args))
        except ValueError as exc:
            raise RpcError(str(exc)) from None
        caller = str(args[2])[:64] if len(args) > 2 else "?"
        if common_version(self.versions, theirs) is None:
            _refused.warn(
                "{line}; the link is refused",
                line=mismatch_line(caller, theirs, self.name, self.versions),
            )
        return list(self.versions)


def served_to_peers(name: str, versions: Versions | None) -> dict[str, ServeRemote]:
    """What a server's peers may call before it registers a server: the answer to the
    announcement of ``versions`` (nothing when None: the release before announcements)."""
    if versions is None:
        return {}
    return {WIRE_TARGET: WireVersionServer(name, versions)}


def agree_wire_version(
    peer: Peer,
    channel: Channel,
    call_id: int,
    deadlines: DeadlineScheduler,
    me: str,
    mine: Versions,
    timeout: float,
) -> Deferred[int | None]:
    """Announce ``mine`` to ``peer`` on ``channel`` (its logged-in link) and set
    ``peer.wire_version`` to the version agreed; without one the peer's connection
    refuses the link (:meth:`~.pbconnection.PersistentLogin.refuse_link`).

    ``peer.wire_version`` is 1 until the answer arrives; a link lost or an answer late
    leaves it at 1 (the next login announces again). Fires with the version agreed
    (None when refused or unanswered).
    """
    peer.wire_version = UNANNOUNCED[0]
    call = PbCall(peer.info.id, WIRE_SERVICE, WIRE_METHOD, timeout, channel.counters, deadlines)
    call.channel = channel
    call.call_id = call_id
    call.breaker = peer.breaker
    channel.calls[call_id] = call
    item = [call_id, WIRE_TARGET, WIRE_SERVICE, WIRE_METHOD, [mine[0], mine[1], me], timeout]
    call.ticket = channel.batcher.add(pack_plain(item))

    def refuse(line: str) -> None:
        peer.connection.refuse_link(channel.broker, line)

    def answered(result: object) -> int | None:
        if isinstance(result, Failure):
            if NOT_SERVED not in result.getErrorMessage():
                log.debug(
                    "{peer}: no RPC wire version agreed ({error}); speaking 1",
                    peer=peer.info.id,
                    error=result.getErrorMessage(),
                )
                return None
            theirs = UNANNOUNCED  # the previous release: it announces nothing
        else:
            try:
                theirs = checked_versions(result)
            except ValueError as exc:
                refuse(f"peer {peer.info.id} answered the RPC wire versions with {exc}")
                return None
        version = common_version(mine, theirs)
        if version is None:
            refuse(mismatch_line(peer.info.id, theirs, me, mine))
            return None
        if peer.channel is channel:  # still the same link
            peer.wire_version = version
        return version

    return call.deferred.addBoth(answered)
