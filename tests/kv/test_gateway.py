"""The sans-I/O parts of the etcd client: URLs, key ranges, errors, the watch stream."""

from __future__ import annotations

import base64

from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import ResponseDone

from pomelo_twisted.kv import (
    CompactedRevision,
    KeyValue,
    KVError,
    KVUnavailable,
    LeaseNotFound,
    WatchEvent,
    parse_etcd_url,
)
from pomelo_twisted.kv.etcd import EtcdKeyValueStore
from pomelo_twisted.kv.etcdwatch import EtcdWatch, WatchStreamDecoder
from pomelo_twisted.kv.gateway import error_for, prefix_range_end

ENDPOINT = "http://127.0.0.1:2379"

# A watch stream as etcd 3.4.23 wrote it: created, then a put, a delete, a put, then a
# put with an empty value (etcd leaves out zero fields: no "type" for PUT, no "value").
STREAM = (
    b'{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"4","raft_term":"2"},'
    b'"created":true}}\n'
    b'{"result":{"header":{"revision":"4"},"events":['
    b'{"kv":{"key":"L2EveA==","create_revision":"2","mod_revision":"2","version":"1",'
    b'"value":"aGk=","lease":"7587"}},'
    b'{"type":"DELETE","kv":{"key":"L2EveA==","mod_revision":"3"}},'
    b'{"kv":{"key":"L2EveA==","create_revision":"4","mod_revision":"4","version":"1",'
    b'"value":"aGk="}}]}}\n'
    b'{"result":{"header":{"revision":"5"},"events":['
    b'{"kv":{"key":"L2EveQ==","create_revision":"5","mod_revision":"5","version":"1"}}]}}\n'
)
EVENTS = [
    WatchEvent("put", KeyValue("/a/x", b"hi", 2, 2, 7587)),
    WatchEvent("delete", KeyValue("/a/x", b"", 3, 3, 0)),
    WatchEvent("put", KeyValue("/a/x", b"hi", 4, 4, 0)),
    WatchEvent("put", KeyValue("/a/y", b"", 5, 5, 0)),
]
COMPACTED = b'{"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"4"}}\n'


class EtcdUrlTests(SynchronousTestCase):
    """parse_etcd_url: etcd://HOST:PORT/PREFIX to an http base URL and a prefix."""

    def test_ipv4(self) -> None:
        """Host, port and prefix are taken as written."""
        self.assertEqual(
            parse_etcd_url("etcd://127.0.0.2:2380/game/dev"), ("http://127.0.0.2:2380", "/game/dev")
        )

    def test_ipv6(self) -> None:
        """An IPv6 host keeps its brackets in the base URL."""
        self.assertEqual(parse_etcd_url("etcd://[::1]:2379/p"), ("http://[::1]:2379", "/p"))

    def test_defaults(self) -> None:
        """The port defaults to 2379 and the prefix to /; etcds:// means https."""
        self.assertEqual(parse_etcd_url("etcd://etcd.local"), ("http://etcd.local:2379", "/"))
        self.assertEqual(parse_etcd_url("etcds://etcd.local/x"), ("https://etcd.local:2379", "/x"))

    def test_rejected(self) -> None:
        """Other schemes, a missing host, a bad port or extras are refused, naming the URL."""
        for url in (
            "http://127.0.0.1:2379/p",
            "etcd:///p",
            "etcd://127.0.0.1:99999/p",
            "etcd://127.0.0.1:2379/p?x=1",
            "etcd://user:pw@127.0.0.1/p",
        ):
            with self.assertRaisesRegex(ValueError, "etcd|port"):
                parse_etcd_url(url)

    def test_client_wants_http(self) -> None:
        """The client takes the http(s) base URL and says how to get one from etcd://."""
        with self.assertRaisesRegex(ValueError, "parse_etcd_url"):
            EtcdKeyValueStore(reactor, "etcd://127.0.0.1:2379/p")
        with self.assertRaisesRegex(ValueError, "HOST:PORT"):
            EtcdKeyValueStore(reactor, "http://127.0.0.1:2379/v3")


class RangeTests(SynchronousTestCase):
    """prefix_range_end: the range_end that covers a prefix."""

    def decoded(self, prefix: str) -> bytes:
        return base64.b64decode(prefix_range_end(prefix))

    def test_prefix(self) -> None:
        """The last byte of the prefix is incremented (UTF-8 bytes, not characters)."""
        self.assertEqual(self.decoded("/a/"), b"/a0")
        self.assertEqual(self.decoded("é"), b"\xc3\xaa")

    def test_everything(self) -> None:
        """The empty prefix covers every key (range_end "\\0")."""
        self.assertEqual(self.decoded(""), b"\0")


class ErrorMappingTests(SynchronousTestCase):
    """error_for: gateway answers to the KVError that names the endpoint and etcd's words."""

    def check(self, status: int, body: bytes, kind: type[KVError], *words: str) -> KVError:
        error = error_for(ENDPOINT, status, body, "put '/k'")
        self.assertIs(type(error), kind)
        for word in (ENDPOINT, "put '/k'", *words):
            self.assertIn(word, str(error))
        return error

    def test_lease_not_found(self) -> None:
        """etcd's "requested lease not found" (code 5) is LeaseNotFound."""
        body = (
            b'{"error":"etcdserver: requested lease not found",'
            b'"message":"etcdserver: requested lease not found","code":5}'
        )
        self.check(404, body, LeaseNotFound, "requested lease not found")

    def test_compacted(self) -> None:
        """A compacted revision (code 11) is CompactedRevision."""
        body = b'{"message":"etcdserver: mvcc: required revision has been compacted","code":11}'
        self.check(400, body, CompactedRevision, "compacted")

    def test_unavailable(self) -> None:
        """A 5xx answer, even without JSON, and the unavailable code are KVUnavailable."""
        self.check(503, b"Service Unavailable", KVUnavailable, "Service Unavailable", "503")
        body = b'{"message":"etcdserver: request timed out","code":14}'
        self.check(503, body, KVUnavailable, "request timed out")

    def test_other_errors(self) -> None:
        """Any other rejection is a plain KVError with etcd's message."""
        body = b'{"message":"etcdserver: key is not provided","code":3}'
        self.check(400, body, KVError, "key is not provided")


