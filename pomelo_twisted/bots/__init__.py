"""Bots and load tests on the Python client.

A scenario (an ``async def scenario(bot, context)`` or a class with ``async def
run(self)``) drives one :class:`Bot`; a :class:`Runner` runs N of them against a
server with a ramp-up, in this process or across workers
(``pomelo-twisted bot``), and :mod:`.report` / :mod:`.thresholds` turn the merged
:class:`Stats` into a report and a pass/fail verdict.
"""

from .bot import Bot, BotContext, PushTimeout, RateLimiter
from .histogram import Histogram
from .report import format_progress, format_report, summarize
from .runner import Runner
from .scenario import ScenarioError, load_scenario
from .stats import RouteStats, Stats
from .thresholds import Threshold, evaluate, parse_thresholds

__all__ = [
    "Bot",
    "BotContext",
    "Histogram",
    "PushTimeout",
    "RateLimiter",
    "RouteStats",
    "Runner",
    "ScenarioError",
    "Stats",
    "Threshold",
    "evaluate",
    "format_progress",
    "format_report",
    "load_scenario",
    "parse_thresholds",
    "summarize",
]
