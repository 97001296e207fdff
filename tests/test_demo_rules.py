"""Demo data follows the engine's rules: a scan at the anchor changes nothing, and every stored SLA instant,
pause and lifecycle step is what the engine gives for the ticket's audit trail.

Two 5,000-ticket demos (two seeds) are built once for the module. Their tickets are rebuilt from the audit
trail alone (the opening, priority changes, status changes and so the pauses, reopens, the response, the
resolution, a cancel) and measured again with the day-walking :class:`BusinessClock`, not the demo's fast
clock; the fast clock is checked against it on its own as well.
"""

from __future__ import annotations

import random
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from itsm_tui.cli import main
from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.demo import build_demo
from itsm_tui.demo.clock import EpochClock
from itsm_tui.jobs import sla_scan
from itsm_tui.models import (
    AuditEvent,
    Group,
    Notification,
    RoleMembership,
    SatisfactionRating,
    Ticket,
    TicketEntry,
    TicketPause,
    User,
)
from itsm_tui.services import sla
from itsm_tui.services.tickets.guards import TRANSITIONS

ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)
TICKETS = 5000
SEEDS = (11, 29)
SUPPORT = {"agent", "support_l2", "support_l3", "shift_lead"}


# --------------------------------------------------------------------------- the demos


@pytest.fixture(scope="module")
def demos(tmp_path_factory, sqlite_template, config) -> dict[int, Path]:
    """A 5,000-ticket demo database per seed, built once; tests read them or copy them."""
    folder = tmp_path_factory.mktemp("demo-rules")
    built = {}
    patch = pytest.MonkeyPatch()
    patch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    try:
        for seed in SEEDS:
            path = folder / f"demo-{seed}.db"
            shutil.copy(sqlite_template, path)
            db = Database.connect(f"sqlite:///{path}")
            db.sync_catalog(config)
            build_demo(db, config, tickets=TICKETS, seed=seed, anchor=ANCHOR)
            db.dispose()
            built[seed] = path
    finally:
        patch.undo()
    return built


@pytest.fixture(scope="module")
def histories(demos, config) -> dict[int, list[Rebuilt]]:
    """Each demo's tickets as stored, beside what their audit trail gives."""
    result = {}
    for seed, path in demos.items():
        db = Database.connect(f"sqlite:///{path}")
        try:
            result[seed] = list(rebuild_all(db, config))
        finally:
            db.dispose()
    return result


def _copy(path: Path, tmp_path: Path) -> str:
    target = tmp_path / path.name
    shutil.copy(path, target)
    return f"sqlite:///{target}"


# --------------------------------------------------------------------------- (1) a scan changes nothing


def _state(db: Database) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return {
            "tickets": conn.execute(text("SELECT * FROM tickets ORDER BY id")).all(),
            "pauses": conn.execute(text("SELECT * FROM ticket_pauses ORDER BY id")).all(),
            "audit": conn.execute(text("SELECT count(*), max(id) FROM audit_events")).one(),
            "entries": conn.execute(text("SELECT count(*), max(id) FROM ticket_entries")).one(),
            "notifications": conn.execute(text("SELECT count(*) FROM notifications")).scalar(),
            "dirty_days": conn.execute(text("SELECT count(*) FROM kpi_dirty_days")).scalar(),
        }


def test_a_scan_at_the_anchor_changes_nothing(demos, config, tmp_path):
    db = Database.connect(_copy(demos[SEEDS[0]], tmp_path))
    try:
        before = _state(db)
        result = sla_scan.scan(db, config, ANCHOR)
        assert (result.warnings, result.breaches, result.escalations, result.closed) == (0, 0, 0, 0)
        assert result.notifications == 0
        assert _state(db) == before
    finally:
        db.dispose()


