"""Run one session transcript of ``sessions.json`` against a server, step by step.

Steps: ``send`` (raw ``hex``; a ``package`` with a ``json``/``text`` body or a data
``message``; several ``packages`` in one write; ``split: "bytes"`` writes one byte at a
time), ``expect`` (a ``package`` whose body matches a pattern, exact ``hex``, or ``close``) and
``reconnect``; an ``expect`` of ``all`` takes several packages in any order. While waiting,
heartbeats and pushes the step does not expect are passed over: a server may send them
between any two packages.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IReactorTime

from ..protocol import (
    Message,
    MessageType,
    Package,
    PackageType,
    ProtocolError,
    decode_message,
    encode_message,
    encode_package,
)
from ..protocol.message import encode_varint
from .patterns import MissingVariable, match, substitute
from .vectors import Session
from .wire import Closed, Dialer, StepTimeout, Wire

__all__ = ["Outcome", "TranscriptRunner", "Unreachable"]

PACKAGE_TYPES = {
    "handshake": PackageType.HANDSHAKE,
    "handshake-ack": PackageType.HANDSHAKE_ACK,
    "heartbeat": PackageType.HEARTBEAT,
    "data": PackageType.DATA,
    "kick": PackageType.KICK,
}
_NAMES = {number: name for name, number in PACKAGE_TYPES.items()}
MESSAGE_TYPES = {kind.name.lower(): kind for kind in MessageType}
_GZIP, _ERROR = 0x10, 0x20


@dataclass(frozen=True)
class Outcome:
    """``PASS``, ``FAIL`` or ``SKIP``, and why (empty for a pass)."""

    status: str
    reason: str = ""


class _Skip(Exception):
    pass


class _Fail(Exception):
    pass


class Unreachable(Exception):
    """The target cannot be connected to (the message says why)."""


class TranscriptRunner:
    """Runs sessions over connections from ``dial`` (of ``transport``: ``tcp`` or ``ws``);
    ``variables`` fill ``${NAME}``; each step waits at most ``timeout`` seconds."""

    def __init__(
        self,
        clock: IReactorTime,
        dial: Dialer,
        variables: dict[str, Any],
        timeout: float,
        transport: str = "tcp",
    ) -> None:
        self.clock = clock
        self.dial = dial
        self.base = dict(variables)
        self.timeout = timeout
        self.transport = transport

    async def run(self, session: Session) -> Outcome:
        """Run ``session`` on new connections; always closes them. Raises
        :class:`Unreachable` when a connection cannot be opened."""
        if self.transport not in session.transports:
            return Outcome("SKIP", f"{'/'.join(session.transports)} only")
        variables = dict(self.base)
        wire: Wire | None = None
        step_no, step = 0, session.steps[0]
        checked = not session.requires
        try:
            wire = await self._open()
            for index, current in enumerate(session.steps, 1):
                step_no, step = index, current
                if "reconnect" in step:
                    await self._drain(wire)
                    wire = await self._open()
                elif "send" in step:
                    self._send(wire, step["send"], variables)
                else:
                    await self._expect(wire, step["expect"], variables)
                    if not checked and step["expect"].get("package") == "handshake":
                        missing = [name for name in session.requires if name not in variables]
                        if missing:
                            names = ", ".join(f"sys.{name}" for name in missing)
                            return Outcome("SKIP", f"the server's handshake has no {names}")
                        checked = True
            return Outcome("PASS")
        except _Skip as exc:
            return Outcome("SKIP", str(exc))
        except MissingVariable as exc:
            return Outcome("SKIP", f"step {step_no}: {exc}")
        except (_Fail, StepTimeout) as exc:
            return Outcome("FAIL", f"step {step_no} ({_describe(step)}): {exc}")
        finally:
            if wire is not None:
                await self._drain(wire)

    async def _open(self) -> Wire:
        try:
            return await self.dial()
        except (ConnectError, ConnectionError, StepTimeout, ValueError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from None

    async def _drain(self, wire: Wire) -> None:
        """Close ``wire`` and wait (bounded) until it is closed."""
        wire.drop()
        while not wire.closed:
            try:
                await wire.next(self.timeout)
            except StepTimeout:
                return

    # -- sending ----------------------------------------------------------------------

    def _send(self, wire: Wire, spec: dict[str, Any], variables: dict[str, Any]) -> None:
        if "packages" in spec:
            data = b"".join(self._package(part, variables) for part in spec["packages"])
        else:
            data = self._package(spec, variables)
        if spec.get("split") == "bytes":
            for index in range(len(data)):
                wire.send(data[index : index + 1])
        else:
            wire.send(data)

    def _package(self, spec: dict[str, Any], variables: dict[str, Any]) -> bytes:
        if "hex" in spec:
            return bytes.fromhex(spec["hex"])
        kind = PACKAGE_TYPES[spec["package"]]
        if "message" in spec:
            body = self._message(spec["message"], variables)
        elif "json" in spec:
            body = _dumps(substitute(spec["json"], variables))
        else:
            body = spec.get("text", "").encode("utf-8")
        return encode_package(kind, body)

    def _message(self, spec: dict[str, Any], variables: dict[str, Any]) -> bytes:
        kind = MESSAGE_TYPES[spec["type"]]
        route = substitute(spec.get("route", ""), variables)
        code = 0
        if spec.get("compress"):
            dictionary = variables.get("dict") or {}
            code = dictionary.get(route, 0)
            if not code:
                raise _Skip(f"{route} is not in the server's route dictionary")
        body = _dumps(substitute(spec.get("json", {}), variables))
        if spec.get("zlib"):
            body = zlib.compress(body)
        msg_id = spec.get("id", 0)
        data = encode_message(
            kind, msg_id, route, body, route_code=code, gzip=bool(spec.get("zlib"))
        )
        if "id_hex" in spec:  # the id bytes exactly as given (a client's own varint)
            data = data[:1] + bytes.fromhex(spec["id_hex"]) + data[1 + len(encode_varint(msg_id)) :]
        return data

    # -- expecting --------------------------------------------------------------------

    async def _expect(self, wire: Wire, spec: dict[str, Any], variables: dict[str, Any]) -> None:
        if spec.get("close"):
            while True:
                try:
                    item = await wire.next(self.timeout)
                except StepTimeout:
                    raise _Fail(f"the connection is still open after {self.timeout:g}s") from None
                if isinstance(item, Closed):
                    return
        pending = list(spec["all"]) if "all" in spec else [spec]
        passed_over = ""
        while pending:
            try:
                package = await self._next(wire)
            except StepTimeout as exc:
                raise StepTimeout(f"{exc}{passed_over}") from None
            problems = []
            for index, wanted in enumerate(pending):
                try:
                    self._check_package(package, wanted, variables)
                except _Fail as exc:
                    problems.append(str(exc))
                else:
                    del pending[index]
                    break
            else:
                if package.type == PackageType.HEARTBEAT or _is_push(package):
                    if _is_push(package):
                        passed_over = f" (a push was passed over: {problems[0]})"
                    continue  # may come between any two packages
                raise _Fail(problems[0] if len(problems) == 1 else "; ".join(problems))

    async def _next(self, wire: Wire) -> Package:
        item = await wire.next(self.timeout)
        if isinstance(item, Closed):
            raise _Fail(f"the connection closed instead: {item.reason}")
        return item

    def _check_package(
        self, package: Package, spec: dict[str, Any], variables: dict[str, Any]
    ) -> None:
        if "hex" in spec:  # exactly these bytes (a package with nothing that varies)
            got = encode_package(package.type, package.body).hex()
            if got != spec["hex"]:
                raise _Fail(f"got {got}, expected {spec['hex']}")
            return
        if package.type != PACKAGE_TYPES[spec["package"]]:
            raise _Fail(f"got a {_NAMES[package.type]} package{_show_body(package)}")
        if package.type == PackageType.DATA:
            message = _decode(package)
            self._check_message(package.body, message, spec.get("message", {}), variables)
        elif "json" in spec:
            problem = match(spec["json"], _json(package.body), variables)
            if problem is not None:
                raise _Fail(problem)

    def _check_message(
        self, raw: bytes, message: Message, spec: dict[str, Any], variables: dict[str, Any]
    ) -> None:
        kind = MESSAGE_TYPES[spec["type"]]
        if message.type != kind:
            raise _Fail(f"got a {message.type.name.lower()} message, expected a {spec['type']}")
        if "id_hex" in spec:
            sent = bytes.fromhex(spec["id_hex"])
            if raw[1 : 1 + len(sent)] != sent:
                got = raw[1 : 1 + len(encode_varint(message.id))].hex(" ")
                raise _Fail(f"id bytes {got}, expected {sent.hex(' ')} (as sent)")
        elif "id" in spec and message.id != spec["id"]:
            raise _Fail(f"response id {message.id}, expected {spec['id']}")
        route = message.route
        if message.route_code:  # a compressed route: its name from the handshake's dict
            codes = {code: name for name, code in (variables.get("dict") or {}).items()}
            route = codes.get(message.route_code, f"code {message.route_code}")
        if "route" in spec and route != substitute(spec["route"], variables):
            raise _Fail(f"route {route!r}, expected {spec['route']!r}")
        if "error" in spec and bool(raw[0] & _ERROR) != spec["error"]:
            raise _Fail(f"error flag 0x20 {'missing' if spec['error'] else 'set'}")
        body = message.body
        if raw[0] & _GZIP:
            # zlib or gzip header; a plain body under the flag (pinus may send one) stays
            with contextlib.suppress(zlib.error):
                body = zlib.decompress(body, 47)
        if "json" in spec:
            problem = match(spec["json"], _json(body), variables)
            if problem is not None:
                raise _Fail(problem)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Fail(f"the body is not UTF-8 JSON: {body[:40]!r}") from None


def _decode(package: Package) -> Message:
    try:
        return decode_message(package.body)
    except ProtocolError as exc:
        raise _Fail(f"the server sent a message we cannot decode: {exc}") from None


def _is_push(package: Package) -> bool:
    return bool(package.body) and (package.body[0] >> 1) & 7 == MessageType.PUSH


def _show_body(package: Package) -> str:
    return f": {package.body[:60]!r}" if package.body else ""


def _describe(step: dict[str, Any]) -> str:
    if "reconnect" in step:
        return "reconnect"
    if "send" in step:
        spec = step["send"]
        what = spec.get("package") or ("raw bytes" if "hex" in spec else "packages")
        return f"send {what}"
    return _describe_expect(step["expect"])


def _describe_expect(spec: dict[str, Any]) -> str:
    if "all" in spec:
        return " and ".join(_describe_expect(part) for part in spec["all"])
    if spec.get("close"):
        return "expect the close"
    if "hex" in spec:
        return f"expect {spec['hex']}"
    message = spec.get("message", {})
    return f"expect {message.get('type') or spec['package']}"
