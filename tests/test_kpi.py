"""KPIs on both backends: hand-built data sets with answers worked out by hand, the daily roll-up against a
recomputation and the live path, and the ``itsm report`` commands.

The main data set is the week Mon 2026-10-05 to Sun 2026-10-11. Berlin is on summer time (UTC+2) that
week, so the office calendar (P3-P5) is open Mon-Thu 06:00-16:00 UTC and Fri 06:00-15:00 UTC; P1 and P2
run on the 24x7 calendar. KPI days are UTC days.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select, update

from itsm_tui.cli import main
from itsm_tui.jobs import sla_scan
from itsm_tui.models import Change, ChangeTarget, KpiDaily, KpiDirtyDay, Ticket
from itsm_tui.services import kpi, tickets

FIRST, LAST = date(2026, 10, 5), date(2026, 10, 11)
NOW = datetime(2026, 10, 14, 12, 0, tzinfo=UTC)  # a Wednesday after the week: every day of it is past
HOUR = 3600.0


def at(day: int, hour: int, minute: int = 0, month: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Desk:
    """The ticket services at explicit instants, one transaction per action (as a console does)."""

    db: object
    config: object
    staff: dict

    def create(self, when: datetime, impact: str, urgency: str, who: str = "agent1", **kw) -> str:
        values = {"title": "Something broke", "requester": "Anna", "kind": "incident"} | kw
        with self.db.session() as s:
            ticket = tickets.create_ticket(
                s, self.config, self.staff[who], impact=impact, urgency=urgency, now=when, **values
            )
            return ticket.ref

    def take(self, ref: str, when: datetime, who: str = "agent1") -> None:
        with self.db.session() as s:
            tickets.assign(s, self.config, self.staff[who], ref, now=when)

    def assign(self, ref: str, when: datetime, assignee: str, group: str | None = None, who="lead") -> None:
        with self.db.session() as s:
            tickets.assign(s, self.config, self.staff[who], ref, assignee=assignee, group=group, now=when)

    def move(self, ref: str, status: str, when: datetime, who: str = "agent1", reason: str | None = None):
        with self.db.session() as s:
            tickets.transition(s, self.config, self.staff[who], ref, status, reason=reason, now=when)

    def resolve(self, ref: str, when: datetime, who: str = "agent1", code: str = "fixed") -> None:
        with self.db.session() as s:
            tickets.resolve(s, self.config, self.staff[who], ref, code=code, note="done", now=when)

    def reopen(self, ref: str, when: datetime, who: str = "agent1") -> None:
        with self.db.session() as s:
            tickets.reopen(s, self.config, self.staff[who], ref, reason="still broken", now=when)

    def escalate(self, ref: str, when: datetime, group: str, who: str = "agent1") -> None:
        with self.db.session() as s:
            tickets.escalate(s, self.config, self.staff[who], ref, group=group, reason="needs L2", now=when)

    def rate(self, ref: str, score: int, when: datetime, who: str = "agent1") -> None:
        with self.db.session() as s:
            tickets.rate(s, self.staff[who], ref, score=score, now=when)

    def report(self, first: date, last: date, group: str | None = None, now: datetime = NOW):
        with self.db.session() as s:  # refreshing the roll-up writes
            return kpi.report(s, self.config, kpi.custom_period(first, last, now), group, now=now)

    def ticket(self, ref: str) -> Ticket:
        with self.db.read_session() as s:
            t = tickets.get_ticket(s, ref)
            s.expunge(t)
            return t


@pytest.fixture
def desk(db, config, staff) -> Desk:
    return Desk(db, config, staff)


def add_change(
    db,
    ref: str,
    change_type: str,
    state: str,
    *,
    outcome=None,
    planned_start,
    planned_end=None,
    actual_end=None,
    services=("email",),
) -> None:
    with db.session() as s:
        change = Change(
            ref=ref,
            title=f"Change {ref}",
            change_type=change_type,
            state=state,
            outcome=outcome,
            planned_start=planned_start,
            planned_end=planned_end or planned_start + timedelta(hours=2),
            actual_end=actual_end,
            created_at=planned_start - timedelta(days=3),
            updated_at=planned_start - timedelta(days=3),
        )
        change.targets = [ChangeTarget(service=svc) for svc in services]
        s.add(change)


# ref, type, state, outcome, planned start, planned end (None: start + 2 h), actual end
WEEK_CHANGES = [
    ("CHG0000001", "normal", "review", "implemented", at(6, 20), None, at(6, 22)),
    ("CHG0000002", "standard", "closed", "implemented", at(7, 1), None, at(7, 3)),
    ("CHG0000003", "emergency", "review", "failed", at(8, 10), None, at(8, 12)),
    ("CHG0000004", "normal", "review", "backed_out", at(9, 21), at(9, 23), None),  # ends as planned
    ("CHG0000005", "normal", "review", "implemented", at(11, 23), None, at(12, 1)),  # finished after
    ("CHG0000006", "emergency", "scheduled", None, at(11, 10), None, None),
    ("CHG0000007", "normal", "closed", "implemented", at(4, 20), None, at(4, 23)),  # the week before
]


def build_week(desk: Desk) -> dict[str, str]:
    """The week's tickets (letters as in the comments), their answers worked out by hand in the test."""
    r = {}
    # A: P1 incident, taken after 10 min (target 15), resolved after 2 h (target 4 h) by L1: FCR.
    r["A"] = desk.create(at(5, 9), "high", "high", service="email")
    desk.take(r["A"], at(5, 9, 10))
    desk.move(r["A"], "in_progress", at(5, 9, 20))
    desk.resolve(r["A"], at(5, 11))
    # B: P2 incident, taken after 45 min (target 30: missed), resolved after 10 h (target 8 h: missed).
    r["B"] = desk.create(at(5, 10), "high", "medium", service="email")
    desk.take(r["B"], at(5, 10, 45))
    desk.move(r["B"], "in_progress", at(5, 10, 45))
    desk.resolve(r["B"], at(5, 20))
    # C: P3 incident opened Mon 14:00 UTC (16:00 Berlin), taken at 15:00 (due 16:00), resolved Tue 10:00,
    # reopened Wed 09:00, resolved again Thu 12:00: 70 h wall, 2+10+10+6 = 28 business hours.
    r["C"] = desk.create(at(5, 14), "medium", "medium", service="workplace")
    desk.take(r["C"], at(5, 15))
    desk.move(r["C"], "in_progress", at(5, 15))
    desk.resolve(r["C"], at(6, 10))
    desk.reopen(r["C"], at(7, 9))
    desk.resolve(r["C"], at(8, 12))
    # D: P3 incident escalated to NET-L2 and resolved there: 27 h wall, 9+4 = 13 business hours.
    r["D"] = desk.create(at(6, 7), "medium", "medium", service="network")
    desk.take(r["D"], at(6, 7, 30))
    desk.escalate(r["D"], at(6, 8), "NET-L2")
    desk.take(r["D"], at(6, 9), who="net1")
    desk.move(r["D"], "in_progress", at(6, 9), who="net1")
    desk.resolve(r["D"], at(7, 10), who="net1")
    # G: P3 incident pending Tue 08:00 to Wed 16:00 (18 business hours paused), resolved Fri 14:00:
    # after the original due (Thu 11:00) but before the moved one (Mon 12 10:00): met.
    # 79 h wall, 9+10+10+8 = 37 business hours (the business clock of MTTR includes the pending time).
    r["G"] = desk.create(at(6, 7), "medium", "medium", service="workplace")
    desk.take(r["G"], at(6, 7, 30))
    desk.move(r["G"], "in_progress", at(6, 7, 30))
    desk.move(r["G"], "pending", at(6, 8), reason="customer")
    desk.move(r["G"], "in_progress", at(7, 16))
    desk.resolve(r["G"], at(9, 14))
    # E: P4 incident escalated to NET-L2 and brought back to SD-L1 by the lead (escalation_count 1),
    # resolved by L1 after 6 h (inside office hours): escalated, not FCR.
    r["E"] = desk.create(at(7, 6), "medium", "low", service="network")
    desk.take(r["E"], at(7, 6, 30))
    desk.escalate(r["E"], at(7, 7), "NET-L2")
    desk.assign(r["E"], at(7, 8), "agent1", group="SD-L1")
    desk.move(r["E"], "in_progress", at(7, 8))
    desk.resolve(r["E"], at(7, 12))
    # F: P5 service request, resolved at first contact after 1 h: not in the FCR denominator.
    r["F"] = desk.create(at(8, 6), "low", "low", kind="request", category="information")
    desk.take(r["F"], at(8, 6, 30))
    desk.move(r["F"], "in_progress", at(8, 6, 30))
    desk.resolve(r["F"], at(8, 7), code="fulfilled")
    # H: P4 incident, never touched: its response target (8 business hours: Mon 12 07:00) is breached
    # when the SLA job runs (below), so the response is decided, and missed.
    r["H"] = desk.create(at(9, 8), "medium", "low", service="workplace")
    # I: P4 incident opened Fri 14:00 UTC (16:00 Berlin), resolved Sun 10:30: 44.5 h wall, 1 business hour.
    r["I"] = desk.create(at(9, 14), "medium", "low", service="workplace")
    desk.take(r["I"], at(9, 14, 30))
    desk.move(r["I"], "in_progress", at(9, 14, 30))
    desk.resolve(r["I"], at(11, 10, 30))
    # Ratings 5, 4, 3 in the week (A and B on Tuesday, C on Friday).
    desk.rate(r["A"], 5, at(6, 9))
    desk.rate(r["B"], 4, at(6, 10))
    desk.rate(r["C"], 3, at(9, 9))
    # The SLA job flags H's response breach (and closes the tickets resolved more than 5 days before).
    sla_scan.scan(desk.db, desk.config, NOW)
    # Changes: finished in the week 2 implemented, 1 failed, 1 backed out (by planned end); planned to
    # start in the week: 6, of which 2 emergencies. Two more lie outside.
    for ref, change_type, state, outcome, planned_start, planned_end, actual_end in WEEK_CHANGES:
        add_change(
            desk.db,
            ref,
            change_type,
            state,
            outcome=outcome,
            planned_start=planned_start,
            planned_end=planned_end,
            actual_end=actual_end,
        )
    return r


