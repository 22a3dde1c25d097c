"""Hot reload of a running server's handlers, remotes and cron handlers
(``pomelo-twisted reload SERVER``)."""

from __future__ import annotations

from .commands import register_reload_command
from .reloader import CodeReloader, Loaded, ReloadError

__all__ = ["CodeReloader", "Loaded", "ReloadError", "register_reload_command"]
