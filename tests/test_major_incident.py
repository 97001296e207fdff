"""Major incidents: a P1 (a P2 when configured) however it is logged tells the group's shift lead and its
members on shift, once, on both backends; the priorities and the RACI activity are validated on load."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from forked import PIPE, Forked
from sqlalchemy import event, func, select, update
from sqlalchemy.orm.attributes import set_committed_value
from test_config import edit

from itsm_tui.cli import main
from itsm_tui.config import ConfigError, load_config
from itsm_tui.db import Database
from itsm_tui.models import AuditEvent, Notification, Ticket, User
from itsm_tui.services import presence, tickets
from itsm_tui.services import users as user_service
from itsm_tui.services.tickets.major import members_on_shift

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def new_ticket(db, config, actor, *, now: datetime = T0, **fields) -> str:
    fields = {"title": "Mail down for everyone", "requester": "Anna (Sales)", **fields}
    with db.session() as s:
        return tickets.create_ticket(s, config, actor, now=now, **fields).ref


def p1(db, config, actor, *, now: datetime = T0, **fields) -> str:
    return new_ticket(db, config, actor, now=now, impact="high", urgency="high", **fields)


def told(db, ref: str) -> list[str]:
    """Logins that got the ticket's major-incident notification, sorted (a login twice would show twice)."""
    with db.read_session() as s:
        return sorted(
            s.scalars(
                select(User.login)
                .join(Notification, Notification.user_id == User.id)
                .join(Ticket, Ticket.id == Notification.entity_id)
                .where(Ticket.ref == ref, Notification.kind == "major_incident")
            )
        )


def announcements(db, ref: str) -> list[tuple[str | None, str | None]]:
    """The ticket's audited announcements: (who announced, who was told)."""
    with db.read_session() as s:
        return list(
            s.execute(
                select(User.login, AuditEvent.new_value)
                .outerjoin(User, User.id == AuditEvent.actor_id)
                .join(Ticket, Ticket.id == AuditEvent.entity_id)
                .where(
                    Ticket.ref == ref,
                    AuditEvent.entity_type == "ticket",
                    AuditEvent.action == "announce",
                    AuditEvent.field == "major_incident",
                )
            ).tuples()
        )


def announced_at(db, ref: str) -> datetime | None:
    with db.read_session() as s:
        return tickets.get_ticket(s, ref).major_announced_at


def add_member(db, login: str, group: str, role: str = "agent") -> user_service.Actor:
    with db.session() as s:
        user_service.add_user(
            s, actor_login="admin1", login=login, roles=[role], groups=[group], name=login.title()
        )
    with db.read_session() as s:
        return user_service.resolve_actor(s, login)


def works(db, config, actor, minutes_before: float) -> None:
    """``actor`` takes a P4 of their group that many minutes before T0 (a change on the audit trail)."""
    group = sorted(actor.group_codes)[0]
    ref = new_ticket(
        db, config, actor, now=at(-minutes_before - 1), impact="low", urgency="medium", group=group
    )
    with db.session() as s:
        tickets.assign(s, config, actor, ref, now=at(-minutes_before))


def views(db, actor, minutes_before: float) -> None:
    """A console of ``actor`` had a ticket open that many minutes before T0 (a presence heartbeat)."""
    with db.session() as s:
        ticket_id = s.scalar(select(func.min(Ticket.id)))
        presence.heartbeat(s, actor.id, f"console-{actor.login}", "ticket", ticket_id, at(-minutes_before))


# --------------------------------------------------------------------------- who is told


def test_a_p1_tells_the_shift_lead_and_the_members_on_shift_once(db, config, staff) -> None:
    """By hand, from the cast: the P1 is agent1's in SD-L1. The Accountable for major_incident is the
    shift lead of SD-L1 (lead). SD-L1 members on shift in the last 60 minutes: agent2 took a ticket 10 minutes
    ago, agent3 has a ticket open in a console; agent4 last worked two hours ago (off shift); net1 is on
    shift but in NET-L2; agent1 logged it. So: agent2, agent3 and lead (told whether on shift or not)."""
    agent3 = add_member(db, "agent3", "SD-L1")
    agent4 = add_member(db, "agent4", "SD-L1")
    works(db, config, staff["agent2"], 10)
    works(db, config, agent4, 120)
    works(db, config, staff["net1"], 5)
    views(db, agent3, 1)
    views(db, agent4, 90)  # a console that died with a ticket open 90 minutes ago: off shift too

    ref = p1(db, config, staff["agent1"])

    assert told(db, ref) == ["agent2", "agent3", "lead"]
    assert announcements(db, ref) == [("agent1", "agent2, agent3, lead")]
    assert announced_at(db, ref) == T0
    with db.session() as s:
        messages = set(s.scalars(select(Notification.message).where(Notification.kind == "major_incident")))
        assert messages == {f"Major incident {ref} (P1, SD-L1, by Agent1): Mail down for everyone"}
        ticket = tickets.get_ticket(s, ref)
        # a second call, as from an update raising it again, announces nothing
        assert tickets.announce_major(s, config, ticket, staff["lead"], at(5)) is None
    assert told(db, ref) == ["agent2", "agent3", "lead"]
    assert len(announcements(db, ref)) == 1


