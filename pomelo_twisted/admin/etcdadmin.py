"""``list``, ``stop`` and ``restart`` of a cluster that uses etcd discovery (no master).

- ``list`` reads ``{prefix}/servers/``: every registered server (state ``up``, its pid,
  host, port, uptime, client connections), and the servers of ``servers.json`` that are
  not registered (state ``down``).
- ``stop ID ...`` writes ``stop`` under ``{prefix}/commands/ID`` (with a short lease, so
  commands clean themselves up): the server exits 0 and its host's supervisor does not
  restart it. It waits until the servers have left ``{prefix}/servers/``.
- ``stop`` (no id) stops the frontends, then the backends, then tells every host's
  supervisor to exit (``{prefix}/commands/@HOST``).
- ``restart ID`` writes ``restart``: the supervisor of ID's host stops and starts it; it
  waits until ID registers again with a new pid.
- ``add key=value ...`` writes ``add`` with the entry under ``{prefix}/commands/@HOST``
  (the entry's ``host``): that host's supervisor starts the server; it waits until the
  server has registered.

Every function takes the store (:class:`~pomelo_twisted.kv.interfaces.IKeyValueStore`) and
the reactor, so tests run them on the in-memory store and a Clock.
"""

from __future__ import annotations

from typing import Any, TextIO

from twisted.internet.task import deferLater

from ..cluster.hosts import host_command_id
from ..discovery.commands import command_key, encode_command
from ..discovery.etcd import decode_record
from ..discovery.interfaces import ServerRecord
from ..gameconfig import GameConfig
from ..interfaces import IServerReactor
from ..kv.errors import KVError
from ..kv.interfaces import IKeyValueStore
from .client import AdminError
from .table import format_table

__all__ = [
    "COMMAND_TTL",
    "await_registered",
    "etcd_list",
    "etcd_restart",
    "etcd_rows",
    "etcd_stop",
    "registered",
]

#: Seconds a command key lives (its lease): long enough for every watcher to see it.
COMMAND_TTL = 60.0
#: Seconds between two reads while waiting for servers to leave or come back.
POLL_INTERVAL = 0.25


async def registered(store: IKeyValueStore, prefix: str) -> dict[str, ServerRecord]:
    """Every server registered under ``prefix``, by id (AdminError when etcd is down)."""
    servers = f"{prefix}/servers/"
    try:
        kvs, _ = await store.get_prefix(servers)
    except KVError as exc:
        raise AdminError(f"cannot read the cluster from etcd: {exc}") from None
    records = {}
    for kv in kvs:
        record = decode_record(kv)
        if record is not None:
            records[kv.key[len(servers) :]] = record
    return records


def etcd_rows(
    records: dict[str, ServerRecord], config: GameConfig, now: float
) -> list[dict[str, Any]]:
    """The rows of ``list``: registered servers, then declared ones that are not."""
    rows: list[dict[str, Any]] = []
    for server_id, record in sorted(records.items()):
        info = record.info()
        rows.append(
            {
                "id": server_id,
                "type": info.type,
                "state": "up",
                "pid": record.pid,
                "host": info.host,
                "port": info.port,
                "uptime": max(0.0, now - record.started),
                "connections": record.stats.get("connections"),
                "machine": record.host,
            }
        )
    for infos in config.servers().values():
        for info in infos:
            if info.id not in records:
                rows.append(
                    {
                        "id": info.id,
                        "type": info.type,
                        "state": "down",
                        "host": info.host,
                        "port": info.port,
                    }
                )
    return rows


async def etcd_list(
    reactor: IServerReactor, store: IKeyValueStore, prefix: str, config: GameConfig, out: TextIO
) -> int:
    """Print the cluster's servers as etcd knows them."""
    records = await registered(store, prefix)
    out.write(format_table(etcd_rows(records, config, reactor.seconds())))
    return 0


async def _command(
    reactor: IServerReactor,
    store: IKeyValueStore,
    prefix: str,
    target: str,
    command: str,
    entry: dict[str, Any] | None = None,
) -> None:
    try:
        lease = await store.grant(COMMAND_TTL)
        await store.put(
            command_key(prefix, target), encode_command(command, reactor.seconds(), entry), lease
        )
    except KVError as exc:
        raise AdminError(
            f"cannot write the {command} command for {target} to etcd: {exc}"
        ) from None


async def _wait(
    reactor: IServerReactor,
    store: IKeyValueStore,
    prefix: str,
    done: Any,
    within: float,
    what: str,
) -> None:
    """Poll the registrations until ``done(records)``; AdminError after ``within`` s."""
    deadline = reactor.seconds() + within
    while True:
        if done(await registered(store, prefix)):
            return
        if reactor.seconds() >= deadline:
            raise AdminError(f"{what} after {within:g}s")
        await deferLater(reactor, POLL_INTERVAL, lambda: None)


