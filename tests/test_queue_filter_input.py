"""Filter text the queue cannot apply, typed key by key in the console (Pilot, SQLite): the refusal shows
beside the filter, and the queue keeps showing what the last good filter showed, none of the refused text
applied (not its letters as free words either)."""

from __future__ import annotations

import pytest
from pilot_helpers import settle, shows, type_text
from sqlalchemy import update
from textual.widgets import Input

from itsm_tui.app import ItsmApp
from itsm_tui.models import User
from itsm_tui.screens.queue import QueueScreen, settled_filter_text
from itsm_tui.services import tickets
from itsm_tui.services.queue import Filter, FilterError, check_assignees, parse_filter

SIZE = (120, 30)


@pytest.fixture
def desk(staff_sqlite, config):
    """Four open tickets: refs by letter. A and C have a ``p`` in their titles; A and B are P1; B and C are
    agent2's, D nobody's."""
    db, staff = staff_sqlite
    made = {}
    for letter, title, level, assignee in [
        ("A", "Printer jammed", "high", "agent1"),
        ("B", "Mail down", "high", "agent2"),
        ("C", "Laptop slow", "medium", "agent2"),
        ("D", "Screen flickers", "medium", None),
    ]:
        with db.session() as s:
            ticket = tickets.create_ticket(
                s, config, staff["lead"], title=title, requester="Rita", impact=level, urgency=level
            )
            made[letter] = ticket.ref
        if assignee:
            with db.session() as s:
                tickets.assign(s, config, staff["lead"], made[letter], assignee=assignee)
    return db, staff, made


def shown(screen: QueueScreen) -> set[str]:
    table = screen.table
    return {table.window.row(i).ref for i in range(table.total)}


def refs(made: dict[str, str], letters: str) -> set[str]:
    return {made[letter] for letter in letters}


def error_line(screen: QueueScreen) -> str | None:
    line = screen.query_one("#queue-error")
    return str(line.render()) if line.has_class("shown") else None


async def start(pilot) -> QueueScreen:
    screen = pilot.app.screen
    assert isinstance(screen, QueueScreen)
    await settle(pilot)
    await pilot.press("4")  # all open
    await settle(pilot)
    await pilot.press("slash")
    return screen


async def typed(pilot, text: str) -> None:
    await type_text(pilot, text)
    await settle(pilot)


async def test_an_unknown_assignee_is_refused_beside_the_filter_and_the_rows_stay(desk, config):
    db, staff, made = desk
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        assert shown(screen) == refs(made, "ABCD")
        await typed(pilot, "assignee:agent2")
        assert shown(screen) == refs(made, "BC") and error_line(screen) is None

        # Edited into a login nobody has: the refusal says what was typed and what works; agent2's rows stay.
        await pilot.press(*["backspace"] * 6)
        await typed(pilot, "nobody")
        assert error_line(screen) == (
            "assignee: no desk user 'nobody'; use assignee:me, assignee:none (unassigned) or a login"
        )
        assert shows(app, "assignee: no desk user 'nobody'")
        assert shown(screen) == refs(made, "BC")
        assert screen.query_state.filter == Filter(assignees=("agent2",)) and screen.up_to_date
        assert "All open (2)" in str(screen.query_one("#queue-bar").render())

        # Typed afresh: the whole queue, as before the filter was typed; never an empty queue.
        await pilot.press("ctrl+u")
        await typed(pilot, "assignee:nobody")
        assert error_line(screen) is not None and "'nobody'" in error_line(screen)
        assert shown(screen) == refs(made, "ABCD") and screen.query_state.filter == Filter()
        assert "All open (4)" in str(screen.query_one("#queue-bar").render())

        await pilot.press("ctrl+u")
        await typed(pilot, "assignee:none")
        assert shown(screen) == refs(made, "D") and error_line(screen) is None

        await pilot.press("ctrl+u")
        await typed(pilot, "assignee:me")  # the shift lead has no ticket: an empty queue, rightly
        assert screen.table.total == 0 and error_line(screen) is None


async def test_a_user_no_longer_active_still_filters(desk, config):
    """Their tickets are still assigned to them, and a lead looks for exactly those to hand them on."""
    db, staff, made = desk
    with db.session() as s:
        s.execute(update(User).where(User.login == "agent2").values(active=False))
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        await typed(pilot, "assignee:agent2")
        assert shown(screen) == refs(made, "BC") and error_line(screen) is None


