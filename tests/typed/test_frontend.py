"""A typed forwarded route is checked at the frontend: an invalid body is answered 400
naming the field and never reaches the backend (in-process RPC on a Clock)."""

from __future__ import annotations

from typing import Any

import msgspec
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.app.application import Application
from pomelo_twisted.app.typedroutes import request_validators
from pomelo_twisted.rpc import LocalRpcTransport

from ..app.test_forward import CHAT, ChatHandler, ForwardCase, decoded


class Say(msgspec.Struct):
    rid: str
    content: str


class TypedChat(ChatHandler):
    """The forward tests' chat handler with one typed route, counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.said = 0

    def say(self, session: Any, msg: Say) -> dict[str, Any]:
        self.said += 1
        return {"code": 200, "rid": msg.rid}


class TypedForwardTests(ForwardCase):
    """The frontend knows the typed routes of the chat server type."""

    def setUp(self) -> None:
        super().setUp()
        self.typed = TypedChat()
        self.chat.register_handler(self.typed, "typedChat")
        self.frontend.validators = request_validators(self.chat.handlers, None, [])

    def test_valid_request_forwarded(self) -> None:
        """A valid body is forwarded and answered by the backend."""
        answer = self.request("chat.typedChat.say", b'{"rid":"r","content":"hi"}')
        self.assertEqual(decoded(answer), {"code": 200, "rid": "r"})
        self.assertEqual(self.typed.said, 1)

    def test_wrong_type_is_400_and_backend_not_called(self) -> None:
        """A field of the wrong type is answered 400 naming it; the backend counts 0 calls."""
        answer = self.request("chat.typedChat.say", b'{"rid":1,"content":"hi"}')
        self.assertEqual(
            answer, {"code": 400, "msg": "invalid field $.rid: Expected `str`, got `int`"}
        )
        self.assertEqual((self.typed.said, self.calls), (0, []))

    def test_missing_field_is_400(self) -> None:
        """A missing field is answered 400 naming it; nothing is forwarded."""
        answer = self.request("chat.typedChat.say", b'{"rid":"r"}')
        self.assertEqual(
            answer, {"code": 400, "msg": "invalid field $.content: required field missing"}
        )
        self.assertEqual(self.calls, [])

    def test_invalid_notify_dropped(self) -> None:
        """An invalid notify of a typed route is not forwarded."""
        self.assertIsNone(self.request("chat.typedChat.say", b"{}", notify=True))
        self.assertEqual(self.calls, [])

    def test_untyped_route_unchecked(self) -> None:
        """An untyped route is forwarded as before, whatever its body."""
        answer = self.request("chat.chatHandler.echo", b"[1]")
        self.assertEqual(decoded(answer), {"echo": [1], "room": None})

    def test_game_folder_routes(self) -> None:
        """From the example game folder the frontend knows chat.chatHandler.send."""
        from .test_declaration import GAME

        found = request_validators(self.connector.handlers, GAME, ["connector", "chat"])
        self.assertIn("chat.chatHandler.send", found)


class ResponseChecksTests(SynchronousTestCase):
    """Development mode checks typed responses; production does not."""

    def app(self, env: str) -> Application:
        clock = Clock()
        return Application(
            CHAT, reactor=clock, rpc=LocalRpcTransport(clock), servers={"chat": [CHAT]}, env=env
        )

    def test_by_env(self) -> None:
        """An Application's handler registry checks responses only in development."""
        self.assertTrue(self.app("development").handlers.validate_responses)
        self.assertFalse(self.app("production").handlers.validate_responses)