async def etcd_stop(
    reactor: IServerReactor,
    store: IKeyValueStore,
    prefix: str,
    config: GameConfig,
    ids: list[str],
    out: TextIO,
    within: float,
) -> int:
    """Stop ``ids`` (all of them: every server, then the supervisors) and wait until gone."""
    records = await registered(store, prefix)
    if ids:
        unknown = [server_id for server_id in ids if server_id not in records]
        if unknown:
            raise AdminError(f"not registered in etcd: {', '.join(unknown)}")
        await _stop_wave(reactor, store, prefix, ids, within)
        out.write(f"stopped: {', '.join(ids)}\n")
        return 0
    frontends = [sid for sid, record in records.items() if record.info().frontend]
    backends = [sid for sid in records if sid not in frontends]
    out.write("stopping the cluster (frontends, then backends, then the supervisors)\n")
    out.flush()
    await _stop_wave(reactor, store, prefix, sorted(frontends), within)
    await _stop_wave(reactor, store, prefix, sorted(backends), within)
    declared = {info.host for infos in config.servers().values() for info in infos}
    hosts = sorted({record.host for record in records.values()} | declared | {"*"})
    for host in hosts:
        await _command(reactor, store, prefix, host_command_id(host), "stop")
    out.write("stopped\n")
    return 0


async def _stop_wave(
    reactor: IServerReactor, store: IKeyValueStore, prefix: str, ids: list[str], within: float
) -> None:
    for server_id in ids:
        await _command(reactor, store, prefix, server_id, "stop")
    if ids:
        await _wait(
            reactor,
            store,
            prefix,
            lambda records: not set(ids) & set(records),
            within,
            f"still registered: {', '.join(ids)}",
        )


async def etcd_restart(
    reactor: IServerReactor,
    store: IKeyValueStore,
    prefix: str,
    server_id: str,
    out: TextIO,
    within: float,
) -> int:
    """Ask ``server_id``'s supervisor to restart it; wait until it registers anew."""
    records = await registered(store, prefix)
    before = records.get(server_id)
    if before is None:
        raise AdminError(f"{server_id} is not registered in etcd")
    await _command(reactor, store, prefix, server_id, "restart")

    found: list[ServerRecord] = []

    def again(now: dict[str, ServerRecord]) -> bool:
        record = now.get(server_id)
        if record is None or record.pid == before.pid:
            return False
        found.append(record)
        return True

    await _wait(
        reactor,
        store,
        prefix,
        again,
        within,
        f"{server_id} did not register again (is its host's supervisor running?)",
    )
    out.write(f"restarted {server_id} (pid {found[-1].pid})\n")
    return 0


async def await_registered(
    reactor: IServerReactor,
    store: IKeyValueStore,
    prefix: str,
    ids: list[str],
    within: float,
) -> list[str]:
    """Poll until every server of ``ids`` is registered; the ids still missing after
    ``within`` seconds (etcd unreachable counts as none registered)."""
    deadline = reactor.seconds() + within
    while True:
        try:
            missing = [sid for sid in ids if sid not in await registered(store, prefix)]
        except AdminError:
            missing = list(ids)
        if not missing or reactor.seconds() + POLL_INTERVAL > deadline:
            return missing
        await deferLater(reactor, POLL_INTERVAL, lambda: None)


async def etcd_command(
    reactor: IServerReactor,
    store: IKeyValueStore,
    prefix: str,
    config: GameConfig,
    command: str,
    ids: list[str],
    out: TextIO,
    within: float,
    entry: dict[str, Any] | None = None,
) -> int:
    """Run ``command`` (``list``, ``stop``, ``restart``, ``add`` of ``entry``) through etcd;
    ``kill`` needs the master (AdminError saying so)."""
    if command == "list":
        return await etcd_list(reactor, store, prefix, config, out)
    if command == "stop":
        return await etcd_stop(reactor, store, prefix, config, ids, out, within)
    if command == "restart":
        return await etcd_restart(reactor, store, prefix, ids[0], out, within)
    if command == "add" and entry is not None:
        return await etcd_add(reactor, store, prefix, entry, out, within)
    raise AdminError(
        f"{command} needs the master's registry; with etcd discovery stop every server "
        "with: pomelo-twisted stop"
    )


async def etcd_add(
    reactor: IServerReactor,
    store: IKeyValueStore,
    prefix: str,
    entry: dict[str, Any],
    out: TextIO,
    within: float,
) -> int:
    """Ask the supervisor of the entry's host to start it; wait until it registers."""
    server_id = str(entry["id"])
    host = str(entry.get("host", "127.0.0.1"))
    if server_id in await registered(store, prefix):
        raise AdminError(f"{server_id} is registered already")
    await _command(reactor, store, prefix, host_command_id(host), "add", entry)
    found: list[ServerRecord] = []

    def joined(records: dict[str, ServerRecord]) -> bool:
        record = records.get(server_id)
        if record is not None:
            found.append(record)
        return record is not None

    await _wait(
        reactor,
        store,
        prefix,
        joined,
        within,
        f"{server_id} did not register (is the supervisor of {host} running? "
        f"start it with: pomelo-twisted start --host {host})",
    )
    out.write(f"added {server_id} (pid {found[-1].pid})\n")
    return 0
