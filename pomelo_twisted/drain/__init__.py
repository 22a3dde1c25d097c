"""Graceful drain: a server leaves without dropping a request, a push or its state.

:mod:`~pomelo_twisted.drain.sequence` is the drain itself (listener closed, discovery
told, requests in flight finished within a grace, clients kicked with "server
restarting"); :mod:`~pomelo_twisted.drain.handoff` hands a server's state (channel
members, and what a game adds) to its next incarnation through a file;
:mod:`~pomelo_twisted.drain.component` makes both a component of every cluster server,
run by the ``drain`` server command and by SIGTERM.
"""
