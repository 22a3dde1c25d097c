"""The admin side of a cluster: ``pomelo-twisted`` and the client it talks to the master with.

:mod:`~pomelo_twisted.admin.client` logs in to the master's port as ``admin``
(:func:`connect_admin`, :class:`AdminClient`); :mod:`~pomelo_twisted.admin.cli`
is the ``pomelo-twisted`` command (``start``, ``list``, ``stop``, ``kill``,
``restart``, ``add``).
"""

from .client import (
    AdminClient,
    AdminError,
    LoginRefused,
    MasterUnreachable,
    connect_admin,
    endpoint_address,
)

__all__ = [
    "AdminClient",
    "AdminError",
    "LoginRefused",
    "MasterUnreachable",
    "connect_admin",
    "endpoint_address",
]