# --------------------------------------------------------------------------- the week, by hand


def test_every_kpi_of_a_week_worked_out_by_hand(desk, db, config):
    refs = build_week(desk)
    rep = desk.report(FIRST, LAST)

    assert rep.period.start == at(5, 0) and rep.period.end == at(12, 0)
    # Volume: opened A B C (Mon), D G (Tue), E (Wed), F (Thu), H I (Fri); resolved on the final day only.
    assert rep.opened == 9
    assert rep.resolved == 8
    assert rep.opened_per_day == {
        "2026-10-05": 3,
        "2026-10-06": 2,
        "2026-10-07": 1,
        "2026-10-08": 1,
        "2026-10-09": 2,
        "2026-10-10": 0,
        "2026-10-11": 0,
    }
    assert rep.resolved_per_day == {
        "2026-10-05": 2,
        "2026-10-06": 0,
        "2026-10-07": 2,
        "2026-10-08": 2,
        "2026-10-09": 1,
        "2026-10-10": 0,
        "2026-10-11": 1,
    }
    # MTTA: responses after 10, 45, 60, 30, 30 (G), 30 (E), 30 (F), 30 (I) minutes = 265 / 8 min.
    assert rep.mtta_hours == 0.55 == round(265 / 8 / 60, 2)
    # MTTR wall: A 2 + B 10 + C 70 + D 27 + E 6 + F 1 + G 79 + I 44.5 = 239.5 h over 8.
    assert rep.mttr_hours == 29.94
    # MTTR business: A 2 + B 10 (24x7) + C 28 + D 13 + E 6 + F 1 + G 37 + I 1 = 98 h over 8.
    assert rep.mttr_business_hours == 12.25
    # Response: decided A B C D G E F I (responded) and H (breached); met all but B and H.
    assert rep.sla_response_pct == 77.8
    assert rep.sla_response_by_priority == {1: 100.0, 2: 0.0, 3: 100.0, 4: 66.7, 5: 100.0}
    # Resolution: of the 8 resolved only B (10 h of 8) missed.
    assert rep.sla_resolution_pct == 87.5
    assert rep.sla_resolution_by_priority == {1: 100.0, 2: 0.0, 3: 100.0, 4: 100.0, 5: 100.0}
    # FCR: incidents resolved A B C D E G I (F is a request); first contact A B G I (C reopened,
    # D resolved by NET-L2, E escalated and brought back).
    assert rep.fcr_pct == 57.1 == round(100 * 4 / 7, 1)
    assert rep.reopen_rate_pct == 12.5  # C of 8
    assert rep.escalation_rate_pct == 25.0  # D and E of 8
    assert (rep.csat_pct, rep.ratings) == (66.7, 3)  # 5, 4, 3
    # Changes: finished 1, 2 implemented, 3 failed, 4 backed out -> 50 %; planned 1-6, emergencies 3 and 6.
    assert (rep.change_success_pct, rep.changes_finished) == (50.0, 4)
    assert (rep.emergency_share_pct, rep.changes_planned) == (33.3, 6)
    # Only H is still open, unassigned, opened 2 days 16 hours before the end of the period.
    assert rep.backlog == 1
    # the backlog is live, taken at NOW (Wed 14th): the one open ticket is 3-7 days old by then
    assert rep.backlog_by_age == {"<1d": 0, "1-3d": 0, "3-7d": 1, ">7d": 0}
    assert rep.workload == {}
    assert rep.mttr_per_day["2026-10-05"] == 6.0  # A 2 h, B 10 h
    assert rep.mttr_per_day["2026-10-10"] is None

    headline = {f.name: (f.value, f.status, f.previous) for f in rep.headline}
    assert headline == {
        "sla_resolution": (87.5, "red", None),
        "sla_response": (77.8, "red", None),
        "fcr": (57.1, "red", None),
        "csat": (66.7, "red", None),
        "mttr_hours": (29.94, "amber", None),
        "reopen_rate": (12.5, "red", None),
        "change_success": (50.0, "red", 100.0),  # CHG0000007 the week before
    }

    # The tickets behind the figures are as intended.
    g = desk.ticket(refs["G"])
    assert g.resolution_due_at == at(12, 10)  # 18 h of pending moved it
    assert g.resolution_business_seconds == 37 * 3600
    c = desk.ticket(refs["C"])
    assert (c.reopen_count, c.resolved_at, c.resolution_business_seconds) == (1, at(8, 12), 28 * 3600)
    e = desk.ticket(refs["E"])
    assert (e.escalation_count, e.reassignment_count) == (1, 2)
    h = desk.ticket(refs["H"])
    assert h.response_breached_at == at(12, 7) and h.responded_at is None


