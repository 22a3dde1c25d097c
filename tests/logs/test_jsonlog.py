"""JSON log lines: one object per event, with who logged it and the request it serves."""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.logger import ILogObserver, Logger, LogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.callcontext import within_context
from pomelo_twisted.logs.jsonlog import JsonLogObserver, json_line


class JsonLineTests(SynchronousTestCase):
    """The fields of a line."""

    def setUp(self) -> None:
        self.out = io.StringIO()
        self.observer = JsonLogObserver(self.out, "connector-1", "connector")
        publisher = LogPublisher(self.observer)
        self.log = Logger(namespace="pomelo_twisted.test", observer=publisher)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def test_provides_ilogobserver(self) -> None:
        """The observer is an ILogObserver."""
        self.assertTrue(verifyObject(ILogObserver, self.observer))

    def test_fields(self) -> None:
        """time (UTC, ISO 8601), level, namespace, server, type and the formatted msg."""
        self.log.info("peer {peer} down", peer="chat-1")
        (line,) = self.lines()
        self.assertEqual(
            {k: v for k, v in line.items() if k != "time"},
            {
                "level": "info",
                "namespace": "pomelo_twisted.test",
                "server": "connector-1",
                "type": "connector",
                "msg": "peer chat-1 down",
            },
        )
        self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_failure(self) -> None:
        """An event with a failure carries its error and traceback."""
        try:
            raise ValueError("bad input")
        except ValueError:
            self.log.failure("handling {what} failed", what="x")
        (line,) = self.lines()
        self.assertEqual(line["level"], "critical")
        self.assertEqual(line["error"], "ValueError: bad input")
        self.assertIn("Traceback", line["traceback"])
        self.assertIn("handling x failed", line["msg"])

    def test_request_fields_from_the_current_context(self) -> None:
        """An event emitted within a call context carries its route, sid, uid and rid;
        other items (traceparent) are left out."""
        context = {
            "rid": "c1.a.7",
            "route": "chat.chatHandler.send",
            "sid": "3",
            "uid": "u9",
            "traceparent": "00-x",
        }
        within_context(context, self.log.info, "sent")
        self.log.info("outside")
        inside, outside = self.lines()
        self.assertEqual(
            {k: inside[k] for k in ("rid", "route", "sid", "uid")},
            {"rid": "c1.a.7", "route": "chat.chatHandler.send", "sid": "3", "uid": "u9"},
        )
        self.assertNotIn("traceparent", inside)
        self.assertNotIn("rid", outside)

    def test_request_fields_from_the_event(self) -> None:
        """An event carrying ``call_context`` (logged after its request ended) uses it."""
        self.log.debug("done", call_context={"rid": "r-2"})
        self.assertEqual(self.lines()[0]["rid"], "r-2")

    def test_unencodable_text_still_a_line(self) -> None:
        """A lone surrogate in a message still gives one valid JSON line."""
        line = json_line({"log_format": "odd \ud800 text", "log_time": 0.0}, "s", "t")
        self.assertIn("odd", json.loads(line)["msg"])
        self.assertEqual(json.loads(line)["time"], "1970-01-01T00:00:00.000Z")

    def test_legacy_failure_event(self) -> None:
        """A failure without a message still names its error."""
        self.observer({"log_failure": Failure(KeyError("k")), "log_time": 1.0, "log_format": None})
        self.assertEqual(self.lines()[0]["error"], "KeyError: 'k'")
