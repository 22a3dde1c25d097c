"""pomelo_twisted: a Twisted-based game-server framework speaking the Pomelo wire protocol.

Game clients written for Pomelo/Pinus (TCP or WebSocket) connect unchanged; a game is a
cluster of frontend and backend server processes, declared in the game's configuration and
run by ``twistd -n pomelo``, with requests routed by ``type.handler.method``, pushes sent
through channels, and server-to-server calls made over RPC.  The wire codec lives in the
sans-I/O package :mod:`pomelo_twisted.protocol`; everything that touches sockets, timers or
the reactor is built on Twisted around it.
"""

__version__ = "0.1.0"
