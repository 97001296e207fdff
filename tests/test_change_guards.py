"""What a change's screen offers is what the service allows, on SQLite and PostgreSQL.

For every role alone (and no role, and who raised or implements the change), for a change of each type in each
state of the lifecycle, and for every action: ``available_actions`` says None exactly when taking the action
with valid inputs succeeds, and when it is refused the refusal reads as the offered reason. Each attempt runs
in a SAVEPOINT that is rolled back, so every one starts from the same change. A small table worked out by hand
from the rules (the docstring of :mod:`itsm_tui.services.changes`) pins some of the outcomes, so that the
expectations do not all come from the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change, User
from itsm_tui.services import changes
from itsm_tui.services import users as user_service
from itsm_tui.services.access import ROLES
from itsm_tui.services.errors import ServiceError
from itsm_tui.services.users import Actor

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday; every change is planned after it
FIRST_WINDOW = datetime(2026, 3, 9, 22, 0, tzinfo=UTC)
STATES = tuple(changes.TRANSITIONS)
SETUP_MANAGER = "setup_manager"  # takes the changes through their lifecycle; never one of the actors
# kind -> (change type, who raises it, its states). An emergency change raised by a change manager needs
# another one to decide it: that kind is built in the states up to the decision only.
KINDS = {
    "standard": ("standard", "raiser", STATES),
    "normal": ("normal", "raiser", STATES),
    "emergency": ("emergency", "raiser", STATES),
    "emergency by a manager": ("emergency", "manager_raiser", STATES[:5]),
}
# States a change of that type never reaches (a standard change is approved on submit, an emergency change
# skips assessment): the change is taken to the state named here, then its state is set directly, so that
# every guard is still asked in every state.
FORCED = {
    ("standard", "submitted"): "draft",
    ("standard", "assessed"): "draft",
    ("standard", "rejected"): "approved",
    ("emergency", "assessed"): "submitted",
}
ACTORS = (*(f"role:{role}" for role in ROLES), "no role", "requester", "implementer")
# The guards are the same code on both databases: the whole grid runs on SQLite; on PostgreSQL a
# cross-section of actors (who approves, who decides, who raised, who implements, nobody) checks that doing
# the actions through its SQL agrees too, at a fifth of the cost.
PG_ACTORS = ("role:change_manager", "role:cab_member", "role:agent", "no role", "requester", "implementer")

# Worked out by hand from the rules: (actor, kind, state, action) -> allowed. Who raises the changes (a
# support_l2) and who implements them (a support_l3) sit on the CAB too, but who raises or implements a
# change never approves it: nobody is assigned to the changes' service, so every other CAB member is asked,
# and that is "role:cab_member" alone.
EXPECTED = {
    # Who raised a draft submits it; a change manager assesses a submitted normal change, a CAB member not.
    ("requester", "normal", "draft", "submit"): True,
    ("role:change_manager", "normal", "submitted", "assess"): True,
    ("role:cab_member", "normal", "submitted", "assess"): False,
    # The CAB decides once the change is assessed, and a change manager not asked does not decide for it.
    ("role:cab_member", "normal", "submitted", "approve"): False,
    ("role:cab_member", "normal", "assessed", "approve"): True,
    ("role:cab_member", "normal", "assessed", "reject"): True,
    ("role:change_manager", "normal", "assessed", "approve"): False,
    # Four eyes: the CAB members who raised or implement the change are not asked and may not decide it.
    ("requester", "normal", "assessed", "approve"): False,
    ("requester", "normal", "assessed", "reject"): False,
    ("implementer", "normal", "assessed", "approve"): False,
    # A standard change is pre-approved: no CAB.
    ("role:cab_member", "standard", "approved", "approve"): False,
    # An emergency change: a change manager decides it, without assessment, but not the one who raised it.
    ("role:change_manager", "emergency", "submitted", "approve"): True,
    ("role:change_manager", "emergency", "submitted", "assess"): False,
    ("role:cab_member", "emergency", "submitted", "approve"): False,
    ("requester", "emergency by a manager", "submitted", "reject"): False,
    ("role:change_manager", "emergency by a manager", "submitted", "reject"): True,
    # Nothing is scheduled before it is approved. A week before its window (NOW) its implementer may not
    # start it; a change manager may, saying why; someone with no role not at all (inside the window, see
    # test_inside_the_window_the_implementer_starts, the implementer may).
    ("role:change_manager", "normal", "submitted", "schedule"): False,
    ("implementer", "normal", "scheduled", "start"): False,
    ("role:change_manager", "normal", "scheduled", "start"): True,
    ("no role", "normal", "scheduled", "start"): False,
    # A change manager moves an approved change (it goes back to the CAB); who raised it does not.
    ("role:change_manager", "normal", "approved", "reschedule"): True,
    ("requester", "normal", "approved", "reschedule"): False,
    ("requester", "standard", "approved", "reschedule"): True,
    # Failed and emergency changes are reviewed before they close; a successful normal one closes at once,
    # and so does a rejected one.
    ("role:change_manager", "normal", "failed", "close"): False,
    ("role:change_manager", "emergency", "implemented", "close"): False,
    ("role:change_manager", "normal", "implemented", "close"): True,
    ("role:change_manager", "normal", "failed", "review"): True,
    ("role:change_manager", "normal", "review", "close"): True,
    ("role:change_manager", "normal", "rejected", "close"): True,
    # Who raised a change edits it while it is a draft or submitted, a change manager until it is approved;
    # an approved change is moved or cancelled, never edited; who implements it does not edit it.
    ("requester", "normal", "draft", "edit"): True,
    ("requester", "normal", "submitted", "edit"): True,
    ("requester", "normal", "assessed", "edit"): False,
    ("role:change_manager", "normal", "assessed", "edit"): True,
    ("role:change_manager", "normal", "approved", "edit"): False,
    ("implementer", "normal", "draft", "edit"): False,
    ("role:cab_member", "normal", "submitted", "edit"): False,
    ("requester", "standard", "draft", "edit"): True,
    # Who raised it withdraws it before approval, nobody else; a change manager cancels one not yet
    # implementing, who raised it does not.
    ("requester", "normal", "assessed", "withdraw"): True,
    ("requester", "normal", "approved", "withdraw"): False,
    ("role:change_manager", "normal", "draft", "withdraw"): False,
    ("role:change_manager", "normal", "scheduled", "cancel"): True,
    ("role:change_manager", "normal", "draft", "cancel"): True,
    ("role:change_manager", "normal", "implementing", "cancel"): False,
    ("requester", "normal", "draft", "cancel"): False,
    # A withdrawn or cancelled change is over: nobody decides, moves or edits it (the CAB member was asked
    # before it was withdrawn, and the decision is pending still).
    ("role:cab_member", "normal", "withdrawn", "approve"): False,
    ("role:change_manager", "normal", "withdrawn", "reschedule"): False,
    ("role:change_manager", "normal", "cancelled", "edit"): False,
    ("role:change_manager", "normal", "cancelled", "start"): False,
    ("requester", "normal", "withdrawn", "submit"): False,
}

Perform = Callable[[Session, DeskConfig, Actor, str, str, datetime], Change]
# action -> the service call with valid inputs (given the session, config, actor, ref, state, planned start)
PERFORM: dict[str, Perform] = {
    "submit": lambda s, c, a, ref, state, start: changes.submit(s, c, a, ref, now=NOW),
    "edit": lambda s, c, a, ref, state, start: changes.edit_change(s, c, a, ref, title="Edited", now=NOW),
    "withdraw": lambda s, c, a, ref, state, start: changes.withdraw(s, c, a, ref, now=NOW),
    "assess": lambda s, c, a, ref, state, start: changes.assess(s, c, a, ref, now=NOW),
    "approve": lambda s, c, a, ref, state, start: changes.approve(s, c, a, ref, now=NOW),
    "reject": lambda s, c, a, ref, state, start: changes.reject(s, c, a, ref, reason="Not now.", now=NOW),
    "schedule": lambda s, c, a, ref, state, start: changes.schedule(s, c, a, ref, now=NOW),
    "reschedule": lambda s, c, a, ref, state, start: changes.reschedule(
        s, c, a, ref, start=start + timedelta(hours=1), end=None, now=NOW
    ),
    "cancel": lambda s, c, a, ref, state, start: changes.cancel(s, c, a, ref, reason="Not needed.", now=NOW),
    "start": lambda s, c, a, ref, state, start: changes.start_implementation(
        s, c, a, ref, override_reason="The vendor is on site a week early.", now=NOW
    ),
    "complete": lambda s, c, a, ref, state, start: changes.complete(
        s, c, a, ref, outcome="implemented", now=NOW
    ),
    "review": lambda s, c, a, ref, state, start: changes.start_review(s, c, a, ref, now=NOW),
    "close": lambda s, c, a, ref, state, start: changes.close(
        s, c, a, ref, review_notes="What happened, what was learnt." if state == "review" else None, now=NOW
    ),
}


@dataclass(frozen=True)
class Desk:
    """One change per state of a kind, its planned start, and the users by login."""

    kind: str
    refs: dict[str, str]  # state -> ref
    starts: dict[str, datetime]  # ref -> planned start
    people: dict[str, Actor]

    def actor(self, who: str) -> Actor:
        if who.startswith("role:"):
            return self.people[f"only_{who.removeprefix('role:')}"]
        return self.people[{"no role": "nobody", "requester": KINDS[self.kind][1]}.get(who, who)]


def test_the_guards_are_the_actions():
    assert tuple(changes.GUARDS) == changes.ACTIONS
    assert {kind for _, kind, _, _ in EXPECTED} <= set(KINDS)
    assert {state for _, kind, state, _ in EXPECTED if state not in KINDS[kind][2]} == set()


@pytest.mark.parametrize("kind", list(KINDS))
def test_what_is_offered_is_what_is_allowed(db, config, kind):
    desk = build(db, config, kind)
    mismatches: list[str] = []
    answered: dict[tuple[str, str, str, str], bool] = {}
    actors = ACTORS if db.backend == "sqlite" else PG_ACTORS
    with db.session() as s:
        for state, ref in desk.refs.items():
            for who in actors:
                actor = desk.actor(who)
                offered = changes.available_actions(s, config, actor, changes.get_change(s, ref), NOW)
                assert tuple(offered) == changes.ACTIONS
                for action in changes.ACTIONS:
                    refusal = attempt(s, config, actor, ref, action, state, desk.starts[ref])
                    if offered[action] != refusal:
                        done = "it succeeded" if refusal is None else f"it was refused: {refusal}"
                        mismatches.append(f"{who} / {state} / {action}: offered {offered[action]!r}, {done}")
                    answered[who, kind, state, action] = refusal is None
        # Every attempt was rolled back: each change is still where it was built.
        now_in = dict(s.execute(select(Change.ref, Change.state)).tuples().all())
    assert not mismatches, f"offered and allowed differ ({kind} changes):\n" + "\n".join(mismatches)
    mine = {case: allowed for case, allowed in EXPECTED.items() if case[1] == kind}
    assert {case: answered[case] for case in mine} == mine
    assert now_in == {ref: state for state, ref in desk.refs.items()}


@pytest.mark.parametrize("kind", ["standard", "normal", "emergency"])
def test_inside_the_window_the_implementer_starts(db, config, kind):
    """At its planned start (and 15 minutes before it, the shipped early start) a scheduled change is
    offered to its implementer and to a change manager, and both may start it without a reason; an hour
    before it, only the change manager, with a reason. Offered == allowed at each instant."""
    desk = build_states(db, config, kind, ("scheduled",))
    ref = desk.refs["scheduled"]
    start = desk.starts[ref]
    expected = {
        # instant -> who may start it (worked out from the rule: [start - 15 min, end), else a manager)
        start: {"implementer", "role:change_manager"},
        start - timedelta(minutes=15): {"implementer", "role:change_manager"},
        start - timedelta(minutes=16): {"role:change_manager"},
        start + timedelta(hours=2): {"role:change_manager"},  # the planned end: the window is over
    }
    with db.session() as s:
        for at, allowed in expected.items():
            may: set[str] = set()
            for who in ACTORS:
                actor = desk.actor(who)
                offered = changes.available_actions(s, config, actor, changes.get_change(s, ref), at)["start"]
                savepoint = s.begin_nested()
                try:
                    needs_reason = at < start - timedelta(minutes=15) or at >= start + timedelta(hours=2)
                    reason = "The vendor came early." if needs_reason else None
                    changes.start_implementation(s, config, actor, ref, override_reason=reason, now=at)
                except ServiceError as exc:
                    refusal: str | None = str(exc)
                else:
                    refusal = None
                    may.add(who)
                finally:
                    savepoint.rollback()
                assert offered == refusal, f"{who} at {at}: offered {offered!r}, got {refusal!r}"
            assert may == allowed, at


def attempt(
    s: Session, config: DeskConfig, actor: Actor, ref: str, action: str, state: str, start: datetime
) -> str | None:
    """Take the action in a SAVEPOINT that is rolled back; None if it succeeded, else the refusal."""
    savepoint = s.begin_nested()
    try:
        PERFORM[action](s, config, actor, ref, state, start)
    except ServiceError as exc:
        return str(exc)
    finally:
        savepoint.rollback()
    return None


# --------------------------------------------------------------------------- building the changes


def build(db, config: DeskConfig, kind: str) -> Desk:
    """The cast, and a change of ``kind`` in each of its states (each on a day of its own: none overlap)."""
    return build_states(db, config, kind, KINDS[kind][2])


def build_states(db, config: DeskConfig, kind: str, states: tuple[str, ...]) -> Desk:
    """The cast, and a change of ``kind`` in each of ``states`` (each on a day of its own)."""
    people = add_people(db)
    change_type, raiser, _ = KINDS[kind]
    standard = change_type == "standard"
    refs: dict[str, str] = {}
    starts: dict[str, datetime] = {}
    for day, state in enumerate(states):
        start = FIRST_WINDOW + timedelta(days=day)
        forced = FORCED.get((change_type, state))
        with db.session() as s:  # one transaction per change: building is not what is tested
            ref = changes.create_change(
                s,
                config,
                people[raiser],
                change_type=change_type,
                template="std-patch" if standard else None,
                title=None if standard else f"{kind} change, {state}",
                targets=["crm"],
                start=start,
                end=start + timedelta(hours=2),
                implementation_plan=None if standard else "Do it.",
                backout_plan=None if standard else "Undo it.",
                implementer="implementer",
                now=NOW,
            ).ref
            for step, login in path(change_type, forced or state, start):
                step(s, config, people[raiser if login == "raiser" else login], ref)
            if forced:
                s.execute(update(Change).where(Change.ref == ref).values(state=state))
        refs[state] = ref
        starts[ref] = start
    return Desk(kind, refs, starts, people)


def add_people(db) -> dict[str, Actor]:
    """A user per role alone, one with no role, who raises (a support_l2 and a change manager) and who
    implements the changes (the support_l2 and the support_l3 on the CAB too), and the change manager who
    takes them through their lifecycle."""
    logins = {f"only_{role}": [role] for role in ROLES}
    logins |= {
        "raiser": ["support_l2", "cab_member"],
        "implementer": ["support_l3", "cab_member"],
        "manager_raiser": ["change_manager"],
    }
    logins[SETUP_MANAGER] = ["change_manager"]
    with db.session() as s:
        # The first user of a database becomes admin as well: the admin comes first and stays alone.
        for login in sorted(logins, key=lambda login: login != "only_admin"):
            user_service.add_user(s, actor_login="only_admin", login=login, roles=logins[login], groups=[])
        s.add(User(login="nobody", name="Nobody", created_at=NOW))
    with db.read_session() as s:
        people = {login: user_service.resolve_actor(s, login) for login in [*logins, "nobody"]}
    assert all(people[f"only_{role}"].roles == {role} for role in ROLES) and not people["nobody"].roles
    return people


Step = Callable[[Session, DeskConfig, Actor, str], Change]


def path(change_type: str, state: str, start: datetime) -> list[tuple[Step, str]]:
    """The steps (and who takes each) that bring a new draft of ``change_type`` planned from ``start`` to
    ``state``: decided at NOW, implemented from its planned start (inside its window)."""

    def by(fn: Callable[..., Change], who: str, at: datetime = NOW, **kw: str) -> tuple[Step, str]:
        return (lambda s, config, actor, ref: fn(s, config, actor, ref, now=at, **kw)), who

    submit = by(changes.submit, "raiser")
    if change_type == "normal":
        assessed = [submit, by(changes.assess, SETUP_MANAGER)]
        approved = [*assessed, by(changes.approve, "only_cab_member")]
        rejected = [*assessed, by(changes.reject, "only_cab_member", reason="Not now.")]
    elif change_type == "emergency":
        assessed = []  # forced
        approved = [submit, by(changes.approve, SETUP_MANAGER)]
        rejected = [submit, by(changes.reject, SETUP_MANAGER, reason="Not now.")]
    else:
        assessed = rejected = []  # forced
        approved = [submit]
    scheduled = [*approved, by(changes.schedule, SETUP_MANAGER)]
    done = start + timedelta(hours=1)
    implementing = [*scheduled, by(changes.start_implementation, "implementer", at=start)]
    implemented = [*implementing, by(changes.complete, "implementer", at=done, outcome="implemented")]
    failed = [*implementing, by(changes.complete, "implementer", at=done, outcome="failed", note="It broke.")]
    backed_out = [
        *implementing,
        by(changes.complete, "implementer", at=done, outcome="backed_out", note="Undone."),
    ]
    review = [
        *(implemented if change_type == "emergency" else failed),
        by(changes.start_review, SETUP_MANAGER, at=done),
    ]
    closed = (
        [*review, by(changes.close, SETUP_MANAGER, at=done, review_notes="Learnt.")]
        if change_type == "emergency"
        else [*implemented, by(changes.close, SETUP_MANAGER, at=done)]
    )
    # Withdrawn once its approvers were asked (a standard change: as a draft), cancelled once scheduled.
    asked = {"normal": assessed, "emergency": [submit]}.get(change_type, [])
    withdrawn = [*asked, by(changes.withdraw, "raiser")]
    cancelled = [*scheduled, by(changes.cancel, SETUP_MANAGER, reason="Not needed.")]
    return {
        "draft": [],
        "submitted": [submit],
        "assessed": assessed,
        "approved": approved,
        "rejected": rejected,
        "scheduled": scheduled,
        "implementing": implementing,
        "implemented": implemented,
        "failed": failed,
        "backed_out": backed_out,
        "review": review,
        "closed": closed,
        "withdrawn": withdrawn,
        "cancelled": cancelled,
    }[state]
