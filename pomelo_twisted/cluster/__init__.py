"""The cluster: who the servers are (ServerInfo), and later the master and membership."""

from .server_info import ServerInfo

__all__ = ["ServerInfo"]
