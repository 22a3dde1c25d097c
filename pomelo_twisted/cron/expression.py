"""Cron expressions in pomelo's format, on an injected clock's seconds (UTC).

Pomelo's crons have six fields, seconds first (``<sec> <min> <hour> <dom> <mon> <dow>``);
the classic five-field form (``<min> <hour> <dom> <mon> <dow>``) is accepted too and
fires at second 0. Parsing and the calendar are croniter's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import CroniterError, croniter

__all__ = ["CronExpression"]


class CronExpression:
    """One parsed expression; ValueError naming what is wrong when it cannot be."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ValueError(f"a cron time must be a string, not {type(text).__name__}")
        fields = text.split()
        if len(fields) not in (5, 6):
            raise ValueError(
                f"cron time {text!r} has {len(fields)} fields; expected 6 "
                "(sec min hour dom month dow) or 5 (min hour dom month dow)"
            )
        self.text = " ".join(fields)
        self._six = len(fields) == 6
        try:
            croniter(self.text, 0.0, second_at_beginning=self._six)
        except (CroniterError, ValueError) as exc:
            raise ValueError(f"cron time {text!r} is not valid: {exc}") from None

    def next_after(self, seconds: float) -> float:
        """The first time strictly after ``seconds`` (epoch seconds, UTC) it fires at."""
        start = datetime.fromtimestamp(seconds, tz=UTC)
        it = croniter(self.text, start, second_at_beginning=self._six)
        return float(it.get_next(float))

    def __repr__(self) -> str:
        return f"CronExpression({self.text!r})"