def test_one_group_only(desk, db, config):
    build_week(desk)
    net = desk.report(FIRST, LAST, group="net-l2")  # codes are matched without case
    # NET-L2 resolved D (27 h) but was first assigned nothing: D's escalation and FCR count for SD-L1.
    assert (net.opened, net.resolved, net.mttr_hours, net.mttr_business_hours) == (0, 1, 27.0, 13.0)
    assert (net.fcr_pct, net.escalation_rate_pct, net.csat_pct) == (None, None, None)
    assert net.backlog == 0
    l1 = desk.report(FIRST, LAST, group="SD-L1")
    # Every ticket started in SD-L1: FCR 4 of the 7 incidents resolved, escalated D and E of 8 resolved;
    # it resolved all but D.
    assert (l1.opened, l1.resolved, l1.fcr_pct, l1.escalation_rate_pct, l1.ratings) == (9, 7, 57.1, 25.0, 3)
    assert l1.backlog == 1
    with pytest.raises(ValueError, match=r"unknown group 'XX'.*SD-L1"):
        desk.report(FIRST, LAST, group="XX")


def test_a_period_without_tickets(desk, db, config):
    build_week(desk)
    rep = desk.report(date(2026, 9, 7), date(2026, 9, 13))
    assert (rep.opened, rep.resolved, rep.ratings, rep.changes_finished, rep.changes_planned) == (
        0,
        0,
        0,
        0,
        0,
    )
    for name in (
        "mtta_hours",
        "mttr_hours",
        "mttr_business_hours",
        "sla_response_pct",
        "sla_resolution_pct",
        "fcr_pct",
        "reopen_rate_pct",
        "escalation_rate_pct",
        "csat_pct",
        "change_success_pct",
        "emergency_share_pct",
    ):
        assert getattr(rep, name) is None, name
    assert set(rep.sla_response_by_priority.values()) == {None}
    assert set(rep.sla_resolution_by_priority.values()) == {None}
    assert set(rep.opened_per_day.values()) == set(rep.resolved_per_day.values()) == {0}
    assert set(rep.mttr_per_day.values()) == {None}
    assert {f.status for f in rep.headline} == {"grey"}
    json.dumps(rep.as_json(), default=str)  # serialisable as it is
    # and an empty database too
    with db.session() as s:
        s.execute(delete(Change))
        s.execute(delete(Ticket))
    rep = desk.report(FIRST, LAST)
    assert (rep.opened, rep.resolved, rep.backlog, rep.mttr_hours) == (0, 0, 0, None)


