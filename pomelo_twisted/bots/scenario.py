"""Scenarios: what each bot does, and how ``pomelo-twisted bot SCENARIO`` finds one.

A scenario is either an ``async def`` function taking ``(bot, context)``::

    async def scenario(bot, context):
        await bot.request("connector.entryHandler.entry", {"uid": f"bot-{context.index}"})
        while bot.running:
            await bot.request("connector.entryHandler.echo", {"n": context.random.random()})
            await bot.think(0.1)

or a plain class built with ``(bot, context)`` whose ``async def run(self)`` does
the same (state lives on ``self``).

``SCENARIO`` names a file (``example_game/bots/chat.py``) or a module
(``example_game.bots.chat``), optionally followed by ``:name``; without a name the
module's ``scenario`` is used, else its only scenario class or function.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ..loading import import_file
from .bot import Bot, BotContext

__all__ = ["ScenarioError", "load_scenario", "run_scenario"]

#: A loaded scenario: a coroutine function, or a class with ``async def run(self)``.
Scenario = Callable[..., Any]


class ScenarioError(ValueError):
    """The SCENARIO argument names nothing runnable; the message says why."""


def _import(spec: str) -> ModuleType:
    path = Path(spec)
    if spec.endswith(".py") or path.exists():
        if not path.is_file():
            raise ScenarioError(f"no scenario file {spec}")
        try:
            return import_file(path, "pomelo_scenario_")
        except Exception as exc:
            raise ScenarioError(f"{spec} failed to import: {type(exc).__name__}: {exc}") from exc
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        raise ScenarioError(f"cannot import scenario module {spec!r}: {exc}") from exc


def _is_scenario(value: object) -> bool:
    if inspect.iscoroutinefunction(value):
        return True
    return inspect.isclass(value) and inspect.iscoroutinefunction(getattr(value, "run", None))


def load_scenario(spec: str) -> Scenario:
    """The scenario ``spec`` names (``file.py[:name]`` or ``module[:name]``)."""
    where, _, name = spec.partition(":")
    if not where:
        raise ScenarioError("empty scenario name")
    module = _import(where)
    if name:
        value = getattr(module, name, None)
        if value is None:
            raise ScenarioError(f"{where} has no {name!r}")
        if not _is_scenario(value):
            raise ScenarioError(
                f"{where}:{name} is neither an async function nor a class with async run()"
            )
        return value
    if _is_scenario(getattr(module, "scenario", None)):
        return module.scenario
    found = [
        value
        for key, value in vars(module).items()
        if not key.startswith("_")
        and _is_scenario(value)
        and getattr(value, "__module__", None) == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(sorted(v.__name__ for v in found)) or "none"
        raise ScenarioError(
            f"{where} defines {len(found)} scenarios ({names}): name one as {where}:NAME"
        )
    return found[0]


def run_scenario(scenario: Scenario, bot: Bot, context: BotContext) -> Awaitable[Any]:
    """Start ``scenario`` for one bot; an awaitable of its end."""
    started: Any = scenario(bot, context)
    return started.run() if inspect.isclass(scenario) else started
