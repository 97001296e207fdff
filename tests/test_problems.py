"""Problem management, through the services, on SQLite and PostgreSQL: every move of the lifecycle made and
every other one refused naming the moves there are; what each role of the cast is offered against what each
step allows; known errors (publishing, notifying, retiring with the fix); the linked incidents resolved each
in its own transaction; closing and the incidents since the fix; stale saves; the list's views and filter
and its index reads; and hostile input (markup, control characters, huge text, 501 incidents)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from plan_helpers import sqlite_plans
from sqlalchemy import func, select

from itsm_tui.models import AuditEvent, KnownError, Link, Notification, Problem, Ticket, User
from itsm_tui.services import changes, problems, tickets
from itsm_tui.services.errors import ServiceError, StaleEdit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning


class Undo(Exception):
    """Raised inside a session to roll back a step that succeeded."""


class Desk:
    """The test's database, configuration and cast, with a clock that moves a minute at each step."""

    def __init__(self, db, config, staff) -> None:
        self.db, self.config, self.staff = db, config, staff
        self.minutes = 0
        self._original: str | None = None

    def tick(self) -> datetime:
        self.minutes += 1
        return T0 + timedelta(minutes=self.minutes)

    def do(self, login: str, step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One step in its own transaction, at the next minute; a record comes back as its reference."""
        kwargs.setdefault("now", self.tick())
        with self.db.session() as s:
            result = step(s, self.config, self.staff[login], *args, **kwargs)
            return getattr(result, "ref", result)

    @contextmanager
    def trying(self) -> Iterator[Callable[..., str | None]]:
        """``attempt(login, step, *args, **kwargs)``: the step's refusal (None: it was allowed), each step in
        a savepoint of one transaction, nothing of any of them kept."""
        self.original()  # made before the transaction starts (on SQLite it holds the write lock)
        try:
            with self.db.session() as s:

                def attempt(login: str, step: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
                    kwargs = self.inputs(step) | {"now": self.tick()} | kwargs
                    try:
                        with s.begin_nested():
                            step(s, self.config, self.staff[login], *args, **kwargs)
                            raise Undo
                    except Undo:
                        return None
                    except ServiceError as exc:
                        return str(exc)

                yield attempt
                raise Undo
        except Undo:
            pass

    def attempt(self, login: str, step: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
        with self.trying() as attempt:
            return attempt(login, step, *args, **kwargs)
        raise AssertionError("unreachable")

    def problem(self, login: str = "prm", **fields: Any) -> str:
        return self.do(login, problems.create_problem, **{"title": "Mail bounces", **fields})

    def ticket(self, login: str = "agent1", **fields: Any) -> str:
        fields = {"title": "Mail bounces", "requester": "Ann Example", **fields}
        return self.do(login, tickets.create_ticket, **fields)

    def read(self, read: Callable[[Any], Any]) -> Any:
        with self.db.read_session() as s:
            return read(s)

    def detail(self, ref: str, login: str = "prm") -> problems.ProblemDetail:
        with self.db.read_session() as s:
            return problems.detail(s, self.config, self.staff[login], ref, now=self.tick())

    def analysed(self, ref: str) -> None:
        self.do("prm", problems.update_problem, ref, ANALYSIS)

    def original(self) -> str:
        """The open problem a duplicate names (made once)."""
        if self._original is None:
            self._original = self.problem(title="The original")
        return self._original

    def inputs(self, step: Callable[..., Any]) -> dict[str, Any]:
        """What a step needs besides the problem."""
        if step is problems.close:
            return {"verification": "No bounce in two weeks"}
        if step is problems.cancel:
            return {"reason": "Not a problem after all"}
        if step is problems.mark_duplicate:
            return {"reason": "Same cause", "of": self.original()}
        if step is problems.reopen:
            return {"reason": "It bounced again"}
        return {}

    def problem_in(self, status: str, **fields: Any) -> str:
        """A problem of prm's, analysed and brought to ``status`` through the services."""
        ref = self.problem(**fields)
        self.analysed(ref)
        current = "new"
        for target in ROUTE[status]:
            current = self.move(ref, current, target)
        assert current == status
        return ref

    def move(self, ref: str, current: str, target: str, login: str = "prm") -> str:
        """The move from ``current`` to ``target`` by the step that makes it; the status after it."""
        step = problems.reopen if (current, target) == ("resolved", "investigating") else STEPS[target]
        kwargs = self.inputs(step) | {"now": self.tick()}
        with self.db.session() as s:
            step(s, self.config, self.staff[login], ref, **kwargs)
            return problems.get_problem(s, ref).status


ANALYSIS = {
    "root_cause": "The relay's certificate expired",
    "workaround": "Send through the backup relay",
    "permanent_fix": "Renew the certificate automatically",
}
# target -> the step that makes the move there (from resolved, investigating is a reopen)
STEPS: dict[str, Callable[..., Any]] = {
    "investigating": problems.start_investigation,
    "known_error": problems.publish_known_error,
    "fix_in_progress": problems.start_fix,
    "resolved": problems.resolve,
    "closed": problems.close,
    "cancelled": problems.cancel,
    "duplicate": problems.mark_duplicate,
}
# status -> the moves from new that bring a problem there
ROUTE = {
    "new": [],
    "investigating": ["investigating"],
    "known_error": ["investigating", "known_error"],
    "fix_in_progress": ["investigating", "known_error", "fix_in_progress"],
    "resolved": ["investigating", "known_error", "fix_in_progress", "resolved"],
    "closed": ["investigating", "known_error", "fix_in_progress", "resolved", "closed"],
    "cancelled": ["cancelled"],
    "duplicate": ["duplicate"],
}


@pytest.fixture
def desk(db, config, staff) -> Desk:
    return Desk(db, config, staff)


def status_of(desk: Desk, ref: str) -> str:
    return desk.read(lambda s: problems.get_problem(s, ref).status)


# --------------------------------------------------------------------------- the lifecycle

# Written out by hand: what the lifecycle allows (rules.TRANSITIONS must say the same).
ALLOWED = {
    "new": ("investigating", "known_error", "cancelled", "duplicate"),
    "investigating": ("known_error", "fix_in_progress", "cancelled", "duplicate"),
    "known_error": ("fix_in_progress", "cancelled", "duplicate"),
    "fix_in_progress": ("resolved", "cancelled"),
    "resolved": ("closed", "investigating"),
    "closed": (),
    "cancelled": (),
    "duplicate": (),
}
# Each allowed move made once, along these paths of one problem each (a problem's first move from new).
PATHS = [
    ["investigating", "known_error", "fix_in_progress", "resolved", "investigating", "fix_in_progress",
     "resolved", "closed"],
    ["known_error", "cancelled"],
    ["known_error", "duplicate"],
    ["cancelled"],
    ["duplicate"],
    ["investigating", "cancelled"],
    ["investigating", "duplicate"],
    ["known_error", "fix_in_progress", "cancelled"],
]  # fmt: skip


def test_every_move_of_the_lifecycle_is_made_and_every_other_refused_naming_those_there_are(desk):
    assert problems.TRANSITIONS == ALLOWED
    made: set[tuple[str, str]] = set()
    for path in PATHS:
        ref = desk.problem()
        desk.analysed(ref)
        current = "new"
        for target in path:
            assert desk.move(ref, current, target) == target, (current, target)
            made.add((current, target))
            current = target
    assert made == {(s, t) for s, targets in ALLOWED.items() for t in targets}

    # Every other (status, target) pair, asked of the step that makes that move; no step leads back to new.
    in_status = {status: desk.problem_in(status) for status in problems.STATUSES}
    known = {ref: desk.detail(ref).known_errors for ref in in_status.values()}
    with desk.trying() as attempt:
        for status, ref in in_status.items():
            for target in problems.STATUSES[1:]:
                if target in ALLOWED[status] or (status, target) == ("resolved", "investigating"):
                    continue  # allowed (from resolved, as a reopen)
                refusal = attempt("prm", STEPS[target], ref)
                if target == "known_error" and status in ("known_error", "fix_in_progress"):
                    # publishing there is no move (the status stays); a second known error is refused
                    assert refusal == f"{ref} has its known error {known[ref][0].ref} published already"
                    continue
                allowed = ", ".join(ALLOWED[status]) or "none (it is final)"
                assert refusal == (
                    f"{ref} cannot go from {status} to {target}; from {status} it may go to: {allowed}"
                ), (status, target)
        # a resolved problem is investigated again only as a reopen, with its reason
        resolved, new, closed = in_status["resolved"], in_status["new"], in_status["closed"]
        assert attempt("prm", problems.start_investigation, resolved) == (
            f"{resolved} is resolved: reopen it to investigate again"
        )
        assert attempt("prm", problems.reopen, resolved, reason=" ") == (
            "say why the problem is reopened (what the fix did not stop)"
        )
        # only a resolved problem is reopened; a new one is investigated
        assert attempt("prm", problems.reopen, new) == f"{new} is new: start the investigation"
        assert attempt("prm", problems.reopen, closed) == (
            f"{closed} cannot go from closed to investigating; from closed it may go to: none (it is final)"
        )
    # nothing of the refused steps was kept
    statuses = desk.read(lambda s: dict(s.execute(select(Problem.ref, Problem.status)).tuples().all()))
    assert {statuses[ref] for ref in in_status.values()} == set(in_status) and len(
        set(in_status.values())
    ) == 8
    assert [statuses[ref] for ref in in_status.values()] == list(in_status)


# --------------------------------------------------------------------------- who may do what

WORKERS = {"edit", "analyse", "investigate", "publish", "start_fix", "link_change", "link_incident"}
LINKERS = {"link_incident"}
# Written out by hand from the roles: problem managers everything; L2/L3 the analysis and the fix; whoever
# may link a ticket links incidents; analysts, CAB members and admins read.
MAY = {
    "prm": set(problems.ACTIONS),
    "net1": WORKERS,
    "app1": WORKERS,
    "eng1": WORKERS,
    "agent1": LINKERS,
    "agent2": LINKERS,
    "lead": LINKERS,
    "chm": LINKERS,
    "analyst1": set(),
    "cab1": set(),
    "admin1": set(),
}


def _change(desk: Desk) -> str:
    return desk.do(
        "chm",
        changes.create_change,
        change_type="normal",
        title="Renew the relay certificate",
        targets=["email"],
        start=T0 + timedelta(days=7),
        end=T0 + timedelta(days=7, hours=2),
        implementation_plan="Renew it.",
        backout_plan="Put the old one back.",
    )


def offers(desk: Desk, login: str, refs: set[str]) -> dict[str, dict[str, str | None]]:
    """problem -> action -> why it is not offered to ``login`` (None: it is)."""
    with desk.db.read_session() as s:
        actor, now = desk.staff[login], desk.tick()
        return {
            ref: {
                o.action: o.refusal
                for o in problems.available_actions(s, desk.config, actor, problems.get_problem(s, ref), now)
            }
            for ref in refs
        }


def test_each_role_is_offered_exactly_what_each_step_then_allows_in_the_same_words(desk):
    assert set(MAY) == set(desk.staff)
    fresh, ready, known = desk.problem(), desk.problem_in("investigating"), desk.problem_in("known_error")
    fixing, resolved = desk.problem_in("fix_in_progress"), desk.problem_in("resolved")
    ke = desk.detail(known).known_errors[0].ref
    incident, change = desk.ticket(), _change(desk)
    # action -> (the problem, in a status that fits the action; the step and its arguments)
    cases: dict[str, tuple[str, Callable[..., Any], tuple]] = {
        "edit": (fresh, problems.update_problem, (fresh, {"title": "Mail bounces at night"})),
        "analyse": (fresh, problems.update_problem, (fresh, {"root_cause": "The certificate"})),
        "assign": (fresh, problems.update_problem, (fresh, {"owner": "eng1"})),
        "investigate": (fresh, problems.start_investigation, (fresh,)),
        "publish": (ready, problems.publish_known_error, (ready,)),
        "start_fix": (known, problems.start_fix, (known,)),
        "resolve": (fixing, problems.resolve, (fixing,)),
        "close": (resolved, problems.close, (resolved,)),
        "reopen": (resolved, problems.reopen, (resolved,)),
        "cancel": (fresh, problems.cancel, (fresh,)),
        "duplicate": (fresh, problems.mark_duplicate, (fresh,)),
        "link_incident": (fresh, problems.link_incidents, (fresh, [incident])),
        "link_change": (fresh, problems.link_change, (fresh, change)),
        "retire_known_error": (known, problems.retire_known_error, (ke,)),
    }
    assert set(cases) == set(problems.ACTIONS)
    with desk.trying() as attempt:
        for login, may in MAY.items():
            offered = offers(desk, login, {fresh, ready, known, fixing, resolved})
            assert {action for action, (ref, *_) in cases.items() if offered[ref][action] is None} == may, (
                login
            )
            for action, (ref, step, args) in cases.items():
                assert attempt(login, step, *args) == offered[ref][action], (login, action)
        # A refusal for want of a role names the roles that have it.
        assert attempt("net1", problems.resolve, fixing) == (
            "You may not own, resolve and close problems: it needs the role problem_manager "
            "(you have support_l2)."
        )
        assert attempt("agent1", problems.start_investigation, fresh) == (
            "You may not record a problem's analysis and publish its known error: it needs the role "
            "problem_manager or support_l2 or support_l3 (you have agent)."
        )
        # Raising one: problem managers, L2/L3 and shift leads; what the list offers says the same.
        for login in MAY:
            refusal = problems.create_refusal(desk.staff[login])
            assert (refusal is None) == (login in {"prm", "net1", "app1", "eng1", "lead"}), login
            assert attempt(login, problems.create_problem, title="Printer jams") == refusal


# --------------------------------------------------------------------------- known errors


def told(desk: Desk, ref: str) -> list[tuple[str, str]]:
    """(recipient, message) of every notification about the problem, by recipient and message."""
    return desk.read(
        lambda s: sorted(
            s.execute(
                select(User.login, Notification.message)
                .join(User, User.id == Notification.user_id)
                .join(Problem, Problem.id == Notification.entity_id)
                .where(Notification.entity_type == "problem", Problem.ref == ref)
            ).tuples()
        )
    )


def known_error(desk: Desk, ref: str) -> tuple:
    """status, symptom, cause, workaround, permanent fix, published and retired instants (UTC)."""
    columns = (KnownError.status, KnownError.symptom, KnownError.cause, KnownError.workaround,
               KnownError.permanent_fix, KnownError.published_at, KnownError.retired_at)  # fmt: skip
    row = desk.read(lambda s: s.execute(select(*columns).where(KnownError.ref == ref)).one())
    return tuple(v.replace(tzinfo=UTC) if isinstance(v, datetime) else v for v in row)


def assigned(desk: Desk, assignee: str, group: str = "SD-L1", **fields: Any) -> str:
    ref = desk.ticket(**fields)
    desk.do("lead", tickets.assign, ref, assignee=assignee, group=group)
    return ref


def test_a_known_error_needs_cause_and_workaround_tells_the_incidents_and_is_retired_with_the_fix(desk):
    ref = desk.problem(owner="eng1", description="Mail to partners bounces with 5.7.1")
    t1, t2 = assigned(desk, "agent1"), assigned(desk, "agent2")
    t3, t4 = assigned(desk, "net1", "NET-L2"), desk.ticket()
    t5 = assigned(desk, "app1", "APP-L2")
    desk.do("app1", tickets.transition, t5, "in_progress")
    desk.do("app1", tickets.resolve, t5, code="fixed", note="Resent by hand")
    assert desk.do("agent1", problems.link_incidents, ref, [t1, t2, t3, t4, t5.lower()]) == [
        t1,
        t2,
        t3,
        t4,
        t5,
    ]
    assert desk.do("eng1", problems.link_incidents, ref, [t1, f" {t2} "]) == []  # linked already
    t6 = desk.ticket()
    assert desk.do("eng1", problems.link_incidents, ref, [t6]) == [t6]  # by the owner: nobody to tell
    # unlinked and linked again: the owner is told again
    t7 = desk.ticket()
    assert desk.do("agent1", problems.link_incidents, ref, [t7]) == [t7]
    desk.do("agent1", problems.unlink_incident, ref, t7)
    assert desk.do("agent2", problems.link_incidents, ref, [t7]) == [t7]
    assert [(who, message) for who, message in told(desk, ref) if who == "eng1"] == [
        ("eng1", f"1 incident(s) linked to {ref}: {t7}"),
        ("eng1", f"1 incident(s) linked to {ref}: {t7}"),
        ("eng1", f"5 incident(s) linked to {ref}: {t1}, {t2}, {t3}, {t4}, {t5}"),
        ("eng1", f"{ref} is yours to own: Mail bounces"),
    ]
    assert desk.attempt("agent1", problems.unlink_incident, ref, t5.lower()) is None
    assert desk.attempt("agent1", problems.unlink_incident, ref, "INC0099999") == (
        f"INC0099999 is not linked to {ref}"
    )

    assert desk.attempt("net1", problems.publish_known_error, ref) == (
        f"{ref} has no root cause yet: record it in the analysis first"
    )
    desk.do("net1", problems.update_problem, ref, {"root_cause": "The relay's certificate expired"})
    assert desk.attempt("net1", problems.publish_known_error, ref) == (
        f"{ref} has no workaround yet: record it in the analysis first"
    )
    desk.do("net1", problems.start_investigation, ref)
    desk.do("net1", problems.update_problem, ref, {"workaround": "Send through the backup relay"})
    published_at = T0 + timedelta(minutes=desk.minutes + 1)
    ke = desk.do("net1", problems.publish_known_error, ref)
    assert status_of(desk, ref) == "known_error"
    assert desk.attempt("prm", problems.publish_known_error, ref) == (
        f"{ref} has its known error {ke} published already"
    )
    assert known_error(desk, ke) == (
        "published", "Mail to partners bounces with 5.7.1", "The relay's certificate expired",
        "Send through the backup relay", None, published_at, None,
    )  # fmt: skip
    # the assignees of the open incidents, not the one who published (net1), nor a resolved one's (app1)
    workaround = f"Known error {ke} published for {ref}: its workaround is ready (k on a ticket)"
    assert [who for who, message in told(desk, ref) if message == workaround] == ["agent1", "agent2"]

    desk.do("eng1", problems.update_problem, ref, {"permanent_fix": "Renew the certificate automatically"})
    desk.do("eng1", problems.start_fix, ref)
    resolved_at = T0 + timedelta(minutes=desk.minutes + 1)
    desk.do("prm", problems.resolve, ref)
    status, *_, permanent_fix, _, retired_at = known_error(desk, ke)
    assert (status, permanent_fix, retired_at) == (
        "retired",
        "Renew the certificate automatically",
        resolved_at,
    )
    fixed = f"{ref} is resolved, the permanent fix is in: Renew the certificate automatically"
    assert [who for who, message in told(desk, ref) if message == fixed] == ["agent1", "agent2", "net1"]
    shown = desk.detail(ref)
    assert [(k.ref, k.status) for k in shown.known_errors] == [(ke, "retired")]
    assert shown.resolved_at.replace(tzinfo=UTC) == resolved_at and shown.owner == "eng1"
    assert desk.attempt("prm", problems.retire_known_error, ke) == f"{ke} is retired already"

    # Published while the fix is worked (none was in force): the status stays.
    other = desk.problem_in("investigating")
    desk.do("prm", problems.start_fix, other)
    desk.do("prm", problems.publish_known_error, other, symptom="Bounces", title="Bounces at night")
    assert status_of(desk, other) == "fix_in_progress"
    assert [(k.title, k.status) for k in desk.detail(other).known_errors] == [
        ("Bounces at night", "published")
    ]


# --------------------------------------------------------------------------- the linked incidents


def status_history(desk: Desk, ref: str) -> list[tuple[str | None, str | None, str]]:
    """A ticket's status changes in its audit trail: (old, new, by whom), in order."""
    return desk.read(
        lambda s: list(
            s.execute(
                select(AuditEvent.old_value, AuditEvent.new_value, User.login)
                .join(Ticket, Ticket.id == AuditEvent.entity_id)
                .join(User, User.id == AuditEvent.actor_id)
                .where(AuditEvent.entity_type == "ticket", Ticket.ref == ref, AuditEvent.field == "status")
                .order_by(AuditEvent.id)
            ).tuples()
        )
    )


def test_resolving_the_linked_incidents_each_in_its_own_transaction_refuses_one_changed_since(desk):
    ref = desk.problem_in("fix_in_progress")
    fix = "Renew the certificate automatically"
    fresh = desk.ticket()  # new, nobody's
    changed = assigned(desk, "agent1")
    desk.do("agent1", tickets.transition, changed, "in_progress")
    working = assigned(desk, "agent1")
    desk.do("agent1", tickets.transition, working, "in_progress")
    waiting = assigned(desk, "agent2")
    desk.do("agent2", tickets.transition, waiting, "in_progress")
    desk.do("agent2", tickets.transition, waiting, "pending", reason="vendor")
    done = assigned(desk, "agent2")
    desk.do("agent2", tickets.transition, done, "in_progress")
    desk.do("agent2", tickets.resolve, done, code="workaround", note="Resent by hand")
    desk.do("agent1", problems.link_incidents, ref, [fresh, changed, working, waiting, done])
    with pytest.raises(ServiceError, match="fix in progress: resolve it before its incidents"):
        problems.resolve_linked_incidents(desk.db.session, desk.config, desk.staff["prm"], ref)
    desk.do("prm", problems.resolve, ref)

    # The offer: the open ones, at the versions shown; one of them is changed after it was shown.
    offered = desk.read(lambda s: problems.open_linked_incidents(s, ref))
    assert offered == [fresh, changed, working, waiting]
    seen = desk.read(
        lambda s: dict(
            s.execute(select(Ticket.ref, Ticket.version).where(Ticket.ref.in_(offered))).tuples().all()
        )
    )
    changed_at = T0 + timedelta(minutes=desk.minutes + 1)
    desk.do("agent2", tickets.update_fields, changed, title="Mail bounces for sales")
    result = problems.resolve_linked_incidents(
        desk.db.session, desk.config, desk.staff["prm"], ref, versions_seen=seen, now=desk.tick()
    )
    assert result.done == (fresh, working, waiting)  # the refusal in between rolled none of them back
    assert [(r.ref, r.reason) for r in result.refused] == [
        (
            changed,
            f"{changed} was changed by Agent2 (agent2) at {changed_at:%Y-%m-%d %H:%M:%S} UTC after you "
            f"opened it (version {seen[changed]}, now {seen[changed] + 1}); reload it and apply your change "
            "again",
        )
    ]
    rows = desk.read(
        lambda s: {
            r: (st, code, note)
            for r, st, code, note in s.execute(
                select(Ticket.ref, Ticket.status, Ticket.resolution_code, Ticket.resolution_note)
            )
        }
    )
    note = f"Resolved by the permanent fix of {ref}: {fix}"
    for resolved in (fresh, working, waiting):
        assert rows[resolved] == ("resolved", "fixed", note)
        assert fix in rows[resolved][2]
    assert rows[done] == ("resolved", "workaround", "Resent by hand")  # left as it was
    assert rows[changed][0] == "in_progress"
    # the new one was walked through in progress (taken by the problem manager), then resolved
    assert status_history(desk, fresh) == [(None, "new", "agent1"), ("new", "in_progress", "prm"),
                                           ("in_progress", "resolved", "prm")]  # fmt: skip
    assert status_history(desk, waiting)[-1] == ("pending", "resolved", "prm")
    # asked again, only the one refused is left to do
    assert desk.read(lambda s: problems.open_linked_incidents(s, ref)) == [changed]
    again = problems.resolve_linked_incidents(desk.db.session, desk.config, desk.staff["prm"], ref)
    assert again.done == (changed,) and again.refused == ()


# --------------------------------------------------------------------- closing, stale saves, text as given


def test_closing_needs_the_verification_and_the_detail_counts_the_incidents_since_the_fix(desk):
    ref = desk.problem_in("fix_in_progress")
    assert desk.detail(ref).incidents_since_fix is None  # no fix in yet
    before = [desk.ticket(), desk.ticket()]
    desk.do("agent1", problems.link_incidents, ref, before)
    resolved_at = T0 + timedelta(minutes=desk.minutes + 1)
    desk.do("prm", problems.resolve, ref)
    at_the_fix = desk.ticket(opened_at=resolved_at)  # opened the very instant the fix went in: before it
    after = [desk.ticket(), desk.ticket(login="agent2")]
    desk.do("agent2", problems.link_incidents, ref, [at_the_fix, *after])
    shown = desk.detail(ref)
    assert (shown.incidents_total, shown.incidents_open, shown.incidents_since_fix) == (5, 5, 2)
    assert [i.ref for i in shown.incidents] == [
        *reversed(after),
        at_the_fix,
        *reversed(before),
    ]  # newest first

    assert desk.attempt("prm", problems.close, ref, verification=" \n ") == (
        "say how the fix was verified: did it stop the incidents? (see the incidents since the fix)"
    )
    closed_at = T0 + timedelta(minutes=desk.minutes + 1)
    desk.do("prm", problems.close, ref, verification="Two more bounces, both from the old relay; none since")
    shown = desk.detail(ref)
    assert (shown.status, shown.status_label, shown.verification) == (
        "closed",
        "closed",
        "Two more bounces, both from the old relay; none since",
    )
    assert shown.closed_at.replace(tzinfo=UTC) == closed_at
    assert [o.action for o in shown.actions if o.refusal is None] == []  # a closed problem is only read
    assert shown.history[0].action == "status" and shown.history_warning is None


def test_a_stale_save_is_refused_keeping_nothing_and_text_is_stored_as_given(desk):
    hostile = "[bold]x[/] \x1b[31mred\x1b[0m [link=https://evil.example]y[/link] Ünïcødé 問題"
    ref = desk.problem(title=hostile, description="line one\n[red]two[/red]\x07")
    shown = desk.detail(ref)
    assert (shown.title, shown.description) == (hostile, "line one\n[red]two[/red]\x07")
    assert (
        desk.read(lambda s: problems.list_problems(s, desk.staff["prm"], view="all").rows[0].title) == hostile
    )

    seen = shown.version
    changed_at = T0 + timedelta(minutes=desk.minutes + 1)
    desk.do("eng1", problems.update_problem, ref, {"title": "Mail bounces"}, expected_version=seen)
    kept = desk.detail(ref)
    audit_rows = desk.read(lambda s: s.scalar(select(func.count(AuditEvent.id))))
    for login, step, args in (
        ("net1", problems.update_problem, (ref, {"title": "Mine", "root_cause": "Mine"})),
        ("net1", problems.start_investigation, (ref,)),
        ("prm", problems.cancel, (ref,)),
    ):
        with pytest.raises(StaleEdit) as refused:
            desk.do(login, step, *args, **desk.inputs(step), expected_version=seen)
        assert str(refused.value) == (
            f"{ref} was changed by Eng1 (eng1) at {changed_at:%Y-%m-%d %H:%M:%S} UTC after you opened it "
            f"(version {seen}, now {seen + 1}); reload it and apply your change again"
        )
    after = desk.detail(ref)
    assert (after.version, after.title, after.root_cause, after.status) == (
        seen + 1,
        "Mail bounces",
        None,
        "new",
    )
    assert after.history == kept.history
    assert desk.read(lambda s: s.scalar(select(func.count(AuditEvent.id)))) == audit_rows


# --------------------------------------------------------------------------- the list


def test_the_list_views_and_filter_tokens_and_the_indexes_they_read(desk):
    mail = desk.problem(title="Mail bounces", service="email", ci="mx-01", category="software",
                        impact="high", urgency="high", owner="eng1")  # fmt: skip
    vpn = desk.problem(
        "net1", title="VPN drops", service="vpn", ci="vpn-gw-01", category="network", owner="net1"
    )
    printer = desk.problem(title="Printer queue stalls", service="workplace", impact="low", urgency="low")
    erp = desk.problem(title="ERP slow", service="erp", impact="high", urgency="medium", owner="prm")
    night = desk.problem(title="Mail is slow at night", description="Only after 22:00", service="email")
    desk.do("prm", problems.start_investigation, mail)
    desk.do("prm", problems.cancel, printer, reason="A duplicate ticket, not a problem")
    desk.analysed(erp)
    ke = desk.do("prm", problems.publish_known_error, erp)
    desk.do("prm", problems.update_problem, night, {"root_cause": "The nightly backup saturates the relay"})
    desk.do("prm", problems.mark_duplicate, night, of=mail, reason="Same relay")
    incidents = [desk.ticket(), desk.ticket()]
    desk.do("agent1", problems.link_incidents, mail, incidents)

    def listed(view: str, text: str = "", login: str = "prm") -> list[str] | str:
        found = desk.read(lambda s: problems.list_problems(s, desk.staff[login], view=view, text=text))
        return found.error if found.error else [row.ref for row in found.rows]

    assert listed("open") == [mail, erp, vpn]  # by priority: P1, P2, P3; the ended ones left out
    assert listed("mine", login="net1") == [vpn] and listed("mine", login="eng1") == [mail]
    assert listed("mine") == [erp] and listed("mine", login="analyst1") == []
    assert listed("known_errors") == [erp]
    assert listed("all") == [night, erp, printer, vpn, mail]  # newest first
    rows = desk.read(
        lambda s: {r.ref: r for r in problems.list_problems(s, desk.staff["prm"], view="all").rows}
    )
    assert (rows[mail].priority, rows[mail].owner, rows[mail].incidents, rows[mail].status_label) == (
        1,
        "eng1",
        2,
        "investigating",
    )
    assert (rows[erp].known_error, rows[erp].status, rows[vpn].owner, rows[vpn].known_error) == (
        ke,
        "known_error",
        "net1",
        None,
    )
    assert rows[printer].as_json()["status"] == "cancelled"
    for text, found in {
        "p:1": [mail],
        "P:3": [night, vpn],
        "svc:email": [night, mail],
        "svc:EMAIL slow": [night],
        "status:investigating": [mail],
        "status:known_error": [erp],
        "owner:net1": [vpn],
        "owner:eng1": [mail],
        "owner:nobody": [],
        "ci:MX-01": [mail],
        "cat:network": [vpn],
        "cat:software": [mail],
        "mail": [night, mail],
        "MAIL night": [night],
        "22:00": [night],  # in the description (not a token: 22 is no key)
        "saturates": [night],  # in the root cause
        vpn.lower(): [vpn],
        "100%": [],
        "mail_": [],
    }.items():
        assert listed("all", text) == found, text
    assert listed("open", "mail") == [mail] and listed("known_errors", "svc:vpn") == []
    for text, error in {
        "p:9": "p: takes a priority 1 to 5, not '9'",
        "p:x": "p: takes a priority 1 to 5, not 'x'",
        "status:bogus": "status: is one of new, investigating, known_error, fix_in_progress, resolved, "
        "closed, cancelled, duplicate, not 'bogus'",
        "mail svc:": "svc: needs a value, e.g. svc:email",
        "owner:": "owner: needs a value, e.g. owner:xproblem",
    }.items():
        assert listed("all", text) == error, text
        assert "\n" not in error
    assert listed("urgent") == "no view 'urgent'; the views are: mine, open, known_errors, all"

    if desk.db.engine.dialect.name == "sqlite":  # the list reads problems, links and known errors by index
        for view, index in (("open", "ix_problems_status"), ("mine", "ix_problems_owner")):

            def read(s: Any, view: str = view) -> object:
                return problems.list_problems(s, desk.staff["prm"], view=view)

            (plan,) = sqlite_plans(desk.db, read, "FROM problems")
            assert f"SEARCH problems USING INDEX {index}" in plan, plan
            assert "SEARCH links USING INDEX ix_links_target (target_type=? AND target_id=?)" in plan, plan
            assert "SEARCH known_errors USING INDEX ix_known_errors_problem_id (problem_id=?)" in plan, plan
            assert "SCAN" not in plan, plan
        plans = sqlite_plans(
            desk.db, lambda s: problems.detail(s, desk.config, desk.staff["prm"], mail, now=T0), "FROM links"
        )
        assert plans and all("SCAN" not in plan for plan in plans), plans
        incidents_read = [plan for plan in plans if "SEARCH tickets" in plan]
        assert incidents_read and all("SEARCH links USING INDEX ix_links_target" in p for p in incidents_read)


# --------------------------------------------------------------------------- hostile input


OWNERS = "it needs the role problem_manager, support_l2 or support_l3"


def test_hostile_input_is_refused_in_one_line_and_nothing_is_kept(desk):
    from itsm_tui.services import knowledge

    huge = "x" * 10_000_000
    ref = desk.problem(title="Ünïcødé 問題 on the relay", service="email", ci="mx-01")
    shown = desk.detail(ref)
    refusals = {
        "description": desk.attempt("prm", problems.create_problem, title="Big", description=huge),
        "title": desk.attempt("prm", problems.create_problem, title=huge),
        "root cause": desk.attempt("prm", problems.update_problem, ref, {"root_cause": huge}),
        "edit": desk.attempt("prm", problems.update_problem, ref, {"description": huge}),
        "why": desk.attempt("prm", problems.update_problem, ref, {"five_whys": ["Why?", "y" * 501]}),
        "whys": desk.attempt("prm", problems.update_problem, ref, {"five_whys": ["Why?"] * 11}),
        "category": desk.attempt(
            "prm", problems.update_problem, ref, {"cause_categories": ["people", "[b]x"]}
        ),
        "field": desk.attempt("prm", problems.update_problem, ref, {"version": 1}),
        "agent owner": desk.attempt("prm", problems.create_problem, title="Mine", owner="agent1"),
        "lead owner": desk.attempt("prm", problems.update_problem, ref, {"owner": "lead"}),
        "other owner": desk.attempt("net1", problems.create_problem, title="Yours", owner="eng1"),
        "501": desk.attempt("agent1", problems.link_incidents, ref, [f"INC{n:07d}" for n in range(1, 502)]),
        "itself": desk.attempt("prm", problems.mark_duplicate, ref, of=ref.lower(), reason="Same"),
    }
    assert refusals == {
        "description": "description is 10000000 characters; at most 20000",
        "title": "the title is 10000000 characters; keep it within 200",
        "root cause": "root_cause is 10000000 characters; at most 20000",
        "edit": "description is 10000000 characters; at most 20000",
        "why": "a why is 501 characters; at most 500",
        "whys": "11 whys; at most 10",
        "category": "a cause category is one of people, process, technology, supplier, environment, "
        "not '[b]x'",
        "field": "no problem field 'version'; the fields are: title, description, service, ci, category, "
        "impact, urgency, owner, root_cause, five_whys, cause_categories, workaround, permanent_fix",
        "agent owner": f"agent1 cannot own a problem: {OWNERS}",
        "lead owner": f"lead cannot own a problem: {OWNERS}",
        "other owner": "only a problem_manager gives a problem to another owner",
        "501": "501 incidents are more than 500 at once",
        "itself": "a problem cannot be a duplicate of itself",
    }
    assert desk.detail(ref) == shown  # nothing of any of them kept
    titles = desk.read(lambda s: set(s.scalars(select(Problem.title))))
    assert titles == {"Ünïcødé 問題 on the relay", "The original"}  # the one a duplicate would name

    # Linking is all or none: one unknown reference links none of the others.
    incident = desk.ticket(service="email", ci="mx-01", title="Relay refuses mail")
    with pytest.raises(ServiceError, match="no ticket 'INC0099999' to link"):
        desk.do("agent1", problems.link_incidents, ref, [incident, "inc0099999"])
    assert desk.read(lambda s: s.scalar(select(func.count(Link.id)))) == 0
    # The whys are single lines, their control characters made visible; words in any script are found.
    desk.do("prm", problems.update_problem, ref, {"five_whys": ["Why \x1b[2J?", "", "Because\nof it"]})
    assert desk.detail(ref).whys == ("Why ^[[2J?", "Because of it")
    listed = desk.read(
        lambda s: problems.list_problems(s, desk.staff["prm"], view="all", text="問題 Ünïcødé RELAY")
    )
    assert [row.ref for row in listed.rows] == [ref]

    # The known error of a cancelled problem: retired with it, never published again, not matched.
    desk.analysed(ref)
    ke = desk.do("prm", problems.publish_known_error, ref)
    matches = desk.read(
        lambda s: knowledge.matching_known_errors(
            s, s.scalar(select(Ticket.id).where(Ticket.ref == incident))
        )
    )
    assert [m.ref for m in matches] == [ke]
    desk.do("prm", problems.cancel, ref, reason="The relay is being replaced anyway")
    assert known_error(desk, ke)[0] == "retired"
    assert desk.attempt("prm", problems.publish_known_error, ref) == (
        f"{ref} cannot go from cancelled to known_error; from cancelled it may go to: none (it is final)"
    )
    assert desk.attempt("prm", problems.retire_known_error, ke.lower()) == f"{ke} is retired already"
    assert desk.attempt("prm", problems.link_incidents, ref, [incident]) == (
        f"{ref} is cancelled: it is no longer worked"
    )
    assert (
        desk.read(
            lambda s: knowledge.matching_known_errors(
                s, s.scalar(select(Ticket.id).where(Ticket.ref == incident))
            )
        )
        == []
    )
    other = desk.problem()
    assert desk.attempt("prm", problems.mark_duplicate, other, of=ref, reason="Same") == (
        f"{ref} is cancelled: name the problem that goes on"
    )


def test_a_fix_cleared_after_it_was_started_is_not_resolved_nor_given_to_the_incidents(desk):
    ref = desk.problem_in("fix_in_progress")
    incident = desk.ticket()
    desk.do("agent1", problems.link_incidents, ref, [incident])
    desk.do("eng1", problems.update_problem, ref, {"permanent_fix": "  "})
    missing = f"{ref} has no permanent fix described: record it in the analysis first"
    assert desk.attempt("prm", problems.resolve, ref) == missing
    assert dict((o.action, o.refusal) for o in desk.detail(ref).actions)["resolve"] == missing
    desk.do("eng1", problems.update_problem, ref, {"permanent_fix": "Renew it"})
    desk.do("prm", problems.resolve, ref)
    desk.do("eng1", problems.update_problem, ref, {"permanent_fix": None})
    with pytest.raises(ServiceError) as refused:
        problems.resolve_linked_incidents(desk.db.session, desk.config, desk.staff["prm"], ref)
    assert str(refused.value) == missing
    assert desk.read(lambda s: tickets.get_ticket(s, incident).status) == "new"


def test_two_problems_are_never_made_duplicates_of_each_other_at_once(desk):
    """The second of two crossed marks waits for the first (SQLite: the write lock; PostgreSQL: the row lock
    the duplicate's reference to its original takes), then finds its original a duplicate already."""
    first, second = desk.problem(), desk.problem(title="Mail bounces too")
    outcome: dict[str, str] = {}

    def cross() -> None:
        try:
            desk.do("prm", problems.mark_duplicate, second, of=first, reason="Same cause")
            outcome["second"] = "saved"
        except ServiceError as exc:
            outcome["second"] = str(exc)

    with desk.db.session() as s:
        problems.mark_duplicate(
            s, desk.config, desk.staff["prm"], first, of=second, reason="Same cause", now=desk.tick()
        )
        thread = threading.Thread(target=cross)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive()  # waiting for this transaction
    thread.join(timeout=60)
    assert outcome == {"second": f"{first} is duplicate: name the problem that goes on"}
    assert (desk.detail(first).duplicate_of, desk.detail(second).status) == (second, "new")
