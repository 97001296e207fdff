"""SLA instants through the ticket services, each expected value worked out by hand in the comments.

Policies (data/sla.toml): P1 15 min / 240 min and P2 30 / 480 on 24x7; P3 120 / 1440, P4 480 / 2880 on the
office calendar (Europe/Berlin, Mon-Thu 08:00-18:00, Fri 08:00-17:00, German public holidays plus 24 and 31
December). Warning at 75 % of a target. Every test runs on SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from ticket_helpers import move, new_ticket, pauses, snapshot, take

from itsm_tui.services import sla, tickets


def z(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def update(db, config, actor, ref: str, now: datetime, **fields) -> None:
    with db.session() as s:
        tickets.update_fields(s, config, actor, ref, now=now, **fields)


def state(db, config, ref: str, now: datetime, target: str) -> str:
    with db.read_session() as s:
        return sla.sla_state(tickets.get_ticket(s, ref), now, target)


def test_a_met_or_breached_response_is_frozen(db, config, staff) -> None:
    agent, lead = staff["agent1"], staff["lead"]
    # P2 (24x7) opened Monday 2026-03-02 08:00Z: response due 08:30 (warn 08:22:30), resolution due 16:00.
    ref = new_ticket(db, config, agent, now=z(2026, 3, 2, 8), impact="high", urgency="medium")
    take(db, config, agent, ref, now=z(2026, 3, 2, 9, 30))  # responded an hour late: breached
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 9, 31))
    move(db, config, agent, ref, "pending", now=z(2026, 3, 2, 9, 32), reason="customer")
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 12, 30))
    t = snapshot(db, ref)
    assert (t.response_warn_at, t.response_due_at) == (z(2026, 3, 2, 8, 22, 30), z(2026, 3, 2, 8, 30))
    # The pause of 2 h 58 min moves the resolution target only: 16:00 + 2:58 = 18:58, warning 14:00 + 2:58.
    assert (t.resolution_warn_at, t.resolution_due_at) == (z(2026, 3, 2, 16, 58), z(2026, 3, 2, 18, 58))
    assert state(db, config, ref, z(2026, 3, 2, 12, 31), "response") == "breached"

    # Raised to P1 at 12:40: the response stays as it was; resolution 240 min + 2:58 = 14:58, warning
    # 180 min (11:00, after the pause began at 09:32) + 2:58 = 13:58.
    update(db, config, lead, ref, z(2026, 3, 2, 12, 40), urgency="high")
    t = snapshot(db, ref)
    assert t.priority == 1
    assert (t.response_warn_at, t.response_due_at) == (z(2026, 3, 2, 8, 22, 30), z(2026, 3, 2, 8, 30))
    assert (t.resolution_warn_at, t.resolution_due_at) == (z(2026, 3, 2, 13, 58), z(2026, 3, 2, 14, 58))
    # Lowered again: back to the P2 resolution instants, the response still breached at 08:30.
    update(db, config, lead, ref, z(2026, 3, 2, 12, 50), urgency="medium")
    t = snapshot(db, ref)
    assert (t.response_due_at, t.resolution_due_at) == (z(2026, 3, 2, 8, 30), z(2026, 3, 2, 18, 58))
    assert state(db, config, ref, z(2026, 3, 2, 12, 51), "response") == "breached"


def test_raising_urgency_does_not_breach_a_met_response(db, config, staff) -> None:
    agent, lead = staff["agent1"], staff["lead"]
    # P3 (office) opened Monday 2026-03-02 08:00Z = 09:00 Berlin: response 120 min, due 11:00 Berlin = 10:00Z.
    ref = new_ticket(db, config, agent, now=z(2026, 3, 2, 8), impact="medium", urgency="medium")
    take(db, config, agent, ref, now=z(2026, 3, 2, 9))  # an hour in: met
    update(db, config, lead, ref, z(2026, 3, 2, 9, 10), impact="high", urgency="high")  # P1: 15 min
    t = snapshot(db, ref)
    assert (t.priority, t.response_due_at, t.responded_at) == (1, z(2026, 3, 2, 10), z(2026, 3, 2, 9))
    assert state(db, config, ref, z(2026, 3, 2, 9, 11), "response") == "met"
    # P1 resolution from the opening on 24x7: 08:00Z + 4 h.
    assert t.resolution_due_at == z(2026, 3, 2, 12)


def test_a_priority_change_re_measures_each_pause_on_the_new_calendar(db, config, staff) -> None:
    agent, lead = staff["agent1"], staff["lead"]
    # P3 (office) opened Saturday 2026-03-07 10:00Z; the office calendar has no hours until Monday.
    ref = new_ticket(db, config, agent, now=z(2026, 3, 7, 10), impact="medium", urgency="medium")
    take(db, config, agent, ref, now=z(2026, 3, 7, 10, 5))
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 7, 10, 6))
    move(db, config, agent, ref, "pending", now=z(2026, 3, 7, 10, 30), reason="vendor")
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 7, 12, 30))
    # On the office calendar the Saturday pause counts nothing: 24 business hours from Monday 08:00 CET =
    # Monday 10 h + Tuesday 10 h + Wednesday 4 h -> Wednesday 12:00 CET = 11:00Z.
    assert snapshot(db, ref).resolution_due_at == z(2026, 3, 11, 11)
    update(db, config, lead, ref, z(2026, 3, 7, 12, 40), impact="high", urgency="high")  # P1, 24x7
    t = snapshot(db, ref)
    # 10:00Z + 4 h + the 2 h pause measured on 24x7 = 16:00Z; the warning at 3 h: 10:00 + 3 h + 2 h = 15:00.
    assert (t.priority, t.resolution_due_at, t.resolution_warn_at) == (
        1,
        z(2026, 3, 7, 16),
        z(2026, 3, 7, 15),
    )
    assert pauses(db, ref) == [("vendor", z(2026, 3, 7, 10, 30), z(2026, 3, 7, 12, 30))]


def test_a_pause_across_a_weekend_and_the_daylight_saving_change(db, config, staff) -> None:
    agent = staff["agent1"]
    # P3 opened Friday 2026-03-27 14:00Z = 15:00 CET. Berlin moves to CEST on Sunday 29 March.
    ref = new_ticket(db, config, agent, now=z(2026, 3, 27, 14), impact="medium", urgency="medium")
    take(db, config, agent, ref, now=z(2026, 3, 27, 14, 10))
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 27, 14, 20))
    # Pending from Friday 16:00 CET (15:00Z) to Monday 11:00 CEST (09:00Z): 1 h on Friday + 3 h on Monday.
    move(db, config, agent, ref, "pending", now=z(2026, 3, 27, 15), reason="customer")
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 30, 9))
    # 24 h: Friday 15:00-16:00 CET = 1 h; Monday 11:00-18:00 CEST = 7 h (8); Tuesday 10 h (18);
    # Wednesday 08:00 + 6 h = 14:00 CEST = 12:00Z on 1 April.
    # Warning at 18 h: Tuesday 18:00 CEST = 16:00Z on 31 March, a closing time.
    t = snapshot(db, ref)
    assert (t.resolution_due_at, t.resolution_warn_at) == (z(2026, 4, 1, 12), z(2026, 3, 31, 16))


def test_a_pause_across_holidays(db, config, staff) -> None:
    agent = staff["agent1"]
    # P3 opened Wednesday 2026-12-23 16:00Z = 17:00 CET; 24, 25, 26 December are holidays, then a weekend.
    ref = new_ticket(db, config, agent, now=z(2026, 12, 23, 16), impact="medium", urgency="medium")
    take(db, config, agent, ref, now=z(2026, 12, 23, 16, 5))
    move(db, config, agent, ref, "in_progress", now=z(2026, 12, 23, 16, 10))
    # Pending from Wednesday 17:30 CET to Monday 28 December 09:00 CET: 0.5 h + 1 h of business time.
    move(db, config, agent, ref, "pending", now=z(2026, 12, 23, 16, 30), reason="vendor")
    move(db, config, agent, ref, "in_progress", now=z(2026, 12, 28, 8))
    # 24 h: Wednesday 17:00-17:30 = 0.5 h; Monday 09:00-18:00 = 9 h (9.5); Tuesday 10 h (19.5);
    # Wednesday 30 December 08:00 + 4.5 h = 12:30 CET = 11:30Z.
    assert snapshot(db, ref).resolution_due_at == z(2026, 12, 30, 11, 30)


def test_a_target_used_up_at_a_closing_time_is_due_then(db, config, staff) -> None:
    agent = staff["agent1"]
    # P3 opened Monday 2026-03-02 13:00Z = 14:00 CET: Monday 4 h, Tuesday 10 h, Wednesday 10 h ->
    # Wednesday 18:00 CET = 17:00Z, not Thursday's opening.
    p3 = new_ticket(db, config, agent, now=z(2026, 3, 2, 13), impact="medium", urgency="medium")
    assert snapshot(db, p3).resolution_due_at == z(2026, 3, 4, 17)
    # P4 opened Monday 09:00 CET (08:00Z): 48 h = Monday 9 h + Tuesday-Thursday 30 h + Friday 08:00-17:00 ->
    # Friday 17:00 CET (16:00Z), a closing time; warning at 36 h: Thursday 08:00 + 7 h = 15:00 CET = 14:00Z.
    p4 = new_ticket(db, config, agent, now=z(2026, 3, 2, 8), impact="medium", urgency="low")
    t = snapshot(db, p4)
    assert (t.priority, t.resolution_due_at, t.resolution_warn_at) == (
        4,
        z(2026, 3, 6, 16),
        z(2026, 3, 5, 14),
    )


def test_pauses_are_exact_to_the_microsecond(db, config, staff) -> None:
    agent = staff["agent1"]
    opened = datetime(2026, 3, 2, 8, 0, 0, 1, tzinfo=UTC)
    ref = new_ticket(db, config, agent, now=opened, impact="high", urgency="high")  # P1, 24x7
    take(db, config, agent, ref, now=opened.replace(minute=1))
    move(db, config, agent, ref, "in_progress", now=opened.replace(minute=2))
    start = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
    end = datetime(2026, 3, 2, 9, 0, 1, 654321, tzinfo=UTC)
    move(db, config, agent, ref, "pending", now=start, reason="customer")
    move(db, config, agent, ref, "in_progress", now=end)
    # 12:00:00.000001 + 1.530865 s
    assert snapshot(db, ref).resolution_due_at == datetime(2026, 3, 2, 12, 0, 1, 530866, tzinfo=UTC)
    # The same on the office calendar, inside working hours: P3 opened Monday 09:00:00.5 CET, pending
    # 10:00:00.25-10:00:00.750001 CET (0.500001 s). Running before the pause: 59 min 59.75 s; left
    # 23:00:00.25. Monday 10:00:00.750001-18:00 = 7:59:59.249999 (left 15:00:01.000001); Tuesday 10 h;
    # Wednesday 08:00 + 5:00:01.000001 = 13:00:01.000001 CET = 12:00:01.000001Z.
    p3_open = datetime(2026, 3, 2, 8, 0, 0, 500000, tzinfo=UTC)
    p3 = new_ticket(db, config, agent, now=p3_open, impact="medium", urgency="medium")
    take(db, config, agent, p3, now=z(2026, 3, 2, 8, 1))
    move(db, config, agent, p3, "in_progress", now=z(2026, 3, 2, 8, 2))
    move(
        db,
        config,
        agent,
        p3,
        "pending",
        now=datetime(2026, 3, 2, 9, 0, 0, 250000, tzinfo=UTC),
        reason="vendor",
    )
    move(db, config, agent, p3, "in_progress", now=datetime(2026, 3, 2, 9, 0, 0, 750001, tzinfo=UTC))
    assert snapshot(db, p3).resolution_due_at == datetime(2026, 3, 4, 12, 0, 1, 1, tzinfo=UTC)


def test_a_reopen_resumes_the_resolution_target(db, config, staff) -> None:
    agent = staff["agent1"]
    # P2 opened 08:00Z, resolved 10:00 (met), reopened 14:00: the resolved time is a pause of 4 h.
    ref = new_ticket(db, config, agent, now=z(2026, 3, 2, 8), impact="high", urgency="medium")
    take(db, config, agent, ref, now=z(2026, 3, 2, 8, 5))
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 8, 6))
    move(db, config, agent, ref, "resolved", now=z(2026, 3, 2, 10), code="fixed", note="Replaced the toner")
    assert state(db, config, ref, z(2026, 3, 2, 11), "resolution") == "met"
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 14), reason="still broken")
    t = snapshot(db, ref)
    # 16:00 + 4 h = 20:00, warning 14:00 + 4 h = 18:00; the response (met at 08:05) keeps 08:30.
    assert (t.resolution_due_at, t.resolution_warn_at) == (z(2026, 3, 2, 20), z(2026, 3, 2, 18))
    assert t.response_due_at == z(2026, 3, 2, 8, 30)
    assert pauses(db, ref) == [("resolved", z(2026, 3, 2, 10), z(2026, 3, 2, 14))]
    assert state(db, config, ref, z(2026, 3, 2, 15), "resolution") == "ok"


def test_a_reopen_restarts_the_resolution_target_when_configured(db, config, staff) -> None:
    restarting = dataclasses.replace(config, reopen_restarts_resolution=True)
    agent = staff["agent1"]
    ref = new_ticket(db, restarting, agent, now=z(2026, 3, 2, 8), impact="high", urgency="medium")
    take(db, restarting, agent, ref, now=z(2026, 3, 2, 8, 5))
    move(db, restarting, agent, ref, "in_progress", now=z(2026, 3, 2, 8, 6))
    move(
        db, restarting, agent, ref, "resolved", now=z(2026, 3, 2, 10), code="fixed", note="Replaced the toner"
    )
    move(db, restarting, agent, ref, "in_progress", now=z(2026, 3, 2, 14), reason="still broken")
    t = snapshot(db, ref)
    # A fresh 480 min from the reopen: 22:00, warning 20:00.
    assert (t.resolution_started_at, t.resolution_due_at) == (z(2026, 3, 2, 14), z(2026, 3, 2, 22))
    assert t.resolution_warn_at == z(2026, 3, 2, 20)


def test_a_cancelled_ticket_stops_its_clocks_where_they_stood(db, config, staff) -> None:
    agent = staff["agent1"]
    # P2 opened 08:00Z, pending from 09:00 and cancelled at 20:00 while pending: the clock stood still from
    # 09:00, so the resolution target (7 h left) was not breached; the due moves to 20:00 + 7 h = 03:00.
    ref = new_ticket(db, config, agent, now=z(2026, 3, 2, 8), impact="high", urgency="medium")
    take(db, config, agent, ref, now=z(2026, 3, 2, 8, 5))
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 8, 6))
    move(db, config, agent, ref, "pending", now=z(2026, 3, 2, 9), reason="customer")
    move(db, config, agent, ref, "cancelled", now=z(2026, 3, 2, 20), reason="withdrawn by the caller")
    t = snapshot(db, ref)
    assert t.resolution_due_at == z(2026, 3, 3, 3)
    assert state(db, config, ref, z(2026, 3, 4), "resolution") == "stopped"
    with db.read_session() as s:
        assert sla.time_left(tickets.get_ticket(s, ref), config, z(2026, 3, 4)) is None

    # Cancelled at 17:00 while running: it ran out at 16:00 before the cancel, and stays breached.
    late = new_ticket(db, config, agent, now=z(2026, 3, 2, 8), impact="high", urgency="medium")
    take(db, config, agent, late, now=z(2026, 3, 2, 8, 5))
    move(db, config, agent, late, "cancelled", now=z(2026, 3, 2, 17), reason="duplicate")
    assert snapshot(db, late).resolution_due_at == z(2026, 3, 2, 16)
    assert state(db, config, late, z(2026, 3, 9), "resolution") == "breached"
    with db.read_session() as s:  # overdue by the hour it ran past, frozen at the cancel
        assert sla.time_left(tickets.get_ticket(s, late), config, z(2026, 3, 9)) == -3600


def test_a_pause_after_the_due_instant_does_not_undo_the_breach(db, config, staff) -> None:
    agent = staff["agent1"]
    # P2 opened 08:00Z, resolution due 16:00; pending 17:00-20:00 (after the breach), then resumed.
    ref = new_ticket(db, config, agent, now=z(2026, 3, 2, 8), impact="high", urgency="medium")
    take(db, config, agent, ref, now=z(2026, 3, 2, 8, 5))
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 8, 6))
    move(db, config, agent, ref, "pending", now=z(2026, 3, 2, 17), reason="customer")
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 20))
    assert snapshot(db, ref).resolution_due_at == z(2026, 3, 2, 16)
    assert state(db, config, ref, z(2026, 3, 2, 20, 1), "resolution") == "breached"


def test_the_pause_migration_rebuilds_the_intervals_from_the_audit_trail(db, db_url, config, staff) -> None:
    from alembic import command

    from itsm_tui.db import alembic_config

    agent = staff["agent1"]
    # Pending 09:00-10:00 (vendor), pending 11:00-12:00 (customer), resolved 13:00, reopened 14:00, resolved
    # 15:00 and closed 16:00 (the last resolved pause stays open, as closing leaves it); a second ticket is
    # pending since 09:30 (change).
    ref = new_ticket(db, config, agent, now=z(2026, 3, 2, 8), impact="high", urgency="medium")
    take(db, config, agent, ref, now=z(2026, 3, 2, 8, 5))
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 8, 6))
    move(db, config, agent, ref, "pending", now=z(2026, 3, 2, 9), reason="vendor")
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 10))
    move(db, config, agent, ref, "pending", now=z(2026, 3, 2, 11), reason="customer")
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 12))
    move(db, config, agent, ref, "resolved", now=z(2026, 3, 2, 13), code="fixed", note="Replaced the toner")
    move(db, config, agent, ref, "in_progress", now=z(2026, 3, 2, 14), reason="still broken")
    move(db, config, agent, ref, "resolved", now=z(2026, 3, 2, 15), code="fixed", note="Replaced the drum")
    move(db, config, agent, ref, "closed", now=z(2026, 3, 2, 16))
    other = new_ticket(db, config, agent, now=z(2026, 3, 2, 9), impact="high", urgency="medium")
    take(db, config, agent, other, now=z(2026, 3, 2, 9, 5))
    move(db, config, agent, other, "in_progress", now=z(2026, 3, 2, 9, 6))
    move(db, config, agent, other, "pending", now=z(2026, 3, 2, 9, 30), reason="change")
    expected = {
        ref: [
            ("vendor", z(2026, 3, 2, 9), z(2026, 3, 2, 10)),
            ("customer", z(2026, 3, 2, 11), z(2026, 3, 2, 12)),
            ("resolved", z(2026, 3, 2, 13), z(2026, 3, 2, 14)),
            ("resolved", z(2026, 3, 2, 15), None),
        ],
        other: [("change", z(2026, 3, 2, 9, 30), None)],
    }
    assert {r: pauses(db, r) for r in expected} == expected  # what the services stored
    alembic = alembic_config(db_url)
    db.dispose()
    try:
        command.downgrade(alembic, "0004")
        command.upgrade(alembic, "head")
        assert {r: pauses(db, r) for r in expected} == expected  # rebuilt from the audit trail alone
    finally:
        command.upgrade(alembic, "head")
