"""The cluster: who the servers are (ServerInfo), and later the master and membership."""

from ..gameconfig import ServerInfo

__all__ = ["ServerInfo"]
