"""Many SLA scans at once give each target the verdict a lone scan gives: same flags, notifications, audit.

Eight OS processes scan one database of a thousand due tickets at the same instant, round after round, on
SQLite and on PostgreSQL. The expected verdicts are worked out here from the seeded instants (which targets
have their warning, or their due instant, at or before the scan), and a lone scan of an identical copy must
give them; then every concurrent round must end exactly as the lone scan did, row for row.
"""

from __future__ import annotations

import multiprocessing
import random
import shutil
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, select
from sqlalchemy.engine import make_url

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.jobs import sla_scan
from itsm_tui.models import AuditEvent, Base, Group, KpiDirtyDay, Notification, Ticket, TicketEntry, User
from itsm_tui.services import tickets

ROUNDS = 3
PROCESSES = 8
TICKETS = 1000
# One round in four the scans take the usual batches, the others small ones: more transactions, so more
# ways for the scans to interleave and for a pass to meet rows another scan holds.
BATCHES = (sla_scan.SCAN_BATCH,) + (sla_scan.SCAN_BATCH // 5,) * 3
NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)

# (response, resolution) states of the seeded targets, with their weights: "warn" has its warning instant
# passed and its due instant ahead, "breach" both passed, "none" neither; "met" is a response given (its
# instants passed, its clock stopped) and "paused" a resolution clock standing still (pending). Most are
# breached twice, so that each breach pass takes more than one batch.
COMBOS = {
    ("breach", "breach"): 3,
    ("warn", "none"): 1,
    ("breach", "none"): 1,
    ("breach", "warn"): 1,
    ("met", "warn"): 1,
    ("met", "breach"): 1,
    ("warn", "paused"): 1,
    ("breach", "paused"): 1,
    ("warn", "warn"): 1,
    ("warn", "breach"): 1,
}
IMPACT_URGENCY = {1: ("high", "high"), 2: ("high", "medium"), 3: ("medium", "medium"), 4: ("medium", "low")}
# What the catalog and the staff fixture give: each service's support group, each group's level, who leads
# or works in it; shift_lead is Accountable for a breach (raci.toml) and only "lead" holds it.
SUPPORT = {"email": "APP-L2", "network": "NET-L2", "workplace": "SD-L1", None: None}
LEVEL = {"SD-L1": 1, "NET-L2": 2, "APP-L2": 2}
LEADS = {"SD-L1": {"lead"}, "NET-L2": set(), "APP-L2": set()}
MEMBERS = {"NET-L2": {"net1"}, "APP-L2": {"app1"}}
# sla.toml: a resolution breach of P1/P2 and a response breach of P1 move a level-1 ticket to its service.
ESCALATING = {"resolution": {1, 2}, "response": {1}}
# The order of a lone scan's passes (breaches before warnings), restated here rather than imported.
PASSES = (
    ("response", "breach"),
    ("resolution", "breach"),
    ("response", "warning"),
    ("resolution", "warning"),
)
FLAGS = ("response_warned_at", "response_breached_at", "resolution_warned_at", "resolution_breached_at")
INSTANTS = ("response_warn_at", "response_due_at", "resolution_warn_at", "resolution_due_at")


@dataclass(frozen=True)
class Seed:
    """One seeded ticket: its classification and its targets' instants relative to the scan."""

    priority: int
    service: str | None
    group: str
    assignee: str | None
    response: str
    resolution: str
    instants: dict[str, datetime]  # INSTANTS


def _minutes(value: int) -> datetime:
    return NOW + timedelta(minutes=value)


def _instants(state: str, offset: int, scale: int) -> tuple[datetime, datetime]:
    """A target's (warning, due) instants for its state; ``offset`` spreads the tickets over time."""
    if state == "none":
        return _minutes(scale + offset), _minutes(2 * scale + offset)
    if state == "warn":
        return _minutes(-1 - offset), _minutes(1 + offset % 90)
    # breach, met, paused: both instants passed (a stopped clock is what keeps the last two unflagged)
    return _minutes(-scale - 1 - offset), _minutes(-1 - offset)


def make_seeds(count: int) -> list[Seed]:
    rng = random.Random(20261116)
    combos = [combo for combo, weight in COMBOS.items() for _ in range(weight)]
    seeds = []
    for index in range(count):
        response, resolution = combos[index % len(combos)]
        priority = rng.choices((1, 2, 3, 4), weights=(1, 2, 4, 3))[0]
        if resolution == "paused" and priority < 3:
            priority += 2  # a pending ticket the escalation rules leave where it is
        r_warn, r_due = _instants(response, rng.randrange(600), 30)
        s_warn, s_due = _instants(resolution, rng.randrange(600), 240)
        seeds.append(
            Seed(
                priority=priority,
                service=rng.choices(("email", "network", "workplace", None), weights=(1, 1, 6, 6))[0],
                group="NET-L2" if rng.random() < 0.15 else "SD-L1",
                assignee=rng.choice(("agent2", None)),
                response=response,
                resolution=resolution,
                instants=dict(zip(INSTANTS, (r_warn, r_due, s_warn, s_due), strict=True)),
            )
        )
    return seeds