def test_a_ticket_raised_to_p1_by_an_update_is_announced_once(db, config, staff) -> None:
    """agent2 works in SD-L1 (on shift); agent1 logs a P3 (not major: nobody told) and so is on shift too. The
    lead raises it to P1: agent1 and agent2 are told; the lead, the Accountable, raised it and is not. Lowered
    to P2 and raised again: nothing more."""
    works(db, config, staff["agent2"], 10)
    ref = new_ticket(db, config, staff["agent1"], impact="medium", urgency="medium")
    assert told(db, ref) == [] and announcements(db, ref) == []
    with db.session() as s:
        tickets.update_fields(s, config, staff["lead"], ref, impact="high", urgency="high", now=at(3))
    assert told(db, ref) == ["agent1", "agent2"]
    assert announcements(db, ref) == [("lead", "agent1, agent2")]
    with db.session() as s:
        tickets.update_fields(s, config, staff["lead"], ref, urgency="medium", now=at(4))
    with db.session() as s:
        tickets.update_fields(s, config, staff["lead"], ref, urgency="high", now=at(5))
    assert told(db, ref) == ["agent1", "agent2"] and len(announcements(db, ref)) == 1
    assert announced_at(db, ref) == at(3)


def test_the_one_who_raises_it_is_not_told_and_nobody_is_still_an_announcement(db, config, staff) -> None:
    # the shift lead logs it and nobody else of SD-L1 is on shift: nobody is told, and that is recorded
    ref = p1(db, config, staff["lead"])
    assert told(db, ref) == []
    assert announcements(db, ref) == [("lead", "nobody")]
    assert announced_at(db, ref) == T0
    # agent2 comes on shift and the ticket is raised to P1 again later: announced already, once per lifetime
    works(db, config, staff["agent2"], -30)
    with db.session() as s:
        ticket = tickets.get_ticket(s, ref)
        ticket.priority = 2
        s.flush()
        ticket.priority = 1
        assert tickets.announce_major(s, config, ticket, staff["lead"], at(45)) is None
    assert told(db, ref) == []
    assert len(announcements(db, ref)) == 1


def test_a_group_without_its_own_shift_lead_tells_the_desks_and_only_its_own_members(
    db, config, staff
) -> None:
    """NET-L2 has no shift_lead of its own: its Accountable is the desk's shift lead (lead), as for SLA
    breaches. net1 and net2 are on shift in NET-L2; agent2 (SD-L1) and app1 (APP-L2) are on shift in
    other groups."""
    net2 = add_member(db, "net2", "NET-L2", role="support_l2")
    works(db, config, net2, 20)
    works(db, config, staff["agent2"], 5)
    works(db, config, staff["app1"], 5)
    views(db, staff["net1"], 0)
    ref = p1(db, config, staff["agent1"], group="NET-L2", service="network")
    assert told(db, ref) == ["lead", "net1", "net2"]


def test_inactive_members_are_not_told(db, config, staff) -> None:
    works(db, config, staff["agent2"], 10)
    with db.session() as s:
        s.execute(update(User).where(User.login == "agent2").values(active=False))
    ref = p1(db, config, staff["agent1"])
    assert told(db, ref) == ["lead"]


def test_a_p2_is_announced_only_when_configured(db, config, staff) -> None:
    works(db, config, staff["agent2"], 10)
    p2 = new_ticket(db, config, staff["agent1"], impact="high", urgency="medium")
    p3 = new_ticket(db, config, staff["agent1"], impact="medium", urgency="medium")
    assert told(db, p2) == told(db, p3) == []
    assert announced_at(db, p2) is None and announcements(db, p2) == []

    with_p2 = replace(config, major_incident_priorities=frozenset({1, 2}))
    ref = new_ticket(db, with_p2, staff["agent1"], impact="high", urgency="medium")
    assert told(db, ref) == ["agent2", "lead"]
    assert told(db, new_ticket(db, with_p2, staff["agent1"], impact="medium", urgency="medium")) == []
    # a P2 logged while P2 was not major, and raised (announce called) once it is: announced then
    with db.session() as s:
        announcement = tickets.announce_major(s, with_p2, tickets.get_ticket(s, p2), staff["lead"], at(1))
    assert announcement is not None and announcement.told == ("agent1", "agent2")


