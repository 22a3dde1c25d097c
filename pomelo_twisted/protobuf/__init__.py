"""pomelo-protobuf: message bodies encoded as the npm package ``pomelo-protobuf`` 0.4.0
does, on the routes a game declares in ``config/serverProtos.json`` and
``config/clientProtos.json``.

:mod:`.schema` parses and compiles the protos, :mod:`.codec` encodes and decodes (both
sans-I/O), :mod:`.protos` loads a game's files, :mod:`.negotiator` turns it on for the
clients that ask in their handshake (see docs/clients.md, "Protobuf (pomelo-protobuf)").
"""

from .codec import MAX_DEPTH, ProtobufCodec, ProtobufError
from .protos import Protos, load_protos
from .schema import MessageSchema, ProtosError, compile_protos, parse_protos, protos_version

__all__ = [
    "MAX_DEPTH",
    "MessageSchema",
    "ProtobufCodec",
    "ProtobufError",
    "Protos",
    "ProtosError",
    "compile_protos",
    "load_protos",
    "parse_protos",
    "protos_version",
]