def seed_database(db: Database, config: DeskConfig, agent, seeds: list[Seed]) -> tuple[int, list[int]]:
    """A ticket logged through the service (nothing of it due) and the seeded tickets, copied from it with
    their own classification and instants; returns the first one's id and theirs."""
    with db.session() as s:
        model = tickets.create_ticket(
            s, config, agent, title="Model", requester="Requester", now=NOW - timedelta(minutes=1)
        )
        s.flush()
        table = Ticket.metadata.tables[Ticket.__tablename__]
        stored = s.execute(select(table).where(table.c.id == model.id)).mappings().one()
        # every column the database does not fill itself
        template = {k: v for k, v in stored.items() if k != "id" and table.c[k].computed is None}
        users = dict(s.execute(select(User.login, User.id)).tuples().all())
        groups = dict(s.execute(select(Group.code, Group.id)).tuples().all())
        paused = NOW - timedelta(hours=1)
        rows = []
        for index, seed in enumerate(seeds):
            impact, urgency = IMPACT_URGENCY[seed.priority]
            status = "pending" if seed.resolution == "paused" else ("in_progress" if seed.assignee else "new")
            rows.append(
                template
                | seed.instants
                | {
                    "ref": f"INC9{index:06d}",
                    "title": f"Ticket {index}",
                    "impact": impact,
                    "urgency": urgency,
                    "priority": seed.priority,
                    "service": seed.service,
                    "group_id": groups[seed.group],
                    "assignee_id": users[seed.assignee] if seed.assignee else None,
                    "status": status,
                    "pending_reason": "customer" if status == "pending" else None,
                    "paused_at": paused if status == "pending" else None,
                    "responded_at": NOW - timedelta(hours=2) if seed.response == "met" else None,
                    "opened_at": NOW - timedelta(days=3),
                }
            )
        ids = list(s.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows))
    return model.id, ids


@dataclass
class Verdicts:
    """What the scan must leave: flags per ticket, (login, kind, ticket) notifications, SLA audit rows."""

    flags: dict[int, tuple[datetime | None, ...]]
    notes: set[tuple[str, str, int]]
    audits: set[tuple[int, str, datetime]]
    groups: dict[int, str]


def expected_verdicts(model_id: int, seeds: list[Seed], ids: list[int]) -> Verdicts:
    """The verdicts worked out from the seeded instants, pass by pass as a lone scan takes them."""
    verdicts = Verdicts({model_id: (None,) * len(FLAGS)}, set(), set(), {model_id: "SD-L1"})
    for ticket_id, seed in zip(ids, seeds, strict=True):
        group, assignee = seed.group, {seed.assignee} if seed.assignee else set()
        flags: dict[str, datetime | None] = dict.fromkeys(FLAGS)
        for target, kind in PASSES:
            state = seed.response if target == "response" else seed.resolution
            warn, due = seed.instants[f"{target}_warn_at"], seed.instants[f"{target}_due_at"]
            if kind == "breach" and state == "breach":
                assert due <= NOW and warn <= NOW
                flags[f"{target}_breached_at"] = due
                flags[f"{target}_warned_at"] = flags[f"{target}_warned_at"] or due  # implied, not reported
                verdicts.notes |= {(login, "sla_breach", ticket_id) for login in {"lead"} | assignee}
                verdicts.audits.add((ticket_id, f"{target}_breached_at", due))
                to = SUPPORT[seed.service]
                if seed.priority in ESCALATING[target] and LEVEL[group] == 1 and to not in (None, group):
                    # the group told (no leads there: its members) and whoever had the ticket
                    told = MEMBERS[to] | assignee
                    verdicts.notes |= {(login, "escalated", ticket_id) for login in told}
                    group, assignee = to, set()
            elif kind == "warning" and state == "warn":
                assert warn <= NOW < due
                flags[f"{target}_warned_at"] = warn
                verdicts.notes |= {(login, "sla_warning", ticket_id) for login in LEADS[group] | assignee}
                verdicts.audits.add((ticket_id, f"{target}_warned_at", warn))
        verdicts.flags[ticket_id] = tuple(flags[name] for name in FLAGS)
        verdicts.groups[ticket_id] = group
    return verdicts


