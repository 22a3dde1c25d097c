"""Compiled validators of typed routes: the frontend's check of a request body before it
is forwarded, and the backend's conversion of a body into the declared Struct.

msgspec builds one decoder per Struct, once; checking a JSON or msgpack body is one
C call over the bytes the client sent (no Python object per field is made for an
untyped route, which is never looked at: its route has no validator).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import msgspec
from twisted.internet.defer import Deferred

from ..errors import BadRequest, HandlerError
from .declaration import RouteTypes, typed_methods

__all__ = ["RequestValidator", "TypedCall", "invalid_request", "validators_of"]


def invalid_request(error: msgspec.ValidationError | msgspec.DecodeError) -> BadRequest:
    """The 400 answering a body that does not match its route's request type, naming
    the field first: ``invalid field $.rid: Expected `str`, got `int```."""
    text = str(error)
    reason, sep, where = text.rpartition(" - at `")
    if sep:
        return BadRequest(f"invalid field {where.rstrip('`')}: {reason}")
    if text.startswith("Object missing required field `"):
        name = text[len("Object missing required field `") :].rstrip("`")
        return BadRequest(f"invalid field $.{name}: required field missing")
    return BadRequest(f"invalid request: {text}")


class RequestValidator:
    """Checks the encoded body of one route against its request Struct."""

    def __init__(self, route: str, request: type[msgspec.Struct]) -> None:
        self.route = route
        self.request = request
        self._json = msgspec.json.Decoder(request)
        self._msgpack = msgspec.msgpack.Decoder(request)

    def check(self, body: bytes, serializer: str) -> None:
        """Raise :class:`~pomelo_twisted.errors.BadRequest` (400) naming the field when
        ``body`` (encoded with ``serializer``) is not a valid request; other serializers
        than json and msgpack are checked by the backend."""
        if serializer == "json":
            decoder: msgspec.json.Decoder[Any] | msgspec.msgpack.Decoder[Any] = self._json
            if not body:
                body = b"{}"
        elif serializer == "msgpack":
            decoder = self._msgpack
        else:
            return
        try:
            decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise invalid_request(exc) from None


def validators_of(
    handlers: Iterable[tuple[str, type, Iterable[str]]],
) -> dict[str, RequestValidator]:
    """``route -> RequestValidator`` of every typed request among ``handlers``:
    ``("<type>.<handler>", class, its route methods)``."""
    found: dict[str, RequestValidator] = {}
    for prefix, cls, methods in handlers:
        for method, types in typed_methods(cls, methods).items():
            if types.request is not None:
                route = f"{prefix}.{method}"
                found[route] = RequestValidator(route, types.request)
    return found


class TypedCall:
    """A typed handler method as the dispatcher calls it: ``(session, msg)`` with the
    decoded body converted to the request Struct (400 naming the field when it does not
    fit), a Struct result turned into plain data; with ``check_response`` (development
    mode) a result that does not fit the response type is a 500 naming the route."""

    def __init__(
        self,
        route: str,
        method: Callable[..., Any],
        types: RouteTypes,
        check_response: bool = False,
    ) -> None:
        self.route = route
        self.method = method
        self.types = types
        self.check_response = check_response and types.response is not None

    def __call__(self, session: object, msg: object) -> Any:
        request = self.types.request
        if request is not None:
            try:
                msg = msgspec.convert({} if msg is None else msg, request)
            except msgspec.ValidationError as exc:
                raise invalid_request(exc) from None
        result = self.method(session, msg)
        if isinstance(result, Deferred):
            return result.addCallback(self.response)
        if isinstance(result, Coroutine):
            return self._awaited(result)
        return self.response(result)

    async def _awaited(self, result: Coroutine[Any, Any, Any]) -> Any:
        return self.response(await result)

    def response(self, result: object) -> object:
        """``result`` as plain data, checked against the response type when asked."""
        response = self.types.response
        if self.check_response and response is not None and not isinstance(result, response):
            try:
                msgspec.convert(result, response)
            except msgspec.ValidationError as exc:
                raise HandlerError(
                    500, f"{self.route} answered outside its {response.__name__}: {exc}"
                ) from None
        if isinstance(result, msgspec.Struct):
            return msgspec.to_builtins(result)
        return result
