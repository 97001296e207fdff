"""Take next: one key (and ``itsm ticket take-next``) takes the most urgent unassigned ticket of one's groups.

The tickets are built by hand with known SLA clocks, so which one is taken next is worked out here from
the queue's SLA order (running clocks by the due instant of the nearer target, then the paused ones, the
id breaking ties). Real processes press take-next at the same moment on SQLite and PostgreSQL: each gets a
ticket of its own, never one twice. The candidate is read from a partial index, never by scanning the
table. Last, the console: the queue's ``N`` opens the ticket taken.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pilot_helpers import screen_text, wait_until
from sqlalchemy import event, select, update
from test_queue_service import _bulk_tickets
from test_take_race import Racers, audit_of

from itsm_tui.app import ItsmApp
from itsm_tui.models import Group, Ticket, User
from itsm_tui.screens.help import HelpScreen
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import queue, tickets
from itsm_tui.services import users as user_service
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.tickets.taking import next_candidate

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # a Wednesday morning


def minutes(n: int) -> datetime:
    return NOW + timedelta(minutes=n)


def set_clocks(
    db,
    ref: str,
    *,
    response_due: datetime,
    resolution_due: datetime,
    responded: datetime | None = None,
    paused: datetime | None = None,
    status: str | None = None,
    assignee: str | None = None,
) -> None:
    """Give a ticket the SLA clocks (and status, assignee) a test works its order out from; the database
    computes the queue's order columns from them."""
    values: dict = {
        "response_warn_at": response_due,
        "response_due_at": response_due,
        "resolution_warn_at": resolution_due,
        "resolution_due_at": resolution_due,
        "responded_at": responded,
        "paused_at": paused,
    }
    if status is not None:
        values |= {"status": status, "is_open": status in ("new", "assigned", "in_progress", "pending")}
    if assignee is not None:
        values["assignee_id"] = select(User.id).where(User.login == assignee).scalar_subquery()
    with db.session() as s:
        s.execute(
            update(Ticket)
            .where(Ticket.ref == ref)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def new_ticket(db, config, actor, title: str, group: str = "SD-L1") -> str:
    with db.session() as s:
        return tickets.create_ticket(s, config, actor, title=title, requester="Ann Example", group=group).ref


def take_next_as(db, config, actor) -> tuple[str, str, str, str | None]:
    """take_next in its own transaction: the title, status, assignee and group of the ticket taken."""
    with db.session() as s:
        ticket = tickets.take_next(s, config, actor, now=NOW)
        ref = ticket.ref
    with db.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        return ticket.title, ticket.status, ticket.assignee.login, ticket.group.code


@pytest.fixture
def duo(db, staff):
    """An agent in two groups, SD-L1 and NET-L2."""
    with db.session() as s:
        user_service.add_user(
            s, actor_login="admin1", login="duo", roles=["agent"], groups=["SD-L1", "NET-L2"], name="Duo"
        )
    with db.read_session() as s:
        return user_service.resolve_actor(s, "duo")


@pytest.fixture
def mix(db, config, staff, duo) -> dict[str, str]:
    """Tickets by title, with clocks chosen so that the order is plain (minutes from NOW):

    ============  ========  ==================================================  ====================
    title         group     clocks                                              for duo
    ============  ========  ==================================================  ====================
    Response 30   SD-L1     response due +30, resolution +240                   2nd (+30, lower id)
    Resolution    NET-L2    responded; resolution due +10                       1st (+10)
    Assigned      SD-L1     due -60, but agent1 has it                          skipped
    Other group   APP-L2    due -120                                            skipped
    Resolved      SD-L1     due -180, resolved                                  skipped
    Paused        SD-L1     pending since -300, response made, due -200 frozen  4th (clocks stopped)
    Twin 30       NET-L2    response due +30 (as Response 30), higher id        3rd
    ============  ========  ==================================================  ====================
    """
    lead = staff["lead"]
    refs = {
        "Response 30": new_ticket(db, config, lead, "Response 30"),
        "Resolution": new_ticket(db, config, lead, "Resolution", "NET-L2"),
        "Assigned": new_ticket(db, config, lead, "Assigned"),
        "Other group": new_ticket(db, config, lead, "Other group", "APP-L2"),
        "Resolved": new_ticket(db, config, lead, "Resolved"),
        "Paused": new_ticket(db, config, lead, "Paused"),
        "Twin 30": new_ticket(db, config, lead, "Twin 30", "NET-L2"),
    }
    set_clocks(db, refs["Response 30"], response_due=minutes(30), resolution_due=minutes(240))
    set_clocks(
        db, refs["Resolution"], response_due=minutes(-50), resolution_due=minutes(10), responded=minutes(-55)
    )
    set_clocks(db, refs["Assigned"], response_due=minutes(-60), resolution_due=minutes(60), assignee="agent1")
    set_clocks(db, refs["Other group"], response_due=minutes(-120), resolution_due=minutes(60))
    set_clocks(
        db,
        refs["Resolved"],
        response_due=minutes(-180),
        resolution_due=minutes(-170),
        responded=minutes(-190),
        status="resolved",
    )
    set_clocks(
        db,
        refs["Paused"],
        response_due=minutes(-400),
        resolution_due=minutes(-200),
        responded=minutes(-410),
        paused=minutes(-300),
        status="pending",
    )
    set_clocks(db, refs["Twin 30"], response_due=minutes(30), resolution_due=minutes(240))
    return refs


# --------------------------------------------------------------------------- which ticket

SKIPPED = ("Assigned", "Other group", "Resolved")


def test_take_next_takes_the_most_urgent_of_ones_groups_in_the_queue_order(db, config, duo, mix) -> None:
    assert take_next_as(db, config, duo) == ("Resolution", "assigned", "duo", "NET-L2")
    assert take_next_as(db, config, duo) == ("Response 30", "assigned", "duo", "SD-L1")
    assert take_next_as(db, config, duo) == ("Twin 30", "assigned", "duo", "NET-L2")
    assert take_next_as(db, config, duo) == ("Paused", "pending", "duo", "SD-L1")  # a take moves only new
    with pytest.raises(tickets.NothingToTake) as info, db.session() as s:
        tickets.take_next(s, config, duo, now=NOW)
    assert str(info.value) == "nothing unassigned in your groups (NET-L2, SD-L1)"
    with db.read_session() as s:  # the skipped ones are as they were
        left = {
            t.title: (t.status, t.assignee.login if t.assignee else None)
            for t in s.scalars(select(Ticket).where(Ticket.title.in_(SKIPPED)))
        }
    assert left == {
        "Assigned": ("new", "agent1"),
        "Other group": ("new", None),
        "Resolved": ("resolved", None),
    }


def test_what_take_next_takes_is_what_the_unassigned_view_shows_first(db, config, duo, mix) -> None:
    """The same order as the queue's "Unassigned in my groups" view under its SLA sort."""
    query = queue.query_for(duo, "unassigned", queue.Filter(), "sla", False, NOW)
    with db.read_session() as s:
        shown = [row.title for row in queue.fetch_page(s, query, limit=10)]
    assert shown == ["Resolution", "Response 30", "Twin 30", "Paused"]
    assert take_next_as(db, config, duo)[0] == shown[0]


def test_a_take_next_is_a_take_written_as_one(db, config, duo, mix) -> None:
    """The audit trail of a take: the assignment, the status it brings and the first response."""
    before = audit_of(db, mix["Response 30"])
    set_clocks(db, mix["Resolution"], response_due=minutes(-50), resolution_due=minutes(10), assignee="net1")
    take_next_as(db, config, duo)
    taken = audit_of(db, mix["Response 30"])[len(before) :]
    assert sorted(row[:3] for row in taken) == [
        ("duo", "assign", "assignee"),
        ("duo", "sla", "responded_at"),
        ("duo", "transition", "status"),
    ]


def test_take_next_refuses_who_may_not_take_and_who_has_no_group(db, config, staff) -> None:
    new_ticket(db, config, staff["lead"], "Waiting")
    with pytest.raises(PermissionDenied) as info, db.session() as s:
        tickets.take_next(s, config, staff["analyst1"])
    assert str(info.value) == (
        "You may not take a ticket: it needs the role agent or support_l2 or support_l3 or shift_lead "
        "(you have analyst)."
    )
    with db.session() as s:
        user_service.add_user(s, actor_login="admin1", login="loner", roles=["agent"], groups=[])
    with db.read_session() as s:
        loner = user_service.resolve_actor(s, "loner")
    with pytest.raises(tickets.NothingToTake) as refused, db.session() as s:
        tickets.take_next(s, config, loner)
    assert str(refused.value) == (
        "you are in no group, so no ticket is queued for you; an admin adds you to one"
    )
    with db.read_session() as s:
        assert s.scalar(select(Ticket.assignee_id).where(Ticket.title == "Waiting")) is None


def test_take_next_moves_on_when_its_choice_is_taken_under_it(
    db, config, staff, duo, mix, monkeypatch
) -> None:
    """A rival's take landing between the choice and the claim (as the databases keep from happening) is
    no failure: the next ticket is taken. Should every ticket tried go that way, a plain refusal says so."""
    from itsm_tui.services.tickets import taking

    real_take = taking.take
    snatched: list[str] = []
    rivals = {"left": 1}

    def rival_first(session, config, actor, ref, *, now=None):
        if rivals["left"]:
            rivals["left"] -= 1
            snatched.append(session.scalar(select(Ticket.title).where(Ticket.ref == ref)))
            net1 = select(User.id).where(User.login == "net1").scalar_subquery()
            session.execute(
                update(Ticket)
                .where(Ticket.ref == ref)
                .values(assignee_id=net1)
                .execution_options(synchronize_session=False)
            )
        return real_take(session, config, actor, ref, now=now)

    monkeypatch.setattr(taking, "take", rival_first)
    assert take_next_as(db, config, duo) == ("Response 30", "assigned", "duo", "SD-L1")
    assert snatched == ["Resolution"]

    # Twin 30, Paused and three more: five candidates, each taken under it.
    for n in range(3):
        new_ticket(db, config, staff["lead"], f"More {n}")
    rivals["left"] = 5
    with pytest.raises(tickets.NothingToTake) as info, db.session() as s:
        tickets.take_next(s, config, duo, now=NOW)
    assert str(info.value) == "every ticket tried was taken by someone else at the same moment; try again"


# --------------------------------------------------------------------------- the candidate's read


def candidate_plan(db, group_ids) -> str:
    """The plan of the candidate query as take-next runs it (locking on PostgreSQL), one line."""
    captured: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "FROM tickets" in statement and not statement.startswith("EXPLAIN"):
            captured.append((statement, parameters))

    sqlite = db.backend == "sqlite"
    with db.session() as s:  # a write transaction: FOR UPDATE needs one
        event.listen(db.engine, "before_cursor_execute", grab)
        try:
            s.execute(next_candidate(group_ids, lock=not sqlite)).first()
        finally:
            event.remove(db.engine, "before_cursor_execute", grab)
        ((sql, params),) = captured
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        lines = [str(row[-1]).strip() for row in s.connection().exec_driver_sql(explain + sql, params)]
    return " / ".join(lines)


def test_the_candidate_is_read_from_an_open_ticket_index_in_order(db, config, staff) -> None:
    """Among a few thousand tickets (most closed, as in a desk's history) the candidate is the first row of
    a partial index on open tickets read in the SLA order: no scan of the table, nothing sorted, so it costs
    the same at a million tickets. On PostgreSQL the row is locked as it is read (FOR UPDATE SKIP LOCKED)."""
    _bulk_tickets(db)
    with db.read_session() as s:
        group_ids = set(s.scalars(select(Group.id).where(Group.code.in_(["SD-L1", "NET-L2"]))))
    plan = candidate_plan(db, group_ids)
    if db.backend == "sqlite":
        # The unassigned open tickets, in the order of the index itself: its first row in a group wins.
        assert plan == "SEARCH tickets USING INDEX ix_tickets_open_assignee (assignee_id=?)", plan
    else:
        # The planner may read them in the index's order or gather the few unassigned and sort those:
        # either way from a partial index on open tickets (the backlog), never a scan of the table.
        read = set(re.findall(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan) (?:using|on) (\w+)", plan))
        assert read and read <= {"ix_tickets_open_assignee", "ix_tickets_open_group"}, plan
        assert "Seq Scan" not in plan and "LockRows" in plan, plan


# --------------------------------------------------------------------------- consoles pressing at once

TAKERS = ("agent1", "agent2")  # both in SD-L1
RACE_ROUNDS = 4


@pytest.fixture
def takers(tmp_path):
    group = Racers(TAKERS, tmp_path)
    yield group
    group.close()


def test_take_next_pressed_at_once_gives_each_a_ticket_of_its_own(db, db_url, config, staff, takers) -> None:
    """Two consoles press take-next at the same moment, round after round, over three waiting tickets
    (due in 10, 20 and 30 minutes): each takes one of the two most urgent, never the same one, and no claim
    ever finds its ticket gone (PostgreSQL skips the row the other take holds; SQLite writers take turns).
    The third waits for the next round, where newer tickets are more urgent than it."""
    left: list[str] = []
    for n in range(RACE_ROUNDS):
        refs = [new_ticket(db, config, staff["lead"], f"Round {n} due {due}") for due in (10, 20, 30)]
        for ref, due in zip(refs, (10, 20, 30), strict=True):
            set_clocks(db, ref, response_due=minutes(due), resolution_due=minutes(240))
        left.append(refs[2])
        outcome = takers.race({login: ["ticket", "take-next", "--db", db_url] for login in TAKERS})
        assert all(result["code"] == 0 and result["err"] == "" for result in outcome.values()), outcome
        taken = {login: result["out"].split()[0] for login, result in outcome.items()}
        assert sorted(taken.values()) == refs[:2], outcome  # two different tickets, the two most urgent
        for login, ref in taken.items():
            assert outcome[login]["out"].startswith(f"{ref} P3 assigned v2: Round {n} due "), outcome[login]
            with db.read_session() as s:
                assert tickets.get_ticket(s, ref).assignee.login == login
        assert sum(result["claims_lost"] for result in outcome.values()) == 0
    with db.read_session() as s:
        waiting = select(Ticket.ref).where(Ticket.assignee_id.is_(None)).order_by(Ticket.id)
        assert list(s.scalars(waiting)) == left
    assert takers.close() == dict.fromkeys(TAKERS, "")


# --------------------------------------------------------------------------- the console


async def test_the_queues_take_next_key_opens_the_ticket_taken(staff_sqlite, config, monkeypatch) -> None:
    """``N`` in the queue (listed by the help) takes the most urgent waiting ticket of the user's groups,
    whatever row the cursor is on, and opens it; with nothing left it says so and stays."""
    db, staff = staff_sqlite
    monkeypatch.setattr("itsm_tui.screens.queue.REFRESH_SECONDS", 3600.0)
    later = new_ticket(db, config, staff["lead"], "Later")
    sooner = new_ticket(db, config, staff["lead"], "Sooner")
    elsewhere = new_ticket(db, config, staff["lead"], "Elsewhere", "NET-L2")
    set_clocks(db, later, response_due=minutes(60), resolution_due=minutes(240))
    set_clocks(db, sooner, response_due=minutes(20), resolution_due=minutes(240))
    set_clocks(db, elsewhere, response_due=minutes(-30), resolution_due=minutes(240))
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        queue_screen = app.screen
        assert isinstance(queue_screen, QueueScreen)

        def opened(ref: str) -> bool:
            screen = app.screen
            return (
                isinstance(screen, TicketScreen)
                and screen.detail is not None
                and screen.detail.view.ref == ref
            )

        await pilot.press("question_mark")  # the help lists the key
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        assert re.search(r"\bN\s+Take next\b", screen_text(app)), screen_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is queue_screen, "the queue")

        await pilot.press("N")
        await wait_until(pilot, lambda: opened(sooner), "the ticket taken, open")
        assert app.screen.detail.view.assignee == "agent1"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is queue_screen, "the queue again")
        await pilot.press("N")
        await wait_until(pilot, lambda: opened(later), "the next one, open")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is queue_screen, "the queue again")
        await pilot.press("N")
        line = "nothing unassigned in your groups (SD-L1)"
        await wait_until(
            pilot, lambda: any(line == str(n.message) for n in app._notifications), "the refusal"
        )
        assert app.screen is queue_screen
    with db.read_session() as s:
        owners = {
            t.title: t.assignee.login if t.assignee else None
            for t in s.scalars(select(Ticket).where(Ticket.ref.in_([later, sooner, elsewhere])))
        }
    assert owners == {"Sooner": "agent1", "Later": "agent1", "Elsewhere": None}
