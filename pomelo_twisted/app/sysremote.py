"""The system remotes every server declares: forwarding, session sync, pushes.

Backends serve ``forward``; frontends serve ``session``, ``push`` and
``broadcast``. They are declared one by one (never dispatched from strings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..session.backend import SYS_SERVICE, BackendSession

if TYPE_CHECKING:
    from .application import Application

__all__ = ["declare_system_remotes"]


def declare_system_remotes(app: Application) -> None:
    """Declare the system service (``pomelo.sys``) of ``app``."""

    def forward(session: dict[str, Any], route: str, msg: Any, notify: bool) -> Any:
        # Dispatcher.call: the body itself when the handler answers at once (no Deferred).
        backend_session = BackendSession(session, app.rpc_call)
        return app.dispatcher.call(route, msg, backend_session, notify=notify)

    app.remotes.add_function(SYS_SERVICE, "forward", forward)
    service = app.session_service
    if service is None:
        return
    app.remotes.add_function(SYS_SERVICE, "session", service.remote_session)
    app.remotes.add_function(SYS_SERVICE, "push", service.push_to_uids)
    app.remotes.add_function(SYS_SERVICE, "broadcast", service.broadcast)
