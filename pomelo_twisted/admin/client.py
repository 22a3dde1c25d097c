"""AdminClient: the ``admin`` login to a cluster's master, over Perspective Broker.

:func:`connect_admin` connects to the master's port (an endpoint string such as
``"tcp:host=127.0.0.1:port=4005"``), logs in as ``admin`` with the admin secret
(master.json ``adminSecret``, never the servers' cluster secret) over the cluster's
one PB login stack (:mod:`~pomelo_twisted.rpc.pbconnection`) and gives an
:class:`AdminClient`, whose methods call the master's admin interface
(:mod:`pomelo_twisted.cluster.avatars`) and decode its msgpack answers into
plain data.

Every failure is an :class:`AdminError` whose message says what went wrong and
where: the master cannot be reached (:class:`MasterUnreachable`), refused the
login (wrong admin secret), did not answer in time, dropped the connection, or refused
a command (the master's own message).
"""

from __future__ import annotations

import os
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import error
from twisted.internet.defer import Deferred, TimeoutError, fail
from twisted.internet.endpoints import clientFromString
from twisted.python.failure import Failure
from twisted.spread import pb

from ..cluster.master import ADMIN
from ..errors import PomeloError
from ..interfaces import IServerReactor
from ..rpc.payload import pack_plain, unpack_plain
from ..rpc.pbconnection import LoginBroker, OneShotLogin

__all__ = [
    "AdminClient",
    "AdminError",
    "LoginRefused",
    "MasterUnreachable",
    "connect_admin",
    "endpoint_address",
]

#: What to tell someone whose master is not there.
START_HINT = "is the cluster running? start it with: pomelo-twisted start"

#: A list of rows, server ids (``AdminClient.list`` hides the builtin in its class).
Rows = list[dict[str, Any]]
Ids = list[str]

_LOST = (pb.PBConnectionLost, pb.DeadReferenceError, error.ConnectionLost, error.ConnectionDone)


class AdminError(PomeloError):
    """An admin command failed; the message names the cause (and the master's address)."""


class MasterUnreachable(AdminError):
    """Nothing answers on the master's port: the cluster is not running (or not there)."""


class LoginRefused(AdminError):
    """The master refused the admin login: the admin secret does not match."""


def endpoint_address(endpoint: str) -> str:
    """``host:port`` of a client endpoint string (the path of a ``unix:`` one)."""
    kind, _, rest = endpoint.partition(":")
    if not rest:
        return endpoint
    parts = rest.split(":")
    named = dict(part.split("=", 1) for part in parts if "=" in part)
    positional = [part for part in parts if "=" not in part]
    if kind == "unix":
        return named.get("path", positional[0] if positional else rest)
    host = named.get("host", positional[0] if positional else "")
    port = named.get("port", positional[1] if len(positional) > 1 else "")
    if not host or not port:
        return endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_admin(
    reactor: IServerReactor, endpoint: str, secret: bytes, timeout: float = 5.0
) -> Deferred[AdminClient]:
    """Connect to the master at ``endpoint`` and log in as ``admin`` with ``secret``.

    ``reactor`` provides what the endpoint string needs and ``IReactorTime``;
    connecting and logging in must be done within ``timeout`` seconds
    (:class:`~pomelo_twisted.rpc.pbconnection.OneShotLogin`). Fails with
    :class:`AdminError` (:class:`MasterUnreachable` when nothing answers).
    """
    address = endpoint_address(endpoint)
    try:
        client_endpoint = clientFromString(reactor, endpoint)
    except (ValueError, TypeError, KeyError) as exc:
        return fail(AdminError(f"bad master endpoint {endpoint!r}: {exc}"))
    attempt = OneShotLogin(client_endpoint, ADMIN, secret, clock=reactor)

    def logged_in(avatar: pb.RemoteReference) -> AdminClient:
        assert attempt.broker is not None  # logged in: connected
        return AdminClient(attempt.broker, avatar, address)

    def failed(failure: Failure) -> Failure:
        connected = attempt.broker is not None
        return Failure(_login_error(failure, address, timeout, connected=connected))

    return attempt.login(timeout).addCallbacks(logged_in, failed)


