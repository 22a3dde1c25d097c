"""The ``twistd pomelo`` plugin; everything lives in :mod:`pomelo_twisted.app.tap`."""

from twisted.application.service import ServiceMaker

pomelo = ServiceMaker(
    "pomelo_twisted server",
    "pomelo_twisted.app.tap",
    "Run a pomelo_twisted game server.",
    "pomelo",
)
