"""The package layer: encode_package and the incremental PackageDecoder."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    DEFAULT_MAX_PACKET_SIZE,
    BadPackageType,
    ConnectionState,
    Heartbeat,
    Package,
    PackageDecoder,
    PackageTooLarge,
    PackageType,
    RemoteProtocolError,
    encode_package,
)
from pomelo_twisted.protocol.packet import MAX_BODY_LENGTH

from .test_helpers import (
    HEARTBEAT_PACKAGE,
    NEXT_PACKAGE,
    assert_connection_refuses,
    assert_decodes,
    assert_package_refused,
    package_stream,
    server_in,
)

KICK_X = bytes.fromhex("0500000e7b22726561736f6e223a2278227d")  # kick {"reason":"x"}


class EncodePackageTests(SynchronousTestCase):
    """encode_package frames a body behind a type byte and a 3-byte big-endian length."""

    def test_header_layout(self) -> None:
        """The length is 24-bit big-endian and the body follows verbatim."""
        body = bytes(range(256)) * 2 + b"xyz"  # 515 = 0x000203 bytes
        self.assertEqual(encode_package(PackageType.DATA, body), b"\x04\x00\x02\x03" + body)

    def test_empty_body(self) -> None:
        """A package without body is its 4-byte header with length 0."""
        self.assertEqual(encode_package(PackageType.HANDSHAKE_ACK), bytes.fromhex("02000000"))
        self.assertEqual(encode_package(PackageType.HEARTBEAT, b""), bytes.fromhex("03000000"))

    def test_maximum_length(self) -> None:
        """A body of 0xFFFFFF bytes fits; one more byte raises ValueError."""
        body = bytes(MAX_BODY_LENGTH)
        self.assertEqual(encode_package(PackageType.DATA, body)[:4], b"\x04\xff\xff\xff")
        self.assertRaises(ValueError, encode_package, PackageType.DATA, body + b"\x00")


class DecoderFactsTests(SynchronousTestCase):
    """The decoder-side facts of PROTOCOL.md section 11, plus our stricter header checks."""

    def test_heartbeat_and_kick_concatenated(self) -> None:
        """A heartbeat then a kick in one buffer decode to two packages."""
        assert_decodes(
            self,
            package_stream,
            HEARTBEAT_PACKAGE + KICK_X,
            [Package(PackageType.HEARTBEAT, b""), Package(PackageType.KICK, b'{"reason":"x"}')],
            next_expected=[Package(PackageType.DATA, NEXT_PACKAGE[4:])],
        )

    def test_declared_length_beyond_buffer_waits(self) -> None:
        """Length 64 with 3 body bytes returns nothing and keeps all 7 bytes buffered."""
        assert_decodes(self, package_stream, bytes.fromhex("04000040414141"), [], pending=7)

    def test_declared_length_completed_later(self) -> None:
        """The waiting package is returned once its 64th body byte arrives."""
        decoder = PackageDecoder()
        self.assertEqual(decoder.feed(bytes.fromhex("04000040414141")), [])
        self.assertEqual(decoder.feed(b"A" * 60), [])
        self.assertEqual(decoder.feed(b"A"), [Package(PackageType.DATA, b"A" * 64)])
        self.assertEqual(decoder.buffered, 0)

    def test_type_9_refused(self) -> None:
        """A header with type 9 raises BadPackageType as soon as its 4 bytes arrive."""
        exc = assert_package_refused(
            self, package_stream, bytes.fromhex("09000000"), BadPackageType
        )
        self.assertEqual(exc.package_type, 9)
        self.assertEqual(exc.culprit, "remote")

    def test_type_0_and_255_refused(self) -> None:
        """Types 0 and 6..255 are refused like type 9."""
        for ptype in (0, 6, 0x7F, 0xFF):
            assert_package_refused(self, package_stream, bytes((ptype, 0, 0, 0)), BadPackageType)

    def test_bad_type_at_connection_level(self) -> None:
        """A connection reports a bad type header as a ProtocolViolation and closes."""
        assert_connection_refuses(
            self,
            lambda: server_in(ConnectionState.WORKING),
            bytes.fromhex("09000000"),
            BadPackageType,
        )

    def test_decoder_unusable_after_error(self) -> None:
        """After a protocol error the decoder drops its buffer and refuses further input."""
        decoder = PackageDecoder()
        self.assertRaises(BadPackageType, decoder.feed, bytes.fromhex("09000000"))
        self.assertEqual(decoder.buffered, 0)
        self.assertRaises(RuntimeError, decoder.feed, HEARTBEAT_PACKAGE)

    def test_packages_before_bad_header_returned_first(self) -> None:
        """Packages ahead of a bad header in one chunk are returned; the next feed raises."""
        decoder = PackageDecoder()
        self.assertEqual(
            decoder.feed(HEARTBEAT_PACKAGE + bytes.fromhex("09000000")),
            [Package(PackageType.HEARTBEAT)],
        )
        self.assertRaises(BadPackageType, decoder.feed, b"")

    def test_packages_before_bad_header_reach_the_connection(self) -> None:
        """A connection reports the packages ahead of a bad header, then the violation."""
        assert_connection_refuses(
            self,
            lambda: server_in(ConnectionState.WORKING),
            HEARTBEAT_PACKAGE * 2 + bytes.fromhex("09000000"),
            BadPackageType,
            before=[Heartbeat(), Heartbeat()],
        )


class OversizeTests(SynchronousTestCase):
    """A declared length over the limit is refused at the header, before any body byte."""

    def test_over_limit_refused_at_header(self) -> None:
        """With a 16-byte limit, a header declaring 17 raises PackageTooLarge on its own."""
        exc = assert_package_refused(
            self, lambda: package_stream(16), bytes.fromhex("04000011"), PackageTooLarge
        )
        self.assertEqual((exc.length, exc.limit), (17, 16))

    def test_limit_itself_accepted(self) -> None:
        """A body of exactly the limit is accepted."""
        data = encode_package(PackageType.DATA, b"\x02\x00" + b"x" * 14)
        assert_decodes(
            self, lambda: package_stream(16), data, [Package(PackageType.DATA, data[4:])]
        )

    def test_default_limit_is_64_kib(self) -> None:
        """The default limit is 65536 body bytes: 65536 waits, 65537 is refused at the header."""
        self.assertEqual(DEFAULT_MAX_PACKET_SIZE, 65536)
        assert_decodes(self, package_stream, bytes.fromhex("04010000"), [], pending=4)
        assert_package_refused(self, package_stream, bytes.fromhex("04010001"), PackageTooLarge)

    def test_maximum_header_refused(self) -> None:
        """A header declaring 0xFFFFFF is refused without allocating anything."""
        decoder = PackageDecoder()
        self.assertRaises(PackageTooLarge, decoder.feed, bytes.fromhex("04ffffff"))
        self.assertEqual(decoder.buffered, 0)

    def test_oversize_at_connection_level(self) -> None:
        """A connection reports an oversized header as a ProtocolViolation, before any body."""
        assert_connection_refuses(
            self,
            lambda: server_in(ConnectionState.WORKING, max_packet_size=64),
            bytes.fromhex("04000041"),
            PackageTooLarge,
        )
        assert_connection_refuses(
            self,
            lambda: server_in(ConnectionState.INITIAL),
            bytes.fromhex("01ffffff"),
            PackageTooLarge,
        )

    def test_limit_bounds(self) -> None:
        """The limit must lie within 0..0xFFFFFF."""
        self.assertRaises(ValueError, PackageDecoder, -1)
        self.assertRaises(ValueError, PackageDecoder, MAX_BODY_LENGTH + 1)
        self.assertEqual(PackageDecoder(MAX_BODY_LENGTH).max_body_size, MAX_BODY_LENGTH)

    def test_errors_are_remote(self) -> None:
        """Both header errors are RemoteProtocolErrors naming the remote culprit."""
        self.assertTrue(issubclass(BadPackageType, RemoteProtocolError))
        self.assertTrue(issubclass(PackageTooLarge, RemoteProtocolError))
        self.assertEqual(PackageTooLarge(17, 16).culprit, "remote")


packages_strategy = st.lists(
    st.builds(
        Package,
        st.sampled_from(list(PackageType)),
        st.binary(max_size=3 * 1024),
    ),
    min_size=1,
    max_size=6,
)


class PackageRoundTripTests(SynchronousTestCase):
    """Property tests: whatever is encoded decodes back, however the stream is split."""

    @settings(max_examples=200, deadline=None, database=None)
    @given(package=st.builds(Package, st.sampled_from(list(PackageType)), st.binary(max_size=4096)))
    def test_single_package_round_trip(self, package: Package) -> None:
        """One encoded package decodes to itself, fed whole."""
        data = encode_package(package.type, package.body)
        self.assertEqual(len(data), 4 + len(package.body))
        decoder = PackageDecoder()
        self.assertEqual(decoder.feed(data), [package])
        self.assertEqual(decoder.buffered, 0)

    @settings(max_examples=200, deadline=None, database=None)
    @given(packages=packages_strategy, data=st.data())
    def test_random_chunking(self, packages: list[Package], data: st.DataObject) -> None:
        """Several packages concatenated and cut at random points decode to the same list."""
        stream = b"".join(encode_package(p.type, p.body) for p in packages)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts"))
        decoder = PackageDecoder()
        got: list[Package] = []
        start = 0
        for cut in [*cuts, len(stream)]:
            got.extend(decoder.feed(stream[start:cut]))
            start = cut
        self.assertEqual(got, packages)
        self.assertEqual(decoder.buffered, 0)
