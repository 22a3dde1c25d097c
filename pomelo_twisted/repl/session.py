"""The REPL's commands, without a terminal: :class:`ReplSession`.

A session holds at most one :class:`~pomelo_twisted.client.PomeloClient` and runs one
command line at a time (:meth:`ReplSession.execute`), writing every result, push, kick
and disconnection through its ``output`` callable, one call per line of text. Errors are
one ``error: ...`` line, never a traceback. The front ends (:mod:`.terminal` for a TTY,
:mod:`.lines` for scripts) only read lines and show what the session writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import CancelledError, Deferred, DeferredLock, maybeDeferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from pomelo_twisted.client import PomeloClient
from pomelo_twisted.client import connect as client_connect
from pomelo_twisted.gameconfig import connect_endpoint
from pomelo_twisted.interfaces import IServerReactor

__all__ = ["COMMANDS", "DEFAULT_TIMEOUT", "Command", "Connector", "ReplSession", "normalize_target"]

DEFAULT_TIMEOUT = 10.0
"""Seconds the connect (transport and handshake) and each request may take."""

Output = Callable[[str], None]
T = TypeVar("T")

_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9._-]+):(?P<port>\d{1,5})$")


class Connector(Protocol):
    """What :func:`pomelo_twisted.client.connect` looks like to the session."""

    def __call__(
        self,
        reactor: IServerReactor,
        target: str,
        *,
        user: Any = ...,
        timeout: float = ...,
        request_timeout: float | None = ...,
    ) -> Deferred[PomeloClient]:
        """Connect to ``target``; fires with a client whose handshake is done."""


class CommandError(Exception):
    """An expected failure of a command: shown as one ``error: ...`` line."""


@dataclass(frozen=True)
class Command:
    """One REPL command: its usage line, what it does, and the method running it."""

    usage: str
    summary: str
    run: Callable[[ReplSession, str], Awaitable[None]]


def normalize_target(text: str) -> str:
    """``host:port`` shorthand (``localhost:3010``, ``game.example.com:3010``) → ``tcp:``.

    Everything else (``tcp:...``, ``tls:...``, ``ws://...``) is returned unchanged. The
    shorthand applies to ``localhost`` and dotted hosts only, so endpoint types such as
    ``unix:/path`` keep their meaning.
    """
    match = _HOST_PORT.match(text)
    if match is None:
        return text
    host = match.group("host")
    if host != "localhost" and "." not in host:
        return text
    return connect_endpoint(host, int(match.group("port")))


def to_json(value: Any) -> str:
    """``value`` as one line of JSON (non-ASCII kept; what JSON cannot hold as its repr)."""
    return json.dumps(value, ensure_ascii=False, default=repr)


def parse_body(text: str) -> Any:
    """The JSON body of a request or notify (``{}`` when empty); CommandError if not JSON."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CommandError(f"body is not JSON: {exc}") from None


def _succeeded(reply: Any) -> bool:
    """Whether a response body reads as success: not a dict whose int ``code`` is not 200."""
    if isinstance(reply, dict):
        code = reply.get("code")
        return not (isinstance(code, int) and code != 200)
    return True


class ReplSession:
    """The commands of ``pomelo-twisted repl``, independent of the terminal.

    ``reactor`` provides what ``connect`` needs and ``IReactorTime`` (latencies);
    ``output`` receives each line of text to show (a front end may rebind the
    ``output`` attribute when it attaches). ``connect`` (the client's by default) is
    called as ``connect(reactor, target, user=..., timeout=..., request_timeout=...)``;
    ``timeout`` bounds the connect and each request, ``user`` is the handshake data.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IServerReactor,
        output: Output,
        connect: Connector = client_connect,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        user: Any = None,
    ) -> None:
        self.reactor = reactor
        self.output = output
        self.timeout = timeout
        self.user = user
        self.client: PomeloClient | None = None
        """The client of the current connection, or ``None``."""
        self.target: str | None = None
        """The endpoint of the current connection, or ``None``."""
        self.history: list[str] = []
        """Every non-blank line given to :meth:`execute`, oldest first."""
        self.done = False
        """Set by ``quit``/``exit``: the front end should stop; later lines are ignored."""
        self.errors = 0
        """How many ``error:`` lines were written (line mode's exit status uses it)."""
        self._connect = connect
        self._lock = DeferredLock()
        self._waiting: Deferred[Any] | None = None
        self._used_routes: set[str] = set()
        self._used_targets: list[str] = []
        self._quiet: set[PomeloClient] = set()

    # -- the front end's side ------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether there is a working connection."""
        return self.client is not None and self.client.connected

    def execute(self, line: str) -> Deferred[None]:
        """Run one command line; fires (never fails) once it is done and its output written.

        Lines run one after another: a line given while another runs waits its turn,
        and starts on a later reactor turn, so what arrived together with the previous
        response (a push, a kick) is shown first. Blank lines and ``#`` comments do nothing.
        """
        text = line.strip()
        if text and not text.startswith("#"):
            self.history.append(text)
        done: Deferred[None] = Deferred()

        def locked() -> Deferred[None]:
            d = self._run(text)
            d.addCallback(done.callback)
            return d.addCallback(self._next_turn)

        self._lock.run(locked)
        return done

    def _next_turn(self, _: None) -> Deferred[None] | None:
        """Hold the lock until the next reactor turn when a line is waiting for it."""
        if not self._lock.waiting:
            return None
        return deferLater(self.reactor, 0, lambda: None)

    def cancel(self) -> bool:
        """Abandon what the running command waits for (a connect or a request), if anything."""
        waiting = self._waiting
        if waiting is None or waiting.called:
            return False
        waiting.cancel()
        return True

    def complete(self, text: str) -> list[str]:
        """Candidates for the last (partial) word of ``text``, the line typed so far.

        The first word completes to command names; the word after ``request`` or
        ``notify`` to routes (the connection's dictionary and the routes used
        successfully in this session); the word after ``connect`` to the endpoints
        connected to before. Each candidate is the whole word, sorted.
        """
        words = text.split()
        if not words or text[-1].isspace():
            words.append("")
        prefix = words[-1]
        if len(words) == 1:
            pool: list[str] | set[str] = list(COMMANDS)
        elif len(words) == 2 and words[0].lower() in ("request", "notify"):
            pool = self.known_routes()
        elif len(words) == 2 and words[0].lower() == "connect":
            pool = set(self._used_targets)
        else:
            return []
        return sorted(word for word in pool if word.startswith(prefix))

    def known_routes(self) -> set[str]:
        """Routes of the current connection's dictionary and routes used in this session."""
        routes = set(self._used_routes)
        if self.client is not None:
            routes.update(self.client.dictionary)
        return routes

    def close(self) -> Deferred[None]:
        """Close the connection without reporting it (the REPL is exiting); fires once gone.

        Waits at most ``timeout`` seconds; never fails.
        """
        client = self.client
        if client is None:
            d: Deferred[None] = Deferred()
            d.callback(None)
            return d
        self._quiet.add(client)
        closed: Deferred[Any] = client.close()
        closed.addTimeout(self.timeout, self.reactor)
        return closed.addBoth(lambda _: None)

    # -- running a line --------------------------------------------------------

    def _run(self, text: str) -> Deferred[None]:
        d = Deferred.fromCoroutine(self._dispatch(text))
        return d.addErrback(self._unexpected)

    async def _dispatch(self, text: str) -> None:
        if not text or text.startswith("#") or self.done:
            return
        name, _, rest = text.partition(" ")
        command = COMMANDS.get(name.lower())
        if command is None:
            self._error(f"unknown command {name!r}; type help for the list of commands")
            return
        try:
            await command.run(self, rest.strip())
        except CommandError as exc:
            self._error(str(exc))
        except CancelledError:
            self._error(f"{name} cancelled")

    def _unexpected(self, failure: Failure) -> None:
        self.log.failure("REPL command failed", failure)
        self._error(f"unexpected failure: {failure.getErrorMessage()}")

    def _error(self, message: str) -> None:
        self.errors += 1
        self.output(f"error: {message}")

    async def _wait(self, d: Deferred[T]) -> T:
        """Await ``d``, letting :meth:`cancel` abandon it."""
        self._waiting = d
        try:
            return await d
        finally:
            self._waiting = None

    def _require_client(self) -> PomeloClient:
        client = self.client
        if client is None:
            raise CommandError("not connected; use: connect ENDPOINT")
        if not client.connected:
            raise CommandError(f"not connected ({client.close_reason}); use: connect ENDPOINT")
        return client

    @staticmethod
    def _route_and_body(args: str, command: str) -> tuple[str, Any]:
        route, _, body = args.partition(" ")
        if not route:
            raise CommandError(f"usage: {COMMANDS[command].usage}")
        return route, parse_body(body.strip())

    # -- commands ---------------------------------------------------------------

    async def do_connect(self, args: str) -> None:
        """``connect ENDPOINT``."""
        if not args or " " in args:
            raise CommandError(f"usage: {COMMANDS['connect'].usage}")
        if self.connected:
            raise CommandError(f"already connected to {self.target}; disconnect first")
        target = normalize_target(args)
        d: Deferred[PomeloClient] = maybeDeferred(
            self._connect,
            self.reactor,
            target,
            user=self.user,
            timeout=self.timeout,
            request_timeout=self.timeout,
        )
        try:
            client = await self._wait(d)
        except CancelledError:
            raise CommandError(f"connect to {target} cancelled") from None
        except Exception as exc:
            raise CommandError(f"cannot connect to {target}: {exc}") from None
        self._attach(client, target)
        if not client.connected:  # lost between the handshake and here
            raise CommandError(f"connection to {target} lost: {client.close_reason}")
        if target not in self._used_targets:
            self._used_targets.append(target)
        heartbeat = f", heartbeat {client.heartbeat:g} s" if client.heartbeat else ""
        count = len(client.dictionary)
        self.output(f"connected to {target} ({count} routes in the dictionary{heartbeat})")
        if client.handshake_user is not None:
            self.output(f"handshake user: {to_json(client.handshake_user)}")

    async def do_disconnect(self, args: str) -> None:
        """``disconnect``: the close is reported by the ``disconnected:`` line."""
        client = self.client
        if client is None:
            raise CommandError("not connected")
        await self._wait(client.close())

    async def do_request(self, args: str) -> None:
        """``request ROUTE [JSON]``."""
        route, body = self._route_and_body(args, "request")
        client = self._require_client()
        start = self.reactor.seconds()
        try:
            reply = await self._wait(client.request(route, body))
        except CancelledError:
            raise CommandError(f"request to {route} cancelled") from None
        except Exception as exc:
            raise CommandError(str(exc)) from None
        elapsed = (self.reactor.seconds() - start) * 1000.0
        if _succeeded(reply):
            self._used_routes.add(route)
        self.output(f"response ({elapsed:.1f} ms): {to_json(reply)}")

    async def do_notify(self, args: str) -> None:
        """``notify ROUTE [JSON]``."""
        route, body = self._route_and_body(args, "notify")
        client = self._require_client()
        try:
            client.notify(route, body)
        except Exception as exc:
            raise CommandError(str(exc)) from None
        self._used_routes.add(route)
        self.output(f"notify sent to {route}")

    async def do_routes(self, args: str) -> None:
        """``routes``: the routes the server announced in its handshake dictionary."""
        client = self._require_client()
        routes = sorted(client.dictionary)
        if not routes:
            self.output("the server sent no route dictionary")
        for route in routes:
            self.output(route)

    async def do_help(self, args: str) -> None:
        """``help``."""
        width = max(len(command.usage) for command in COMMANDS.values())
        for name, command in COMMANDS.items():
            if name != "exit":
                self.output(f"  {command.usage:<{width}}  {command.summary}")
        self.output("Pushes, kicks and disconnections are shown as they happen.")

    async def do_quit(self, args: str) -> None:
        """``quit`` / ``exit``."""
        self.done = True

    # -- connection events ------------------------------------------------------

    def _attach(self, client: PomeloClient, target: str) -> None:
        self.client = client
        self.target = target
        client.on_kick(lambda reason: self.output(f"kicked: {reason}"))
        client.on_close(lambda reason: self._closed(client, reason))
        self._show_every_push(client)

    def _closed(self, client: PomeloClient, reason: str) -> None:
        if client is self.client:
            self.client = None
            self.target = None
        if client not in self._quiet:
            self.output(f"disconnected: {reason}")
        self._quiet.discard(client)

    def _show_push(self, route: str, body: Any) -> None:
        self.output(f"push {route} {to_json(body)}")

    def _show_every_push(self, client: PomeloClient) -> None:
        """Show every push ``client`` receives, whatever its route."""
        client.on_any_push(self._show_push)


_QUIT = Command("quit", "leave (also: exit, Ctrl-D)", ReplSession.do_quit)

COMMANDS: Mapping[str, Command] = {
    "connect": Command(
        "connect ENDPOINT",
        "connect (tcp:HOST:PORT, tls:host=H:port=P, ws://HOST:PORT/, wss://..., HOST:PORT)",
        ReplSession.do_connect,
    ),
    "disconnect": Command("disconnect", "close the connection", ReplSession.do_disconnect),
    "request": Command(
        "request ROUTE [JSON]",
        "send a request (body default {}); shows the response and its latency",
        ReplSession.do_request,
    ),
    "notify": Command("notify ROUTE [JSON]", "send a notify (no response)", ReplSession.do_notify),
    "routes": Command("routes", "the routes of the server's dictionary", ReplSession.do_routes),
    "help": Command("help", "this list", ReplSession.do_help),
    "quit": _QUIT,
    "exit": _QUIT,
}
"""Command name → :class:`Command` (``exit`` is ``quit``)."""