# --------------------------------------------------------------------------- lifecycle edge cases


def test_a_reopened_ticket_counts_once_on_its_final_resolved_day(desk, db):
    ref = desk.create(at(5, 9), "high", "high")  # P1
    desk.take(ref, at(5, 9, 5))
    desk.move(ref, "in_progress", at(5, 9, 5))
    desk.resolve(ref, at(6, 9))
    # the roll-up of Tuesday is computed now, with the ticket resolved on it
    tuesday = desk.report(date(2026, 10, 6), date(2026, 10, 6))
    assert (tuesday.resolved, tuesday.mttr_hours, tuesday.reopen_rate_pct) == (1, 24.0, 0.0)
    with db.read_session() as s:
        assert s.scalar(select(func.sum(KpiDaily.resolved)).where(KpiDaily.day == date(2026, 10, 6))) == 1

    desk.reopen(ref, at(7, 9))
    desk.resolve(ref, at(8, 9))
    tuesday = desk.report(date(2026, 10, 6), date(2026, 10, 6))
    assert (tuesday.resolved, tuesday.mttr_hours, tuesday.reopen_rate_pct) == (0, None, None)
    thursday = desk.report(date(2026, 10, 8), date(2026, 10, 8))
    assert (thursday.resolved, thursday.mttr_hours, thursday.reopen_rate_pct) == (1, 72.0, 100.0)
    assert thursday.fcr_pct == 0.0
    week = desk.report(FIRST, LAST)
    assert week.resolved == 1 and week.opened == 1
    assert week.resolved_per_day["2026-10-06"] == 0 and week.resolved_per_day["2026-10-08"] == 1
    assert week.sla_resolution_pct == 0.0  # P1: 4 h, missed already by the first resolution after 24 h


def test_paused_time_moves_the_resolution_due_and_counts_in_wall_mttr(desk):
    ref = desk.create(at(6, 7), "medium", "medium")  # P3, due Thu 11:00 UTC without pause
    assert desk.ticket(ref).resolution_due_at == at(8, 11)
    desk.take(ref, at(6, 7, 30))
    desk.move(ref, "in_progress", at(6, 7, 30))
    desk.move(ref, "pending", at(6, 8), reason="vendor")
    desk.move(ref, "in_progress", at(7, 16))  # 8 + 10 business hours paused
    assert desk.ticket(ref).resolution_due_at == at(12, 10)
    desk.resolve(ref, at(9, 14))
    rep = desk.report(FIRST, LAST)
    assert (rep.mttr_hours, rep.mttr_business_hours) == (79.0, 37.0)
    assert rep.sla_resolution_pct == 100.0 and rep.sla_resolution_by_priority[3] == 100.0


def test_resolving_from_pending_keeps_the_paused_time_out(desk):
    ref = desk.create(at(6, 7), "medium", "medium")  # P3: 24 business hours, due Thu 11:00 unpaused
    desk.take(ref, at(6, 7, 30))
    desk.move(ref, "in_progress", at(6, 7, 30))
    desk.move(ref, "pending", at(6, 8), reason="customer")  # only 1 business hour used so far
    desk.resolve(ref, at(9, 14))  # the customer confirms the fix on Friday, while pending
    rep = desk.report(FIRST, LAST)
    assert rep.sla_resolution_pct == 100.0


def test_escalated_and_brought_back_counts_as_escalated_not_first_contact(desk):
    ref = desk.create(at(7, 6), "medium", "low", service="network")
    desk.take(ref, at(7, 6, 30))
    desk.escalate(ref, at(7, 7), "NET-L2")
    desk.assign(ref, at(7, 8), "agent1", group="SD-L1")
    desk.move(ref, "in_progress", at(7, 8))
    desk.resolve(ref, at(7, 12))
    other = desk.create(at(7, 6), "medium", "low")
    desk.take(other, at(7, 6, 30))
    desk.move(other, "in_progress", at(7, 6, 30))
    desk.resolve(other, at(7, 9))
    with desk.db.read_session() as s:
        t = tickets.get_ticket(s, ref)
        assert (t.escalation_count, t.reassignment_count, t.group.code) == (1, 2, "SD-L1")
    rep = desk.report(date(2026, 10, 7), date(2026, 10, 7))
    assert (rep.resolved, rep.fcr_pct, rep.escalation_rate_pct) == (2, 50.0, 50.0)


