"""Test doubles for sessions and channels: a fake agent, a counting serializer, a fake rpc."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed

from pomelo_twisted.protocol import RouteDictionary, encode_push
from pomelo_twisted.serializers import JsonSerializer

__all__ = ["CountingSerializer", "FakeAgent", "FakeConnection", "FakeRpc"]


class CountingSerializer:
    """JSON, counting the ``encode`` calls."""

    name = "json"

    def __init__(self) -> None:
        self.encoded = 0
        self._json = JsonSerializer()

    def encode(self, obj: object) -> bytes:
        self.encoded += 1
        return self._json.encode(obj)

    def decode(self, data: bytes) -> object:
        return self._json.decode(data)


class FakeConnection:
    """What a session reads of the agent's protocol connection."""

    def __init__(self, dictionary: RouteDictionary | None = None) -> None:
        self.dictionary = dictionary


class FakeAgent:
    """An agent recording what is pushed, written and kicked."""

    def __init__(
        self,
        sid: int,
        serializer: Any = None,
        dictionary: RouteDictionary | None = None,
    ) -> None:
        self.sid = sid
        self.working = True
        self.serializer = serializer if serializer is not None else JsonSerializer()
        self.connection = FakeConnection(dictionary)
        self.push_format = (self.serializer, dictionary)
        self.pushes: list[tuple[str, object]] = []
        self.written: list[bytes] = []
        self.kicks: list[str] = []
        self.closes: list[str] = []

    def push(self, route: str, msg: object) -> bool:
        if not self.working:
            return False
        self.pushes.append((route, msg))
        return True

    def prepare_push(self, route: str, msg: object) -> bytes:
        return encode_push(route, self.serializer.encode(msg), self.connection.dictionary)

    def push_prepared(self, package: bytes) -> bool:
        if not self.working:
            return False
        self.written.append(package)
        return True

    def kick(self, reason: str = "kick") -> None:
        self.kicks.append(reason)
        self.working = False

    def close(self, reason: str = "server closed") -> None:
        self.closes.append(reason)
        self.working = False


class FakeRpc:
    """``rpc(server_id, service, method, args)``: records calls, answers from ``results``.

    ``results[server_id]`` is the value to answer (True by default); an exception
    instance is answered as a failure; ``raises`` holds servers whose call raises.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, tuple[Any, ...]]] = []
        self.results: dict[str, object] = {}
        self.raises: dict[str, Exception] = {}

    def __call__(
        self, server_id: str, service: str, method: str, args: tuple[Any, ...]
    ) -> Deferred[Any]:
        self.calls.append((server_id, service, method, args))
        if server_id in self.raises:
            raise self.raises[server_id]
        result = self.results.get(server_id, True)
        if isinstance(result, Exception):
            return fail(result)
        return succeed(result)
