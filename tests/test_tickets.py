"""Incidents and requests on both backends: numbering, priority and SLA, lifecycle, audit, permissions,
response and escalation (stale saves and races: test_ticket_races.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from ticket_helpers import (
    T0,
    at,
    counts,
    drive,
    edge_args,
    events_after,
    last_event_id,
    move,
    new_ticket,
    pauses,
    snapshot,
    take,
)

from itsm_tui.config import LEVELS
from itsm_tui.models import TICKET_STATUSES, AuditEvent
from itsm_tui.services import sla, tickets
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import InvalidTransition, ValidationError

# --------------------------------------------------------------------------- creating


def test_references_are_numbered_per_kind(db, config, staff) -> None:
    agent = staff["agent1"]
    refs = [
        new_ticket(db, config, agent, kind=kind)
        for kind in ("incident", "incident", "request", "incident", "request")
    ]
    assert refs == ["INC0000001", "INC0000002", "REQ0000001", "INC0000003", "REQ0000002"]
    assert snapshot(db, "REQ0000002").kind == "request"


def test_priority_and_sla_targets_from_matrix(db, config, staff) -> None:
    for impact in LEVELS:
        for urgency in LEVELS:
            ref = new_ticket(db, config, staff["agent1"], impact=impact, urgency=urgency)
            ticket = snapshot(db, ref)
            priority = config.priority_for(impact, urgency)
            assert (ticket.impact, ticket.urgency, ticket.priority) == (impact, urgency, priority)
            policy = config.policies[priority]
            clock = sla.clock_for(config.calendars[policy.calendar])
            response, resolution = policy.response_minutes * 60, policy.resolution_minutes * 60
            assert ticket.sla_calendar == policy.calendar
            assert ticket.opened_at == T0
            assert ticket.response_due_at == clock.add(T0, response)
            assert ticket.resolution_due_at == clock.add(T0, resolution)
            assert ticket.response_warn_at == clock.add(T0, response * config.warning_ratio)
            assert ticket.resolution_warn_at == clock.add(T0, resolution * config.warning_ratio)
            assert T0 < ticket.response_warn_at < ticket.response_due_at <= ticket.resolution_due_at
            assert (ticket.status, ticket.is_open, ticket.group) == ("new", True, "SD-L1")
            assert ticket.assignee is None and ticket.responded_at is None and ticket.paused_at is None
    p1 = snapshot(db, "INC0000001")  # high x high: P1 on the 24x7 calendar, plain wall-clock minutes
    assert p1.priority == 1
    assert p1.response_due_at == T0 + timedelta(minutes=15)
    assert p1.resolution_due_at == T0 + timedelta(minutes=240)


def test_create_validation(db, config, staff) -> None:
    agent = staff["agent1"]
    cases = [
        ({"title": "  "}, "title"),
        ({"requester": ""}, "requester"),
        ({"impact": "extreme"}, "impact"),
        ({"urgency": "now"}, "urgency"),
        ({"kind": "wish"}, "kind"),
        ({"category": "teleportation"}, "category"),
        ({"ci": "no-such-ci"}, "ci"),
        ({"service": "erp", "ci": "vpn-gw-01"}, "ci"),
        ({"group": "NOPE"}, "group"),
    ]
    for fields, field in cases:
        with pytest.raises(ValidationError) as info:
            new_ticket(db, config, agent, **fields)
        assert info.value.field == field, fields
    assert counts(db)[0] == 0
    ticket = snapshot(db, new_ticket(db, config, agent, ci="vpn-gw-01"))
    assert ticket.service == "vpn"


# --------------------------------------------------------------------------- lifecycle


def test_every_allowed_transition_succeeds(db, config, staff) -> None:
    agent = staff["agent1"]
    for source, targets in tickets.TRANSITIONS.items():
        for target in targets:
            ref = drive(db, config, agent, source)
            if (source, target) == ("new", "assigned"):
                take(db, config, agent, ref, now=at(30))  # taking a new ticket is this edge
            else:
                move(db, config, agent, ref, target, now=at(30), **edge_args(source, target))
            ticket = snapshot(db, ref)
            assert ticket.status == target, f"{source} -> {target}"
            assert ticket.is_open == (target in ("new", "assigned", "in_progress", "pending"))
            if target == "resolved":
                assert ticket.resolved_at == at(30) and ticket.resolution_code == "fixed"
                assert ticket.paused_at is not None
            if target == "closed":
                assert ticket.closed_at == at(30)
            if target == "cancelled":
                assert ticket.cancelled_at == at(30)
            if target == "pending":
                assert ticket.pending_reason == "vendor" and ticket.paused_at == at(30)
            if source == "resolved" and target == "in_progress":
                assert ticket.reopen_count == 1 and ticket.resolved_at is None
            if target in ("assigned", "in_progress"):
                assert ticket.assignee == "agent1"


def test_transition_to_assigned_needs_an_assignee(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    with pytest.raises(ValidationError) as info:
        move(db, config, staff["agent1"], ref, "assigned")
    assert info.value.field == "assignee"
    with db.session() as s:  # an assignee recorded some other way makes the edge available
        tickets.get_ticket(s, ref).assignee_id = staff["agent2"].id
    move(db, config, staff["agent1"], ref, "assigned", now=at(1))
    assert snapshot(db, ref).status == "assigned"


def test_in_progress_from_new_takes_the_ticket(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    move(db, config, staff["agent1"], ref, "in_progress", now=at(3))
    ticket = snapshot(db, ref)
    assert (ticket.status, ticket.assignee, ticket.responded_at) == ("in_progress", "agent1", at(3))


def test_every_disallowed_transition_is_refused(db, config, staff) -> None:
    agent = staff["agent1"]
    for source, allowed in tickets.TRANSITIONS.items():
        ref = drive(db, config, agent, source)
        before = snapshot(db, ref)
        for target in (*TICKET_STATUSES, "on_hold"):
            if target in allowed:
                continue
            with pytest.raises(InvalidTransition) as info:
                move(db, config, agent, ref, target, now=at(30), **edge_args(source, target))
            message = str(info.value)
            assert (info.value.current, info.value.wanted, info.value.allowed) == (source, target, allowed)
            assert ref in message and source in message and target in message
            for name in allowed:
                assert name in message
            if not allowed:
                assert "final" in message
        assert snapshot(db, ref) == before, f"a refused move changed {source} ticket"


def test_pending_pauses_and_resume_moves_due_instants(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = drive(db, config, agent, "in_progress", impact="high", urgency="high")  # P1, 24x7
    before = snapshot(db, ref)
    move(db, config, agent, ref, "pending", now=at(10), reason="customer")
    paused = snapshot(db, ref)
    assert (paused.status, paused.pending_reason, paused.paused_at) == ("pending", "customer", at(10))
    assert paused.resolution_due_at == before.resolution_due_at
    move(db, config, agent, ref, "in_progress", now=at(70))
    resumed = snapshot(db, ref)
    assert (resumed.status, resumed.pending_reason, resumed.paused_at) == ("in_progress", None, None)
    assert pauses(db, ref) == [("customer", at(10), at(70))]
    assert resumed.resolution_due_at == before.resolution_due_at + timedelta(hours=1)
    assert resumed.resolution_warn_at == before.resolution_warn_at + timedelta(hours=1)
    # The response was made when the work began: its target has stopped and keeps its instants.
    assert resumed.response_due_at == before.response_due_at
    assert resumed.response_warn_at == before.response_warn_at


def test_pending_overnight_only_moves_by_business_time(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = drive(db, config, agent, "in_progress")  # P3, office calendar
    opened = snapshot(db, ref).opened_at
    monday_5pm = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 17:00 Berlin
    tuesday_9am = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 Berlin
    move(db, config, agent, ref, "pending", now=monday_5pm, reason="vendor")
    move(db, config, agent, ref, "in_progress", now=tuesday_9am)
    ticket = snapshot(db, ref)
    clock = sla.clock_for(config.calendars["office"])
    assert pauses(db, ref) == [("vendor", monday_5pm, tuesday_9am)]  # 2 h of business time: 17-18, 08-09
    assert ticket.resolution_due_at == clock.add(opened, config.policies[3].resolution_minutes * 60 + 7200)


def test_pending_needs_a_known_reason(db, config, staff) -> None:
    ref = drive(db, config, staff["agent1"], "in_progress")
    for reason in (None, "", "lunch"):
        with pytest.raises(ValidationError) as info:
            move(db, config, staff["agent1"], ref, "pending", reason=reason)
        assert info.value.field == "reason"
        assert "customer" in str(info.value)
    assert snapshot(db, ref).status == "in_progress"


def test_resolve_needs_code_and_note(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = drive(db, config, agent, "in_progress")
    cases = [
        ({"code": None, "note": "done"}, "code"),
        ({"code": "magic", "note": "done"}, "code"),
        ({"code": "fixed", "note": None}, "note"),
        ({"code": "fixed", "note": "   "}, "note"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as info, db.session() as s:
            tickets.resolve(s, config, agent, ref, now=at(20), **kwargs)
        assert info.value.field == field, kwargs
    ticket = snapshot(db, ref)
    assert (ticket.status, ticket.resolved_at, ticket.resolution_code) == ("in_progress", None, None)
    with db.session() as s:
        tickets.resolve(s, config, agent, ref, code="workaround", note="Restarted the spooler", now=at(20))
    ticket = snapshot(db, ref)
    assert (ticket.status, ticket.resolution_code, ticket.resolution_note) == (
        "resolved",
        "workaround",
        "Restarted the spooler",
    )
    assert ticket.resolved_at == at(20) and not ticket.is_open


def test_resolve_from_pending_keeps_reason_when_refused(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = drive(db, config, agent, "pending")
    with pytest.raises(ValidationError), db.session() as s:
        tickets.resolve(s, config, agent, ref, code="bogus", note="x")
    ticket = snapshot(db, ref)
    assert (ticket.status, ticket.pending_reason) == ("pending", "vendor")


def test_reopen_needs_reason_and_counts(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = drive(db, config, agent, "resolved")
    for reason in (None, "  "):
        with pytest.raises(ValidationError) as info:
            move(db, config, agent, ref, "in_progress", reason=reason)
        assert info.value.field == "reason"
    assert snapshot(db, ref).reopen_count == 0
    with db.session() as s:
        tickets.reopen(s, config, agent, ref, reason="printer still smokes", now=at(40))
    ticket = snapshot(db, ref)
    assert (ticket.status, ticket.reopen_count, ticket.is_open) == ("in_progress", 1, True)
    assert (ticket.resolved_at, ticket.resolution_code, ticket.resolution_note, ticket.paused_at) == (
        None,
        None,
        None,
        None,
    )
    with db.session() as s:
        tickets.resolve(s, config, agent, ref, code="fixed", note="new fuser", now=at(50))
        tickets.reopen(s, config, agent, ref, reason="again", now=at(60))
    assert snapshot(db, ref).reopen_count == 2
    with db.read_session() as s:
        bodies = [e.body for e in tickets.entries(s, tickets.get_ticket(s, ref))]
    assert "Reopened: printer still smokes" in bodies and "Reopened: again" in bodies


def test_cancel_needs_reason(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = drive(db, config, agent, "assigned")
    for reason in ("", "   "):
        with pytest.raises(ValidationError) as info, db.session() as s:
            tickets.cancel(s, config, agent, ref, reason=reason)
        assert info.value.field == "reason"
    assert snapshot(db, ref).status == "assigned"
    with db.session() as s:
        tickets.cancel(s, config, agent, ref, reason="raised twice", now=at(5))
    ticket = snapshot(db, ref)
    assert (ticket.status, ticket.is_open, ticket.cancelled_at) == ("cancelled", False, at(5))
    with db.read_session() as s:
        assert "Cancelled: raised twice" in [e.body for e in tickets.entries(s, tickets.get_ticket(s, ref))]


# --------------------------------------------------------------------------- audit trail


Expected = tuple[str, str, str | None, str | None]


def _check(events: list[AuditEvent], actor_id: int, *expected: Expected) -> None:
    """Every new event is by ``actor_id``; each (action, field, old, new) expected is among them."""
    assert events, "the mutation wrote no audit event"
    assert {e.actor_id for e in events} == {actor_id}
    found = {(e.action, e.field, e.old_value, e.new_value) for e in events}
    for item in expected:
        assert item in found, f"{item} not in {found}"


def test_every_mutation_is_audited(db, config, staff) -> None:
    agent, net = staff["agent1"], staff["net1"]
    mark = last_event_id(db)
    ref = new_ticket(db, config, agent)
    other = new_ticket(db, config, agent, title="Second printer")
    ticket_id = snapshot(db, ref).id

    def step(actor, *expected, now: datetime | None = None) -> None:
        nonlocal mark
        events = events_after(db, ticket_id, mark)
        _check(events, actor.id, *expected)
        assert all(e.at == now for e in events if now is not None)
        mark = max(e.id for e in events)

    step(
        agent,
        ("create", "status", None, "new"),
        ("create", "priority", None, "3"),
        ("create", "group", None, "SD-L1"),
        now=T0,
    )

    with db.session() as s:
        tickets.update_fields(s, config, agent, ref, title="Printer smoking", impact="high", now=at(1))
    step(
        agent,
        ("update", "title", "Printer on fire", "Printer smoking"),
        ("update", "impact", "medium", "high"),
        ("update", "priority", "3", "2"),
        now=at(1),
    )

    take(db, config, agent, ref, now=at(2))
    step(
        agent,
        ("assign", "assignee", None, "agent1"),
        ("transition", "status", "new", "assigned"),
        ("sla", "responded_at", None, at(2).isoformat()),
        now=at(2),
    )

    with db.session() as s:
        reply = tickets.add_entry(s, config, agent, ref, body="We are on it", public=True, now=at(3))
    step(agent, ("reply", "entry", None, str(reply.id)))
    with db.session() as s:
        note = tickets.add_entry(s, config, agent, ref, body="Toner low", public=False, now=at(4))
    step(agent, ("note", "entry", None, str(note.id)))

    move(db, config, agent, ref, "in_progress", now=at(5))
    step(agent, ("transition", "status", "assigned", "in_progress"))

    with db.session() as s:
        tickets.link(s, agent, ref, other, now=at(6))
    step(agent, ("link", "link", None, other))

    with db.session() as s:
        tickets.escalate(s, config, agent, ref, group="NET-L2", reason="network printer", now=at(7))
    step(
        agent,
        ("escalate", "group", "SD-L1", "NET-L2"),
        ("escalate", "assignee", "agent1", None),
        ("escalate", "status", "in_progress", "new"),
    )

    take(db, config, net, ref, now=at(8))
    step(net, ("assign", "assignee", None, "net1"), ("transition", "status", "new", "assigned"))
    move(db, config, net, ref, "in_progress", now=at(9))
    step(net, ("transition", "status", "assigned", "in_progress"))
    move(db, config, net, ref, "pending", now=at(10), reason="vendor")
    step(
        net,
        ("transition", "pending_reason", None, "vendor"),
        ("transition", "status", "in_progress", "pending"),
    )
    move(db, config, net, ref, "resolved", now=at(11), code="vendor-fix", note="Vendor patched firmware")
    step(
        net,
        ("resolve", "resolution_code", None, "vendor-fix"),
        ("resolve", "resolution_note", None, "Vendor patched firmware"),
        ("resolve", "resolved_at", None, at(11).isoformat()),
        ("transition", "pending_reason", "vendor", None),
        ("transition", "status", "pending", "resolved"),
    )

    with db.session() as s:
        tickets.rate(s, net, ref, score=5, now=at(12))
    step(net, ("rate", "rating", None, "5"))

    move(db, config, net, ref, "closed", now=at(13))
    step(
        net, ("close", "closed_at", None, at(13).isoformat()), ("transition", "status", "resolved", "closed")
    )


def test_the_timeline_reads_audited_instants_in_the_agents_zone(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    move(db, config, staff["agent1"], ref, "in_progress", now=at(3))
    with db.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        in_berlin = [i.text for i in tickets.timeline(s, ticket, zone=ZoneInfo("Europe/Berlin"))]
        stored = [i.text for i in tickets.timeline(s, ticket)]
    assert "sla responded_at: - -> 2026-03-02 10:03" in in_berlin  # 09:03 UTC
    assert any(text.startswith("sla responded_at: - -> 2026-03-02T09:03") for text in stored)
    assert "transition status: new -> in_progress" in in_berlin


def test_cancel_and_reopen_are_audited(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = drive(db, config, agent, "resolved")
    ticket_id = snapshot(db, ref).id
    mark = last_event_id(db)
    move(db, config, agent, ref, "in_progress", now=at(20), reason="not fixed")
    _check(
        events_after(db, ticket_id, mark),
        agent.id,
        ("reopen", "resolution_code", "fixed", None),
        ("transition", "status", "resolved", "in_progress"),
    )
    mark = last_event_id(db)
    move(db, config, agent, ref, "cancelled", now=at(21), reason="user left")
    _check(
        events_after(db, ticket_id, mark),
        agent.id,
        ("cancel", "cancelled_at", None, at(21).isoformat()),
        ("transition", "status", "in_progress", "cancelled"),
    )


# --------------------------------------------------------------------------- permissions


def refused(db, action) -> PermissionDenied:
    """Run ``action`` in its own session; it must be refused and write nothing."""
    before = counts(db)
    with pytest.raises(PermissionDenied) as info, db.session() as s:
        action(s)
    assert counts(db) == before
    return info.value


def test_analyst_cannot_create(db, config, staff) -> None:
    analyst = staff["analyst1"]
    error = refused(db, lambda s: tickets.create_ticket(s, config, analyst, title="x", requester="y"))
    message = str(error)
    assert "agent" in message and "shift_lead" in message and "analyst" in message


def test_agent_cannot_assign_to_someone_else(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    error = refused(db, lambda s: tickets.assign(s, config, staff["agent1"], ref, assignee="agent2"))
    assert "shift_lead" in str(error)
    assert snapshot(db, ref).assignee is None


def test_agent_cannot_take_another_groups_ticket(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"], group="NET-L2")
    error = refused(db, lambda s: tickets.assign(s, config, staff["agent1"], ref))
    assert "shift_lead" in str(error)
    refused(db, lambda s: tickets.add_entry(s, config, staff["agent1"], ref, body="hi", public=False))
    refused(db, lambda s: tickets.transition(s, config, staff["agent1"], ref, "in_progress"))
    refused(db, lambda s: tickets.update_fields(s, config, staff["agent1"], ref, title="mine"))
    ticket = snapshot(db, ref)
    assert (ticket.assignee, ticket.status, ticket.group) == (None, "new", "NET-L2")


def test_l2_takes_its_groups_ticket(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"], group="NET-L2")
    refused(db, lambda s: tickets.assign(s, config, staff["app1"], ref))  # another L2 group
    take(db, config, staff["net1"], ref, now=at(4))
    ticket = snapshot(db, ref)
    assert (ticket.assignee, ticket.status, ticket.group, ticket.responded_at) == (
        "net1",
        "assigned",
        "NET-L2",
        at(4),
    )


def test_agent_cannot_take_a_ticket_assigned_to_someone_else(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    take(db, config, staff["agent1"], ref)  # at T0
    before = counts(db)
    for login, hint in (("agent2", ""), ("lead", " (assign reassigns it)")):  # a lead's take is a take
        with pytest.raises(tickets.AlreadyTaken) as info, db.session() as s:
            tickets.assign(s, config, staff[login], ref, now=at(30))
        assert str(info.value) == (
            f"{ref} was taken by Agent1 (agent1) at 2026-03-02 09:00 UTC; it is not yours{hint}"
        )
    assert counts(db) == before
    assert snapshot(db, ref).assignee == "agent1"


def test_lead_assigns_to_an_agent(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    with db.session() as s:
        tickets.assign(s, config, staff["lead"], ref, assignee="agent2", now=at(2))
    ticket = snapshot(db, ref)
    assert (ticket.assignee, ticket.status, ticket.group) == ("agent2", "assigned", "SD-L1")
    with db.session() as s:  # and reassigns to another group's member
        tickets.assign(s, config, staff["lead"], ref, assignee="net1", group="NET-L2", now=at(3))
    ticket = snapshot(db, ref)
    assert (ticket.assignee, ticket.group, ticket.reassignment_count) == ("net1", "NET-L2", 1)


def test_lead_cannot_assign_to_a_non_member(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    before = counts(db)
    with pytest.raises(ValidationError) as info, db.session() as s:
        tickets.assign(s, config, staff["lead"], ref, assignee="net1")
    assert info.value.field == "assignee" and "SD-L1" in str(info.value)
    assert counts(db) == before


def test_analyst_cannot_work_tickets(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    refused(db, lambda s: tickets.assign(s, config, staff["analyst1"], ref))
    refused(db, lambda s: tickets.transition(s, config, staff["analyst1"], ref, "cancelled", reason="no"))
    refused(db, lambda s: tickets.add_entry(s, config, staff["analyst1"], ref, body="x", public=True))
    refused(db, lambda s: tickets.escalate(s, config, staff["analyst1"], ref, group="NET-L2", reason="x"))
    assert snapshot(db, ref).status == "new"


# --------------------------------------------------------------------------- response and escalation


def test_taking_sets_responded_at(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    take(db, config, staff["agent1"], ref, now=at(7))
    assert snapshot(db, ref).responded_at == at(7)
    move(db, config, staff["agent1"], ref, "in_progress", now=at(9))
    assert snapshot(db, ref).responded_at == at(7)


def test_first_public_reply_responds_and_a_note_does_not(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = new_ticket(db, config, agent)
    with pytest.raises(ValidationError) as info, db.session() as s:
        tickets.add_entry(s, config, agent, ref, body="  ", public=True, now=at(1))
    assert info.value.field == "body"
    with db.session() as s:
        tickets.add_entry(s, config, agent, ref, body="internal: checked logs", public=False, now=at(3))
    assert snapshot(db, ref).responded_at is None
    with db.session() as s:
        tickets.add_entry(s, config, agent, ref, body="Hello, looking into it", public=True, now=at(6))
    with db.session() as s:
        tickets.add_entry(s, config, agent, ref, body="Still looking", public=True, now=at(9))
    ticket = snapshot(db, ref)
    assert ticket.responded_at == at(6)
    assert ticket.assignee is None and ticket.status == "new"  # a reply is not a take
    with db.read_session() as s:
        kinds = [e.kind for e in tickets.entries(s, tickets.get_ticket(s, ref))]
    assert sorted(kinds) == ["note", "reply", "reply"]


def test_escalate_defaults_to_the_services_support_group(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"], service="network")
    take(db, config, staff["agent1"], ref)
    with db.session() as s:
        tickets.escalate(s, config, staff["agent1"], ref, reason="switch port dead", now=at(5))
    ticket = snapshot(db, ref)
    assert (ticket.group, ticket.assignee, ticket.status) == ("NET-L2", None, "new")
    assert (ticket.escalation_count, ticket.reassignment_count) == (1, 1)
    with db.read_session() as s:
        bodies = [e.body for e in tickets.entries(s, tickets.get_ticket(s, ref))]
    assert "Escalated to NET-L2: switch port dead" in bodies
    take(db, config, staff["net1"], ref, now=at(6))
    with db.session() as s:
        tickets.escalate(
            s, config, staff["net1"], ref, group="ENG-L3", reason="needs platform team", now=at(7)
        )
    ticket = snapshot(db, ref)
    assert (ticket.group, ticket.escalation_count) == ("ENG-L3", 2)


def test_escalate_needs_a_target_and_a_reason(db, config, staff) -> None:
    agent = staff["agent1"]
    plain = new_ticket(db, config, agent)  # no service: nowhere to escalate by default
    with pytest.raises(ValidationError) as info, db.session() as s:
        tickets.escalate(s, config, agent, plain, reason="help")
    assert info.value.field == "group"
    networked = new_ticket(db, config, agent, service="network")
    with pytest.raises(ValidationError) as info, db.session() as s:
        tickets.escalate(s, config, agent, networked, reason="  ")
    assert info.value.field == "reason"
    with pytest.raises(ValidationError) as info, db.session() as s:
        tickets.escalate(s, config, agent, networked, group="SD-L1", reason="same group")
    assert info.value.field == "group"
    assert snapshot(db, networked).escalation_count == 0


def test_escalating_a_pending_ticket_resumes_its_clock(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = drive(db, config, agent, "in_progress", impact="high", urgency="high")
    before = snapshot(db, ref)
    move(db, config, agent, ref, "pending", now=at(10), reason="vendor")
    with db.session() as s:
        tickets.escalate(s, config, agent, ref, group="NET-L2", reason="vendor needs L2", now=at(40))
    ticket = snapshot(db, ref)
    assert (ticket.status, ticket.pending_reason, ticket.paused_at) == ("new", None, None)
    assert ticket.resolution_due_at == before.resolution_due_at + timedelta(minutes=30)


# --------------------------------------------------------------------------- priority changes


def test_priority_change_retargets_from_original_start(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = new_ticket(db, config, agent, impact="low", urgency="low")
    ticket = snapshot(db, ref)
    assert ticket.priority == 5 and ticket.sla_calendar == "office"
    with db.session() as s:
        tickets.update_fields(s, config, agent, ref, impact="high", urgency="high", now=at(120))
    ticket = snapshot(db, ref)
    assert (ticket.priority, ticket.sla_calendar) == (1, "24x7")
    assert ticket.response_due_at == T0 + timedelta(minutes=15)  # from the opening, not from the change
    assert ticket.resolution_due_at == T0 + timedelta(minutes=240)
    with db.session() as s:
        tickets.update_fields(s, config, agent, ref, urgency="medium", now=at(130))
    ticket = snapshot(db, ref)
    assert ticket.priority == config.priority_for("high", "medium") == 2
    assert ticket.resolution_due_at == T0 + timedelta(minutes=480)


def test_priority_change_keeps_paused_time_out(db, config, staff) -> None:
    agent = staff["agent1"]
    ref = drive(db, config, agent, "in_progress", impact="high", urgency="high")  # P1, 24x7
    move(db, config, agent, ref, "pending", now=at(10), reason="customer")
    move(db, config, agent, ref, "in_progress", now=at(70))
    with db.session() as s:
        tickets.update_fields(s, config, agent, ref, impact="medium", now=at(80))  # P2
    ticket = snapshot(db, ref)
    assert ticket.priority == 2
    assert ticket.resolution_due_at == T0 + timedelta(minutes=480 + 60)
    assert ticket.response_due_at == T0 + timedelta(minutes=15)  # responded: the P1 target it had stays


def test_unchanged_fields_do_not_bump_the_version(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    before = snapshot(db, ref)
    mark = last_event_id(db)
    with db.session() as s:
        tickets.update_fields(s, config, staff["agent1"], ref, title="Printer on fire", impact="medium")
    assert snapshot(db, ref).version == before.version
    assert events_after(db, before.id, mark) == []


@pytest.mark.parametrize(
    "target, kwargs", [("resolved", {"code": "bogus", "note": "x"}), ("cancelled", {"reason": ""})]
)
def test_refused_transition_leaves_the_session_clean(db, config, staff, target: str, kwargs: dict) -> None:
    """A refused action writes nothing, even when the caller catches the error and its session commits."""
    agent = staff["agent1"]
    ref = drive(db, config, agent, "pending")
    before, mark = snapshot(db, ref), last_event_id(db)
    with db.session() as s:
        with pytest.raises(ValidationError):
            tickets.transition(s, config, agent, ref, target, **kwargs)
        assert not s.dirty and not s.new
    assert snapshot(db, ref) == before
    assert events_after(db, before.id, mark) == []


def test_a_refusal_names_the_ticket_and_the_roles_of_who_tried(db, config, staff) -> None:
    """Who is refused is told which ticket and which roles they have; the screen lists the short reason."""
    ref = new_ticket(db, config, staff["agent1"])
    with db.session() as s, pytest.raises(PermissionDenied) as caught:
        tickets.add_entry(s, config, staff["analyst1"], ref, body="x", public=False)
    assert str(caught.value) == (
        f"You may not add a note to {ref}: needs the role agent, support_l2, support_l3 or shift_lead "
        "(you have analyst)."
    )
    assert caught.value.reason == "needs the role agent, support_l2, support_l3 or shift_lead"
    drive_ref = drive(db, config, staff["agent1"], "closed")
    with db.session() as s, pytest.raises(ValidationError) as closed:
        tickets.escalate(s, config, staff["agent1"], drive_ref, group="NET-L2", reason="x")
    assert str(closed.value) == f"{drive_ref}: the ticket is closed"
    assert closed.value.field == "status"


def test_a_cancelled_tickets_clocks_stop_when_it_is_cancelled(db, config, staff) -> None:
    """P1 (24x7: respond in 15 min, resolve in 4 h) opened at T0. Cancelled at T0+5 min, both targets stop
    unmet and unbreached; cancelled at T0+30 min, the response had run out 15 min before and stays 15 min
    overdue, however late one looks."""
    agent = staff["agent1"]
    early = new_ticket(db, config, agent, impact="high", urgency="high")
    late = new_ticket(db, config, agent, impact="high", urgency="high")
    with db.session() as s:
        tickets.cancel(s, config, agent, early, reason="duplicate of INC0000999", now=at(5))
        tickets.cancel(s, config, agent, late, reason="duplicate of INC0000999", now=at(30))
    much_later = at(600)
    with db.read_session() as s:
        shown = tickets.detail(s, config, agent, early, now=much_later)
        assert (shown.view.response_state, shown.view.resolution_state) == ("stopped", "stopped")
        assert shown.left == {"response": None, "resolution": None}
        shown = tickets.detail(s, config, agent, late, now=much_later)
        assert (shown.view.response_state, shown.view.resolution_state) == ("breached", "stopped")
        assert shown.left == {"response": -15 * 60.0, "resolution": None}