def test_the_scan_command_at_the_anchor_changes_nothing(demos, config, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    url = _copy(demos[SEEDS[1]], tmp_path)
    db = Database.connect(url)
    before = _state(db)
    assert main(["sla", "scan", "--db", url, "--now", ANCHOR.isoformat(), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"warnings": 0' in out and '"breaches": 0' in out and '"closed": 0' in out
    assert _state(db) == before
    db.dispose()


def test_a_later_scan_finds_what_comes_due_after_the_anchor(demos, config, tmp_path):
    """The demo is not frozen: the open tickets' clocks run on past the anchor."""
    db = Database.connect(_copy(demos[SEEDS[0]], tmp_path))
    try:
        result = sla_scan.scan(db, config, ANCHOR + timedelta(days=6))
        assert result.warnings + result.breaches > 0 and result.closed > 0
    finally:
        db.dispose()


# --------------------------------------------------------------------------- (2) rebuilt from the audit trail


@dataclass
class Rebuilt:
    """One ticket: its stored row, pauses and flags, and what its audit trail alone gives."""

    ticket: Any  # the stored row
    pauses: list[tuple[str, datetime, datetime | None]]
    events: list[Any]  # its audit events, oldest first
    rebuilt_pauses: list[list[Any]] = field(default_factory=list)
    instants: dict[str, datetime] = field(default_factory=dict)
    statuses: list[tuple[str | None, str, str]] = field(default_factory=list)  # (old, new, action)
    facts: dict[str, Any] = field(default_factory=dict)
    flags: list[tuple[datetime, str, datetime, bool]] = field(default_factory=list)  # at, flag, value, ran


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def rebuild_all(db: Database, config: DeskConfig) -> Iterator[Rebuilt]:
    with db.read_session() as session:
        tickets = session.execute(select(Ticket.__table__).order_by(Ticket.id)).all()
        pauses: dict[int, list] = defaultdict(list)
        for p in session.execute(
            select(
                TicketPause.ticket_id, TicketPause.reason, TicketPause.started_at, TicketPause.ended_at
            ).order_by(TicketPause.ticket_id, TicketPause.started_at, TicketPause.id)
        ):
            pauses[p.ticket_id].append((p.reason, p.started_at, p.ended_at))
        events: dict[int, list] = defaultdict(list)
        for e in session.execute(
            select(
                AuditEvent.entity_id,
                AuditEvent.at,
                AuditEvent.actor_id,
                AuditEvent.action,
                AuditEvent.field,
                AuditEvent.old_value,
                AuditEvent.new_value,
            )
            .where(AuditEvent.entity_type == "ticket")
            .order_by(AuditEvent.entity_id, AuditEvent.at, AuditEvent.id)
        ):
            events[e.entity_id].append(e)
        groups = dict(session.execute(select(Group.code, Group.id)).tuples().all())
        logins = dict(session.execute(select(User.login, User.id)).tuples().all())
    for ticket in tickets:
        item = Rebuilt(ticket, pauses[ticket.id], events[ticket.id])
        replay(item, config)
        f = item.facts
        f["group_id"], f["first_group_id"] = groups[f["group"]], groups[f["first_group"]]
        f["assignee_id"] = logins[f["assignee"]] if f["assignee"] is not None else None
        yield item


def _steps(events: list[Any]) -> Iterator[tuple[datetime, list[Any]]]:
    """The audit events of one ticket in steps: one service call (or one run of the SLA job) each."""
    step: list[Any] = []
    for event in events:
        if step and (event.at, event.actor_id) != (step[0].at, step[0].actor_id):
            yield step[0].at, step
            step = []
        step.append(event)
    if step:
        yield step[0].at, step


def replay(item: Rebuilt, config: DeskConfig) -> None:
    """The ticket's history from its audit trail, its SLA instants measured by the engine at each retarget.

    The engine retargets at the opening, at a priority change, when a pause ends (leaving pending, a
    reopen) and measures every pause on the current priority's calendar; a stopped target (responded,
    resolved, cancelled) keeps the instants it had then.
    """
    f: dict[str, Any] = {
        "opened": None,
        "priority": None,
        "group": None,
        "assignee": None,
        "status": None,
        "responded": None,
        "resolved": None,
        "cancelled": None,
        "closed": None,
        "resolution_start": None,
        "reopens": 0,
        "escalations": 0,
        "business": None,
        "version": 0,  # each service call that changes the ticket saves it (the opening first); flags do not
        "updated": None,
    }
    pauses = item.rebuilt_pauses

    def retarget() -> None:
        policy = config.policies[f["priority"]]
        running = f["cancelled"] is None
        targets = sla.compute_targets(
            sla.BusinessClock(config.calendars[policy.calendar]),
            response_minutes=policy.response_minutes,
            resolution_minutes=policy.resolution_minutes,
            warning_ratio=config.warning_ratio,
            opened_at=f["opened"],
            resolution_start=f["resolution_start"],
            pauses=[sla.Pause(start, end, reason) for reason, start, end in pauses],
            response_running=running and f["responded"] is None,
            resolution_running=running and f["resolved"] is None,
        )
        for name in ("response_warn", "response_due", "resolution_warn", "resolution_due"):
            measured = getattr(targets, name)
            if measured is not None:
                item.instants[f"{name}_at"] = measured.due

    for at, step in _steps(item.events):
        rows = {e.field: e for e in step}
        if step[0].actor_id is not None or any(e.action in ("escalate", "close") for e in step):
            f["version"] += 1
            f["updated"] = at
        for e in step:
            if e.action == "sla" and e.field != "responded_at":
                if e.field.startswith("response"):
                    ran = f["responded"] is None and f["cancelled"] is None
                else:
                    ran = f["resolved"] is None and f["cancelled"] is None and all(p[2] for p in pauses)
                item.flags.append((at, e.field, _when(e.new_value), ran))
        status = rows.get("status")
        if any(e.action == "create" for e in step):
            f.update(opened=at, priority=int(rows["priority"].new_value), group=rows["group"].new_value)
            f["first_group"] = f["group"]
            f["status"] = "new"
            item.statuses.append((None, "new", "create"))
            retarget()
            continue
        # A pause ends (leaving pending, or a reopen): the engine retargets before the step's stops apply.
        if status is not None and (
            status.old_value == "pending"
            or (status.old_value, status.new_value) == ("resolved", "in_progress")
        ):
            if status.old_value == "resolved":
                f["resolved"] = None
                f["business"] = None
                f["reopens"] += 1
                if "resolution_started_at" in rows:
                    f["resolution_start"] = _when(rows["resolution_started_at"].new_value)
            for pause in pauses:
                if pause[2] is None:
                    pause[2] = at
            retarget()
        if "priority" in rows:
            f["priority"] = int(rows["priority"].new_value)
            retarget()
        if "responded_at" in rows:  # instants audited as the services write them: ISO, in UTC
            assert rows["responded_at"].new_value == at.isoformat()
            f["responded"] = at
        if "resolved_at" in rows and rows["resolved_at"].new_value is not None:
            assert rows["resolved_at"].new_value == at.isoformat()
            f["resolved"] = at
            clock = sla.BusinessClock(config.calendars[config.policies[f["priority"]].calendar])
            f["business"] = int(clock.elapsed(f["opened"], at))
        if "cancelled_at" in rows:
            assert rows["cancelled_at"].new_value == at.isoformat()
            f["cancelled"] = at
        if "closed_at" in rows or (status is not None and status.new_value == "closed"):
            f["closed"] = at
        if "group" in rows:
            f["group"] = rows["group"].new_value
            f["escalations"] += 1 if rows["group"].action == "escalate" else 0
        if "assignee" in rows:
            f["assignee"] = rows["assignee"].new_value
        if status is not None:
            if status.new_value == "pending":
                pauses.append([rows["pending_reason"].new_value, at, None])
            elif status.new_value == "resolved" and not any(p[2] is None for p in pauses):
                pauses.append(["resolved", at, None])
            item.statuses.append((status.old_value, status.new_value, status.action))
            f["status"] = status.new_value
    item.facts = f


@pytest.mark.parametrize("seed", SEEDS)
def test_every_stored_instant_is_the_engines_for_the_audit_trail(histories, config, seed):
    checked = 0
    for item in histories[seed]:
        t = item.ticket
        stored = {name: getattr(t, name) for name in item.instants}
        assert stored == item.instants, f"{t.ref}: stored {stored}, the engine gives {item.instants}"
        assert set(item.instants) == {
            "response_warn_at",
            "response_due_at",
            "resolution_warn_at",
            "resolution_due_at",
        }
        f = item.facts
        assert (t.opened_at, t.priority, t.status) == (f["opened"], f["priority"], f["status"]), t.ref
        assert t.sla_calendar == config.policies[t.priority].calendar
        assert (t.responded_at, t.resolved_at, t.cancelled_at, t.closed_at) == (
            f["responded"],
            f["resolved"],
            f["cancelled"],
            f["closed"],
        ), t.ref
        assert t.resolution_started_at == f["resolution_start"]
        assert t.resolution_business_seconds == f["business"], t.ref
        assert (t.reopen_count, t.escalation_count) == (f["reopens"], f["escalations"]), t.ref
        assert (t.version, t.updated_at) == (f["version"], f["updated"]), t.ref
        assert (t.group_id, t.first_group_id, t.assignee_id) == (
            f["group_id"],
            f["first_group_id"],
            f["assignee_id"],
        ), t.ref
        open_pause = next((p[1] for p in item.rebuilt_pauses if p[2] is None), None)
        assert t.paused_at == open_pause, t.ref
        checked += 1
    assert checked == TICKETS


@pytest.mark.parametrize("seed", SEEDS)
def test_the_pauses_are_the_intervals_of_the_audit_trail(histories, seed):
    paused = 0
    for item in histories[seed]:
        assert item.pauses == [tuple(p) for p in item.rebuilt_pauses], item.ticket.ref
        paused += any(reason != "resolved" for reason, _, _ in item.pauses)
    assert paused > TICKETS * 0.1  # tickets do wait on customers, vendors and changes


@pytest.mark.parametrize("seed", SEEDS)
def test_the_flags_are_the_scans_and_stand_where_the_clock_ran(histories, seed):
    """Each flag is the value the job's last audited flag of that target wrote (for the resolution target,
    since the last reopen), and the instant it marks passed while that clock ran, before the anchor."""
    flagged = 0
    for item in histories[seed]:
        t = item.ticket
        latest: dict[str, str | None] = {}
        for e in item.events:
            if e.action == "sla" and e.field.endswith(("_warned_at", "_breached_at")):
                latest[e.field] = e.new_value
                assert e.actor_id is None
            if e.field == "status" and (e.old_value, e.new_value) == ("resolved", "in_progress"):
                latest.pop("resolution_warned_at", None)
                latest.pop("resolution_breached_at", None)
        for target in ("response", "resolution"):
            breached = getattr(t, f"{target}_breached_at")
            warned = getattr(t, f"{target}_warned_at")
            assert breached == _when(latest.get(f"{target}_breached_at")), t.ref
            # A breach flagged before its warning marks the warning too, with the breach instant, unaudited.
            assert warned == (_when(latest.get(f"{target}_warned_at")) or breached), t.ref
            for flag in (warned, breached):
                assert flag is None or flag <= ANCHOR
            flagged += breached is not None
        if t.response_breached_at is None and t.responded_at is None and t.cancelled_at is None:
            assert t.response_due_at > ANCHOR, t.ref
        for at, name, value, running in item.flags:  # flagged once passed, while that clock ran
            assert value <= at and running, (t.ref, name, at)
    assert flagged > 0


# --------------------------------------------------------------------------- (3) the fast clock


def _shipped_clocks(config: DeskConfig) -> dict[str, tuple[sla.BusinessClock, EpochClock]]:
    first, last = date(2025, 12, 1), date(2028, 3, 1)
    return {
        name: (sla.BusinessClock(calendar), EpochClock(calendar, first, last))
        for name, calendar in config.calendars.items()
    }


def _instants(rng: random.Random, clock: sla.BusinessClock, n: int) -> Iterator[datetime]:
    """Whole-second instants: random, at and around openings and closings, on DST days and holidays."""
    zone = clock.calendar.zone
    special = [
        date(2026, 3, 29),  # Europe/Berlin springs forward
        date(2026, 10, 25),  # and falls back
        date(2027, 3, 28),
        date(2027, 10, 31),
        date(2026, 12, 24),  # listed holidays
        date(2026, 12, 25),  # public holidays (DE)
        date(2027, 1, 1),
        date(2027, 4, 5),
    ]
    for _ in range(n):
        roll = rng.random()
        if roll < 0.4:
            seconds = rng.randint(
                int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()), int(ANCHOR.timestamp()) + 400 * 86400
            )
            yield datetime.fromtimestamp(seconds, UTC)
        else:
            day = (
                rng.choice(special) if roll < 0.7 else date(2026, 1, 5) + timedelta(days=rng.randint(0, 600))
            )
            local = datetime(day.year, day.month, day.day, rng.choice((0, 1, 2, 3, 7, 8, 16, 17, 18, 23)))
            local += timedelta(minutes=rng.choice((0, 0, 0, 30, 59)), seconds=rng.choice((0, 0, 1, 59)))
            yield local.replace(tzinfo=zone).astimezone(UTC)


def test_the_span_clock_agrees_with_the_business_clock(config):
    rng = random.Random(20261120)
    for name, (business, fast) in _shipped_clocks(config).items():
        span = fast.span
        for start in _instants(rng, business, 1500):
            amount = float(
                rng.choice((1, 60, 900, 3600, 8 * 3600, 36000, 86400, 5 * 86400)) * rng.randint(1, 9)
            )
            expected = business.add(start, amount)
            assert span.add(start.timestamp(), amount) == expected.timestamp(), (name, start, amount)
            assert fast.add(start, amount) == expected, (name, start, amount)
            assert fast.add(start, timedelta(seconds=amount)) == expected
            end = start + timedelta(seconds=rng.randint(1, 30 * 86400))
            assert span.elapsed(start.timestamp(), end.timestamp()) == business.elapsed(start, end)
            assert fast.elapsed_delta(start, end) == business.elapsed_delta(start, end), (name, start, end)
            assert fast.elapsed_delta(end, start) == timedelta()


def test_a_target_used_up_at_a_closing_time_is_due_then_on_both_clocks(config):
    rng = random.Random(7)
    business, fast = _shipped_clocks(config)["office"]
    checked = 0
    for start in _instants(rng, business, 400):
        day = start.astimezone(business.calendar.zone).date() + timedelta(days=rng.randint(0, 20))
        closings = [end for _, end in business._intervals(day) if end > start]
        if not closings:
            continue
        closing = closings[-1]
        amount = business.elapsed(start, closing)
        if amount <= 0:
            continue
        assert business.add(start, amount) == closing
        assert fast.add(start, amount) == closing, (start, closing)
        assert fast.span.add(start.timestamp(), amount) == closing.timestamp()
        checked += 1
    assert checked > 200


def test_targets_measured_on_both_clocks_agree(config):
    """``measure`` with pauses (some ending at closing times, some under way) gives the same instants."""
    rng = random.Random(3)
    for name, (business, fast) in _shipped_clocks(config).items():
        for start in _instants(rng, business, 300):
            pauses = []
            at = start
            for _ in range(rng.randint(0, 3)):
                begin = at + timedelta(seconds=rng.randint(1, 3 * 86400))
                end = begin + timedelta(seconds=rng.randint(1, 4 * 86400))
                pauses.append(sla.Pause(begin, end))
                at = end
            if pauses and rng.random() < 0.3:
                pauses[-1] = sla.Pause(pauses[-1].start, None)
            target = timedelta(minutes=rng.choice((15, 30, 120, 480, 960, 1440, 2880, 4800)))
            for share in (1.0, config.warning_ratio):
                slow = sla.measure(business, start, target * share, pauses)
                quick = sla.measure(fast, start, target * share, pauses)
                assert quick == slow, (name, start, target, pauses)


def test_the_span_clock_adds_nothing_as_the_business_clock_does(config):
    business, fast = _shipped_clocks(config)["office"]
    evening = datetime(2026, 11, 17, 20, tzinfo=UTC)  # closed: the next opening is 07:00 UTC
    assert fast.span.add(evening.timestamp(), 0.0) == business.add(evening, 0).timestamp()


def test_the_demo_clock_adds_nothing_as_the_business_clock_does(config):
    business, fast = _shipped_clocks(config)["office"]
    for start in (datetime(2026, 11, 17, 20, tzinfo=UTC), datetime(2026, 11, 18, 9, tzinfo=UTC)):
        assert fast.add(start, 0) == business.add(start, 0)


# --------------------------------------------------------------------------- (4) lifecycle sanity


@pytest.mark.parametrize("seed", SEEDS)
def test_each_status_change_is_a_legal_move(histories, seed):
    moves: set[tuple[str | None, str]] = set()
    for item in histories[seed]:
        previous = None
        for old, new, action in item.statuses:
            assert old == previous, f"{item.ticket.ref}: {old} after {previous}"
            if old is None:
                assert (new, action) == ("new", "create")
            elif action == "escalate":
                assert new == "new" and old in ("new", "assigned", "in_progress", "pending")
            else:
                assert new in TRANSITIONS[old], f"{item.ticket.ref}: {old} -> {new}"
            moves.add((old, new))
            previous = new
    # the demo walks the whole lifecycle
    for move in (
        ("new", "assigned"),
        ("new", "in_progress"),
        ("assigned", "in_progress"),
        ("in_progress", "pending"),
        ("pending", "in_progress"),
        ("pending", "resolved"),
        ("in_progress", "resolved"),
        ("resolved", "in_progress"),
        ("resolved", "closed"),
        ("in_progress", "new"),
    ):
        assert move in moves, move
    assert any(new == "cancelled" for _, new in moves)


@pytest.mark.parametrize("seed", SEEDS)
def test_nothing_after_the_anchor_and_nobody_answers_after_a_cancel(demos, histories, seed):
    for item in histories[seed]:
        t = item.ticket
        assert all(e.at <= ANCHOR for e in item.events)
        if t.cancelled_at is not None:
            assert all(e.at <= t.cancelled_at for e in item.events), t.ref
            assert t.responded_at is None or t.responded_at <= t.cancelled_at
        if t.resolved_at is not None:
            assert t.responded_at is not None and t.responded_at <= t.resolved_at, t.ref
        assert t.opened_at <= t.updated_at <= ANCHOR
        assert t.updated_at == item.events[-1].at or item.events[-1].action == "sla", t.ref
    db = Database.connect(f"sqlite:///{demos[seed]}")
    try:
        with db.read_session() as session:
            for column in (
                TicketEntry.created_at,
                SatisfactionRating.rated_at,
                TicketPause.started_at,
                TicketPause.ended_at,
                Notification.created_at,
            ):
                assert session.scalar(select(func.max(column))) <= ANCHOR
            late_reply = session.scalar(
                select(func.count())
                .select_from(TicketEntry)
                .join(Ticket, Ticket.id == TicketEntry.ticket_id)
                .where(Ticket.cancelled_at.is_not(None), TicketEntry.created_at > Ticket.cancelled_at)
            )
            assert late_reply == 0
            roles: dict[int, set[str]] = defaultdict(set)
            for user_id, role in session.execute(select(RoleMembership.user_id, RoleMembership.role)):
                roles[user_id].add(role)
            logins = dict(session.execute(select(User.login, User.id)).tuples().all())
    finally:
        db.dispose()
    for item in histories[seed]:
        for e in item.events:
            if e.actor_id is not None:  # whoever works on a ticket holds a support role
                assert roles[e.actor_id] & SUPPORT, (item.ticket.ref, e.action, e.field)
            if e.field == "assignee" and e.new_value is not None:
                assert roles[logins[e.new_value]] & SUPPORT


def test_a_demo_with_reopens_restarting_the_resolution_target(sqlite_template, config, tmp_path, monkeypatch):
    """With ``reopen_restarts_resolution`` a reopen starts the target afresh (audited); the rules hold."""
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    restarting = replace(config, reopen_restarts_resolution=True)
    path = tmp_path / "restart.db"
    shutil.copy(sqlite_template, path)
    db = Database.connect(f"sqlite:///{path}")
    db.sync_catalog(restarting)
    build_demo(db, restarting, tickets=2000, seed=5, anchor=ANCHOR)
    try:
        before = _state(db)
        result = sla_scan.scan(db, restarting, ANCHOR)
        assert result.warnings + result.breaches + result.escalations + result.closed == 0
        assert _state(db) == before
        items = list(rebuild_all(db, restarting))
    finally:
        db.dispose()
    restarted = 0
    for item in items:
        t = item.ticket
        assert {name: getattr(t, name) for name in item.instants} == item.instants, t.ref
        assert item.pauses == [tuple(p) for p in item.rebuilt_pauses], t.ref
        restarted += t.resolution_started_at is not None
    assert restarted > 0