def outcome(url: str) -> dict[str, Any]:
    """Everything a scan writes, as comparable plain data (rows counted, so a duplicate shows)."""
    db = Database.connect(url)
    try:
        with db.read_session() as s:
            ticket_columns = [getattr(Ticket, name) for name in FLAGS] + [
                Ticket.group_id,
                Ticket.assignee_id,
                Ticket.status,
                Ticket.escalation_count,
                Ticket.reassignment_count,
                Ticket.updated_at,
                Ticket.version,
            ]
            return {
                "tickets": {r[0]: tuple(r[1:]) for r in s.execute(select(Ticket.id, *ticket_columns))},
                "notifications": Counter(
                    s.execute(
                        select(
                            User.login,
                            Notification.kind,
                            Notification.event_key,
                            Notification.entity_type,
                            Notification.entity_id,
                            Notification.message,
                            Notification.created_at,
                        ).join(User, User.id == Notification.user_id)
                    ).tuples()
                ),
                "audit": Counter(
                    s.execute(
                        select(
                            AuditEvent.entity_type,
                            AuditEvent.entity_id,
                            AuditEvent.actor_id,
                            AuditEvent.at,
                            AuditEvent.action,
                            AuditEvent.field,
                            AuditEvent.old_value,
                            AuditEvent.new_value,
                        )
                    ).tuples()
                ),
                "entries": Counter(
                    s.execute(
                        select(
                            TicketEntry.ticket_id, TicketEntry.author_id, TicketEntry.kind, TicketEntry.body
                        )
                    ).tuples()
                ),
                "dirty_days": set(s.scalars(select(KpiDirtyDay.day))),
                "group_codes": dict(s.execute(select(Group.id, Group.code)).tuples().all()),
            }
    finally:
        db.dispose()


def verdicts_of(found: dict[str, Any]) -> Verdicts:
    """The part of an outcome that :func:`expected_verdicts` states."""
    codes = found["group_codes"]
    sla_kinds = ("sla_warning", "sla_breach", "escalated")
    audits = set()
    for (_, entity_id, _, _, action, field, _, new), times in found["audit"].items():
        if action == "sla" and field in FLAGS:
            audits |= (
                {(entity_id, field, datetime.fromisoformat(new).astimezone(UTC))} if times == 1 else set()
            )
    return Verdicts(
        flags={tid: row[: len(FLAGS)] for tid, row in found["tickets"].items()},
        notes={
            (login, kind, eid) for login, kind, _, _, eid, *_ in found["notifications"] if kind in sla_kinds
        },
        audits=audits,
        groups={tid: codes[row[len(FLAGS)]] for tid, row in found["tickets"].items()},
    )


def sla_notifications(found: dict[str, Any]) -> int:
    """The warning and breach notifications of an outcome (what a scan counts as its notifications)."""
    return sum(
        n for (_, kind, *_), n in found["notifications"].items() if kind in ("sla_warning", "sla_breach")
    )


def misjudged(found: Verdicts, expected: Verdicts) -> Counter[str]:
    """How targets went wrong: reported as a warning and a breach, as a warning instead of a breach,
    not at all, or otherwise (by the SLA audit rows, which every verdict writes once)."""
    reported: dict[tuple[int, str], set[str]] = {}
    for ticket_id, field, _ in found.audits:
        reported.setdefault((ticket_id, field.split("_")[0]), set()).add(field.split("_")[1])
    wanted: dict[tuple[int, str], set[str]] = {}
    for ticket_id, field, _ in expected.audits:
        wanted.setdefault((ticket_id, field.split("_")[0]), set()).add(field.split("_")[1])
    wrong: Counter[str] = Counter()
    for key in wanted.keys() | reported.keys():
        got, want = reported.get(key, set()), wanted.get(key, set())
        if got == want:
            continue
        if got == {"warned", "breached"}:
            wrong["warned and breached"] += 1
        elif want == {"breached"} and got == {"warned"}:
            wrong["warned, not breached"] += 1
        elif not got:
            wrong["not flagged"] += 1
        else:
            wrong["other"] += 1
    return wrong


def _scan_process(db: Database, config: DeskConfig, batch: int, barrier, results) -> None:
    """One scan in a forked process: connect, wait for the others, scan at NOW, report."""
    try:
        with db.read_session() as s:
            s.execute(select(1))  # connected before the start, so the scans overlap as much as they can
        barrier.wait(timeout=60)
        results.put(sla_scan.scan(db, config, NOW, batch=batch).as_json())
        db.dispose()
    except BaseException:
        results.put(traceback.format_exc())


