"""The system remotes every server declares: forwarding, session sync, pushes.

Backends serve ``forward`` (:class:`~pomelo_twisted.app.forward.ForwardReceiver`);
frontends serve ``session``, ``push`` and ``broadcast``, and for the session directory
(``app.sessions``) ``kick_uid``, ``where_uid`` and ``subscribe_sessions``; every server
serves ``session_event`` (the events a frontend sends its subscribers). They are
declared one by one (never dispatched from strings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..session.backend import SESSION_CACHE_SIZE, SYS_SERVICE
from .forward import FORWARD, ForwardReceiver

if TYPE_CHECKING:
    from .application import Application

__all__ = ["declare_system_remotes"]


def declare_system_remotes(app: Application) -> ForwardReceiver:
    """Declare the system service (``pomelo.sys``) of ``app``; the receiver of the
    requests forwarded to it (its session cache holds the ``session_cache_size``
    setting's number of sessions, 65536 by default)."""
    receiver = ForwardReceiver(
        app.dispatcher,
        app.rpc_call,
        lambda: int(app.get("session_cache_size", SESSION_CACHE_SIZE)),
    )
    app.remotes.add_function(SYS_SERVICE, FORWARD, receiver.serve)
    sessions = app.sessions
    app.remotes.add_function(SYS_SERVICE, "session_event", sessions.serve_event)
    service = app.session_service
    if service is not None:
        app.remotes.add_function(SYS_SERVICE, "session", service.remote_session)
        app.remotes.add_function(SYS_SERVICE, "push", service.push_to_uids)
        app.remotes.add_function(SYS_SERVICE, "broadcast", service.broadcast)
        app.remotes.add_function(SYS_SERVICE, "kick_uid", sessions.serve_kick)
        app.remotes.add_function(SYS_SERVICE, "where_uid", sessions.serve_where)
        app.remotes.add_function(SYS_SERVICE, "subscribe_sessions", sessions.serve_subscribe)
    return receiver
