"""Authentication of Perspective Broker connections inside a cluster.

Every PB port of a cluster (each server's RPC port, the master's port) serves a
:class:`LoginPortal` whose only checker is :class:`ClusterSecretChecker`: a peer
logs in with its name (a server id, or ``admin``) and the secret of that name
(servers: the cluster secret of ``config/master.json``; the admin: its own
``adminSecret``, on the master's port only). PB's challenge-response never sends
the secret itself. Before login, the root object offers nothing but ``login``; there
is no anonymous access, so a connection without the secret gets nothing. A refused
login is a :class:`RefusedLogin` (an ``UnauthorizedLogin`` to the peer, and a
``pb.Error``, so PB sends it back without logging a traceback per attempt).

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

from ..compat import pb_credentials_broker
from ..tlsconfig import peer_names

__all__ = [
    "ADMIN",
    "AvatarRealm",
    "ClusterSecretChecker",
    "LoginPortal",
    "RefusedLogin",
    "login",
    "make_portal",
]

#: The login name of the admin CLI (on the master's port only).
ADMIN = "admin"

#: Builds the avatar of one login: ``make(avatar_id, mind)``.
AvatarFactory = Callable[[str, Any], pb.Avatar]


class RefusedLogin(UnauthorizedLogin, pb.Error):
    """A refused login: the peer sees an ``UnauthorizedLogin``; being a ``pb.Error``, PB
    answers it without logging a traceback (a wrong guess costs one counter, no log)."""


#: Which secret a login name must prove: ``secret_for(name)``, None when it may not log in.
SecretFor = Callable[[str], bytes | None]


@implementer(ICredentialsChecker)
class ClusterSecretChecker:
    """Accepts a name whose PB challenge response proves the secret of that name.

    With ``secret`` alone every name proves it; ``names``, when given, decides which
    names may log in at all (e.g. only server ids). ``secret_for`` (instead of both)
    gives each name its own secret, or None for a name that may not log in (the master:
    server ids the cluster secret, ``admin`` the admin secret). Over TLS the name must
    also be one the client's certificate names (its id). The avatar id is the name as
    text. ``refused`` counts refused logins.
    """

    credentialInterfaces = (IUsernameHashedPassword,)

    def __init__(
        self,
        secret: bytes = b"",
        names: Callable[[str], bool] | None = None,
        *,
        secret_for: SecretFor | None = None,
    ) -> None:
        if secret_for is None:
            if not secret:
                raise ValueError("the cluster secret must not be empty")
            secret_for = _one_secret(secret, names)
        self._secret_for = secret_for
        self.refused = 0

    def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
        """The login name, when the response matches its secret; else RefusedLogin."""
        raw = credentials.username
        name = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        secret = self._secret_for(name)
        if not secret:
            self.refused += 1
            return fail(RefusedLogin(f"{name[:64]!r} may not log in here"))
        if not credentials.checkPassword(secret):
            self.refused += 1
            return fail(RefusedLogin(f"{name[:64]!r}: wrong secret"))
        broker = pb_credentials_broker(credentials)
        names = None if broker is None else peer_names(broker.transport)
        if names is not None and name.lower() not in names:
            self.refused += 1
            return fail(RefusedLogin(f"{name[:64]!r}: the TLS certificate names another id"))
        return succeed(name)


def _one_secret(secret: bytes, names: Callable[[str], bool] | None) -> SecretFor:
    def secret_for(name: str) -> bytes | None:
        return secret if names is None or names(name) else None

    return secret_for


class LoginPortal(Portal):
    """A portal telling ``on_login(broker)`` which PB connection a login succeeded on
    (a guarded port lifts its before-login limits then)."""

    on_login: Callable[[pb.Broker], object] | None = None

    def login(self, credentials: Any, mind: Any, *interfaces: Any) -> Deferred[Any]:
        """``Portal.login``, then ``on_login`` with the login's broker when it succeeded."""
        d: Deferred[Any] = super().login(credentials, mind, *interfaces)

        def succeeded(result: Any) -> Any:
            broker = pb_credentials_broker(credentials)
            if broker is not None and self.on_login is not None:
                self.on_login(broker)
            return result

        return d.addCallback(succeeded)


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
    secret: bytes,
    make: AvatarFactory,
    names: Callable[[str], bool] | None = None,
    *,
    secret_for: SecretFor | None = None,
) -> LoginPortal:
    """A portal for a PB port: the realm ``make`` and a :class:`ClusterSecretChecker`
    (``secret`` for the ``names`` allowed, or each name's ``secret_for``)."""
    checker = ClusterSecretChecker(secret, names, secret_for=secret_for)
    return LoginPortal(AvatarRealm(make), [checker])


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
