"""The system remotes every server declares: forwarding, session sync, pushes.

Backends serve ``forward``; frontends serve ``session``, ``push`` and
``broadcast``. They are declared one by one (never dispatched from strings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from ..session.backend import BackendSession
from .frontend import SYS

if TYPE_CHECKING:
    from .application import Application

__all__ = ["declare_system_remotes"]


def declare_system_remotes(app: Application) -> None:
    """Declare the system service (``pomelo.sys``) of ``app``."""

    def forward(session: dict[str, Any], route: str, msg: Any, notify: bool) -> Deferred[Any]:
        backend_session = BackendSession(session, app.rpc_call)
        return app.dispatcher.dispatch(route, msg, backend_session, notify=notify)

    app.remotes.add_function(SYS, "forward", forward)
    service = app.session_service
    if service is None:
        return
    app.remotes.add_function(SYS, "session", service.remote_session)
    app.remotes.add_function(SYS, "push", service.push_to_uids)
    app.remotes.add_function(SYS, "broadcast", service.broadcast)
