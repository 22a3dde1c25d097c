"""The route dictionary: reference numbering, version and the two-way lookup."""

from __future__ import annotations

import base64
import hashlib

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import RouteDictionary

HANDLER_ROUTES = [
    "chat.chatHandler.join",
    "chat.chatHandler.send",
    "connector.entryHandler.echo",
    "connector.entryHandler.entry",
    "connector.entryHandler.fail",
    "connector.entryHandler.kick",
]
MEASURED_VERSION = "fsNMsnzHVOJ0va8RT2nptw=="


def reference_dictionary() -> RouteDictionary:
    """The dictionary of the measured chat app (PROTOCOL.md section 4)."""
    return RouteDictionary.from_routes(reversed(HANDLER_ROUTES), ["onChat"])


class NumberingTests(SynchronousTestCase):
    """from_routes numbers sorted handler routes from 1, then the extra routes in order."""

    def test_reference_numbering(self) -> None:
        """The six handler routes get 1..6 in sorted order, onChat gets 7."""
        expected = {route: i for i, route in enumerate(HANDLER_ROUTES, 1)}
        expected["onChat"] = 7
        dictionary = reference_dictionary()
        self.assertEqual(dictionary.route_to_code(), expected)
        self.assertEqual(list(dictionary.route_to_code()), [*HANDLER_ROUTES, "onChat"])

    def test_handler_routes_sorted_as_strings(self) -> None:
        """Handler routes are sorted by code point (upper case before lower case)."""
        dictionary = RouteDictionary.from_routes(["b.x.y", "a.z.z", "B.q.q"])
        self.assertEqual(dictionary.route_to_code(), {"B.q.q": 1, "a.z.z": 2, "b.x.y": 3})

    def test_extra_routes_keep_their_order(self) -> None:
        """Extra routes are numbered on in the order given, not sorted."""
        dictionary = RouteDictionary.from_routes(["a.b.c"], ["onZ", "onA", "onM"])
        self.assertEqual(dictionary.route_to_code(), {"a.b.c": 1, "onZ": 2, "onA": 3, "onM": 4})

    def test_duplicates_numbered_once(self) -> None:
        """A route listed twice, or both as handler and extra route, keeps its first code."""
        dictionary = RouteDictionary.from_routes(["a.b.c", "a.b.c", "a.b.d"], ["a.b.c", "onX"])
        self.assertEqual(dictionary.route_to_code(), {"a.b.c": 1, "a.b.d": 2, "onX": 3})

    def test_too_many_routes(self) -> None:
        """More routes than 2-byte codes can number raise ValueError."""
        routes = [f"r{i:05d}" for i in range(65536)]
        self.assertRaises(ValueError, RouteDictionary.from_routes, routes)
        self.assertEqual(len(RouteDictionary.from_routes(routes[:-1])), 65535)


class VersionTests(SynchronousTestCase):
    """The version is the base64 MD5 of the dictionary's JSON.stringify form."""

    def test_measured_version(self) -> None:
        """The reference chat dictionary has version fsNMsnzHVOJ0va8RT2nptw== (measured)."""
        self.assertEqual(reference_dictionary().version, MEASURED_VERSION)

    def test_version_is_md5_of_compact_utf8_json(self) -> None:
        """Non-ASCII routes are hashed as raw UTF-8, as JSON.stringify leaves them."""
        text = '{"é.b.c":1,"q\\"x":2}'
        expected = base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode()
        self.assertEqual(RouteDictionary({"é.b.c": 1, 'q"x': 2}).version, expected)

    def test_version_depends_on_codes(self) -> None:
        """Two dictionaries with the same routes but other codes have other versions."""
        self.assertNotEqual(
            RouteDictionary({"a": 1, "b": 2}).version, RouteDictionary({"a": 2, "b": 1}).version
        )


class LookupTests(SynchronousTestCase):
    """code_of, route_of and the two exported maps."""

    def test_lookups(self) -> None:
        """Known routes and codes map both ways; unknown ones give 0 and None."""
        dictionary = reference_dictionary()
        self.assertEqual(dictionary.code_of("onChat"), 7)
        self.assertEqual(dictionary.route_of(3), "connector.entryHandler.echo")
        self.assertEqual(dictionary.code_of("no.such.route"), 0)
        self.assertIsNone(dictionary.route_of(8))
        self.assertIsNone(dictionary.route_of(0))

    def test_code_to_route_has_string_keys(self) -> None:
        """code_to_route() keys are strings, as pomelo 2.x sends codeToRoute."""
        self.assertEqual(
            RouteDictionary({"a.b.c": 1, "onX": 2}).code_to_route(), {"1": "a.b.c", "2": "onX"}
        )

    def test_maps_are_copies(self) -> None:
        """Mutating an exported map does not change the dictionary."""
        dictionary = RouteDictionary({"a.b.c": 1})
        dictionary.route_to_code()["x"] = 2
        dictionary.code_to_route()["2"] = "x"
        self.assertEqual(len(dictionary), 1)
        self.assertNotIn("x", dictionary)

    def test_container_protocol(self) -> None:
        """len, in, == and hash follow the route → code mapping."""
        a = RouteDictionary({"a.b.c": 1, "onX": 2})
        b = RouteDictionary.from_routes(["a.b.c"], ["onX"])
        self.assertEqual(len(a), 2)
        self.assertIn("onX", a)
        self.assertNotIn(1, a)
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertNotEqual(a, RouteDictionary({"a.b.c": 1}))
        self.assertNotEqual(a, {"a.b.c": 1, "onX": 2})
        self.assertIn("version=", repr(a))

    def test_invalid_codes_refused(self) -> None:
        """Codes outside 1..65535, non-integer codes and shared codes raise ValueError."""
        for bad in ({"a": 0}, {"a": 65536}, {"a": -1}, {"a": True}, {"a": 1.0}, {"a": "1"}):
            self.assertRaises(ValueError, RouteDictionary, bad)
        self.assertRaises(ValueError, RouteDictionary, {"a": 1, "b": 1})
        self.assertEqual(RouteDictionary({"a": 65535}).route_of(65535), "a")
