"""The JSON of etcd's v3 gRPC gateway, sans I/O: message types, key encoding, errors.

etcd (3.4 and later) serves its v3 API as JSON over HTTP at ``/v3/...``: keys and values are
base64, 64-bit integers are strings, fields at their zero value are left out.  The types
below decode those answers with :mod:`msgspec` (``strict=False`` turns the int64 strings
into ints, base64 strings into bytes); :func:`error_for` turns a gateway error into the
right :class:`~pomelo_twisted.kv.errors.KVError`.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from .errors import CompactedRevision, KVError, KVUnavailable, LeaseNotFound
from .interfaces import KeyValue, WatchEvent

__all__ = [
    "AuthenticateResponse",
    "DeleteRangeResponse",
    "ErrorBody",
    "GrantResponse",
    "KeepAliveMessage",
    "PutResponse",
    "RangeResponse",
    "StreamError",
    "TxnResponse",
    "WatchMessage",
    "WatchResult",
    "decode",
    "encode_key",
    "error_for",
    "error_from_code",
    "invalid_token",
    "json_body",
    "parse_etcd_url",
    "prefix_range_end",
]

M = TypeVar("M")

# gRPC status codes etcd answers with (google.golang.org/grpc/codes).
NOT_FOUND = 5
OUT_OF_RANGE = 11
UNAVAILABLE_CODES = {1, 4, 8, 13, 14}  # cancelled, deadline, exhausted, internal, unavailable


class Header(msgspec.Struct):
    revision: int = 0


class WireKeyValue(msgspec.Struct):
    key: bytes = b""
    value: bytes = b""
    create_revision: int = 0
    mod_revision: int = 0
    lease: int = 0

    def to_kv(self) -> KeyValue:
        """The interface's value type (keys are UTF-8 text)."""
        return KeyValue(
            self.key.decode("utf-8", "replace"),
            self.value,
            self.create_revision,
            self.mod_revision,
            self.lease,
        )


class RangeResponse(msgspec.Struct):
    header: Header = msgspec.field(default_factory=Header)
    kvs: list[WireKeyValue] = msgspec.field(default_factory=list)


class PutResponse(msgspec.Struct):
    header: Header = msgspec.field(default_factory=Header)


class DeleteRangeResponse(msgspec.Struct):
    header: Header = msgspec.field(default_factory=Header)
    deleted: int = 0


class TxnOpResponse(msgspec.Struct):
    response_delete_range: DeleteRangeResponse | None = None


class TxnResponse(msgspec.Struct):
    header: Header = msgspec.field(default_factory=Header)
    succeeded: bool = False
    responses: list[TxnOpResponse] = msgspec.field(default_factory=list)


class GrantResponse(msgspec.Struct):
    id: int = msgspec.field(default=0, name="ID")
    ttl: int = msgspec.field(default=0, name="TTL")
    error: str = ""


class KeepAliveResult(msgspec.Struct):
    id: int = msgspec.field(default=0, name="ID")
    ttl: int = msgspec.field(default=0, name="TTL")


class StreamError(msgspec.Struct):
    """The error object grpc-gateway writes into a stream."""

    grpc_code: int = 0
    http_code: int = 0
    message: str = ""


class KeepAliveMessage(msgspec.Struct):
    result: KeepAliveResult | None = None
    error: StreamError | None = None


class WireEvent(msgspec.Struct):
    type: str = "PUT"
    kv: WireKeyValue = msgspec.field(default_factory=WireKeyValue)

    def to_event(self) -> WatchEvent:
        """The interface's event: a delete has value b"" and the delete's revisions."""
        kv = self.kv.to_kv()
        if self.type == "DELETE":
            revision = self.kv.mod_revision
            return WatchEvent("delete", KeyValue(kv.key, b"", revision, revision, 0))
        return WatchEvent("put", kv)


class WatchResult(msgspec.Struct):
    header: Header = msgspec.field(default_factory=Header)
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
    events: list[WireEvent] = msgspec.field(default_factory=list)


class WatchMessage(msgspec.Struct):
    result: WatchResult | None = None
    error: StreamError | None = None


class AuthenticateResponse(msgspec.Struct):
    token: str = ""


class ErrorBody(msgspec.Struct):
    """The body of a non-200 gateway answer."""

    error: str = ""
    message: str = ""
    code: int = 0


def invalid_token(body: bytes) -> bool:
    """Whether a rejection says the auth token is invalid or expired (ask for a new one)."""
    return b"invalid auth token" in body


def decode(data: bytes, kind: type[M]) -> M:
    """Decode a gateway JSON body as ``kind`` (int64 strings to int, base64 to bytes)."""
    return msgspec.json.decode(data, type=kind, strict=False)


def encode_key(key: str | bytes) -> str:
    """A key (or value) as the gateway wants it: base64 text."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    return base64.b64encode(raw).decode("ascii")


def prefix_range_end(prefix: str) -> str:
    """The base64 ``range_end`` covering every key that starts with ``prefix`` (the
    prefix with its last byte below 0xff incremented; all keys for an empty prefix)."""
    raw = bytearray(prefix.encode("utf-8"))
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return encode_key(b"\0")
    raw[-1] += 1
    return encode_key(bytes(raw))


def error_for(endpoint: str, status: int, body: bytes, what: str) -> KVError:
    """The KVError for a non-200 answer of ``endpoint`` to ``what``: LeaseNotFound,
    CompactedRevision, KVUnavailable (5xx and unavailable codes) or KVError."""
    try:
        error = decode(body, ErrorBody)
        code, message = error.code, error.message or error.error
    except (msgspec.ValidationError, msgspec.DecodeError):
        code, message = 0, body[:200].decode("utf-8", "replace") or f"HTTP {status}"
    return error_from_code(endpoint, code, message, status, what)


def error_from_code(endpoint: str, code: int, message: str, status: int, what: str) -> KVError:
    """The KVError for gRPC ``code`` / HTTP ``status`` with etcd's ``message``."""
    text = f"etcd {endpoint}: {what}: {message} (HTTP {status}, code {code})"
    if code == NOT_FOUND and "lease not found" in message:
        return LeaseNotFound(text)
    if code == OUT_OF_RANGE and "compacted" in message:
        return CompactedRevision(text, 0)
    if status >= 500 or code in UNAVAILABLE_CODES:
        return KVUnavailable(text)
    return KVError(text)


def parse_etcd_url(url: str) -> tuple[str, str]:
    """``etcd://HOST:PORT/PREFIX`` → (``http://HOST:PORT``, ``/PREFIX``); the port defaults
    to 2379, the prefix to ``/``, an IPv6 host is written in brackets (``etcd://[::1]:2379/p``).
    ``etcds://`` gives an https base URL.  Raises ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("etcd", "etcds"):
        raise ValueError(f"{url!r}: not an etcd URL (etcd://HOST:PORT/PREFIX)")
    try:
        host, port = parts.hostname, parts.port or 2379
    except ValueError as exc:
        raise ValueError(f"{url!r}: bad port ({exc})") from None
    if not host:
        raise ValueError(f"{url!r}: no host (etcd://HOST:PORT/PREFIX)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{url!r}: only etcd://HOST:PORT/PREFIX is understood")
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    netloc = f"[{host}]:{port}" if is_v6 else f"{host}:{port}"
    scheme = "https" if parts.scheme == "etcds" else "http"
    prefix = parts.path or "/"
    return f"{scheme}://{netloc}", prefix


def json_body(**fields: Any) -> bytes:
    """A request body: fields that are None are left out."""
    return msgspec.json.encode({k: v for k, v in fields.items() if v is not None})
