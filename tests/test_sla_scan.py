"""The SLA job: flags each warning and breach once, notifies the right people once, escalates, catches up."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from forked import PIPE, Forked
from sqlalchemy import func, select, text, update

from itsm_tui.jobs import sla_scan
from itsm_tui.models import AuditEvent, Group, Notification, Ticket, User
from itsm_tui.services import tickets

NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # a Monday morning


def make(db, config, actor, **kwargs) -> str:
    values = {
        "title": "Mail down",
        "requester": "Anna",
        "impact": "medium",
        "urgency": "medium",
        "service": "email",
        "now": NOW,
    } | kwargs
    with db.session() as s:
        return tickets.create_ticket(s, config, actor, **values).ref


def row(db, ref):
    """The ticket as stored now, detached (so its attributes stay readable)."""
    with db.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        s.expunge(ticket)
        return ticket


def notes(db, ref=None) -> list[tuple[str, str]]:
    with db.read_session() as s:
        stmt = select(User.login, Notification.kind).join(User, User.id == Notification.user_id)
        if ref:
            stmt = stmt.join(Ticket, Ticket.id == Notification.entity_id).where(Ticket.ref == ref)
        return sorted(s.execute(stmt.order_by(Notification.id)).all())


def test_warning_then_breach_each_once_with_recipients(db, config, staff):
    ref = make(db, config, staff["agent1"], impact="high", urgency="high")  # P1: 24x7, 15 min response
    t = row(db, ref)
    assert t.response_warn_at == NOW + timedelta(minutes=15 * config.warning_ratio)
    # a P1 is a major incident: the shift lead heard of it when it was logged
    assert notes(db, ref) == [("lead", "major_incident")]

    result = sla_scan.scan(db, config, NOW + timedelta(minutes=12))
    assert (result.warnings, result.breaches) == (1, 0)
    # warning: the assignee (none yet) and the group's lead
    assert notes(db, ref) == [("lead", "major_incident"), ("lead", "sla_warning")]
    assert sla_scan.scan(db, config, NOW + timedelta(minutes=13)).warnings == 0  # flagged once

    with db.session() as s:
        tickets.assign(s, config, staff["lead"], ref, assignee="agent2", now=NOW + timedelta(minutes=13))
    # the response target stopped at ownership: no response breach later
    result = sla_scan.scan(db, config, NOW + timedelta(minutes=20))
    assert result.breaches == 0
    # the resolution target (4 h): warning at 3 h to assignee and lead, breach at 4 h to the shift lead
    result = sla_scan.scan(db, config, NOW + timedelta(hours=3, minutes=1))
    assert result.warnings == 1
    result = sla_scan.scan(db, config, NOW + timedelta(hours=4, minutes=1))
    assert result.breaches == 1
    got = notes(db, ref)
    assert ("agent2", "sla_warning") in got and ("lead", "sla_warning") in got
    assert ("lead", "sla_breach") in got and ("agent2", "sla_breach") in got
    assert ("agent2", "assigned") in got
    again = sla_scan.scan(db, config, NOW + timedelta(hours=9))
    assert (again.warnings, again.breaches, again.notifications) == (0, 0, 0)
    t = row(db, ref)
    assert t.resolution_breached_at == t.resolution_due_at
    with db.read_session() as s:
        fields = set(
            s.scalars(
                select(AuditEvent.field).where(AuditEvent.entity_id == t.id, AuditEvent.action == "sla")
            )
        )
    assert fields == {"responded_at", "response_warned_at", "resolution_warned_at", "resolution_breached_at"}


def test_catch_up_after_hours_reports_a_breach_once_not_a_warning(db, config, staff):
    ref = make(db, config, staff["agent1"], impact="high", urgency="medium")  # P2, 24x7
    result = sla_scan.scan(db, config, NOW + timedelta(days=2))
    # response and resolution both breached while nobody scanned: two events, no warnings reported
    assert (result.warnings, result.breaches) == (0, 2)
    kinds = [k for _, k in notes(db, ref)]
    assert "sla_warning" not in kinds
    t = row(db, ref)
    assert t.response_warned_at is not None and t.resolution_warned_at is not None  # implied, silently


def test_functional_escalation_on_breach(db, config, staff):
    ref = make(db, config, staff["agent1"], impact="high", urgency="medium", service="network")  # P2 in L1
    result = sla_scan.scan(db, config, NOW + timedelta(hours=9))
    assert result.escalations == 1
    with db.read_session() as s:
        t = tickets.get_ticket(s, ref)
        assert s.get(Group, t.group_id).code == "NET-L2"
        assert t.assignee_id is None and t.status == "new" and t.escalation_count == 1
        audit = s.execute(
            select(AuditEvent.field, AuditEvent.old_value, AuditEvent.new_value).where(
                AuditEvent.entity_id == t.id, AuditEvent.action == "escalate", AuditEvent.field == "group"
            )
        ).all()
    assert audit == [("group", "SD-L1", "NET-L2")]
    assert ("net1", "escalated") in notes(db, ref)
    # a P4 breach in L1 is not escalated
    ref4 = make(db, config, staff["agent1"], impact="low", urgency="medium", service="network")
    sla_scan.scan(db, config, NOW + timedelta(days=30))
    with db.read_session() as s:
        assert s.get(Group, tickets.get_ticket(s, ref4).group_id).code == "SD-L1"


def test_paused_tickets_are_not_flagged_and_resume_moves_due(db, config, staff):
    ref = make(db, config, staff["agent1"], impact="medium", urgency="medium")  # P3 office hours
    with db.session() as s:
        tickets.assign(s, config, staff["agent1"], ref, now=NOW + timedelta(minutes=5))
        tickets.transition(s, config, staff["agent1"], ref, "in_progress", now=NOW + timedelta(minutes=6))
        tickets.transition(
            s, config, staff["agent1"], ref, "pending", reason="customer", now=NOW + timedelta(hours=1)
        )
    due = row(db, ref).resolution_due_at
    assert sla_scan.scan(db, config, due + timedelta(days=3)).breaches == 0
    with db.session() as s:
        tickets.transition(s, config, staff["agent1"], ref, "in_progress", now=NOW + timedelta(days=1))
    assert row(db, ref).resolution_due_at > due


def test_reopen_starts_a_new_cycle_of_events(db, config, staff):
    agent = staff["agent1"]
    # a workplace ticket stays with the service desk (its support group), so the breach does not move it
    ref = make(db, config, agent, impact="high", urgency="high", service="workplace")
    with db.session() as s:
        tickets.assign(s, config, agent, ref, now=NOW + timedelta(minutes=1))
        tickets.transition(s, config, agent, ref, "in_progress", now=NOW + timedelta(minutes=2))
    assert sla_scan.scan(db, config, NOW + timedelta(hours=5)).breaches == 1
    with db.session() as s:
        tickets.resolve(s, config, agent, ref, code="fixed", note="done", now=NOW + timedelta(hours=6))
        tickets.reopen(s, config, agent, ref, reason="back again", now=NOW + timedelta(hours=7))
    assert row(db, ref).resolution_breached_at is None
    assert sla_scan.scan(db, config, NOW + timedelta(days=3)).breaches == 1
    breaches = [k for who, k in notes(db, ref) if k == "sla_breach" and who == "lead"]
    assert len(breaches) == 2


def test_resolved_tickets_close_after_the_configured_days(db, config, staff):
    agent = staff["agent1"]
    ref = make(db, config, agent)
    with db.session() as s:
        tickets.assign(s, config, agent, ref, now=NOW)
        tickets.transition(s, config, agent, ref, "in_progress", now=NOW)
        tickets.resolve(s, config, agent, ref, code="fixed", note="done", now=NOW + timedelta(hours=1))
    assert sla_scan.scan(db, config, NOW + timedelta(days=config.auto_close_days - 1)).closed == 0
    assert sla_scan.scan(db, config, NOW + timedelta(days=config.auto_close_days, hours=2)).closed == 1
    t = row(db, ref)
    assert t.status == "closed" and not t.is_open and t.closed_at is not None


def test_candidates_come_from_the_partial_index(sqlite_url, config):
    from itsm_tui.db import Database

    db = Database.connect(sqlite_url)
    statements = []
    from sqlalchemy import event

    @event.listens_for(db.engine, "before_cursor_execute")
    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE tickets"):
            statements.append((statement, parameters))

    with db.session() as s:
        sla_scan.flag_due(s, "resolution", "breach", NOW)
        statement, parameters = statements[-1]
        plan = " ".join(
            str(r[-1]) for r in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        )
    db.dispose()
    assert "ix_tickets_sla_resolution_due" in plan, plan


def _bulk_breached(db, config, staff, count: int) -> None:
    """``count`` open tickets assigned to agent1 in SD-L1 whose response target passed unflagged."""
    agent = staff["agent1"]
    with db.session() as s:
        for index in range(count):
            t = tickets.create_ticket(
                s, config, agent, title=f"Ticket {index}", requester="r", impact="low", urgency="low", now=NOW
            )
            t.assignee_id = agent.id
            t.status = "in_progress"
            t.responded_at = None
        s.flush()
        s.execute(
            update(Ticket)
            .values(
                response_warned_at=NOW,
                response_warn_at=NOW,
                response_due_at=NOW + timedelta(minutes=1),
                resolution_warn_at=NOW + timedelta(days=30),
                resolution_due_at=NOW + timedelta(days=40),
            )
            .execution_options(synchronize_session=False)
        )


def test_four_processes_scanning_at_once_flag_each_breach_once(db, db_url, config, staff):
    _bulk_breached(db, config, staff, 1000)
    scan_at = (NOW + timedelta(minutes=5)).isoformat()
    env = os.environ | {"ITSM_DB_URL": db_url}
    # As the desk's admin, who may scan at an instant other than now (os_login set as a test sets it).
    as_admin = (
        "import sys; import itsm_tui.services.users as u; u.os_login = lambda: 'admin1'; "
        "from itsm_tui.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    db.dispose()  # no connection of this process is carried into the scans (forked: see forked.py)
    procs = [
        Forked(as_admin, "sla", "scan", "--json", "--now", scan_at, stdout=PIPE, stderr=PIPE, env=env)
        for _ in range(4)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    assert sum(o["breaches"] for o in outputs) == 1000
    with db.read_session() as s:
        flagged = s.scalar(select(func.count()).where(Ticket.response_breached_at.is_not(None)))
        total = s.scalar(
            select(func.count()).select_from(Notification).where(Notification.kind == "sla_breach")
        )
        distinct = s.scalar(
            text(
                "SELECT count(*) FROM (SELECT DISTINCT user_id, event_key FROM notifications "
                "WHERE kind = 'sla_breach') d"
            )
        )
        per_event = (
            s.execute(text("SELECT count(*) FROM notifications WHERE kind = 'sla_breach' GROUP BY event_key"))
            .scalars()
            .all()
        )
        audits = s.scalar(select(func.count()).where(AuditEvent.field == "response_breached_at"))
    assert flagged == 1000
    # each event reached the Accountable shift lead (lead) and the assignee (agent1), once each
    assert total == distinct == 2000
    assert set(per_event) == {2}
    assert audits == 1000
    assert sum(o["notifications"] for o in outputs) == 2000


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sla_scan_command_output(sqlite_url, config, backend, capsys, monkeypatch):
    from itsm_tui.cli import main
    from itsm_tui.db import Database
    from itsm_tui.services import users

    db = Database.connect(sqlite_url)
    with db.session() as s:  # a scan at an instant other than now: a process manager's (or an admin's)
        users.add_user(s, actor_login="pm", login="pm", roles=["process_manager"], groups=[])
    db.dispose()
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "pm")
    assert main(["sla", "scan", "--db", sqlite_url, "--now", "2026-11-16T09:00:00Z"]) == 0
    assert "0 warnings, 0 breaches" in capsys.readouterr().out
