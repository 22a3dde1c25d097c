"""Drive pypomelo 1.0.1 (unmodified, its TornadoClient) through one chat session.

Run as a program: ``python pypomelo_session.py HOST PORT UID RID``. Each step prints one
JSON line (``{"step": ..., ...}``) as it happens; the process exits 0 once it has both
the answer to ``send`` and the ``onChat`` push of its own message, 1 on a disconnect, an
error or after TIMEOUT seconds (the test reads the lines and reports the last step
reached). pypomelo's TornadoClient uses Tornado's callback API, which Tornado 6 removed:
the test extras pin Tornado 5.1.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

TIMEOUT = 20.0
ENTRY = "connector.entryHandler.entry"
JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"


def say(step: str, **fields: Any) -> None:
    """One JSON line on stdout, flushed."""
    print(json.dumps({"step": step, **fields}), flush=True)


def main(host: str, port: int, uid: str, rid: str) -> int:
    """Run the session on Tornado's IOLoop; the exit code says whether it completed."""
    from pypomelo.tornadoclient import TornadoClient
    from tornado.ioloop import IOLoop

    loop = IOLoop.current()
    outcome = {"code": 1}
    awaited = {"send", "push"}

    def reached(step: str) -> None:
        awaited.discard(step)
        if not awaited:
            finish(0)

    def finish(code: int) -> None:
        if "done" not in outcome:  # the first outcome stands
            outcome.update(code=code, done=1)
            loop.stop()

    class Session:
        """pypomelo's handler interface (on_connected, on_response, on_push, ...)."""

        def on_recv_data(self, client: Any, proto_type: int, data: bytes) -> bytes:
            return data

        def on_connected(self, client: Any, user_data: Any) -> None:
            say("connected", dictionary=client.code_to_route is not None)
            client.send_request(ENTRY, {"uid": uid, "rid": rid}, self.entered)

        def entered(self, client: Any, route: str, request: Any, body: Any) -> None:
            say("entry", body=body)
            client.send_request(JOIN, {"rid": rid}, self.joined)

        def joined(self, client: Any, route: str, request: Any, body: Any) -> None:
            say("join", body=body)
            client.send_request(SEND, {"rid": rid, "content": "hello from pypomelo"}, self.sent)

        def sent(self, client: Any, route: str, request: Any, body: Any) -> None:
            say("send", body=body)
            reached("send")

        def on_heartbeat(self, client: Any) -> None:
            pass

        def on_response(self, client: Any, route: str, request: Any, body: Any) -> None:
            say("unexpected-response", route=route, body=body)

        def on_push(self, client: Any, route: str, body: Any) -> None:
            say("push", route=route, body=body)
            if route == "onChat" and body.get("from") == uid:
                reached("push")

        def on_disconnect(self, client: Any) -> None:
            say("disconnected")
            finish(1)

    def failed(exc_type: Any, value: Any, tb: Any) -> None:
        say("error", error=repr(value), traceback="".join(traceback.format_tb(tb)))
        finish(1)

    client = TornadoClient(Session())

    def guarded(callback: Any) -> Any:
        def run(*args: Any) -> Any:
            try:
                return callback(*args)
            except Exception:
                failed(*sys.exc_info())
                return None

        return run

    # pypomelo's own callbacks raise inside Tornado's stream callbacks, where Tornado logs
    # and closes the stream; wrapping its entry points reports the exception itself.
    client.on_body = guarded(client.on_body)  # type: ignore[method-assign]
    loop.call_later(TIMEOUT, lambda: (say("timeout"), finish(1)))
    client.connect(host, port)
    loop.start()
    client.close()
    return outcome["code"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
