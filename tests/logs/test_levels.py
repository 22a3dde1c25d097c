"""``--log-level`` specs and ``--log-format``: parsing, filtering, JSON instead of text."""

from __future__ import annotations

import io
import json
import sys
import warnings

from twisted.logger import (
    LogBeginner,
    Logger,
    LogLevel,
    LogPublisher,
    textFileLogObserver,
)
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.app.tap import Options
from pomelo_twisted.loglevels import parse_log_levels
from pomelo_twisted.logs.beginning import ACCESS_NAMESPACE, LogSetup


class SpecTests(SynchronousTestCase):
    """A level spec is a default level and NAMESPACE=LEVEL parts."""

    def test_default_and_namespaces(self) -> None:
        """The first bare part is the default level; the others name namespaces."""
        self.assertEqual(parse_log_levels("debug"), ("debug", {}))
        self.assertEqual(
            parse_log_levels("info,pomelo_twisted.rpc=debug, pomelo_twisted.kv=WARN"),
            ("info", {"pomelo_twisted.rpc": "debug", "pomelo_twisted.kv": "warn"}),
        )
        self.assertEqual(
            parse_log_levels("pomelo_twisted.access=debug"),
            ("info", {"pomelo_twisted.access": "debug"}),
        )

    def test_bad_parts_are_named(self) -> None:
        """An unknown level, a bare level after the first part or an empty namespace is a
        ValueError naming the part."""
        for spec, part in [
            ("loud", "'loud'"),
            ("info,pomelo_twisted.rpc=noisy", "'pomelo_twisted.rpc=noisy'"),
            ("info,debug", "'debug'"),
            ("info,=debug", "'=debug'"),
            ("info,a..b=debug", "'a..b=debug'"),
        ]:
            with self.assertRaises(ValueError) as caught:
                parse_log_levels(spec)
            self.assertIn(part, str(caught.exception))

    def test_tap_usage_errors(self) -> None:
        """twistd pomelo refuses a bad spec or format with a usage error naming it."""
        options = Options()
        with self.assertRaises(usage.UsageError) as caught:
            options.parseOptions(["--log-level", "info,pomelo_twisted.rpc=noisy"])
        self.assertIn("pomelo_twisted.rpc=noisy", str(caught.exception))
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--log-format", "xml"])
        self.assertIn("'xml'", str(caught.exception))


def begun(setup: LogSetup) -> tuple[Logger, io.StringIO, LogPublisher]:
    """A publisher whose beginner ``setup`` configured, begun to a text observer on a
    StringIO (as twistd's on stdout or its logfile)."""
    publisher = LogPublisher()
    beginner = LogBeginner(publisher, io.StringIO(), sys, warnings)
    setup.install(beginner)
    out = io.StringIO()
    beginner.beginLoggingTo(
        [textFileLogObserver(out)], discardBuffer=True, redirectStandardIO=False
    )
    return Logger(observer=publisher), out, publisher


class SetupTests(SynchronousTestCase):
    """What the observers twistd begins logging to let through, and in what format."""

    def test_namespace_levels(self) -> None:
        """A namespace's level holds for it and those below it; others get the default."""
        setup = LogSetup("warn,pomelo_twisted.rpc=debug")
        log, out, publisher = begun(setup)
        Logger(namespace="pomelo_twisted.rpc.pb", observer=publisher).debug("rpc detail")
        Logger(namespace="pomelo_twisted.kv", observer=publisher).info("kv news")
        log.warn("a warning")
        text = out.getvalue()
        self.assertIn("rpc detail", text)
        self.assertNotIn("kv news", text)
        self.assertIn("a warning", text)

    def test_access_enabled_checked_once(self) -> None:
        """The access log is on only when its namespace is at debug."""
        self.assertFalse(LogSetup("info").enabled(ACCESS_NAMESPACE, LogLevel.debug))
        self.assertTrue(
            LogSetup("info,pomelo_twisted.access=debug").enabled(ACCESS_NAMESPACE, LogLevel.debug)
        )
        self.assertTrue(LogSetup("debug").enabled(ACCESS_NAMESPACE, LogLevel.debug))

    def test_json_replaces_text_on_the_same_file(self) -> None:
        """With json, every line written where the text would go is a JSON object naming
        the server, set once it is known."""
        setup = LogSetup("info", "json")
        log, out, _ = begun(setup)
        log.info("before {what}", what="naming")
        setup.name("chat-server-1", "chat")
        log.info("after")
        log.debug("hidden")
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual([line["msg"] for line in lines], ["before naming", "after"])
        self.assertEqual((lines[1]["server"], lines[1]["type"]), ("chat-server-1", "chat"))

    def test_unknown_format(self) -> None:
        """An unknown format is a ValueError naming it."""
        self.assertRaises(ValueError, LogSetup, "info", "xml")

    def test_tap_settings_turn_request_ids_on(self) -> None:
        """twistd pomelo --log-format json gives servers request ids, and the access log
        when its namespace is at debug."""
        from pomelo_twisted.app.tap import _settings

        options = Options()
        options.parseOptions(["--log-format", "json"])
        self.assertEqual(
            {k: v for k, v in _settings(options).items() if k != "connector_overrides"},
            {"request_ids": True, "access_log": False},
        )
        options = Options()
        options.parseOptions(
            ["--log-format", "json", "--log-level", "info,pomelo_twisted.access=debug"]
        )
        self.assertTrue(_settings(options)["access_log"])
        options = Options()
        options.parseOptions([])
        self.assertNotIn("request_ids", _settings(options))
