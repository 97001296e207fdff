"""available_actions agrees with the services: what it allows succeeds, what it refuses is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from itsm_tui.models import KnownError
from itsm_tui.services import knowledge, tickets
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import InvalidTransition, ValidationError

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
ACTORS = ("agent1", "agent2", "lead", "net1", "analyst1", "prm")


class Rollback(Exception):
    """Raised after a trial call so that nothing it did is kept."""


def build_tickets(db, config, staff) -> dict[str, str]:
    """One ticket per interesting state, by name -> reference."""
    agent1, agent2, lead = staff["agent1"], staff["agent2"], staff["lead"]
    refs = {}
    with db.session() as s:
        s.add(KnownError(ref="KE0000001", title="K", symptom="s", workaround="w", published_at=T0))

        def new(name, **fields):
            refs[name] = tickets.create_ticket(
                s, config, lead, title=name, requester="R", now=T0, **fields
            ).ref
            return refs[name]

        new("new")
        tickets.assign(s, config, agent1, new("assigned"), now=T0)
        tickets.transition(s, config, agent1, new("in_progress"), "in_progress", now=T0)
        ref = new("pending")
        tickets.transition(s, config, agent1, ref, "in_progress", now=T0)
        tickets.transition(s, config, agent1, ref, "pending", reason="customer", now=T0)
        for name in ("resolved", "rated", "closed"):
            ref = new(name)
            tickets.transition(s, config, agent1, ref, "in_progress", now=T0)
            tickets.resolve(s, config, agent1, ref, code="fixed", note="n", now=T0)
        tickets.rate(s, agent1, refs["rated"], score=4, now=T0)
        tickets.close(s, config, agent1, refs["closed"], now=T0 + timedelta(days=1))
        tickets.cancel(s, config, agent1, new("cancelled"), reason="dup", now=T0)
        new("other_group", group="NET-L2")
        tickets.transition(s, config, agent2, new("agent2s"), "in_progress", now=T0)
    return refs


def attempt(db, config, actor, action: str, ref: str, view, other_ref: str) -> Exception | None:
    """Try ``action`` with valid inputs, roll it back; the error it raised, if any."""
    member = {"SD-L1": "agent2" if actor.login != "agent2" else "agent1", "NET-L2": "net1"}[view.group]
    level = "high" if view.impact != "high" else "low"
    try:
        with db.session() as s:
            if action == "take":
                tickets.assign(s, config, actor, ref, now=T0)
            elif action == "assign":
                tickets.assign(s, config, actor, ref, assignee=member, now=T0)
            elif action == "escalate":
                group = "APP-L2" if view.group != "APP-L2" else "NET-L2"
                tickets.escalate(s, config, actor, ref, group=group, reason="r", now=T0)
            elif action == "escalate_lead":
                tickets.escalate_to_lead(s, config, actor, ref, reason="r", now=T0)
            elif action in ("reply", "note"):
                tickets.add_entry(s, config, actor, ref, body="b", public=action == "reply", now=T0)
            elif action == "transition":
                target = (*tickets.allowed_transitions(view), "in_progress")[0]
                tickets.transition(
                    s, config, actor, ref, target, reason="customer", code="fixed", note="n", now=T0
                )
            elif action == "edit":
                tickets.update_fields(s, config, actor, ref, impact=level, now=T0)
            elif action == "link":
                tickets.link(s, actor, ref, other_ref, now=T0)
            elif action == "apply_workaround":
                knowledge.apply_workaround(s, config, actor, ref, "KE0000001", now=T0)
            elif action == "resolve":
                tickets.resolve(s, config, actor, ref, code="fixed", note="n", now=T0)
            elif action == "reopen":
                tickets.reopen(s, config, actor, ref, reason="r", now=T0)
            elif action == "cancel":
                tickets.cancel(s, config, actor, ref, reason="r", now=T0)
            elif action == "rate":
                tickets.rate(s, actor, ref, score=5, now=T0)
            else:
                raise AssertionError(action)
            raise Rollback
    except Rollback:
        return None
    except (PermissionDenied, ValidationError, InvalidTransition, tickets.AlreadyTaken) as exc:
        return exc


def test_available_actions_agree_with_the_services(db, config, staff) -> None:
    refs = build_tickets(db, config, staff)
    checked = 0
    for name, ref in refs.items():
        with db.read_session() as s:
            ticket = tickets.get_ticket(s, ref)
            view = tickets.view(s, ticket, T0)
            live = {
                login: tickets.available_actions(staff[login], ticket) for login in ACTORS
            }  # from the ORM object
        other = refs["new"] if name != "new" else refs["assigned"]
        for login in ACTORS:
            actor = staff[login]
            actions = tickets.available_actions(actor, view)
            assert set(actions) == set(tickets.ACTIONS)
            for key, reason in live[login].items():
                if key != "rate":  # the live ticket does not know its rating
                    assert reason == actions[key], (name, login, key)
            for action, reason in actions.items():
                if action == "assign" and login == "net1" and view.group == "NET-L2":
                    continue  # no other member to assign to (assigning oneself is a take)
                if action == "reopen" and view.status != "resolved":
                    continue  # tickets.reopen of an unresolved ticket is a plain move to in_progress
                error = attempt(db, config, actor, action, ref, view, other)
                if reason is None:
                    assert error is None, f"{login} may {action} {name} but the service says: {error}"
                else:
                    assert error is not None, (
                        f"{login} may not {action} {name} ({reason}) yet the service agreed"
                    )
                checked += 1
    assert checked > 500


def test_reasons_name_the_role_that_may(db, config, staff) -> None:
    refs = build_tickets(db, config, staff)
    with db.read_session() as s:
        new = tickets.view(s, tickets.get_ticket(s, refs["new"]), T0)
        other = tickets.view(s, tickets.get_ticket(s, refs["other_group"]), T0)
        resolved = tickets.view(s, tickets.get_ticket(s, refs["resolved"]), T0)
    agent = tickets.available_actions(staff["agent1"], new)
    assert agent["take"] is None and agent["assign"] == "needs the role shift_lead"
    assert agent["resolve"] == "not in progress yet"
    analyst = tickets.available_actions(staff["analyst1"], new)
    assert analyst["take"] == "needs the role agent, support_l2, support_l3 or shift_lead"
    assert (
        analyst["link"]
        == "needs the role agent, support_l2, support_l3, shift_lead, problem_manager or change_manager"
    )
    assert "shift_lead" in tickets.available_actions(staff["agent1"], other)["take"]
    assert "shift_lead" in tickets.available_actions(staff["agent1"], other)["reply"]
    assert tickets.available_actions(staff["lead"], other)["reply"] is None
    problem_manager = tickets.available_actions(staff["prm"], new)
    assert problem_manager["link"] is None and problem_manager["reply"] is not None
    assert tickets.available_actions(staff["agent1"], resolved)["reopen"] is None


def test_allowed_transitions_follow_the_lifecycle(db, config, staff) -> None:
    refs = build_tickets(db, config, staff)
    expected = {
        "new": ("in_progress", "cancelled"),  # "assigned" needs an assignee first
        "assigned": ("in_progress", "cancelled"),
        "in_progress": ("pending", "resolved", "cancelled"),
        "pending": ("in_progress", "resolved", "cancelled"),
        "resolved": ("in_progress", "closed"),
        "closed": (),
        "cancelled": (),
    }
    with db.read_session() as s:
        for name in expected:
            ticket = tickets.get_ticket(s, refs[name])
            assert tickets.allowed_transitions(ticket) == expected[name]
            assert tickets.allowed_transitions(tickets.view(s, ticket, T0)) == expected[name]


@pytest.mark.parametrize("state", ["new"])
def test_a_new_ticket_with_an_assignee_may_go_to_assigned(db, config, staff, state) -> None:
    view = tickets.TicketView(
        **{
            **dict.fromkeys(tickets.TicketView.__dataclass_fields__),
            "status": state,
            "assignee": "agent1",
        }
    )
    assert tickets.allowed_transitions(view) == ("assigned", "in_progress", "cancelled")
