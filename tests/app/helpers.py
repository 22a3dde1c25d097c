"""Shared pieces of the application tests: game folders, wire capture, RPC call counting."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    Message,
    MessageType,
    PackageDecoder,
    PackageType,
    decode_message,
)
from pomelo_twisted.testing import GameConnection, GameHarness

EXAMPLE_GAME = Path(__file__).resolve().parents[2] / "example_game"
TWOFRONT = Path(__file__).resolve().parent / "games" / "twofront"


def start_game(test: SynchronousTestCase, base_dir: Path, **kwargs: Any) -> GameHarness:
    """A started harness, stopped when the test ends."""
    game = GameHarness(base_dir, **kwargs)
    test.addCleanup(game.stop)
    return game


class WireCapture:
    """Every package the server sends to one client, as the client receives it."""

    def __init__(self, conn: GameConnection) -> None:
        self.raw: list[bytes] = []
        self.packages: list[tuple[PackageType, bytes]] = []
        self._decoder = PackageDecoder()
        protocol = conn.pump.client
        original = protocol.dataReceived

        def data_received(data: bytes) -> None:
            self.raw.append(data)
            for package in self._decoder.feed(data):
                self.packages.append((package.type, package.body))
            original(data)

        protocol.dataReceived = data_received

    def messages(self) -> list[Message]:
        """The data packages, decoded (routes of pushes may be compressed)."""
        return [decode_message(body) for kind, body in self.packages if kind is PackageType.DATA]

    def of_type(self, msg_type: MessageType) -> list[Message]:
        """The data messages of one type."""
        return [m for m in self.messages() if m.type is msg_type]


class RpcCounter:
    """Wraps a transport's ``call`` to record every call as (server, service, method)."""

    def __init__(self, transport: Any) -> None:
        self.calls: list[tuple[str, str, str, list[Any]]] = []
        original = transport.call

        def call(
            server_id: str, service: str, method: str, args: tuple[Any, ...], timeout: float
        ) -> Any:
            self.calls.append((server_id, service, method, list(args)))
            return original(server_id, service, method, args, timeout)

        transport.call = call

    def counts(self) -> Counter[tuple[str, str, str]]:
        """How many calls went to each (server, service, method)."""
        return Counter((server, service, method) for server, service, method, _ in self.calls)

    def clear(self) -> None:
        """Forget the calls recorded so far."""
        self.calls.clear()
