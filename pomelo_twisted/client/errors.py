"""Errors of the Pomelo client.

Every error the client raises or errbacks on purpose derives from :class:`ClientError`
(itself a :class:`~pomelo_twisted.errors.PomeloError`, hence an :class:`Exception`).
"""

from __future__ import annotations

from pomelo_twisted.errors import PomeloError

__all__ = [
    "ClientError",
    "ConnectTimeout",
    "ConnectionClosed",
    "HandshakeRejected",
    "HandshakeTimeout",
    "RequestTimeout",
]


class ClientError(PomeloError):
    """Base class of the errors of :mod:`pomelo_twisted.client`."""


class ConnectTimeout(ClientError):
    """The transport connection to ``target`` was not established within ``seconds``."""

    def __init__(self, target: str, seconds: float) -> None:
        super().__init__(f"connecting to {target} timed out after {seconds:g} s")
        self.target = target
        self.seconds = seconds


class HandshakeTimeout(ClientError):
    """The server did not complete the handshake within ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"handshake not completed within {seconds:g} s")
        self.seconds = seconds


class HandshakeRejected(ClientError):
    """The server answered the handshake with ``code`` other than 200 (and maybe ``msg``)."""

    def __init__(self, code: int, msg: str | None = None) -> None:
        text = f"handshake rejected by the server with code {code}"
        super().__init__(f"{text}: {msg}" if msg else text)
        self.code = code
        self.msg = msg


class RequestTimeout(ClientError):
    """No response to request ``id`` on ``route`` arrived within ``seconds``."""

    def __init__(self, route: str, id: int, seconds: float) -> None:
        super().__init__(f"request {id} to {route!r} got no response within {seconds:g} s")
        self.route = route
        self.id = id
        self.seconds = seconds


class ConnectionClosed(ClientError):
    """The connection ended (for ``reason``) before the operation could complete."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"connection closed: {reason}")
        self.reason = reason
