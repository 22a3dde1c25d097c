"""Authentication of Perspective Broker connections inside a cluster.

Every PB port of a cluster (each server's RPC port, the master's port) serves a
cred ``Portal`` whose only checker is :class:`ClusterSecretChecker`: a peer
logs in with its name (a server id, or ``admin``) and the cluster secret from
``config/master.json``. PB's challenge-response never sends the secret itself.
Before login, the root object offers nothing but ``login``; there is no
anonymous access, so a connection without the secret gets nothing.

:func:`login` is the client side of that exchange on a connected broker;
:class:`AvatarRealm` builds an avatar per login from a function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernameHashedPassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, fail, succeed
from twisted.spread import pb
from zope.interface import implementer

__all__ = ["AvatarRealm", "ClusterSecretChecker", "login", "make_portal"]

#: Builds the avatar of one login: ``make(avatar_id, mind)``.
AvatarFactory = Callable[[str, Any], pb.Avatar]


@implementer(ICredentialsChecker)
class ClusterSecretChecker:
    """Accepts any name whose PB challenge response proves the cluster secret.

    ``names``, when given, decides which names may log in at all (e.g. only
    server ids on an RPC port); the avatar id is the name as text.
    """

    credentialInterfaces = (IUsernameHashedPassword,)

    def __init__(self, secret: bytes, names: Callable[[str], bool] | None = None) -> None:
        if not secret:
            raise ValueError("the cluster secret must not be empty")
        self._secret = secret
        self._names = names

    def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
        """The login name, when the response matches the secret; else UnauthorizedLogin."""
        raw = credentials.username
        name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if not credentials.checkPassword(self._secret):
            return fail(UnauthorizedLogin(f"{name!r}: wrong cluster secret"))
        if self._names is not None and not self._names(name):
            return fail(UnauthorizedLogin(f"{name!r} may not log in here"))
        return succeed(name)


@implementer(IRealm)
class AvatarRealm:
    """A realm giving each login the avatar ``make(avatar_id, mind)`` builds."""

    def __init__(self, make: AvatarFactory) -> None:
        self._make = make

    def requestAvatar(
        self, avatarId: Any, mind: Any, *interfaces: Any
    ) -> tuple[Any, pb.Avatar, Callable[[], None]]:
        """A perspective for PB logins (the only interface served)."""
        if pb.IPerspective not in interfaces:
            raise NotImplementedError("only PB perspectives are served")
        avatar = self._make(str(avatarId), mind)
        logout = getattr(avatar, "logout", None) or (lambda: None)
        return pb.IPerspective, avatar, logout


def make_portal(
    secret: bytes, make: AvatarFactory, names: Callable[[str], bool] | None = None
) -> Portal:
    """A ``Portal`` for a PB port: the realm ``make`` and the cluster secret checker."""
    return Portal(AvatarRealm(make), [ClusterSecretChecker(secret, names)])


def login(
    broker: pb.Broker, name: str, secret: bytes, mind: pb.Referenceable | None = None
) -> Deferred[pb.RemoteReference]:
    """Log in on a connected client ``broker``: a Deferred of the avatar reference."""
    root = broker.remoteForName("root")
    d: Deferred[Any] = root.callRemote("login", name.encode("utf-8"))

    def respond(challenge_and_challenger: tuple[bytes, pb.RemoteReference]) -> Deferred[Any]:
        challenge, challenger = challenge_and_challenger
        return challenger.callRemote("respond", pb.respond(challenge, secret), mind)

    return d.addCallback(respond)