class WatchStreamDecoderTests(SynchronousTestCase):
    """WatchStreamDecoder: newline-separated JSON to events, however the bytes are split."""

    def decoder(self) -> WatchStreamDecoder:
        return WatchStreamDecoder(ENDPOINT, "/a/")

    def test_whole(self) -> None:
        """The whole stream at once gives every event in order."""
        decoder = self.decoder()
        self.assertEqual(decoder.feed(STREAM), EVENTS)
        self.assertTrue(decoder.created)

    def test_byte_by_byte(self) -> None:
        """Fed one byte at a time, the same events come out, each when its line ends."""
        decoder = self.decoder()
        events: list[WatchEvent] = []
        for i in range(len(STREAM)):
            events.extend(decoder.feed(STREAM[i : i + 1]))
            if STREAM[i : i + 1] != b"\n":
                self.assertLessEqual(len(events), STREAM[: i + 1].count(b'"kv"'))
        self.assertEqual(events, EVENTS)

    def test_every_split(self) -> None:
        """Split in two at every position, the stream decodes the same."""
        for cut in range(len(STREAM)):
            decoder = self.decoder()
            self.assertEqual(decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]), EVENTS)

    def test_compacted(self) -> None:
        """A cancel for compaction raises CompactedRevision with etcd's compact revision."""
        with self.assertRaises(CompactedRevision) as caught:
            self.decoder().feed(COMPACTED)
        self.assertEqual(caught.exception.compact_revision, 4)
        self.assertIn(ENDPOINT, str(caught.exception))

    def test_stream_error(self) -> None:
        """An error object in the stream raises the KVError it stands for."""
        line = b'{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}}\n'
        with self.assertRaisesRegex(KVUnavailable, "no leader"):
            self.decoder().feed(line)

    def test_garbage(self) -> None:
        """A line that is not a watch message breaks the stream (KVUnavailable)."""
        with self.assertRaisesRegex(KVUnavailable, "bad message"):
            self.decoder().feed(b"<html>\n")

    def test_line_limit(self) -> None:
        """A line longer than max_line breaks the stream instead of growing the buffer."""
        decoder = WatchStreamDecoder(ENDPOINT, "/a/", max_line=100)
        with self.assertRaisesRegex(KVUnavailable, "longer than 100 bytes"):
            decoder.feed(b"x" * 101)


class EtcdWatchProtocolTests(SynchronousTestCase):
    """EtcdWatch as the body protocol of the HTTP response."""

    def setUp(self) -> None:
        self.events: list[WatchEvent] = []
        self.watch = EtcdWatch(ENDPOINT, "/a/", self.events.append)
        self.transport = StringTransport()
        self.watch.makeConnection(self.transport)

    def test_delivers_in_order(self) -> None:
        """Chunks split anywhere are delivered as events in order."""
        for i in range(0, len(STREAM), 7):
            self.watch.dataReceived(STREAM[i : i + 7])
        self.assertEqual(self.events, EVENTS)
        self.assertNoResult(self.watch.done)

    def test_cancel(self) -> None:
        """cancel stops delivery, closes the stream and fires done with None."""
        self.watch.dataReceived(STREAM[:200])
        self.watch.cancel()
        self.assertEqual(self.transport.producerState, "stopped")
        self.assertIsNone(self.successResultOf(self.watch.done))
        self.watch.dataReceived(STREAM[200:])
        self.assertEqual(self.events, [])
        self.watch.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(self.watch.done))
        self.assertIsNone(self.successResultOf(self.watch.closed))

    def test_stream_ends(self) -> None:
        """A stream the server ends breaks the watch: done errbacks KVUnavailable."""
        self.watch.connectionLost(Failure(ResponseDone()))
        failure = self.failureResultOf(self.watch.done, KVUnavailable)
        self.assertIn("watch of '/a/' stream ended", str(failure.value))
        self.successResultOf(self.watch.closed)

    def test_terminal_message(self) -> None:
        """A compaction cancel errbacks done with CompactedRevision and closes the stream."""
        self.watch.dataReceived(COMPACTED)
        self.failureResultOf(self.watch.done, CompactedRevision)
        self.assertEqual(self.transport.producerState, "stopped")

    def test_callback_failure(self) -> None:
        """An on_event that raises is logged; later events still arrive."""
        seen: list[WatchEvent] = []

        def flaky(event: WatchEvent) -> None:
            seen.append(event)
            if len(seen) == 1:
                raise RuntimeError("bug")

        watch = EtcdWatch(ENDPOINT, "/a/", flaky)
        watch.makeConnection(StringTransport())
        watch.dataReceived(STREAM)
        self.assertEqual(seen, EVENTS)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_cancel_before_response(self) -> None:
        """Cancelled before the response, the request is cancelled; a late body is closed."""
        cancelled: list[bool] = []
        watch = EtcdWatch(ENDPOINT, "/a/", self.events.append)
        watch.attach(lambda: cancelled.append(True))
        watch.cancel()
        self.assertEqual(cancelled, [True])
        self.assertIsNone(self.successResultOf(watch.done))
        late = StringTransport()
        watch.makeConnection(late)
        self.assertEqual(late.producerState, "stopped")
