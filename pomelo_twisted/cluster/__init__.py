"""The cluster: who the servers are (ServerInfo), the master that runs them
(master, its control API in interfaces, its PB avatars, its builder), the
supervisor of their processes, and each server's monitor linking it to the master."""

from ..gameconfig import ServerInfo

__all__ = ["ServerInfo"]