def _login_error(failure: Failure, address: str, timeout: float, connected: bool) -> AdminError:
    """The AdminError telling why connecting to (or logging in at) ``address`` failed."""
    if failure.check(TimeoutError):
        if not connected:
            return MasterUnreachable(
                f"cannot reach the master at {address} (no answer within {round(timeout, 2):g}s): "
                f"{START_HINT}"
            )
        return AdminError(
            f"the master at {address} did not answer the admin login within {round(timeout, 2):g}s"
        )
    if failure.check(error.ConnectError):
        return MasterUnreachable(
            f"cannot reach the master at {address} ({_connect_reason(failure.value)}): {START_HINT}"
        )
    if failure.check(UnauthorizedLogin):
        return LoginRefused(
            f"the master at {address} refused the admin login: wrong admin secret? "
            "(config/master.json 'adminSecret' or POMELO_ADMIN_SECRET, which the master "
            "must have been started with)"
        )
    if failure.check(*_LOST):
        return AdminError(f"the master at {address} closed the connection during the admin login")
    return AdminError(
        f"the admin login to the master at {address} failed: {failure.getErrorMessage()}"
    )


def _connect_reason(exc: BaseException | None) -> str:
    """A short reason for a failed connection attempt: ``Connection refused``..."""
    code = getattr(exc, "osError", None)
    if isinstance(code, int):
        return os.strerror(code)
    if isinstance(exc, error.ConnectionRefusedError):
        return "Connection refused"
    if isinstance(exc, error.DNSLookupError):
        return "unknown host"
    text = str(exc).strip().rstrip(".")
    return text or type(exc).__name__


class AdminClient:
    """A logged-in ``admin`` connection to the master (see the module docstring)."""

    def __init__(self, broker: LoginBroker, avatar: pb.RemoteReference, address: str) -> None:
        self.broker = broker
        self.avatar = avatar
        #: ``host:port`` of the master, for messages.
        self.address = address

    def list(self) -> Deferred[Rows]:
        """One row per server, the master's first (id, type, state, pid, uptime...)."""
        return self._call("list")

    def stop(self, ids: Ids) -> Deferred[dict[str, Any]]:
        """Stop these servers for good; ``[]``: the whole cluster, then the master."""
        return self._call("stop", pack_plain(list(ids)))

    def kill(self) -> Deferred[dict[str, Any]]:
        """SIGKILL every server the master started; then the master stops."""
        return self._call("kill")

    def restart(self, server_id: str) -> Deferred[dict[str, Any]]:
        """Stop a server the master started and start it again (``{"pid": ...}``)."""
        return self._call("restart", server_id)

    def restart_rolling(self, server_type: str) -> Deferred[Rows]:
        """Restart every server of ``server_type`` one by one (rows of id and pid)."""
        return self._call("restart_rolling", server_type)

    def drain(self, server_id: str, grace: float | None = None) -> Deferred[dict[str, Any]]:
        """Drain ``server_id`` and stop it for good; its drain report."""
        return self._call("drain", pack_plain({"server": server_id, "grace": grace}))

    def add(self, entry: dict[str, Any]) -> Deferred[dict[str, Any]]:
        """Start a new server from its entry (type, id, host, port...)."""
        return self._call("add", pack_plain(dict(entry)))

    def command(
        self, server_id: str, name: str, args: dict[str, Any], timeout: float = 60.0
    ) -> Deferred[Any]:
        """Run operator command ``name`` on ``server_id`` (relayed by the master); its
        answer. AdminError with the server's message when refused."""
        payload = {"server": server_id, "name": name, "args": dict(args), "timeout": timeout}
        return self._call("command", pack_plain(payload))

    def close(self) -> Deferred[None]:
        """Close the connection; fires once it is closed."""
        return self.broker.close()

    def _call(self, method: str, *args: object) -> Deferred[Any]:
        try:
            d: Deferred[Any] = self.avatar.callRemote(method, *args)
        except pb.DeadReferenceError:
            return fail(AdminError(f"lost the connection to the master at {self.address}"))
        return d.addCallbacks(self._decode, self._failed, errbackArgs=(method,))

    def _decode(self, answer: object) -> Any:
        if answer is None:
            return None
        if type(answer) is not bytes:
            raise AdminError(f"the master at {self.address} sent a malformed answer")
        try:
            return unpack_plain(answer)
        except ValueError as exc:
            raise AdminError(
                f"the master at {self.address} sent a malformed answer: {exc}"
            ) from None

    def _failed(self, failure: Failure, method: str) -> Failure:
        if failure.check(*_LOST):
            return Failure(
                AdminError(f"lost the connection to the master at {self.address} ({method})")
            )
        if failure.check(AdminError):
            return failure
        return Failure(AdminError(failure.getErrorMessage()))
