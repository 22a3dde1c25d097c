"""The example chat game's wiring; runs in every server process before it starts."""

from __future__ import annotations

from pomelo_twisted.app import Application


def configure(app: Application) -> None:
    """Connector settings: hybrid TCP + WebSocket, heartbeat 3 s, route dictionary on."""
    app.configure(
        None,
        "connector",
        lambda app: app.set("connector", {"heartbeat": 3.0, "use_dict": True}),
    )
