"""Typed routes: what a handler method declares, the compiled request checks, and the
conversion around a typed handler method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import BadRequest, ConfigError, HandlerError
from pomelo_twisted.handlers import HandlerRegistry, discover_classes
from pomelo_twisted.typed import (
    RequestValidator,
    TypedCall,
    pushes,
    route_types,
    typed_methods,
    validators_of,
)

GAME = Path(__file__).resolve().parents[2] / "example_game"


class Move(msgspec.Struct):
    x: int
    y: int


class Moved(msgspec.Struct):
    ok: bool
    code: int = 200


class Seen(msgspec.Struct):
    uid: str


class Handler:
    """A handler with typed and untyped routes."""

    @pushes(onSeen=Seen)
    def move(self, session: Any, msg: Move) -> Moved:
        """Move."""
        return Moved(ok=msg.x >= 0)

    def plain(self, session: Any, msg: Any) -> Any:
        return msg

    def lying(self, session: Any, msg: Move) -> Moved:
        return {"ok": "no"}  # type: ignore[return-value]

    async def later(self, session: Any, msg: Move) -> Moved:
        return Moved(ok=True)

    def deferred(self, session: Any, msg: Move) -> Deferred[Moved]:
        return succeed(Moved(ok=False))


class DeclarationTests(SynchronousTestCase):
    """Type hints on a handler method are its declaration."""

    def test_typed_method(self) -> None:
        """Request, response, pushes and docstring are read from the method."""
        types = route_types(Handler, "move")
        assert types is not None
        self.assertIs(types.request, Move)
        self.assertIs(types.response, Moved)
        self.assertEqual(dict(types.pushes), {"onSeen": Seen})
        self.assertEqual(types.doc, "Move.")

    def test_untyped_method(self) -> None:
        """A method without Struct hints declares nothing."""
        self.assertIsNone(route_types(Handler, "plain"))
        self.assertEqual(set(typed_methods(Handler, ["plain", "move"])), {"move"})

    def test_pushes_needs_struct(self) -> None:
        """@pushes refuses a body type that is no Struct, naming the push."""
        with self.assertRaisesRegex(TypeError, "onX"):
            pushes(onX=dict)  # type: ignore[arg-type]

    def test_unresolvable_hint(self) -> None:
        """A hint that cannot be resolved is a ConfigError naming the method."""

        class Broken:
            def go(self, session: Any, msg: Nowhere) -> None:  # type: ignore[name-defined]  # noqa: F821
                pass

        with self.assertRaisesRegex(ConfigError, "Broken.go"):
            route_types(Broken, "go")

    def test_example_chat_send(self) -> None:
        """The example game's chat.chatHandler.send takes rid and content strings."""
        [(_name, cls)] = discover_classes(GAME, "chat", "handler")
        types = route_types(cls, "send")
        assert types is not None and types.request is not None
        fields = msgspec.structs.fields(types.request)
        self.assertEqual([(f.name, f.type) for f in fields], [("rid", str), ("content", str)])
        self.assertIn("onChat", types.pushes)


class ValidatorTests(SynchronousTestCase):
    """The frontend's check of an encoded body."""

    def setUp(self) -> None:
        self.validator = RequestValidator("area.h.move", Move)

    def test_valid(self) -> None:
        """A valid JSON or msgpack body passes."""
        self.validator.check(b'{"x":1,"y":2}', "json")
        self.validator.check(msgspec.msgpack.encode({"x": 1, "y": 2}), "msgpack")

    def test_wrong_type_names_field(self) -> None:
        """A field of the wrong type is a 400 naming the field and the reason."""
        with self.assertRaises(BadRequest) as caught:
            self.validator.check(b'{"x":"1","y":2}', "json")
        self.assertEqual(caught.exception.code, 400)
        self.assertEqual(str(caught.exception.msg), "invalid field $.x: Expected `int`, got `str`")

    def test_missing_field_names_field(self) -> None:
        """A missing field is a 400 naming it."""
        with self.assertRaisesRegex(BadRequest, r"\$\.y: required field missing"):
            self.validator.check(msgspec.msgpack.encode({"x": 1}), "msgpack")

    def test_empty_json_body(self) -> None:
        """An empty JSON body is the empty object (missing fields)."""
        with self.assertRaisesRegex(BadRequest, "required field missing"):
            self.validator.check(b"", "json")

    def test_other_serializer_unchecked(self) -> None:
        """A serializer other than json and msgpack is left to the backend."""
        self.validator.check(b"\x00garbage", "protobuf")

    def test_validators_of(self) -> None:
        """Only routes with a typed request get a validator."""
        found = validators_of([("area.h", Handler, ["move", "plain", "later"])])
        self.assertEqual(sorted(found), ["area.h.later", "area.h.move"])


class TypedCallTests(SynchronousTestCase):
    """A typed handler method as the dispatcher calls it."""

    def call(self, method: str, msg: object, check: bool = False) -> Any:
        types = route_types(Handler, method)
        assert types is not None
        return TypedCall(f"area.h.{method}", getattr(Handler(), method), types, check)(None, msg)

    def test_converts_request_and_response(self) -> None:
        """The body becomes the Struct, the Struct result plain data."""
        self.assertEqual(self.call("move", {"x": 1, "y": 0}), {"ok": True, "code": 200})

    def test_invalid_request(self) -> None:
        """A body that does not fit is a 400 naming the field."""
        with self.assertRaisesRegex(BadRequest, r"\$\.y"):
            self.call("move", {"x": 1, "y": "a"})

    def test_coroutine_and_deferred(self) -> None:
        """Later results are converted when they arrive."""
        d = Deferred.fromCoroutine(self.call("later", {"x": 1, "y": 1}))
        self.assertEqual(self.successResultOf(d), {"ok": True, "code": 200})
        self.assertEqual(
            self.successResultOf(self.call("deferred", {"x": 1, "y": 1})),
            {"ok": False, "code": 200},
        )

    def test_response_checked_in_development(self) -> None:
        """With response checks on, a result outside the response type is a 500 naming the
        route; off, it passes unchanged."""
        self.assertEqual(self.call("lying", {"x": 1, "y": 1}), {"ok": "no"})
        with self.assertRaisesRegex(HandlerError, "area.h.lying answered outside its Moved"):
            self.call("lying", {"x": 1, "y": 1}, check=True)

    def test_registry_wraps_typed_only(self) -> None:
        """The registry hands a typed route out wrapped and an untyped one as it is."""
        registry = HandlerRegistry()
        handler = Handler()
        registry.register("area", "h", handler)
        self.assertIsInstance(registry.lookup("area", "h", "move"), TypedCall)
        self.assertEqual(registry.lookup("area", "h", "plain"), handler.plain)
        registry.validate_responses = True
        with self.assertRaises(HandlerError):
            registry.lookup("area", "h", "lying")(None, {"x": 1, "y": 1})
