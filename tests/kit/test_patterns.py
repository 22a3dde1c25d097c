"""The JSON patterns answers are matched against, and the templates that are sent."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.conformance import match, substitute
from pomelo_twisted.conformance.patterns import MissingVariable, kind_names


class MatchTests(SynchronousTestCase):
    """match()."""

    def test_literals(self) -> None:
        """Literals match equal values; 3 and 3.0 are the same number, True is not 1."""
        self.assertIsNone(match({"code": 200}, {"code": 200.0}, {}))
        self.assertEqual(match({"code": 200}, {"code": 500}, {}), "code: expected 200, got 500")
        self.assertEqual(match(1, True, {}), "the body: expected 1, got true")

    def test_objects_allow_more_keys(self) -> None:
        """An object pattern requires its keys only; ?key may be absent, !key must be."""
        self.assertIsNone(match({"a": 1, "?b": 2}, {"a": 1, "c": 3}, {}))
        self.assertEqual(match({"?b": 2}, {"b": 3}, {}), "b: expected 2, got 3")
        self.assertEqual(match({"a": {"b": 1}}, {"a": {}}, {}), "a.b: missing")
        self.assertEqual(match({"!dict": None}, {"dict": {}}, {}), "dict: must be absent, got {}")
        self.assertEqual(match({"a": 1}, [], {}), "the body: expected an object, got []")

    def test_kinds_and_captures(self) -> None:
        """$KIND matches by kind, $KIND:NAME captures; $error is any value but 200."""
        captured: dict[str, Any] = {}
        pattern = {"sys": {"heartbeat": "$number:hb", "dict": "$object"}, "code": "$int"}
        self.assertIsNone(
            match(pattern, {"code": 200, "sys": {"heartbeat": 2.5, "dict": {}}}, captured)
        )
        self.assertEqual(captured, {"hb": 2.5})
        self.assertEqual(match("$number", "3", {}), 'the body: expected number, got "3"')
        self.assertEqual(
            match({"code": "$error"}, {"code": 200}, {}), "code: expected an error code, got 200"
        )
        self.assertIsNone(match({"code": "$error"}, {"code": "PIT-404"}, {}))
        self.assertEqual(match("$bool", 0, {}), "the body: expected bool, got 0")
        self.assertEqual(
            kind_names(), ["any", "array", "bool", "error", "int", "number", "object", "string"]
        )

    def test_lists_and_unknown_kind(self) -> None:
        """Lists match item by item and by length; an unknown $KIND is a vector error."""
        self.assertIsNone(match([1, "$string"], [1, "x"], {}))
        self.assertEqual(match([1], [1, 2], {}), "the body: expected a list of 1, got [1, 2]")
        self.assertEqual(match([1, 2], [1, 3], {}), "[1]: expected 2, got 3")
        with self.assertRaises(ValueError):
            match("$nosuch", 1, {})


class SubstituteTests(SynchronousTestCase):
    """substitute()."""

    def test_replaces_whole_values(self) -> None:
        """ "${NAME}" becomes the variable's value (any JSON), anywhere in the template."""
        template = {"sys": {"dictVersion": "${v}"}, "list": ["${b}", "x${v}"]}
        self.assertEqual(
            substitute(template, {"v": "abc", "b": {"uid": 1}}),
            {"sys": {"dictVersion": "abc"}, "list": [{"uid": 1}, "x${v}"]},
        )

    def test_missing_variable(self) -> None:
        """A variable the run does not have raises MissingVariable naming it."""
        with self.assertRaises(MissingVariable) as caught:
            substitute(["${resume}"], {})
        self.assertEqual(str(caught.exception), "no value for ${resume}")
