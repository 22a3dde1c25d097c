"""ServerInfo: servers.json entries, and the plain form that crosses between servers."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import LISTEN_BACKLOG, ServerInfo

CONNECTOR = ServerInfo(
    id="connector-1",
    type="connector",
    port=4150,
    client_port=3010,
    frontend=True,
    extra={"auto-restart": True},
)


class ServerInfoTests(SynchronousTestCase):
    """Reading and writing a server's identity."""

    def test_dict_round_trip(self) -> None:
        """from_dict reads to_dict's form back, None values counting as absent."""
        data = CONNECTOR.to_dict()
        self.assertIsNone(data["clientHost"])
        self.assertEqual(ServerInfo.from_dict(data), CONNECTOR)
        chat = ServerInfo(id="chat-1", type="chat", port=4250)
        self.assertEqual(ServerInfo.from_dict(chat.to_dict()), chat)

    def test_type_given_apart(self) -> None:
        """A type given apart wins over the entry's own (the command line's --type)."""
        info = ServerInfo.from_dict({"id": "c-9", "port": 1, "type": "x"}, "chat")
        self.assertEqual((info.id, info.type), ("c-9", "chat"))

    def test_errors_name_the_problem(self) -> None:
        """Not an object, no type, or a bad entry: ConfigError saying which."""
        for data, message in (
            ([1], "must be an object"),
            ({"id": "a"}, "has no type"),
            ({"id": "a", "type": "chat", "port": "x"}, "'port' must be a TCP port"),
        ):
            with self.assertRaises(ConfigError) as caught:
                ServerInfo.from_dict(data)
            self.assertIn(message, str(caught.exception))

    def test_endpoints(self) -> None:
        """Listeners bind the configured host with the listen backlog; peers connect there."""
        self.assertEqual(
            CONNECTOR.client_endpoint, f"tcp:3010:interface=127.0.0.1:backlog={LISTEN_BACKLOG}"
        )
        self.assertEqual(
            CONNECTOR.rpc_endpoint, f"tcp:4150:interface=127.0.0.1:backlog={LISTEN_BACKLOG}"
        )
        self.assertEqual(CONNECTOR.rpc_client_endpoint, "tcp:host=127.0.0.1:port=4150")
        self.assertTrue(CONNECTOR.auto_restart)
