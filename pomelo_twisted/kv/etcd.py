"""An :class:`~pomelo_twisted.kv.interfaces.IKeyValueStore` on etcd's v3 JSON gateway, by treq.

etcd 3.4+ serves its v3 API as JSON over HTTP (``/v3/kv/range``, ``/v3/kv/put``,
``/v3/kv/txn``, ``/v3/kv/deleterange``, ``/v3/lease/grant|keepalive|revoke``,
``/v3/watch``).  treq gives Twisted-native HTTP with a connection pool for the short calls
and a streaming body for each watch.  Every call has a timeout; every failure becomes the
KVError naming the endpoint and etcd's own message (:func:`.gateway.error_for`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import treq
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred, DeferredList
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost, DNSLookupError
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse
from zope.interface import implementer

from ..interfaces import IServerReactor
from .endpoints import EtcdEndpoints
from .errors import KVError, KVUnavailable, LeaseNotFound
from .etcdwatch import EtcdWatch
from .gateway import (
    AuthenticateResponse,
    DeleteRangeResponse,
    GrantResponse,
    KeepAliveMessage,
    PutResponse,
    RangeResponse,
    TxnResponse,
    decode,
    encode_key,
    error_for,
    error_from_code,
    invalid_token,
    json_body,
    prefix_range_end,
)
from .interfaces import IKeyValueStore, KeyValue, WatchEvent

__all__ = ["EtcdKeyValueStore"]

M = TypeVar("M")
T = TypeVar("T")
JSON_HEADERS = Headers({b"Content-Type": [b"application/json"]})
NETWORK_ERRORS = (ConnectError, ConnectionLost, DNSLookupError, ResponseFailed)
# Calls whose repetition leaves etcd as one would: sent again once when a pooled
# connection turns out to have been closed by etcd (a restart) before it answered.
REPEATABLE = {
    "/v3/auth/authenticate",
    "/v3/kv/compaction",
    "/v3/kv/put",
    "/v3/kv/range",
    "/v3/lease/keepalive",
    "/v3/lease/revoke",
}


class _StaleConnection(Exception):
    """A pooled connection was closed cleanly before any answer (etcd restarted)."""


def _stale(exc: ResponseNeverReceived) -> bool:
    return any(reason.check(ConnectionDone) for reason in exc.reasons)


def describe(exc: BaseException | None) -> str:
    """A network failure in a few words (the first reason of a wrapped failure)."""
    if exc is None:
        return "unknown failure"
    reasons = getattr(exc, "reasons", None)
    if reasons:
        return str(reasons[0].getErrorMessage())
    return str(exc) or type(exc).__name__


@implementer(IKeyValueStore)
class EtcdKeyValueStore:
    """A client of one etcd endpoint (``http://HOST:PORT``; see :func:`.gateway.parse_etcd_url`).

    ``timeout`` bounds every call (connecting included) and the opening of a watch; a
    call that gets no answer in time errbacks KVUnavailable.  ``prefix_auth`` is the
    ``(user, password)`` of an etcd user (typically one whose role grants read-write on
    the cluster prefix only) when etcd has authentication enabled: the client gets a
    token on first use and a new one when etcd says it expired.  :meth:`close` ends every
    watch and closes the pooled connections.
    """

    def __init__(
        self,
        reactor: IServerReactor,
        endpoint_url: str,
        *,
        timeout: float = 5.0,
        prefix_auth: tuple[str, str] | None = None,
    ) -> None:
        if not endpoint_url.startswith(("http://", "https://")):
            raise ValueError(
                f"{endpoint_url!r}: the etcd endpoint is an http(s) URL "
                "(parse_etcd_url turns etcd://HOST:PORT/PREFIX into one)"
            )
        self.endpoint = endpoint_url.rstrip("/")
        parts = urlsplit(self.endpoint)
        if parts.hostname is None or parts.path:
            raise ValueError(f"{endpoint_url!r}: the etcd endpoint is http(s)://HOST:PORT")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        self._reactor = reactor
        self._timeout = timeout
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        endpoints = EtcdEndpoints(reactor, parts.hostname, port, tls=tls, connect_timeout=timeout)
        self._base = f"{parts.scheme}://{endpoints.url_host}:{port}"
        self._http = HTTPClient(Agent.usingEndpointFactory(reactor, endpoints, pool=self._pool))
        self._watches: set[EtcdWatch] = set()
        self._credentials = prefix_auth
        self._token: str | None = None

    # -- calls -----------------------------------------------------------------------------

    def grant(self, ttl: float) -> Deferred[int]:
        """A new lease of ``ttl`` seconds rounded up (at least 1)."""
        seconds = max(1, math.ceil(ttl))

        async def run() -> int:
            what = f"grant a {seconds} s lease"
            answer = await self._call(
                "/v3/lease/grant", json_body(TTL=str(seconds)), GrantResponse, what
            )
            if answer.error or not answer.id:
                raise KVError(f"etcd {self.endpoint}: {what}: {answer.error or 'no lease id'}")
            return answer.id

        return self._timed(run(), f"grant a {seconds} s lease")

    def keep_alive(self, lease: int) -> Deferred[float]:
        """Renew the lease: its ttl; LeaseNotFound once it has expired or was revoked."""
        what = f"keep lease {lease:x} alive"

        async def run() -> float:
            answer = await self._call(
                "/v3/lease/keepalive", json_body(ID=str(lease)), KeepAliveMessage, what
            )
            if answer.error is not None:
                error = answer.error
                raise error_from_code(
                    self.endpoint, error.grpc_code, error.message, error.http_code, what
                )
            if answer.result is None or answer.result.ttl <= 0:
                raise LeaseNotFound(
                    f"etcd {self.endpoint}: {what}: lease not found (expired or revoked)"
                )
            return float(answer.result.ttl)

        return self._timed(run(), what)

    def revoke(self, lease: int) -> Deferred[None]:
        """End the lease and delete its keys; an unknown lease is not an error."""
        what = f"revoke lease {lease:x}"

        async def run() -> None:
            with contextlib.suppress(LeaseNotFound):
                await self._call("/v3/lease/revoke", json_body(ID=str(lease)), PutResponse, what)

        return self._timed(run(), what)

    def get(self, key: str) -> Deferred[KeyValue | None]:
        """The key, or None."""
        what = f"get {key!r}"

        async def run() -> KeyValue | None:
            answer = await self._call(
                "/v3/kv/range", json_body(key=encode_key(key)), RangeResponse, what
            )
            return answer.kvs[0].to_kv() if answer.kvs else None

        return self._timed(run(), what)

    def get_prefix(self, prefix: str) -> Deferred[tuple[list[KeyValue], int]]:
        """The keys under ``prefix`` sorted by key, and the revision of the read."""
        what = f"get prefix {prefix!r}"
        body = json_body(key=encode_key(prefix or b"\0"), range_end=prefix_range_end(prefix))

        async def run() -> tuple[list[KeyValue], int]:
            answer = await self._call("/v3/kv/range", body, RangeResponse, what)
            return [kv.to_kv() for kv in answer.kvs], answer.header.revision

        return self._timed(run(), what)

    def put(self, key: str, value: bytes, lease: int = 0) -> Deferred[int]:
        """Set the key: the new revision; LeaseNotFound for an unknown lease."""
        what = f"put {key!r}"
        body = json_body(
            key=encode_key(key), value=encode_key(value), lease=str(lease) if lease else None
        )

        async def run() -> int:
            return (await self._call("/v3/kv/put", body, PutResponse, what)).header.revision

        return self._timed(run(), what)

    def create(self, key: str, value: bytes, lease: int = 0) -> Deferred[bool]:
        """Put only if absent (a txn comparing create_revision with 0)."""
        what = f"create {key!r}"
        put: dict[str, Any] = {"key": encode_key(key), "value": encode_key(value)}
        if lease:
            put["lease"] = str(lease)
        body = json_body(
            compare=[
                {
                    "key": encode_key(key),
                    "target": "CREATE",
                    "result": "EQUAL",
                    "create_revision": "0",
                }
            ],
            success=[{"request_put": put}],
        )

        async def run() -> bool:
            return (await self._call("/v3/kv/txn", body, TxnResponse, what)).succeeded

        return self._timed(run(), what)

    def delete(self, key: str) -> Deferred[bool]:
        """Delete the key: whether it existed."""
        what = f"delete {key!r}"

        async def run() -> bool:
            answer = await self._call(
                "/v3/kv/deleterange", json_body(key=encode_key(key)), DeleteRangeResponse, what
            )
            return answer.deleted > 0

        return self._timed(run(), what)

    def delete_if(self, key: str, mod_revision: int) -> Deferred[bool]:
        """Delete the key if its mod_revision is still ``mod_revision`` (a txn)."""
        what = f"delete {key!r} at revision {mod_revision}"
        body = json_body(
            compare=[
                {
                    "key": encode_key(key),
                    "target": "MOD",
                    "result": "EQUAL",
                    "mod_revision": str(mod_revision),
                }
            ],
            success=[{"request_delete_range": {"key": encode_key(key)}}],
        )

        async def run() -> bool:
            answer = await self._call("/v3/kv/txn", body, TxnResponse, what)
            deleted = [
                r.response_delete_range.deleted for r in answer.responses if r.response_delete_range
            ]
            return answer.succeeded and sum(deleted) > 0

        return self._timed(run(), what)

    def watch_prefix(
        self, prefix: str, start_revision: int, on_event: Callable[[WatchEvent], None]
    ) -> EtcdWatch:
        """A watch stream of ``prefix`` from ``start_revision`` (<= 0: from now on)."""
        watch = EtcdWatch(self.endpoint, prefix, on_event)
        request = {
            "key": encode_key(prefix or b"\0"),
            "range_end": prefix_range_end(prefix),
            "start_revision": str(start_revision) if start_revision > 0 else None,
        }
        body = json_body(create_request={k: v for k, v in request.items() if v is not None})
        what = f"watch of {prefix!r}"
        opening = Deferred.fromCoroutine(self._open_watch(body))
        watch.attach(opening.cancel)
        self._watches.add(watch)
        watch.closed.addBoth(lambda _: self._watches.discard(watch))

        def opened(response: IResponse) -> Deferred[None] | None:
            if response.code != 200 and not watch.done.called:
                return Deferred.fromCoroutine(self._reject(watch, response, what))
            response.deliverBody(watch)
            return None

        def failed(reason: Failure) -> None:
            if isinstance(reason.value, KVError):  # e.g. refused credentials
                watch.opening_failed(reason.value)
                return
            cause = (
                f"no answer within {self._timeout:g} s"
                if reason.check(CancelledError)
                else describe(reason.value)
            )
            watch.opening_failed(KVUnavailable(f"etcd {self.endpoint}: {what}: {cause}"))

        opening.addCallbacks(opened, failed)
        return watch

    def compact(self, revision: int) -> Deferred[None]:
        """Compact the history up to ``revision`` (watches starting earlier then fail
        CompactedRevision)."""
        what = f"compact to revision {revision}"

        async def run() -> None:
            await self._call(
                "/v3/kv/compaction", json_body(revision=str(revision)), PutResponse, what
            )

        return self._timed(run(), what)

    def close(self) -> Deferred[None]:
        """Cancel every watch and close the pooled connections (fires once all are closed)."""
        watches = list(self._watches)
        for watch in watches:
            watch.cancel()
        closing: list[Deferred[Any]] = [watch.closed for watch in watches]
        closing.append(self._pool.closeCachedConnections())
        return DeferredList(closing).addCallback(lambda _: None)

    # -- plumbing --------------------------------------------------------------------------

    async def _open_watch(self, body: bytes) -> IResponse:
        headers = await self._headers()
        return await self._post(
            "/v3/watch", body, headers, unbuffered=True, open_within=self._timeout
        )

    async def _reject(self, watch: EtcdWatch, response: IResponse, what: str) -> None:
        try:
            content = await treq.content(response)
        except Exception as exc:
            watch.opening_failed(KVUnavailable(f"etcd {self.endpoint}: {what}: {describe(exc)}"))
            return
        if invalid_token(content):
            self._token = None  # the owner's next watch authenticates again
        watch.opening_failed(error_for(self.endpoint, response.code, content, what))

    async def _headers(self) -> Headers:
        if self._credentials is None:
            return JSON_HEADERS
        if self._token is None:
            self._token = await self._authenticate(*self._credentials)
        return Headers(
            {b"Content-Type": [b"application/json"], b"Authorization": [self._token.encode()]}
        )

    async def _authenticate(self, user: str, password: str) -> str:
        what = f"authenticate as {user!r}"
        body = json_body(name=user, password=password)
        status, content = await self._exchange("/v3/auth/authenticate", body, JSON_HEADERS, what)
        if status != 200:
            raise error_for(self.endpoint, status, content, what)
        token = self._decode(content, AuthenticateResponse, what).token
        if not token:
            raise KVError(f"etcd {self.endpoint}: {what}: no token (is auth enabled?)")
        return token

    async def _post(
        self,
        path: str,
        body: bytes,
        headers: Headers,
        *,
        unbuffered: bool = False,
        open_within: float | None = None,
    ) -> IResponse:
        return await self._http.post(
            self._base + path,
            data=body,
            headers=headers,
            unbuffered=unbuffered,
            timeout=open_within,
            # treq types its reactor argument with a private interface (TCP + time + name
            # resolution) that every real reactor, and so every IServerReactor, provides.
            reactor=self._reactor,  # type: ignore[arg-type]
        )

    async def _exchange(
        self, path: str, body: bytes, headers: Headers, what: str
    ) -> tuple[int, bytes]:
        try:
            response = await self._post(path, body, headers)
            return response.code, await treq.content(response)
        except ResponseNeverReceived as exc:
            if path in REPEATABLE and _stale(exc):
                raise _StaleConnection() from None
            raise KVUnavailable(f"etcd {self.endpoint}: {what}: {describe(exc)}") from None
        except NETWORK_ERRORS as exc:
            raise KVUnavailable(f"etcd {self.endpoint}: {what}: {describe(exc)}") from None

    async def _call(self, path: str, body: bytes, kind: type[M], what: str) -> M:
        try:
            status, content = await self._exchange(path, body, await self._headers(), what)
        except _StaleConnection:
            try:
                status, content = await self._exchange(path, body, await self._headers(), what)
            except _StaleConnection:
                raise KVUnavailable(
                    f"etcd {self.endpoint}: {what}: connection closed before an answer"
                ) from None
        if status != 200 and self._credentials is not None and invalid_token(content):
            self._token = None  # expired: once more with a new token
            status, content = await self._exchange(path, body, await self._headers(), what)
        if status != 200:
            raise error_for(self.endpoint, status, content, what)
        return self._decode(content, kind, what)

    def _decode(self, content: bytes, kind: type[M], what: str) -> M:
        try:
            return decode(content, kind)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise KVUnavailable(
                f"etcd {self.endpoint}: {what}: unexpected answer ({exc})"
            ) from None

    def _timed(self, call: Coroutine[Any, Any, T], what: str) -> Deferred[T]:
        def timed_out(result: object, timeout: float) -> Failure:
            # whatever the cancelled call ended with, the cause is the missing answer
            return Failure(
                KVUnavailable(f"etcd {self.endpoint}: {what}: no answer within {timeout:g} s")
            )

        d = Deferred.fromCoroutine(call)
        d.addTimeout(self._timeout, self._reactor, onTimeoutCancel=timed_out)
        return d