def test_a_request_is_not_in_the_fcr_denominator(desk):
    req = desk.create(at(8, 6), "low", "low", kind="request", category="access")
    desk.take(req, at(8, 6, 30))
    desk.move(req, "in_progress", at(8, 6, 30))
    desk.resolve(req, at(8, 7), code="fulfilled")
    rep = desk.report(FIRST, LAST)
    assert (rep.resolved, rep.fcr_pct, rep.reopen_rate_pct) == (1, None, 0.0)
    inc = desk.create(at(8, 6), "low", "low")
    desk.take(inc, at(8, 6, 30))
    desk.escalate(inc, at(8, 7), "NET-L2")
    desk.take(inc, at(8, 8), who="net1")
    desk.move(inc, "in_progress", at(8, 8), who="net1")
    desk.resolve(inc, at(8, 9), who="net1")
    rep = desk.report(FIRST, LAST)
    assert (rep.resolved, rep.fcr_pct, rep.escalation_rate_pct) == (2, 0.0, 50.0)


def test_business_mttr_skips_german_holidays(desk):
    # Easter 2026: Good Friday 3 April and Easter Monday 6 April. Opened Thu 2 April 15:00 UTC (17:00
    # Berlin), resolved Tue 7 April 07:00 UTC (09:00 Berlin): 1 + 1 business hours, 112 wall hours.
    ref = desk.create(at(2, 15, month=4), "medium", "medium")
    desk.take(ref, at(2, 15, 30, month=4))
    desk.move(ref, "in_progress", at(2, 15, 30, month=4))
    desk.resolve(ref, at(7, 7, month=4))
    rep = desk.report(date(2026, 4, 7), date(2026, 4, 7))
    assert (rep.mttr_hours, rep.mttr_business_hours, rep.resolved) == (112.0, 2.0, 1)
    # P3 resolution, 24 business hours: 1 (Thu) + 10 (Tue) + 10 (Wed) + 3 (Thu 9 April) = due 09:00 UTC
    assert desk.ticket(ref).resolution_due_at == at(9, 9, month=4)
    assert rep.sla_resolution_pct == 100.0  # and the response (2 h) was taken in 30 minutes
    assert desk.report(date(2026, 4, 2), date(2026, 4, 2)).sla_response_pct == 100.0


def test_a_rating_on_a_quiet_day_is_counted(desk):
    ref = desk.create(at(5, 9), "high", "high")
    desk.take(ref, at(5, 9, 5))
    desk.move(ref, "in_progress", at(5, 9, 5))
    desk.resolve(ref, at(5, 10))
    desk.rate(ref, 5, at(7, 12))  # Wednesday: no other activity
    rep = desk.report(FIRST, LAST)
    assert (rep.ratings, rep.csat_pct) == (1, 100.0)


def test_a_rating_is_counted_on_its_day_when_that_day_is_recomputed(desk, db):
    """What the roll-up gives once the rating's day is marked."""
    ref = desk.create(at(5, 9), "high", "high")
    desk.take(ref, at(5, 9, 5))
    desk.move(ref, "in_progress", at(5, 9, 5))
    desk.resolve(ref, at(5, 10))
    desk.rate(ref, 2, at(7, 12))
    with db.session() as s:
        kpi.mark_dirty(s, at(7, 12))
    rep = desk.report(FIRST, LAST)
    assert (rep.ratings, rep.csat_pct) == (1, 0.0)
    assert desk.report(FIRST, date(2026, 10, 6)).ratings == 0


# --------------------------------------------------------------------------- roll-up against live


def _comparable(rep: kpi.KpiReport) -> dict:
    data = rep.as_json()
    data.pop("period")
    data.pop("headline")
    return data


def _rollup_rows(db) -> list[tuple]:
    with db.read_session() as s:
        rows = s.scalars(select(KpiDaily).order_by(KpiDaily.day, KpiDaily.group_id, KpiDaily.priority)).all()
        return [
            (r.day, r.group_id, r.priority, *(round(float(getattr(r, n)), 3) for n in kpi.SUMS)) for r in rows
        ]


def test_rollup_agrees_with_a_rebuild_from_scratch(desk, db, config):
    build_week(desk)
    rolled = desk.report(FIRST, LAST)
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(KpiDirtyDay).where(KpiDirtyDay.day <= LAST)) == 0
    rows_before = _rollup_rows(db)
    assert rows_before

    # recomputed from scratch for the range
    with db.session() as s:
        written = kpi.rebuild_days(s, FIRST, LAST)
    assert written == len([r for r in rows_before if FIRST <= r[0] <= LAST])
    assert _rollup_rows(db) == rows_before
    rebuilt = desk.report(FIRST, LAST)
    assert _comparable(rebuilt) == _comparable(rolled)
    assert [(f.name, f.value, f.status) for f in rebuilt.headline] == [
        (f.name, f.value, f.status) for f in rolled.headline
    ]

    # an emptied roll-up, every day marked: the same again
    with db.session() as s:
        s.execute(delete(KpiDaily))
        kpi.mark_dirty(s, *(at(d, 12) for d in range(5, 12)))
    assert _comparable(desk.report(FIRST, LAST)) == _comparable(rolled)

    # the week's figures are the sums of its days
    days = [desk.report(FIRST + timedelta(days=i), FIRST + timedelta(days=i)) for i in range(7)]
    assert sum(d.opened for d in days) == rolled.opened
    assert sum(d.resolved for d in days) == rolled.resolved
    assert sum(d.ratings for d in days) == rolled.ratings