def test_a_closed_ticket_is_not_announced(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"], impact="medium", urgency="medium")
    with db.session() as s:
        ticket = tickets.get_ticket(s, ref)
        ticket.priority, ticket.status, ticket.is_open = 1, "closed", False
        assert tickets.announce_major(s, config, ticket, None, at(1)) is None
    assert announced_at(db, ref) is None


def test_a_second_console_does_not_announce_again(db, db_url, config, staff) -> None:
    ref = p1(db, config, staff["agent1"])
    works(db, config, staff["agent2"], -1)  # on shift now, so a second announcement would reach agent2
    other = Database.connect(db_url)
    try:
        with other.session() as s:
            ticket = tickets.get_ticket(s, ref)
            assert tickets.announce_major(s, config, ticket, staff["lead"], at(2)) is None
        with other.session() as s:
            stale = tickets.get_ticket(s, ref)
            # a copy read before the first console announced it: the conditional update still refuses
            set_committed_value(stale, "major_announced_at", None)
            assert tickets.announce_major(s, config, stale, staff["lead"], at(2)) is None
    finally:
        other.dispose()
    assert told(db, ref) == ["lead"]
    assert len(announcements(db, ref)) == 1


def test_who_is_on_shift_is_read_through_indexes(sqlite_url, config) -> None:
    """The recent changes come from the tickets updated lately and their audit events by ticket: the cost
    follows the last hour's work, not the size of the audit trail."""
    db = Database.connect(sqlite_url)
    db.sync_catalog(config)
    statements: list[tuple[str, object]] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def grab(conn, cursor, statement, parameters, context, executemany) -> None:
        if "audit_events" in statement:
            statements.append((statement, parameters))

    try:
        with db.session() as s:
            assert members_on_shift(s, 1, T0, config.on_shift_minutes) == []
            statement, parameters = statements[-1]
            plan = " ".join(
                str(r[-1])
                for r in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            )
    finally:
        db.dispose()
    assert "ix_tickets_updated" in plan and "ix_audit_entity (entity_type=? AND entity_id=?" in plan, plan


# --------------------------------------------------------------------------- the command line


def test_itsm_ticket_create_from_a_monitoring_hook_announces(db, db_url, config, staff, capsys, monkeypatch):
    """``itsm ticket create`` as the monitoring account (an agent of SD-L1): the lead and agent2, who took a
    ticket a minute ago, are told; a P3 from the same hook tells nobody."""
    monitor = add_member(db, "monitor", "SD-L1")
    now = datetime.now(UTC)
    with db.session() as s:
        ref = tickets.create_ticket(
            s, config, staff["agent2"], title="Disk full", requester="r", impact="low", urgency="low", now=now
        ).ref
        tickets.assign(s, config, staff["agent2"], ref, now=now)
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: monitor.login)
    argv = ["ticket", "create", "--db", db_url, "--requester", "Zabbix", "--service", "email", "--json"]
    code = main([*argv, "--title", "mx-01 down", "--impact", "high", "--urgency", "high"])
    out, err = capsys.readouterr()
    assert code == 0, err
    major = json.loads(out)
    assert major["priority"] == 1
    assert told(db, major["ref"]) == ["agent2", "lead"]
    assert announcements(db, major["ref"]) == [("monitor", "agent2, lead")]

    code = main([*argv, "--title", "mx-01 slow", "--impact", "medium", "--urgency", "medium"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert told(db, json.loads(out)["ref"]) == []


# --------------------------------------------------------------------------- two processes at once

RACER = """
import sys, time
from datetime import datetime
from pathlib import Path

from itsm_tui.config import load_config
from itsm_tui.db import Database
from itsm_tui.models import Ticket
from itsm_tui.services import tickets, users

url, go, now, login, ids = sys.argv[1:6]
config = load_config()
db = Database.connect(url)
with db.read_session() as s:
    actor = users.resolve_actor(s, login)
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.001)
announced = 0
for ticket_id in map(int, ids.split(",")):
    with db.session() as s:
        ticket = s.get(Ticket, ticket_id)
        if tickets.announce_major(s, config, ticket, actor, datetime.fromisoformat(now)) is not None:
            announced += 1
print(announced, flush=True)
"""


def test_processes_racing_announce_each_ticket_once(db, db_url, config, staff, tmp_path) -> None:
    """Three processes announce the same 30 tickets (P3s raised to P1 behind their back) at once. The lead
    (Accountable) and agent1 (who logged them, so on shift) are told of each once; agent2 announces."""
    count = 30
    with db.session() as s:
        ids = [
            tickets.create_ticket(
                s, config, staff["agent1"], title=f"Switch {n} down", requester="NOC", now=T0
            ).id
            for n in range(count)
        ]
        s.execute(update(Ticket).values(priority=1).execution_options(synchronize_session=False))
    go = tmp_path / "go"
    args = [db_url, str(go), at(1).isoformat(), "agent2", ",".join(map(str, ids))]
    db.dispose()  # no connection of this process is carried into the racers (forked: see forked.py)
    procs = [Forked(RACER, *args, stdout=PIPE, stderr=PIPE) for _ in range(3)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        go.touch()
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            outputs.append(int(out.strip()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert sum(outputs) == count
    with db.read_session() as s:
        per_ticket = s.execute(
            select(Notification.entity_id, func.count())
            .where(Notification.kind == "major_incident")
            .group_by(Notification.entity_id)
        ).all()
        audits = s.execute(
            select(AuditEvent.entity_id, func.count())
            .where(AuditEvent.action == "announce", AuditEvent.field == "major_incident")
            .group_by(AuditEvent.entity_id)
        ).all()
        recipients = set(
            s.scalars(
                select(User.login)
                .join(Notification, Notification.user_id == User.id)
                .where(Notification.kind == "major_incident")
            )
        )
        stamped = s.scalar(select(func.count()).where(Ticket.major_announced_at == at(1)))
    assert dict(per_ticket) == dict.fromkeys(ids, 2)
    assert dict(audits) == dict.fromkeys(ids, 1)
    assert recipients == {"lead", "agent1"}
    assert stamped == count


# --------------------------------------------------------------------------- configuration


def config_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    return info.value


def test_shipped_configuration_announces_p1_to_the_shift_lead(config) -> None:
    assert config.major_incident_priorities == frozenset({1})
    assert config.on_shift_minutes == 60
    assert config.raci_roles("major_incident", "A") == ["shift_lead"]
    assert config.raci_roles("major_incident", "R")


def test_major_priorities_and_on_shift_minutes_are_configurable(conf_dir: Path) -> None:
    edit(conf_dir, "sla.toml", "major_incident_priorities = [1]", "major_incident_priorities = [1, 2]")
    edit(conf_dir, "sla.toml", "on_shift_minutes = 60", "on_shift_minutes = 480")
    config = load_config(conf_dir)
    assert config.major_incident_priorities == frozenset({1, 2})
    assert config.on_shift_minutes == 480


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("[]", "must list priorities"),
        ("[0]", "between 1 and 5"),
        ('["P1"]', "whole number"),
        ("[1, 1]", "twice"),
    ],
)
def test_bad_major_priorities_name_the_file_key_and_rule(conf_dir: Path, value: str, rule: str) -> None:
    edit(conf_dir, "sla.toml", "major_incident_priorities = [1]", f"major_incident_priorities = {value}")
    error = config_error(conf_dir)
    assert (Path(error.path), error.key) == (conf_dir / "sla.toml", "major_incident_priorities")
    assert rule in error.rule


def test_bad_on_shift_minutes_is_refused(conf_dir: Path) -> None:
    edit(conf_dir, "sla.toml", "on_shift_minutes = 60", "on_shift_minutes = 0")
    error = config_error(conf_dir)
    assert (Path(error.path), error.key) == (conf_dir / "sla.toml", "on_shift_minutes")
    assert "between 1 and 1440" in error.rule


def test_raci_needs_the_major_incident_activity(conf_dir: Path) -> None:
    path = conf_dir / "raci.toml"
    text = path.read_text()
    start = text.index("[activities.major_incident]")
    end = text.index("[activities.", start + 1)
    path.write_text(text[:start] + text[end:])
    error = config_error(conf_dir)
    assert (Path(error.path), error.key) == (conf_dir / "raci.toml", "activities.major_incident")
    assert "missing" in error.rule and "Accountable" in error.rule


def test_the_major_incident_activity_follows_the_raci_rules(conf_dir: Path) -> None:
    edit(
        conf_dir,
        "raci.toml",
        'shift_lead = "A"\nagent = "R"\nsupport_l2 = "R"\nsupport_l3 = "R"',
        'shift_lead = "A"\nagent = "A"\nsupport_l2 = "R"\nsupport_l3 = "R"',
    )
    error = config_error(conf_dir)
    assert error.key == "activities.major_incident" and "exactly one Accountable" in error.rule
