"""Handshake bodies: build and parse both directions (UTF-8 JSON).

The server reply follows pinus (``code``, ``sys.heartbeat``, ``sys.dict``,
``sys.dictVersion``, ``sys.useDict``) and adds ``sys.routeToCode`` /
``sys.codeToRoute`` as pomelo 2.x did (older clients read only those) and
``sys.serializer`` (the body format of data messages).
"""

from __future__ import annotations

import json
from sys import float_info
from typing import Any

from .dictionary import RouteDictionary
from .errors import MessageDecodeError
from .events import ClientHandshake, HandshakeResponse

__all__ = [
    "CODE_BAD_HANDSHAKE",
    "CODE_OK",
    "CODE_REJECTED",
    "encode_client_handshake",
    "encode_handshake_response",
    "encode_kick",
    "parse_client_handshake",
    "parse_handshake_response",
    "parse_kick",
]

CODE_OK = 200
CODE_BAD_HANDSHAKE = 500
CODE_REJECTED = 501


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _loads_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MessageDecodeError(f"{what} is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise MessageDecodeError(f"{what} is not a JSON object")
    return obj


def encode_client_handshake(handshake: ClientHandshake) -> bytes:
    """The JSON body of a client handshake package."""
    sys = dict(handshake.sys)
    if handshake.dict_version is not None:
        sys["dictVersion"] = handshake.dict_version
    return _dumps({"sys": sys, "user": handshake.user if handshake.user is not None else {}})


def parse_client_handshake(body: bytes) -> ClientHandshake:
    """Parse a client handshake; raises :class:`MessageDecodeError` without ``sys``."""
    obj = _loads_object(body, "handshake")
    sys = obj.get("sys")
    if not isinstance(sys, dict):
        raise MessageDecodeError("handshake has no 'sys' object")
    dict_version = sys.get("dictVersion")
    return ClientHandshake(
        sys=sys,
        user=obj.get("user"),
        dict_version=dict_version if isinstance(dict_version, str) else None,
    )


def _heartbeat_value(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else float(seconds)


def encode_handshake_response(
    response: HandshakeResponse, client_dict_version: str | None = None
) -> bytes:
    """The JSON body of the server's handshake reply.

    The dictionary is left out when the client already holds its version;
    an error code (not 200) sends only ``code`` (and ``msg`` when set).
    """
    if response.code != CODE_OK:
        reply: dict[str, Any] = {"code": response.code}
        if response.message:
            reply["msg"] = response.message
        return _dumps(reply)
    sys: dict[str, Any] = {}
    if response.heartbeat is not None:
        sys["heartbeat"] = _heartbeat_value(response.heartbeat)
    dictionary = response.dictionary
    if response.use_dict and dictionary is not None:
        send_dict = client_dict_version != dictionary.version
        if send_dict:
            sys["dict"] = dictionary.route_to_code()
            sys["dictVersion"] = dictionary.version
        sys["useDict"] = True
        if send_dict and response.legacy_route_maps:
            sys["routeToCode"] = sys["dict"]
            sys["codeToRoute"] = dictionary.code_to_route()
    if response.serializer is not None:
        sys["serializer"] = response.serializer
    if response.extra_sys:
        sys.update(response.extra_sys)
    reply = {"code": CODE_OK, "sys": sys}
    if response.user is not None:
        reply["user"] = response.user
    return _dumps(reply)


_STANDARD_SYS = frozenset(
    ("heartbeat", "dict", "routeToCode", "codeToRoute", "dictVersion", "useDict", "serializer")
)
"""The ``sys`` fields of a reply parsed into their own attributes; the others are
``extra_sys`` (what the client negotiated: a resume token, protos...)."""


def parse_handshake_response(body: bytes) -> HandshakeResponse:
    """Parse a server handshake reply (pinus, pomelo 2.x or ours)."""
    obj = _loads_object(body, "handshake response")
    code = obj.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise MessageDecodeError("handshake response has no integer 'code'")
    sys = obj.get("sys")
    if not isinstance(sys, dict):
        sys = {}
    heartbeat = sys.get("heartbeat")
    if (
        not isinstance(heartbeat, (int, float))
        or isinstance(heartbeat, bool)
        or not 0 < heartbeat <= float_info.max  # NaN, infinities and ints no float holds
    ):
        heartbeat = None
    raw_dict = sys.get("dict")
    if not isinstance(raw_dict, dict):
        raw_dict = sys.get("routeToCode")
    dictionary = None
    if isinstance(raw_dict, dict):
        try:
            dictionary = RouteDictionary(raw_dict)
        except ValueError as exc:
            raise MessageDecodeError(f"handshake dictionary is invalid: {exc}") from None
    dict_version = sys.get("dictVersion")
    serializer = sys.get("serializer")
    message = obj.get("msg")
    return HandshakeResponse(
        code=code,
        heartbeat=float(heartbeat) if heartbeat is not None else None,
        dictionary=dictionary,
        dict_version=dict_version if isinstance(dict_version, str) else None,
        use_dict=sys.get("useDict") is True,
        serializer=serializer if isinstance(serializer, str) else None,
        user=obj.get("user"),
        message=message if isinstance(message, str) else None,
        extra_sys={k: v for k, v in sys.items() if k not in _STANDARD_SYS} or None,
    )


def encode_kick(reason: str) -> bytes:
    """The JSON body of a kick package: ``{"reason": "<text>"}``."""
    return _dumps({"reason": reason})


def parse_kick(body: bytes) -> str:
    """The reason of a kick package; ``"kick"`` when the body carries none."""
    try:
        obj = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "kick"
    if isinstance(obj, dict) and isinstance(obj.get("reason"), str):
        return str(obj["reason"])
    return "kick"
