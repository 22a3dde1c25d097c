"""CronExpression: pomelo's 6-field (seconds first) and the 5-field forms, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.cron import CronExpression


def at(text: str) -> float:
    """Epoch seconds of an ISO time in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class CronExpressionTests(SynchronousTestCase):
    """Parsing and next times."""

    def test_six_fields_seconds_first(self) -> None:
        """'30 15 10 * * *' fires at 10:15:30 (seconds first, as pomelo writes it)."""
        expr = CronExpression("30 15 10 * * *")
        self.assertEqual(expr.next_after(at("2026-03-01T09:00:00")), at("2026-03-01T10:15:30"))
        self.assertEqual(expr.next_after(at("2026-03-01T10:15:30")), at("2026-03-02T10:15:30"))

    def test_five_fields_fire_at_second_zero(self) -> None:
        """'15 10 * * *' (minute first) fires at 10:15:00."""
        expr = CronExpression("15 10 * * *")
        self.assertEqual(expr.next_after(at("2026-03-01T09:00:00")), at("2026-03-01T10:15:00"))

    def test_strictly_after(self) -> None:
        """The next time of an every-second cron is the next whole second, never now."""
        expr = CronExpression("* * * * * *")
        self.assertEqual(expr.next_after(100.0), 101.0)
        self.assertEqual(expr.next_after(100.5), 101.0)

    def test_crosses_hour_and_day(self) -> None:
        """'0 0 * * * *' after 23:59:59 is midnight of the next day (month and year too)."""
        expr = CronExpression("0 0 * * * *")
        self.assertEqual(expr.next_after(at("2026-12-31T23:59:59")), at("2027-01-01T00:00:00"))

    def test_bad_field_count(self) -> None:
        """Neither 5 nor 6 fields is refused, saying how many were given and expected."""
        with self.assertRaises(ValueError) as caught:
            CronExpression("* * *")
        self.assertIn("has 3 fields; expected 6", str(caught.exception))

    def test_out_of_range(self) -> None:
        """A second of 61 is refused, naming the expression."""
        with self.assertRaises(ValueError) as caught:
            CronExpression("61 * * * * *")
        self.assertIn("'61 * * * * *' is not valid", str(caught.exception))

    def test_not_a_string(self) -> None:
        """A number is no cron time."""
        with self.assertRaises(ValueError):
            CronExpression(5)  # type: ignore[arg-type]