def test_each_day_read_live_agrees_with_its_rollup(desk, db, config, request):
    build_week(desk)
    desk.report(FIRST, LAST)
    # a day read live (the period ends within the day, so the day is "today") and the same day read from
    # the roll-up agree, field by field
    for offset in range(7):
        day = FIRST + timedelta(days=offset)
        with db.session() as s:
            from_rollup = kpi.report(s, config, kpi.custom_period(day, day, NOW), with_previous=False)
            end = kpi._midnight(day + timedelta(days=1)) - timedelta(microseconds=1)
            live = kpi.report(s, config, kpi.custom_period(day, day, end), with_previous=False)
        assert live.period.end == end and from_rollup.period.end == end + timedelta(microseconds=1)
        got, want = _comparable(live), _comparable(from_rollup)
        for name in want:
            if name in ("backlog", "backlog_by_age", "workload"):
                continue  # taken at the period's end, which differs by a microsecond
            assert got[name] == want[name], (day, name)


def test_today_is_read_live(desk, db, config, request):
    now = at(14, 12)
    ref = desk.create(at(14, 9), "high", "high")  # P1 opened, taken, resolved today
    desk.take(ref, at(14, 9, 6))
    desk.move(ref, "in_progress", at(14, 9, 6))
    desk.resolve(ref, at(14, 11))
    with db.session() as s:
        today = kpi.report(s, config, kpi.period_for("today", now))
        week = kpi.report(s, config, kpi.period_for("7d", now))
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(KpiDaily)) == 0  # today is never rolled up
    for rep in (today, week):
        assert (rep.opened, rep.resolved, rep.mtta_hours, rep.mttr_hours) == (1, 1, 0.1, 2.0)
        assert (rep.sla_response_pct, rep.sla_resolution_pct, rep.fcr_pct) == (100.0, 100.0, 100.0)
    assert today.opened_per_day == {"2026-10-14": 1}


def test_mark_dirty_and_refresh_fix_a_day_changed_behind_the_rollup(desk, db, config):
    refs = build_week(desk)
    monday = date(2026, 10, 5)
    desk.report(FIRST, LAST)  # every day of the week rolled up, none left marked
    before = desk.report(monday, monday)
    assert before.sla_resolution_by_priority[2] == 0.0 and before.mttr_hours == 6.0
    # B resolved at 17:00 instead of 20:00 (7 h: within P2's 8 h), changed without the services
    with db.session() as s:
        s.execute(update(Ticket).where(Ticket.ref == refs["B"]).values(resolved_at=at(5, 17)))
    stale = desk.report(monday, monday)
    assert stale.sla_resolution_by_priority[2] == 0.0  # the roll-up does not know yet
    with db.session() as s:
        kpi.mark_dirty(s, at(5, 17))
        assert s.scalars(select(KpiDirtyDay.day)).all() == [monday]
        assert kpi.refresh_rollup(s, monday) == 0  # today is never rolled up
        assert kpi.refresh_rollup(s, date(2026, 10, 14)) == 1
        assert s.scalar(select(func.count()).select_from(KpiDirtyDay)) == 0
    fixed = desk.report(monday, monday)
    assert fixed.sla_resolution_by_priority[2] == 100.0
    assert fixed.mttr_hours == 4.5  # A 2 h, B 7 h
    assert fixed.sla_resolution_pct == 100.0


def test_mark_dirty_ignores_none_and_repeats(db):
    with db.session() as s:
        kpi.mark_dirty(s)
        kpi.mark_dirty(s, None)
        kpi.mark_dirty(s, at(5, 1), at(5, 23), None, at(6, 0))
        kpi.mark_dirty(s, at(5, 2))
        # an instant given in another zone counts on its UTC day
        kpi.mark_dirty(s, datetime(2026, 10, 8, 1, 30, tzinfo=ZoneInfo("Asia/Tokyo")))  # 7 Oct 16:30 UTC
    with db.read_session() as s:
        days = s.scalars(select(KpiDirtyDay.day).order_by(KpiDirtyDay.day)).all()
    assert days == [date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)]


# --------------------------------------------------------------------------- live figures


