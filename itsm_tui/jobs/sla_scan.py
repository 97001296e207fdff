"""The SLA job: flag the warnings and breaches that became due, notify, escalate, close old resolved tickets.

The due and warning instants are kept on the ticket itself (the business clock in
:mod:`itsm_tui.services.sla` moves them by paused time), so finding what became due is an indexed range
query over the open tickets. The job uses the services for everything else it writes: audit events,
notifications, the KPI days to recompute and the escalation of a ticket to another group.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, func, select, true, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.models import Group, Ticket
from itsm_tui.services import audit, kpi, notifications, sla_explain, tickets

SCAN_BATCH = 500
# Breaches first, so that a target found both warned and breached in one run (a database left without a
# scheduler) is reported once, as a breach.
SCAN_ORDER = (
    ("response", "breach"),
    ("resolution", "breach"),
    ("response", "warning"),
    ("resolution", "warning"),
)
# The PostgreSQL advisory lock ("SLA_SCAN") each write transaction of a scan holds: scans running at once
# take turns batch by batch, as SQLite's write lock has them do (see flag_due).
SCAN_LOCK = int.from_bytes(b"SLA_SCAN", "big")

_Instant = InstrumentedAttribute[datetime | None]
# A ticket just flagged: id, ref, title, priority, group_id, assignee_id, service, reopen_count, opened_at and
# the instant that became due.
FlaggedRow = Row[tuple[int, str, str, int, int | None, int | None, str | None, int, datetime, datetime]]


@dataclass
class ScanResult:
    """What one run of the SLA job did."""

    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    notifications: int = 0
    closed: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, int | float]:
        return asdict(self)

    def add(self, other: ScanResult) -> None:
        for name in ("warnings", "breaches", "escalations", "notifications", "closed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _columns(target: str, kind: str) -> tuple[_Instant, _Instant, ColumnElement[bool]]:
    """The instant that becomes due, the flag that records it, and the condition of a running clock."""
    prefix = "response" if target == "response" else "resolution"
    instant = getattr(Ticket, f"{prefix}_{'due_at' if kind == 'breach' else 'warn_at'}")
    flag = getattr(Ticket, f"{prefix}_{'breached_at' if kind == 'breach' else 'warned_at'}")
    # A running clock: the response target stops at the response, the resolution target while paused.
    running = Ticket.responded_at.is_(None) if target == "response" else Ticket.paused_at.is_(None)
    return instant, flag, running


def _due(target: str, kind: str, now: datetime) -> list[ColumnElement[bool]]:
    """The conditions of a target that became due (warning or breach) and is not flagged yet."""
    instant, flag, running = _columns(target, kind)
    conditions = [Ticket.is_open == true(), flag.is_(None), running, instant <= now]
    if kind == "warning":
        # A target whose due instant has passed is a breach, reported once as a breach (which implies the
        # warning): the warning pass never takes it, whatever another scan's breach pass has done so far.
        conditions.append(_columns(target, "breach")[0] > now)
    return conditions


def anything_due(session: Session, target: str, kind: str, now: datetime) -> bool:
    """Whether any target of this kind became due and is not flagged yet (one probe of the index)."""
    instant = _columns(target, kind)[0]
    # In the order of the instant, so that the probe reads the instant's partial index from its start
    probe = select(Ticket.id).where(*_due(target, kind, now)).order_by(instant).limit(1)
    return session.execute(probe).first() is not None


def flag_due(
    session: Session, target: str, kind: str, now: datetime, limit: int = SCAN_BATCH
) -> list[FlaggedRow]:
    """Mark targets that became due (warning or breach) and are not marked yet; return the marked tickets.

    The conditional UPDATE is the guard: the conditions are re-checked on the row that is written, so two
    scans running at once never mark (and so never report) the same target twice. The candidates come from
    the partial indexes on open tickets, so the cost follows what is due.

    On PostgreSQL the transaction first waits for its turn among the scans (:data:`SCAN_LOCK`), as SQLite's
    write lock makes it wait. A scan holds a ticket's row for one target and kind; without turns, another
    scan would skip that row, end its breach pass with the ticket's other target unflagged and judge it in
    its warning pass: a breach reported as a warning, or as a warning and a breach. With turns, each pass
    finds flagged whatever the earlier passes of every scan flagged. Rows held by anything else (a person's
    edit) are still skipped, for the next run; the warning pass never takes a target that is due.
    """
    instant, flag, _ = _columns(target, kind)
    due = _due(target, kind, now)
    candidates = select(Ticket.id).where(*due).order_by(instant).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(SCAN_LOCK)))
        candidates = candidates.with_for_update(skip_locked=True)
    values: dict[_Instant, Any] = {flag: instant}
    if kind == "breach":  # a breach is past the warning too; it is not reported again as a warning
        warned = _columns(target, "warning")[1]
        values[warned] = func.coalesce(warned, instant)
    stmt = (
        update(Ticket)
        .where(Ticket.id.in_(candidates), *due)
        .values(values)
        .returning(
            Ticket.id,
            Ticket.ref,
            Ticket.title,
            Ticket.priority,
            Ticket.group_id,
            Ticket.assignee_id,
            Ticket.service,
            Ticket.reopen_count,
            Ticket.opened_at,
            instant.label("instant"),
        )
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(stmt))


def scan(
    db: Database, config: DeskConfig, now: datetime | None = None, *, batch: int = SCAN_BATCH
) -> ScanResult:
    """One run of the SLA job: flag new warnings and breaches, notify, escalate, close old resolved tickets.

    Each batch is one transaction: the flags, audit events, escalations and notifications are written
    together or not at all.
    """
    started = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    result = ScanResult()
    with db.read_session() as session:  # most runs find nothing: look before taking the write lock
        pending = [(t, k) for t, k in SCAN_ORDER if anything_due(session, t, k, now)]
    for target, kind in pending:
        while True:
            with db.read_session() as session:  # and again before each batch: another scan may have done it
                if not anything_due(session, target, kind, now):
                    break
            with db.session() as session:
                rows = flag_due(session, target, kind, now, batch)
                if rows:
                    result.add(_report(session, config, rows, target, kind, now))
            if len(rows) < batch:
                break
    result.closed = close_resolved(db, config, now)
    result.seconds = time.perf_counter() - started
    return result


def _report(
    session: Session, config: DeskConfig, rows: list[FlaggedRow], target: str, kind: str, now: datetime
) -> ScanResult:
    """Audit, notify and escalate the tickets just flagged (same transaction)."""
    result = ScanResult()
    if target == "response" and kind == "breach":  # "response decided" of the opening day changes
        kpi.mark_dirty(session, *(r.opened_at for r in rows))
    if kind == "breach":
        result.breaches = len(rows)
    else:
        result.warnings = len(rows)
    field = f"{target}_{'breached' if kind == 'breach' else 'warned'}_at"
    audit.record_many(
        session,
        [audit.Entry("ticket", r.id, None, now, "sla", field=field, new=r.instant.isoformat()) for r in rows],
    )
    group_ids = {r.group_id for r in rows if r.group_id is not None} if kind == "warning" else set()
    leads: dict[int, list[int]] = {gid: notifications.group_leads(session, [gid]) for gid in group_ids}
    accountable_roles = config.raci_roles("sla_breach", "A") if kind == "breach" else []
    accountable: dict[int | None, list[int]] = {}
    label = "SLA breach" if kind == "breach" else "SLA warning"
    notes = []
    for r in rows:
        if kind == "breach":
            if r.group_id not in accountable:
                accountable[r.group_id] = notifications.users_with_roles(
                    session, accountable_roles, [r.group_id] if r.group_id else None
                )
            recipients = set(accountable[r.group_id])
        else:
            recipients = set(leads.get(r.group_id, []))
        if r.assignee_id:
            recipients.add(r.assignee_id)
        event_key = f"sla-{target}-{kind}:{r.id}:{r.reopen_count}"
        when = f"{r.instant:%Y-%m-%d %H:%M} UTC"
        verb = "passed" if kind == "breach" else f"{round(config.warning_ratio * 100)}% used"
        message = f"{label}: {r.ref} (P{r.priority}) {target} target {verb} at {when}: {r.title}"
        notes += [
            {
                "user_id": uid,
                "kind": f"sla_{kind}",
                "event_key": event_key,
                "entity_type": "ticket",
                "entity_id": r.id,
                "message": message,
                "created_at": now,
            }
            for uid in sorted(recipients)
        ]
    result.notifications += notifications.notify_many(session, notes)
    result.escalations = escalate(session, config, rows, target, kind, now)
    return result


def escalate(
    session: Session, config: DeskConfig, rows: list[FlaggedRow], target: str, kind: str, now: datetime
) -> int:
    """Functional escalation of the tickets just flagged, by the rules of sla.toml; returns how many moved.

    The group is chosen by :func:`itsm_tui.services.sla_explain.escalation_target` (the rule the SLA
    preview of a ticket's form uses too). A ticket already there stays.
    """
    rules = [rule for rule in config.escalations if rule.event == kind and rule.target == target]
    if not rules:
        return 0
    moved = 0
    levels = dict(session.execute(select(Group.id, Group.level)).tuples().all())
    codes = dict(session.execute(select(Group.code, Group.id)).tuples().all())
    names = {group_id: code for code, group_id in codes.items()}
    for r in rows:
        code = sla_explain.escalation_target(
            config, kind, target, r.priority, levels.get(r.group_id), r.service, names.get(r.group_id)
        )
        if code is None or code not in codes:
            continue
        ticket = session.get(Ticket, r.id)
        group = session.get(Group, codes[code])
        if ticket is None or group is None:  # both were read in this transaction; a guard for the types
            continue
        reason = f"automatic escalation on {target} {kind} (P{r.priority})"
        tickets.move_to_group(session, config, ticket, group, None, reason, now)
        moved += 1
    session.flush()
    return moved


def close_resolved(db: Database, config: DeskConfig, now: datetime, batch: int = 1000) -> int:
    """Close tickets resolved more than ``auto_close_days`` ago (audited as the system)."""
    cutoff = now - timedelta(days=config.auto_close_days)
    due = select(Ticket.id).where(Ticket.status == "resolved", Ticket.resolved_at <= cutoff).limit(1)
    with db.read_session() as session:
        if session.execute(due).first() is None:
            return 0
    closed = 0
    while True:
        with db.session() as session:
            candidates = (
                select(Ticket.id)
                .where(Ticket.status == "resolved", Ticket.resolved_at <= cutoff)
                .order_by(Ticket.id)
                .limit(batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            ids = (
                session.execute(
                    update(Ticket)
                    .where(Ticket.id.in_(candidates), Ticket.status == "resolved")
                    .values(
                        status="closed",
                        closed_at=now,
                        updated_at=now,
                        is_open=False,
                        version=Ticket.version + 1,
                    )
                    .returning(Ticket.id)
                    .execution_options(synchronize_session=False)
                )
                .scalars()
                .all()
            )
            audit.record_many(
                session,
                [
                    audit.Entry("ticket", i, None, now, "close", field="status", old="resolved", new="closed")
                    for i in ids
                ],
            )
        closed += len(ids)
        if len(ids) < batch:
            return closed