def scan_at_once(url: str, config: DeskConfig, batch: int, processes: int = PROCESSES) -> dict[str, int]:
    """``processes`` scans of one database in as many processes, started together; their summed counts."""
    db = Database.connect(url)
    with db.read_session() as s:
        s.execute(select(1))  # the engine learns the server once, here, instead of in every process
    db.dispose()  # and has no connection left for the processes to share
    context = multiprocessing.get_context("fork")  # the parent has imported everything already
    barrier = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(target=_scan_process, args=(db, config, batch, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        reports = [results.get(timeout=120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
        db.dispose()
    failures = [r for r in reports if isinstance(r, str)]
    assert not failures, failures[0]
    return _counts(reports)


def _counts(results: list[dict]) -> dict[str, int]:
    names = ("warnings", "breaches", "escalations", "notifications")
    return {name: sum(r[name] for r in results) for name in names}


class Copies:
    """The seeded database as it was, again and again: a copy of the file on SQLite; on PostgreSQL the same
    database, its tables restored from a copy kept in a schema of their own (no database to create or drop,
    so no checkpoint that a busy server would make slow)."""

    SAVED = "sla_rounds_seeded"

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.engine = None if make_url(url).get_backend_name() == "sqlite" else create_engine(url)
        self.tables = Base.metadata.sorted_tables
        if self.engine is not None:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(
                    f"DROP SCHEMA IF EXISTS {self.SAVED} CASCADE; CREATE SCHEMA {self.SAVED}"
                )
                for table in self.tables:
                    conn.exec_driver_sql(f'CREATE TABLE {self.SAVED}."{table.name}" AS TABLE "{table.name}"')

    def make(self) -> str:
        if self.engine is None:
            target = self.folder / f"copy_{uuid.uuid4().hex[:12]}.db"
            shutil.copy(str(make_url(self.url).database), target)
            return f"sqlite:///{target}"
        statements = [f'DELETE FROM "{table.name}"' for table in reversed(self.tables)]
        for table in self.tables:
            columns = ", ".join(f'"{c.name}"' for c in table.columns if c.computed is None)
            statements.append(
                f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} FROM {self.SAVED}."{table.name}"'
            )
        with self.engine.begin() as conn:
            conn.exec_driver_sql("; ".join(statements))
        self.engine.dispose()  # nothing of this process stays connected while the scans run
        return self.url

    def drop(self, url: str) -> None:
        if self.engine is None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(make_url(url).database) + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        if self.engine is not None:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.SAVED} CASCADE")
            self.engine.dispose()


def test_concurrent_scans_give_each_target_the_lone_scans_verdict(db, db_url, config, staff, tmp_path):
    seeds = make_seeds(TICKETS)
    model_id, ids = seed_database(db, config, staff["agent1"], seeds)
    if db.backend == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # the file alone is the whole database
    db.dispose()  # no connection of the parent is left to the forked scans
    expected = expected_verdicts(model_id, seeds, ids)
    assert all(any(expected.flags[i]) for i in ids)  # every seeded ticket has a target due

    copies = Copies(db_url, tmp_path)
    try:
        url = copies.make()
        lone_db = Database.connect(url)
        lone = _counts([sla_scan.scan(lone_db, config, NOW).as_json()])
        lone_db.dispose()
        alone = outcome(url)
        copies.drop(url)
        assert verdicts_of(alone) == expected
        moved = sum(expected.groups[i] != seed.group for i, seed in zip(ids, seeds, strict=True))
        assert (lone["notifications"], lone["escalations"]) == (sla_notifications(alone), moved)

        rounds = []
        for number in range(ROUNDS):
            url = copies.make()
            counts = scan_at_once(url, config, BATCHES[number % len(BATCHES)])
            found = outcome(url)
            copies.drop(url)
            wrong = misjudged(verdicts_of(found), expected)
            rounds.append((found == alone and counts == lone, sla_notifications(found), wrong))
    finally:
        copies.close()
    failed = [(notes, dict(wrong)) for clean, notes, wrong in rounds if not clean]
    assert not failed, (
        f"{len(failed)} of {ROUNDS} rounds differ from the lone scan ({lone['notifications']} "
        f"notifications); theirs (notifications, misjudged targets): {failed}"
    )


def test_each_pass_reads_its_partial_index(sqlite_url):
    """The probe and the flagging statement of every pass read the pass's own partial index (SQLite's plan;
    bench/sla_scan.py shows PostgreSQL's over a large table)."""
    db = Database.connect(sqlite_url)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def grab(conn, cursor, statement, parameters, context, executemany):
        if "FROM tickets" in statement and not statement.startswith("EXPLAIN"):
            statements.append((statement, parameters))

    try:
        for target, kind in sla_scan.SCAN_ORDER:
            index = f"ix_tickets_sla_{target}_{'due' if kind == 'breach' else 'warn'}"
            with db.session() as s:
                statements.clear()
                sla_scan.anything_due(s, target, kind, NOW)
                sla_scan.flag_due(s, target, kind, NOW)
                assert len(statements) == 2
                for statement, parameters in list(statements):
                    plan = s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                    assert index in " ".join(str(row[-1]) for row in plan), (target, kind, statement)
    finally:
        db.dispose()
