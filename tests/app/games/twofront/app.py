"""Fixture wiring: a serial filter (1 s turn limit) on every connector (which keeps no
order of its own: ``ordered: false``)."""

from __future__ import annotations

from pomelo_twisted.filters import SerialFilter


def configure(app):
    """Serialise each connector session's requests (the filter: setting ``serial_filter``)."""

    def add_serial(app):
        serial = SerialFilter(app.clock, timeout=1.0)
        app.set("serial_filter", serial)
        # The connector's own per-user order off: the filter's queue is what is tested.
        app.set("connector", {**app.get("connector", {}), "ordered": False})
        app.filter(serial, "connector")

    app.configure(None, "connector", add_serial)
