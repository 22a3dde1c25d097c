"""What a request or an RPC ended with, as the ``outcome`` label of its counters.

A request's outcome is ``ok`` or the error code its client was answered (``"404"``,
``"503"``, a game's own code): read from the body (``{"code": ...}``; ``200`` or no code
is ``ok``), from the bytes of a forwarded answer (a JSON or msgpack body whose first key
is ``code``: only a few bytes at its start are looked at), or from the failure the
handler raised, coded as :func:`pomelo_twisted.responses.failure_response` codes it. An
RPC's is ``ok``, ``timeout`` or ``error``.
"""

from __future__ import annotations

import re

from twisted.python.failure import Failure

from ..errors import HandlerError, PeerUnavailable, RpcTimeout
from ..responses import CODE_BUSY, CODE_INTERNAL, CODE_TIMEOUT

__all__ = ["ERROR", "OK", "TIMEOUT", "call_outcome", "request_outcome"]

OK = "ok"
TIMEOUT = "timeout"
ERROR = "error"

_JSON_CODE = re.compile(rb'\{\s*"code"\s*:\s*(\d{1,6})')
_MSGPACK_CODE_KEY = b"\xa4code"


def _code(code: int) -> str:
    return OK if code == 200 else str(code)


def failure_code(failure: Failure) -> str:
    """The error code a client is answered for ``failure`` (as ``failure_response``)."""
    exc = failure.value
    if isinstance(exc, HandlerError):
        return _code(exc.code)
    if isinstance(exc, RpcTimeout):
        return str(CODE_TIMEOUT)
    if isinstance(exc, PeerUnavailable):
        return str(CODE_BUSY)
    return str(CODE_INTERNAL)  # a cancelled request too


def encoded_code(body: bytes) -> str:
    """The outcome of a serialized body (a forwarded answer): its leading ``code``."""
    if not body:
        return OK
    first = body[0]
    if first == 0x7B:  # a JSON object
        match = _JSON_CODE.match(body, 0, 32)
        return _code(int(match[1])) if match is not None else OK
    if 0x81 <= first <= 0x8F and body[1:6] == _MSGPACK_CODE_KEY and len(body) > 6:
        tag = body[6]  # a msgpack map whose first key is "code": its integer
        if tag < 0x80:
            return _code(tag)
        if tag == 0xCC and len(body) > 7:
            return _code(body[7])
        if tag == 0xCD and len(body) > 8:
            return _code(int.from_bytes(body[7:9], "big"))
    return OK


def request_outcome(outcome: object) -> str:
    """The outcome label of a request's end (:data:`~pomelo_twisted.interfaces.RequestEnd`)."""
    if outcome is None:
        return OK
    if type(outcome) is dict:
        code = outcome.get("code")
        return _code(code) if type(code) is int else OK
    if isinstance(outcome, bytes):
        return encoded_code(outcome)
    if isinstance(outcome, Failure):
        return failure_code(outcome)
    return OK


def call_outcome(failure: Failure | None) -> str:
    """The outcome label of an RPC's end: ``ok``, ``timeout`` or ``error``."""
    if failure is None:
        return OK
    return TIMEOUT if failure.check(RpcTimeout) else ERROR
