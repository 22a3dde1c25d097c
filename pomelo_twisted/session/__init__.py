"""Sessions of a frontend: what a server knows about each client connection (bound uid,
settings), the service indexing them, and the copy a backend sees. The connection itself
is an :class:`~pomelo_twisted.agent.Agent`.

Across the cluster, ``app.sessions`` (an :class:`ISessionDirectory`) finds, kicks and
reports the sessions of a uid: :class:`~.directory.RpcSessionDirectory` (asks the
frontends) or :class:`~.bindings.EtcdSessionDirectory` (leased bindings in etcd), chosen
by :class:`~.component.SessionsComponent` from the settings."""

from .backend import SYS_SERVICE, BackendSession, RpcCall
from .interfaces import IBindingClaims, ISessionDirectory, SessionEvent, SessionListener
from .service import ANOTHER_LOGIN, SESSION_OPS, SessionService
from .session import ClosedCallback, Session

__all__ = [
    "ANOTHER_LOGIN",
    "SESSION_OPS",
    "SYS_SERVICE",
    "BackendSession",
    "ClosedCallback",
    "IBindingClaims",
    "ISessionDirectory",
    "RpcCall",
    "Session",
    "SessionEvent",
    "SessionListener",
    "SessionService",
]