def test_operational_snapshot_at_a_fixed_now(desk, db):
    now = at(14, 12)
    fresh = desk.create(at(14, 10), "high", "high")  # P1, 2 h old, due 14:00: not breached
    desk.take(fresh, at(14, 10, 5), who="agent2")
    soon = desk.create(at(14, 8, 30), "high", "high")  # P1 due 12:30: breaching within the hour
    two_days = desk.create(at(12, 11), "high", "medium")  # P2, due 12 Oct 19:00: breached
    desk.take(two_days, at(12, 11, 5))
    five_days = desk.create(at(9, 8), "medium", "low")  # P4: 3-7 days
    old = desk.create(at(1, 9), "medium", "medium")  # P3: >7 days, pending (clock stopped)
    desk.take(old, at(1, 9, 30))
    desk.move(old, "in_progress", at(1, 9, 30))
    desk.move(old, "pending", at(1, 10), reason="vendor")
    done = desk.create(at(13, 9), "high", "high")  # resolved: not in the backlog
    desk.take(done, at(13, 9, 1))
    desk.move(done, "in_progress", at(13, 9, 1))
    desk.resolve(done, at(13, 10))
    exactly_a_day = desk.create(at(13, 12), "low", "low")  # 24 h old: the 1-3d bucket
    with db.read_session() as s:
        snap = kpi.operational_snapshot(s, now)
        l2 = kpi.operational_snapshot(s, now, group="NET-L2")
    assert snap.open == 6
    assert snap.by_priority == {1: 2, 2: 1, 3: 1, 4: 1, 5: 1}
    assert snap.unassigned == 3  # soon, five_days, exactly_a_day
    with db.read_session() as s:
        due = dict(s.execute(select(Ticket.ref, Ticket.resolution_due_at).where(Ticket.is_open)).all())
    overdue = {r for r in (fresh, soon, two_days, five_days, exactly_a_day) if due[r] < now}
    assert overdue == {two_days}
    assert snap.breached == 1  # the pending ticket's due is long past, but its clock is stopped
    assert snap.breaching_within_hour == 1  # soon
    assert snap.by_age == {"<1d": 2, "1-3d": 2, "3-7d": 1, ">7d": 1}
    assert snap.workload == {"agent1": 2, "agent2": 1}  # ordered by count
    assert list(snap.workload) == ["agent1", "agent2"]
    assert [o[0] for o in snap.oldest] == [old, five_days, two_days, exactly_a_day, soon]
    assert (l2.open, l2.workload, l2.by_age["<1d"]) == (0, {}, 0)


def test_the_backlog_of_a_report_adds_up_over_its_age_buckets(desk):
    build_week(desk)
    desk.create(at(13, 9), "medium", "medium")  # after the week, still open
    rep = desk.report(FIRST, LAST)
    assert rep.backlog == sum(rep.backlog_by_age.values())


# --------------------------------------------------------------------------- periods


def test_periods():
    now = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)  # a Wednesday
    today = kpi.period_for("today", now)
    assert (today.start, today.end, today.label) == (at(18, 0, month=11), now, "Today")
    assert today.days == [date(2026, 11, 18)]
    week = kpi.period_for("7d", now)
    assert week.start == at(12, 0, month=11) and len(week.days) == 7 and week.label == "Last 7 days"
    month = kpi.period_for("30d", now)
    assert month.start == at(20, 0, month=10) and len(month.days) == 30
    quarter = kpi.period_for("quarter", now)
    assert quarter.start == at(1, 0) and quarter.label == "This quarter"
    assert kpi.period_for("quarter", datetime(2026, 3, 31, 23, tzinfo=UTC)).start == at(1, 0, month=1)
    with pytest.raises(ValueError, match="unknown period 'year'"):
        kpi.period_for("year", now)
    custom = kpi.custom_period(FIRST, LAST, now)
    assert (custom.start, custom.end, custom.label) == (at(5, 0), at(12, 0), "2026-10-05 to 2026-10-11")
    assert custom.days == [FIRST + timedelta(days=i) for i in range(7)]
    assert custom.previous().start == at(28, 0, month=9) and custom.previous().end == at(5, 0)
    clipped = kpi.custom_period(date(2026, 11, 16), date(2026, 11, 22), now)
    assert clipped.end == now and clipped.days[-1] == date(2026, 11, 18)
    with pytest.raises(ValueError, match="ends before it starts"):
        kpi.custom_period(LAST, FIRST, now)


