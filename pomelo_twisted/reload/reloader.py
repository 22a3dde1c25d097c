"""Hot reload: a running server's handlers, remotes and cron handlers, anew from disk.

:meth:`CodeReloader.reload` works in two steps so that a reload either happens whole
or not at all:

1. *Stage*: import every handler, remote and cron file of the server's type again, as it
   is on disk now (``discover(..., fresh=True)``: never from the bytecode cache), build
   each object as ``cls(app)``, check that every cron's action is still there, then run
   the new handlers' and remotes' ``init`` and ``after_init`` hooks (cron handlers have
   no lifecycle hooks, at start or here). If any of it fails, the modules of
   the previous code are put back in ``sys.modules`` and the reload answers the error
   (file, line and message): nothing changed.
2. *Swap*, in one reactor turn: the handler registry, the remote dispatcher and the cron
   service serve the new objects. A request or rpc already dispatched holds a bound
   method of an old object and finishes on the old code; every later one runs the new
   code. Then the old handlers' and remotes' ``before_shutdown`` and ``shutdown`` hooks
   run (a failure there is logged; the reload stands).

A file's module keeps its name (``pomelo_game_<hash>.<type>.<kind>.<stem>``), so the
new module replaces the old one in ``sys.modules``; the old code is freed once the last
request running on it is done. A module whose file was deleted leaves ``sys.modules``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..cron.service import CronService
from ..errors import ConfigError
from ..handlers.discovery import Kind, discover, module_name
from ..handlers.registry import HandlerRegistry
from ..results import call_settled
from ..rpc.remotes import RemoteDispatcher

__all__ = ["CodeReloader", "Loaded", "ReloadError"]

log = Logger()

KINDS: tuple[Kind, ...] = ("handler", "remote", "cron")

Objects = list[tuple[str, object]]

#: The lifecycle hooks of the new objects (before the swap) and of the old ones (after).
HOOKS_UP = ("init", "after_init")
HOOKS_DOWN = ("before_shutdown", "shutdown")


class ReloadError(ConfigError):
    """A reload refused: the new code failed to import, build or init; the old code runs."""


@dataclass
class Loaded:
    """The objects built from the files on disk, not yet served."""

    handlers: Objects
    remotes: Objects
    crons: Objects
    #: The ``sys.modules`` entries of the code they replace (put back if the reload fails).
    previous: dict[str, ModuleType]


def _restore(prefix: str, before: dict[str, ModuleType]) -> None:
    """Put ``sys.modules`` under ``prefix`` back as ``before``."""
    for name in [n for n in sys.modules if n.startswith(prefix)]:
        del sys.modules[name]
    sys.modules.update(before)


class CodeReloader:
    """Reloads one server's code; ``factory_arg`` is what each class is built with (the
    Application, as at start)."""

    def __init__(
        self,
        base_dir: Path,
        server_type: str,
        factory_arg: object,
        handlers: HandlerRegistry,
        remotes: RemoteDispatcher,
        crons: CronService | None = None,
        server_id: str = "",
    ) -> None:
        self.base_dir = base_dir
        self.server_type = server_type
        self.factory_arg = factory_arg
        self.handlers = handlers
        self.remotes = remotes
        self.crons = crons
        self.server_id = server_id or server_type
        #: How many reloads succeeded (the first code is generation 0).
        self.generation = 0
        self._busy = False

    def _prefix(self) -> str:
        return module_name(self.base_dir, self.server_type, "x", "x").rsplit(".", 2)[0] + "."

    def load(self) -> Loaded:
        """Stage step 1: the new objects; ReloadError naming the file, line and message
        (``sys.modules`` as it was) when a file fails to import or build, or a cron's
        action is missing from the new cron handlers."""
        prefix = self._prefix()
        before = {name: mod for name, mod in sys.modules.items() if name.startswith(prefix)}
        try:
            found = {
                kind: discover(self.base_dir, self.server_type, kind, self.factory_arg, fresh=True)
                for kind in KINDS
            }
            self._check(found)
        except (ConfigError, ValueError) as exc:
            _restore(prefix, before)
            raise ReloadError(f"{self.server_id}: reload refused, old code kept: {exc}") from None
        except BaseException:
            _restore(prefix, before)
            raise
        fresh = {type(obj).__module__ for objs in found.values() for _, obj in objs}
        for name in before:
            if name not in fresh and sys.modules.get(name) is before[name]:
                del sys.modules[name]  # its file is gone (put back if the reload fails)
        return Loaded(found["handler"], found["remote"], found["cron"], before)

    def _check(self, found: dict[Kind, Objects]) -> None:
        """Refuse (ConfigError, ValueError) what the swap would refuse, so that it cannot
        fail half-way: repeated names, a remote named like a system remote, a remote
        without a public method, a configured cron's action gone."""
        HandlerRegistry(self.handlers.kind).replace(self.server_type, found["handler"])
        declared = {name for name, _ in self.remotes.objects()}
        functions = set(self.remotes.services()) - declared
        clash = sorted(functions & {name for name, _ in found["remote"]})
        if clash:
            raise ConfigError(f"remote {clash[0]!r} is the name of a framework remote")
        RemoteDispatcher().replace_objects(found["remote"])
        if self.crons is not None:
            self.crons.check_handlers(dict(found["cron"]))

    def reload(self) -> Deferred[dict[str, Any]]:
        """Load, init, swap, retire (see the module's doc); a Deferred of a summary of what
        changed, or a failed one (ReloadError) when nothing did."""
        if self._busy:
            return fail(ReloadError(f"{self.server_id}: a reload is in progress already"))
        try:
            loaded = self.load()
        except ReloadError as exc:
            log.warn("{why}", why=exc)
            return fail(Failure())
        self._busy = True
        started = _run_hooks(self._all(loaded), HOOKS_UP, stop_on_error=True)
        started.addErrback(self._init_failed, loaded)
        swapped = started.addCallback(lambda _: self._swap(loaded))
        return swapped.addBoth(self._done)

    def _done(self, result: Any) -> Any:
        self._busy = False
        return result

    @staticmethod
    def _all(loaded: Loaded) -> Objects:
        return [
            *[(f"handler {n}", o) for n, o in loaded.handlers],
            *[(f"remote {n}", o) for n, o in loaded.remotes],
        ]

    def _init_failed(self, failure: Failure, loaded: Loaded) -> Failure:
        _restore(self._prefix(), loaded.previous)
        why = (
            f"{self.server_id}: reload refused, old code kept: "
            f"init of the new code failed: {failure.getErrorMessage()}"
        )
        log.warn("{why}", why=why)
        return Failure(ReloadError(why))

    def _swap(self, loaded: Loaded) -> Deferred[dict[str, Any]]:
        old_routes = set(self.handlers.routes())
        old_remotes = {f"{s}.{m}" for s, ms in self.remotes.services().items() for m in ms}
        old = [
            *[(f"handler {n}", o) for n, o in self.handlers.handlers()],
            *[(f"remote {n}", o) for n, o in self.remotes.objects()],
        ]
        self.handlers.replace(self.server_type, loaded.handlers)
        self.remotes.replace_objects(loaded.remotes)
        if self.crons is not None:
            self.crons.replace_handlers(dict(loaded.crons))
        self.generation += 1
        new_routes = set(self.handlers.routes())
        new_remotes = {f"{s}.{m}" for s, ms in self.remotes.services().items() for m in ms}
        summary = {
            "server": self.server_id,
            "generation": self.generation,
            "handlers": [n for n, _ in loaded.handlers],
            "remotes": [n for n, _ in loaded.remotes],
            "crons": [n for n, _ in loaded.crons],
            "routes_added": sorted(new_routes - old_routes),
            "routes_removed": sorted(old_routes - new_routes),
            "remotes_added": sorted(new_remotes - old_remotes),
            "remotes_removed": sorted(old_remotes - new_remotes),
        }
        log.info(
            "{server} reloaded its code (generation {generation}): {handlers} handlers, "
            "{remotes} remotes, {crons} cron handlers",
            server=self.server_id,
            generation=self.generation,
            handlers=len(loaded.handlers),
            remotes=len(loaded.remotes),
            crons=len(loaded.crons),
        )
        retired = _run_hooks(old, HOOKS_DOWN, stop_on_error=False)
        return retired.addCallback(lambda _: summary)


def _run_hooks(objects: Objects, hooks: tuple[str, ...], *, stop_on_error: bool) -> Deferred[None]:
    """Each hook of ``hooks`` on every object that has it, one after the other (like the
    application's lifecycle). With ``stop_on_error`` the first failure (named) ends it;
    without, failures are logged and the rest runs."""
    steps = [(hook, name, obj) for hook in hooks for name, obj in objects if hasattr(obj, hook)]
    d: Deferred[None] = succeed(None)
    for hook, name, obj in steps:
        d.addCallback(_step(hook, name, obj, stop_on_error))
    return d


def _step(
    hook: str, name: str, obj: object, stop_on_error: bool
) -> Callable[[object], Deferred[None]]:
    def run(_: object) -> Deferred[None]:
        result = call_settled(getattr(obj, hook))
        d: Deferred[None] = result if isinstance(result, Deferred) else succeed(None)

        def failed(failure: Failure) -> Failure | None:
            if stop_on_error:
                return Failure(ReloadError(f"{hook} of {name}: {failure.getErrorMessage()}"))
            log.failure("reload: {hook} of the old {name} failed", failure, hook=hook, name=name)
            return None

        return d.addCallbacks(lambda _: None, failed)

    return run
