"""The cases a, d, e and f of bench/scaleout.py (see its docstring), one function each.

The fault cases (b, c, g) are in ``bench/scaleout_faults.py``. Each case takes the
started :class:`~bench.scaleout_cluster.ScaleoutCluster`, the bot count and the reports
folder, and returns its :class:`~bench.faults.Check` rows.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from bench.faults import Check, probe_timeline, rooms_on, wait_bots
from bench.scaleout_clients import ANNOUNCE, SEND, WHERE, Member, enter, now, pause, run
from bench.scaleout_cluster import HOSTS, ScaleoutCluster, host_of
from pomelo_twisted.rpc.hashring import HashRing
from pomelo_twisted.testing.gamecopy import free_ports

__all__ = [
    "case_announce",
    "case_grow",
    "case_serves",
    "case_unique_login",
    "log_check",
    "log_problems",
    "targets",
]

TRACEBACK = "Traceback (most recent call last)"
ABOVE_WARN = re.compile(r"#(error|critical)\]")
MESSAGES = 5


def log_problems(
    cluster: ScaleoutCluster, since: dict[str, int] | None = None
) -> tuple[int, int, list[str]]:
    """(tracebacks, lines above warn, those lines) in every log after ``since``."""
    since = since or {}
    details: list[str] = []
    tracebacks = above = 0
    for name, text in cluster.logs().items():
        for line in text[since.get(name, 0) :].splitlines():
            if TRACEBACK in line:
                tracebacks += 1
                details.append(f"{name}: {line}")
            elif ABOVE_WARN.search(line):
                above += 1
                details.append(f"{name}: {line}")
    return tracebacks, above, details


def log_check(case: str, cluster: ScaleoutCluster) -> Check:
    """No traceback and nothing above warn in any log of the case."""
    tracebacks, above, details = log_problems(cluster)
    return Check(
        case,
        "logs: no traceback, nothing above warn",
        not tracebacks and not above,
        f"{tracebacks} tracebacks, {above} lines above warn",
        details,
    )


def targets(cluster: ScaleoutCluster) -> tuple[str, str]:
    c1, c2 = cluster.ids("connector")
    return cluster.target(c1), cluster.target(c2)


# -- a. the cluster serves -----------------------------------------------------------------


def case_serves(cluster: ScaleoutCluster, bots: int, out: Path) -> list[Check]:
    """a. Rooms spanning both connectors get every message once; list shows the hosts."""
    rows = cluster.rows()
    hosts = {sid: host_of(rows.get(sid, [])) for sid in HOSTS}
    chats = cluster.ids("chat")
    t1, t2 = targets(cluster)
    rooms = {chat: rooms_on(chat, chats, 1, "a-")[0] for chat in chats}

    async def scenario() -> dict[str, Any]:
        members: list[Member] = []
        for chat, rid in rooms.items():
            for n in range(3):
                members.append(await enter(t1, f"a-{chat}-c1-{n}", rid, join=True))
                members.append(await enter(t2, f"a-{chat}-c2-{n}", rid, join=True))
        landed = {}
        for m in members:
            landed[m.rid] = (await m.request(WHERE, {}))["server"]
        answers = []
        for seq in range(MESSAGES):
            for m in members:
                answers.append(await m.request(SEND, {"rid": m.rid, "content": str(seq)}))
        expected = {
            rid: MESSAGES * sum(1 for m in members if m.rid == rid) for rid in rooms.values()
        }
        deadline = now() + 10.0
        while now() < deadline and any(
            len(m.pushes.get("onChat", [])) < expected[str(m.rid)] for m in members
        ):
            await pause(0.1)
        await pause(0.5)  # a duplicate would arrive now
        once = wrong = 0
        for m in members:
            seen: dict[tuple[str, int], int] = {}
            for body in m.pushes.get("onChat", []):
                key = (body["from"], int(body["content"]))
                seen[key] = seen.get(key, 0) + 1
            wanted = {(o.uid, s) for o in members if o.rid == m.rid for s in range(MESSAGES)}
            if set(seen) == wanted and all(v == 1 for v in seen.values()):
                once += 1
            else:
                wrong += 1
        for m in members:
            await m.close()
        return {
            "members": len(members),
            "once": once,
            "wrong": wrong,
            "landed": landed,
            "failed": sum(1 for a in answers if a != {"code": 200}),
            "pushes": sum(len(m.pushes.get("onChat", [])) for m in members),
        }

    got = run(scenario)
    placed = {rid: chat for chat, rid in rooms.items()}
    return [
        Check("a", "list --discovery shows every server up on its host",
              all(hosts[s] == h for s, h in HOSTS.items()) and cluster.all_up(),
              ", ".join(f"{s}@{hosts[s]}" for s in HOSTS)),
        Check("a", "rooms spanning both connectors: every message exactly once per member",
              got["wrong"] == 0 and got["failed"] == 0 and got["landed"] == placed,
              f"{got['members']} members (3 per connector per room, 2 rooms on "
              f"{sorted(set(got['landed'].values()))}), {MESSAGES} messages each: "
              f"{got['pushes']} pushes, {got['once']} members got each exactly once, "
              f"{got['wrong']} did not; {got['failed']} failed sends"),
        log_check("a", cluster),
    ]  # fmt: skip


# -- d. add a chat server (consistent hash) ------------------------------------------------


def case_grow(cluster: ScaleoutCluster, bots: int, out: Path) -> list[Check]:
    """d. Add chat-server-3 under probes, route=consistent-hash: 0 failures, rooms moved."""
    logs: dict[str, Path] = {}
    duration = 30.0
    for i, cid in enumerate(cluster.ids("connector")):
        logs[cid] = out / f"d-probe-{i}.jsonl"
        logs[cid].unlink(missing_ok=True)
        cluster.start_bots(
            cid,
            max(1, bots // 2),
            duration,
            out / f"d-probe-{i}.json",
            f"d{i}-",
            ramp_up=3.0,
            scenario="ProbeBot",
            env={
                "POMELO_PROBE_LOG": str(logs[cid]),
                "POMELO_PROBE_OWN_ROOM": "1",
                "POMELO_PROBE_ROUTE": WHERE,
                "POMELO_PROBE_INTERVAL": "1.0",
            },
        )
    time.sleep(10.0)
    port = free_ports(1)[0]
    started = time.time()
    code, output = cluster.cli(
        "add",
        "type=chat",
        "id=chat-server-3",
        "host=127.0.0.3",
        f"port={port}",
        "auto-restart=true",
    )
    added = time.time()
    wait_bots(cluster)
    records = [r for path in logs.values() for r in probe_timeline(path)]
    wheres = [r for r in records if r["route"] == WHERE and "server" in r]
    failed = [r for r in records if r["code"] != 200]
    first_new = min((r["t"] for r in wheres if r["server"] == "chat-server-3"), default=None)
    when = [
        f"{r['route']} {r['code']} {r['t'] - started:+.3f} s after the add began"
        + (
            ""
            if first_new is None
            else f", {r['t'] - first_new:+.3f} s from chat-server-3's first answer"
        )
        for r in failed
    ]
    before = HashRing(["chat-server-1", "chat-server-2"])
    after = HashRing(["chat-server-1", "chat-server-2", "chat-server-3"])
    rooms = sorted({r["rid"] for r in wheres})
    moved = [rid for rid in rooms if before.owner(rid) != after.owner(rid)]
    early = [r for r in wheres if r["t"] + r["latency"] < started]
    late = [r for r in wheres if r["t"] > added + 1.0]
    wrong_early = [r for r in early if r["server"] != before.owner(r["rid"])]
    wrong_late = [r for r in late if r["server"] != after.owner(r["rid"])]
    to_new = {r["rid"] for r in late if r["server"] == "chat-server-3"}
    fraction = len(moved) / len(rooms) if rooms else 0.0
    return [
        Check("d", "pomelo-twisted add chat-server-3 --discovery", code == 0,
              f"exit {code} after {added - started:.2f} s: {output.strip()[-120:]}"),
        Check("d", "0 failed requests while it joins", bool(wheres) and not failed,
              f"{len(records)} requests, {len(failed)} failed" + (f": {when[:3]}" if when else "")),
        Check("d", "fraction of the bots' rooms that moved (consistent-hash)",
              0 < fraction < 0.5,
              f"{len(moved)}/{len(rooms)} rooms = {fraction:.1%} (1/3 expected), all to "
              f"chat-server-3: {all(after.owner(r) == 'chat-server-3' for r in moved)}"),
        Check("d", "requests land on the ring's owner before and after the add",
              not wrong_early and not wrong_late and to_new == set(moved),
              f"{len(early)} answers before: {len(wrong_early)} elsewhere; {len(late)} after: "
              f"{len(wrong_late)} elsewhere; rooms answered by chat-server-3: {len(to_new)}"),
        log_check("d", cluster),
    ]  # fmt: skip


# -- e. unique login -----------------------------------------------------------------------


def case_unique_login(cluster: ScaleoutCluster, bots: int, out: Path) -> list[Check]:
    """e. Another login kicks the old session (both ways); a dead connector's uid is free
    within the binding TTL."""
    t1, t2 = targets(cluster)
    c1 = cluster.ids("connector")[0]

    async def kicks() -> list[str | None]:
        first = await enter(t1, "e-dup")
        second = await enter(t2, "e-dup")
        deadline = now() + 5.0
        while first.kicked is None and now() < deadline:
            await pause(0.05)
        third = await enter(t1, "e-dup")
        while second.kicked is None and now() < deadline + 5.0:
            await pause(0.05)
        reasons = [first.kicked, second.kicked, third.kicked]
        for m in (first, second, third):
            await m.close()
        return reasons

    reasons = run(kicks)
    held = run(lambda: enter(t1, "e-held"))
    pid = cluster.pids()[c1]

    async def relogin() -> dict[str, Any]:
        os.kill(pid, signal.SIGKILL)
        began = now()
        attempts, answers = 0, []
        while now() - began < cluster.ttl * 3 + 10:
            attempts += 1
            member = Member(t2, "e-held", None)
            try:
                await member.connect()
                reply = await member.enter()
            except Exception as exc:
                answers.append(type(exc).__name__)
            else:
                if reply == {"code": 200, "uid": "e-held"}:
                    took = now() - began
                    await member.close()
                    return {"took": took, "attempts": attempts, "answers": answers}
                answers.append(str(reply.get("code")))
            await member.close()
            await pause(0.2)
        return {"took": None, "attempts": attempts, "answers": answers}

    got = run(relogin)
    dropped = held.client is not None and not held.client.connected
    limit = cluster.ttl + 1.0 + 1.0  # the TTL, its 1 s grace, one retry
    took = got["took"]
    return [
        Check("e", 'the older session is kicked with "another login" (c1 then c2)',
              reasons[:2] == ["another login", "another login"] and reasons[2] is None,
              f"kick reasons: c1 {reasons[0]!r}, then c2 {reasons[1]!r}; newest {reasons[2]!r}"),
        Check("e", "connector-1 killed while the uid is bound there: login on c2 within TTL",
              took is not None and took <= limit and dropped,
              f"succeeded {took if took is None else round(took, 2)} s after kill -9 "
              f"(binding TTL {cluster.ttl:g} s, limit {limit:g} s), attempt {got['attempts']}; "
              f"earlier answers {got['answers'][:5]}; the held session dropped: {dropped}"),
        log_check("e", cluster),
    ]  # fmt: skip


# -- f. global channel ---------------------------------------------------------------------


def case_announce(cluster: ScaleoutCluster, bots: int, out: Path) -> list[Check]:
    """f. Global channel "world": one push per member, one RPC per frontend per push."""
    chats = cluster.ids("chat")
    t1, t2 = targets(cluster)
    rooms = {chat: rooms_on(chat, chats, 1, "f-")[0] for chat in chats}

    async def scenario() -> dict[str, Any]:
        members = [
            await enter(t, f"f-{i}-{n}", rid)
            for i, t in enumerate((t1, t2))
            for n, rid in enumerate([*rooms.values(), None])
        ]
        senders = [members[0], members[4], members[1]]  # chat-1, chat-2, chat-2
        replies = []
        for n, sender in enumerate(senders):
            replies.append(await sender.request(ANNOUNCE, {"content": n}))
        deadline = now() + 10.0
        while now() < deadline and any(
            len(m.pushes.get("onAnnounce", [])) < len(senders) for m in members
        ):
            await pause(0.1)
        await pause(0.5)
        counts = [sorted(b["content"] for b in m.pushes.get("onAnnounce", [])) for m in members]
        for m in members:
            await m.close()
        return {"replies": replies, "counts": counts, "members": len(members)}

    got = run(scenario)
    replies = got["replies"]
    once = sum(1 for c in got["counts"] if c == [0, 1, 2])
    servers = [r.get("server") for r in replies]
    last: dict[str, dict[str, int]] = {}
    for r in replies:
        last[str(r.get("server"))] = r.get("stats", {})
    rpcs = sum(s.get("rpcs", 0) for s in last.values())
    pushes = sum(s.get("pushes", 0) for s in last.values())
    uids = sum(s.get("pushed_uids", 0) for s in last.values())
    return [
        Check("f", "pushed from both chat servers", set(servers) == set(chats),
              f"announces answered by {servers}"),
        Check("f", "one push per member per announce",
              once == got["members"] and all(r.get("code") == 200 for r in replies),
              f"{got['members']} members (3 per connector): {once} got each of the "
              f"{len(replies)} announces exactly once"),
        Check("f", "one RPC per frontend per push (the services' counters)",
              rpcs == 2 * pushes and pushes == len(replies)
              and all(r.get("frontends") == 2 for r in replies)
              and uids == got["members"] * pushes,
              f"{pushes} pushes, {rpcs} rpcs, {uids} uids addressed; frontends per push "
              f"{[r.get('frontends') for r in replies]}; per server {last}"),
        log_check("f", cluster),
    ]  # fmt: skip
