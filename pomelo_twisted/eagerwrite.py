"""Write to a TCP socket at once when nothing is queued, as libuv does.

Twisted's ``transport.write`` never sends right away: it queues the bytes, asks
the reactor to watch the socket for writability (an ``epoll_ctl``), sends on the
next loop iteration and stops watching again (another ``epoll_ctl``). For a game
server, where nearly every write is a small response or push to a socket whose
kernel buffer is empty, that is three system calls and a trip through the reactor
where one ``send`` would do. Node (libuv) tries the write at once; so do we.

Only a plain Twisted TCP connection (:class:`twisted.internet.tcp.Connection`,
not switched to TLS by ``startTLS``) qualifies; TLS endpoints (whose transport is
a TLS protocol wrapper), in-memory and other transports keep ``transport.write``. When
Twisted already holds unsent bytes, when the connection is closing, or when the
kernel takes only part of the data, what is left goes through ``transport.write``
so the order of the bytes and Twisted's flow control (producers, the closing
handshake) are untouched; what Twisted holds is read by
:func:`pomelo_twisted.compat.tcp_nothing_queued` (private attributes of Twisted). A
send error is not handled here: the bytes are handed to Twisted, whose own write
attempt then finds and reports the lost connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import tcp

from .compat import tcp_nothing_queued

__all__ = ["socket_send", "write_eagerly"]

Send = Callable[[bytes], int]


def socket_send(transport: object) -> Send | None:
    """The socket's ``send`` when ``transport`` is a plain Twisted TCP connection, else None."""
    if not isinstance(transport, tcp.Connection):
        return None
    sock = getattr(transport, "socket", None)
    send = getattr(sock, "send", None)
    return send if callable(send) else None


def write_eagerly(transport: Any, send: Send | None, data: bytes) -> None:
    """Send ``data`` now if nothing is queued before it; hand the rest to ``transport.write``.

    ``send`` is what :func:`socket_send` returned for ``transport`` (None: always
    ``transport.write``).
    """
    if send is not None and tcp_nothing_queued(transport):
        try:
            sent = send(data)
        except OSError:
            # EAGAIN, or the connection is gone: Twisted's own write finds out which.
            sent = 0
        if sent == len(data):
            return
        if sent:
            data = data[sent:]
    transport.write(data)