BAD_TOKENS = [
    ("p:0", "p: takes priorities 1 to 5, not '0'"),
    ("p:x", "p: takes priorities 1 to 5, e.g. p:1 or p:1,2 (not 'x')"),
    ("status:open", "status: 'open' is not a status; use new, assigned, in_progress, pending, resolved,"),
    ("group:", "group: needs a value, e.g. group:network"),
    ("svc:", "svc: needs a value, e.g. svc:email"),
    ("sla:late", "sla: takes breached, 1h, warning, not 'late'"),
    ("svc:emial", "svc: 'emial' is no service; use "),
    ("group:zz", "group: 'zz' matches no group; use part of a code or name: "),
    ("assignee:nobody", "assignee: no desk user 'nobody'"),
    ("assignee:", "assignee: needs a value, e.g. assignee:me"),
    ("due:today", "unknown filter 'due:'; use p:, status:, group:, assignee:, svc:, sla: or plain words"),
]


async def test_a_bad_token_after_a_good_filter_leaves_the_good_one_applied(desk, config):
    """Each bad token in turn, typed after a good filter in one console (the filter cleared between)."""
    db, staff, made = desk
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        field = screen.query_one("#queue-filter", Input)
        for bad, message in BAD_TOKENS:
            field.value = ""
            await settle(pilot)
            await typed(pilot, "p:1")
            assert shown(screen) == refs(made, "AB"), bad
            await typed(pilot, " " + bad)
            assert field.value == "p:1 " + bad
            assert error_line(screen) is not None and message in error_line(screen), bad
            assert screen.query_state.filter == Filter(priorities=(1,)) and screen.up_to_date, bad
            assert shown(screen) == refs(made, "AB"), bad


@pytest.mark.parametrize("bad", ["p:0", "status:open", "assignee:nobody"])
async def test_a_bad_token_typed_alone_applies_none_of_its_letters(desk, config, bad):
    """On the way to ``p:0`` the filter was ``p``, a free word (A and C have one): not what stays shown."""
    db, staff, made = desk
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        await typed(pilot, bad)
        assert error_line(screen) is not None
        assert screen.query_state.filter == Filter() and screen.up_to_date
        assert shown(screen) == refs(made, "ABCD")


async def test_a_good_token_edited_into_a_bad_one_keeps_what_it_showed(desk, config):
    db, staff, made = desk
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await start(pilot)
        await typed(pilot, "p:1")
        await pilot.press("backspace")
        await settle(pilot)
        assert error_line(screen) == "p: needs a value, e.g. p:1"
        assert shown(screen) == refs(made, "AB")
        await typed(pilot, "3")  # mended: applied, and the error goes
        assert shown(screen) == refs(made, "CD") and error_line(screen) is None


@pytest.mark.parametrize(
    ("good", "typed_now", "settled"),
    [
        ("p", "p:", ""),  # the free word became the refused token
        ("net p", "net p:0", "net "),
        ("net", "net p:0", "net"),  # a new word after it: the free word stands
        ("assignee:agent1", "assignee:agent1,x", "assignee:agent1"),  # a token extended: it stands
        ("p:1 net", "p: net", "p:1 net"),  # an edit elsewhere
        ("status:new", "p:0", "status:new"),  # replaced at once
        ("", "p:0", ""),
    ],
)
def test_what_of_the_last_good_filter_stands(good, typed_now, settled):
    assert settled_filter_text(good, typed_now) == settled


def test_logins_are_looked_up_in_the_users_table(db, staff):
    """On both databases: a desk user (active or not) and ``none`` pass; the first unknown login is named."""
    with db.session() as s:
        s.execute(update(User).where(User.login == "net1").values(active=False))
    with db.read_session() as s:
        check_assignees(s, parse_filter("assignee:agent1,net1,none p:2"))
        check_assignees(s, parse_filter("assignee:me", staff["lead"]))
        check_assignees(s, parse_filter("printer p:1"))  # no login: nothing to look up
        with pytest.raises(FilterError) as refused:
            check_assignees(s, parse_filter("assignee:agent1,Agent2,ghost"))
    assert str(refused.value) == (
        "assignee: no desk user 'Agent2'; use assignee:me, assignee:none (unassigned) or a login"
    )


def test_services_and_groups_are_checked_against_the_catalog(config):
    """With the desk's configuration, a ``svc:`` is one of its service codes (any case) and a ``group:``
    part of some group's code or name, as the queue matches them; without it nothing is checked."""
    assert parse_filter("svc:EMAIL group:net", None, config) == Filter(services=("email",), groups=("net",))
    assert parse_filter("group:infra", None, config).groups == ("infra",)  # part of NET-L2's name
    with pytest.raises(FilterError, match="'mail' is no service"):
        parse_filter("svc:mail", None, config)  # a service code is matched whole
    with pytest.raises(FilterError, match="'zz' matches no group"):
        parse_filter("group:sd,zz", None, config)
    assert parse_filter("svc:mail group:zz") == Filter(services=("mail",), groups=("zz",))