# --------------------------------------------------------------------------- the command line


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_kpi_json_csv_and_table_give_the_service_figures(
    desk, db, db_url, config, capsys, monkeypatch
):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "analyst1")  # reports: any desk user
    build_week(desk)
    service = desk.report(FIRST, LAST)  # NOW is after the week, like the real clock: the same period
    code, out, err = _run(
        capsys,
        "report",
        "kpi",
        "--db",
        db_url,
        "--from",
        "2026-10-05",
        "--to",
        "2026-10-11",
        "--format",
        "json",
    )
    assert code == 0, err
    got = json.loads(out)
    expected = json.loads(json.dumps(service.as_json(), default=str))
    for live in ("backlog", "backlog_by_age", "workload"):  # taken at the real time by the command
        got.pop(live), expected.pop(live)
    assert got == expected
    assert got["fcr_pct"] == 57.1 and got["mttr_hours"] == 29.94 and got["csat_pct"] == 66.7
    assert got["sla_resolution_by_priority"]["2"] == 0.0
    assert got["period"]["start"] == "2026-10-05T00:00:00+00:00"

    code, out, err = _run(
        capsys,
        "report",
        "kpi",
        "--db",
        db_url,
        "--from",
        "2026-10-05",
        "--to",
        "2026-10-11",
        "--format",
        "csv",
    )
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["kpi", "value", "unit", "status", "target", "previous"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["First-contact resolution"] == ["First-contact resolution", "57.1", "%", "red", "80.0", ""]
    assert by_name["MTTR (wall clock)"][1:4] == ["29.94", "h", "amber"]
    assert by_name["MTTR (business clock)"][1] == "12.25"
    assert by_name["Tickets opened"][1] == "9" and by_name["Ratings"][1] == "3"
    assert by_name["  resolution P2"][1] == "0.0" and by_name["  response P4"][1] == "66.7"
    assert by_name["Change success rate"][1] == "50.0"
    assert by_name["Emergency-change share"][1] == "33.3"

    code, out, err = _run(
        capsys,
        "report",
        "kpi",
        "--db",
        db_url,
        "--from",
        "2026-10-05",
        "--to",
        "2026-10-11",
        "--group",
        "NET-L2",
    )
    assert code == 0, err
    assert "KPIs 2026-10-05 00:00 to 2026-10-12 00:00 UTC, group NET-L2" in out
    assert any(line.split()[:4] == ["Tickets", "resolved", "1"] for line in out.splitlines())

    code, out, err = _run(capsys, "report", "kpi", "--db", db_url, "--from", "2026-10-05", "--group", "nope")
    assert code == 2 and "unknown group 'nope'" in err
    code, out, err = _run(capsys, "report", "kpi", "--db", db_url, "--to", "2026-10-05")
    assert code == 2 and "--to goes with --from" in err


def test_report_handover_lists_major_breaches_and_coming_changes(
    db, db_url, config, staff, capsys, monkeypatch
):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "lead")
    now = datetime.now(UTC)  # the command reads the real clock
    with db.session() as s:
        major = tickets.create_ticket(
            s,
            config,
            staff["agent1"],
            title="Core switch down",
            requester="Ops",
            impact="high",
            urgency="high",
            service="network",
            now=now - timedelta(hours=1),
        ).ref
        breached = tickets.create_ticket(
            s,
            config,
            staff["agent1"],
            title="Printer jam",
            requester="Bob",
            impact="low",
            urgency="low",
            now=now - timedelta(days=3),
        ).ref
        quiet = tickets.create_ticket(
            s,
            config,
            staff["agent1"],
            title="Old breach",
            requester="Bob",
            impact="low",
            urgency="low",
            now=now - timedelta(days=3),
        ).ref
        s.flush()
        s.execute(
            update(Ticket)
            .where(Ticket.ref == breached)
            .values(response_breached_at=(now - timedelta(minutes=30)))
        )
        s.execute(
            update(Ticket).where(Ticket.ref == quiet).values(response_breached_at=(now - timedelta(hours=20)))
        )
    agent = staff["agent1"]
    with db.session() as s:
        waiting = tickets.create_ticket(
            s,
            config,
            agent,
            title="Needs the vendor",
            requester="Eve",
            impact="low",
            urgency="medium",
            now=now - timedelta(hours=5),
        ).ref
        tickets.assign(s, config, agent, waiting, now=now - timedelta(hours=4))
        tickets.transition(s, config, agent, waiting, "in_progress", now=now - timedelta(hours=4))
        tickets.transition(
            s, config, agent, waiting, "pending", reason="vendor", now=now - timedelta(hours=3)
        )
    add_change(
        db,
        "CHG0000101",
        "normal",
        "scheduled",
        planned_start=now + timedelta(hours=3),
        services=("email", "vpn"),
    )
    add_change(db, "CHG0000102", "normal", "scheduled", planned_start=now + timedelta(hours=30))
    add_change(db, "CHG0000103", "normal", "draft", planned_start=now + timedelta(hours=2))

    code, out, err = _run(capsys, "report", "handover", "--db", db_url)
    assert code == 0, err
    sections = {}
    current = None
    for line in out.splitlines():
        if line and not line.startswith(" ") and "(" in line and line.rstrip().endswith(")"):
            current = line
            sections[current] = []
        elif current and line.strip():
            sections[current].append(line)
    assert sections["Open P1/P2 (1)"][0].split()[:5] == [major, "P1", "new", "SD-L1", "-"]
    assert len(sections["Breaches in the last 8 h (1)"]) == 1
    assert sections["Breaches in the last 8 h (1)"][0].split()[:2] == [breached, "P5"]
    assert "response" in sections["Breaches in the last 8 h (1)"][0]
    assert quiet not in out
    assert sections["Pending on others (1)"][0].split()[:5] == [waiting, "P4", "vendor", "SD-L1", "agent1"]
    assert sections["Changes in the next 12 h (1)"][0].split()[:3] == ["CHG0000101", "normal", "scheduled"]
    assert "email,vpn" in sections["Changes in the next 12 h (1)"][0]
    assert "CHG0000102" not in out and "CHG0000103" not in out

    code, out, err = _run(capsys, "report", "handover", "--db", db_url, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [r["ref"] for r in data["major_open"]] == [major]
    assert [r["ref"] for r in data["breaches"]] == [breached]
    assert [r["ref"] for r in data["changes_next"]] == ["CHG0000101"]
    assert [(r["ref"], r["pending_reason"]) for r in data["pending_on_others"]] == [(waiting, "vendor")]
    assert data["changes_next"][0]["services"] == "email,vpn"


def test_report_handover_refuses_an_unknown_login(db, db_url, staff, capsys, monkeypatch):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "stranger")
    code, _, err = _run(capsys, "report", "handover", "--db", db_url)
    assert code == 2 and "stranger" in err
