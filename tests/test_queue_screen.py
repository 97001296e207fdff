"""The queue screen, driven with Pilot on a demo database: views, filters, sorts, paging, take, live rows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from pilot_helpers import settle as settle_work
from pilot_helpers import wait_until
from sqlalchemy import func, select
from textual.widgets import Input

from itsm_tui.app import ItsmApp
from itsm_tui.models import Ticket, User
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.services import queue, tickets
from itsm_tui.services.users import resolve_actor

ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def demo(demo_copy):
    return demo_copy(4000, 11)


def shows_what_was_asked(screen: QueueScreen) -> bool:
    """Whether the rows and count of the latest query are shown, the filter as typed applied."""
    try:
        typed = queue.parse_filter(screen.query_one("#queue-filter", Input).value, screen.app.actor)
    except queue.FilterError:
        typed = screen.filter  # a filter the queue does not understand is not applied
    return (
        screen.table.window is not None
        and screen.up_to_date
        and screen.filter == typed
        and screen.query_state is not None
        and screen.query_state.filter == typed
    )


async def settle(pilot, screen: QueueScreen, predicate=None) -> None:
    """Wait until the rows and count of what was last asked for are shown (and ``predicate`` holds)."""
    await wait_until(
        pilot,
        lambda: shows_what_was_asked(screen) and (predicate is None or predicate()),
        "the queue to show what was asked for",
    )


def bar(screen: QueueScreen) -> str:
    return str(screen.query_one("#queue-bar").render())


def shown_refs(screen: QueueScreen, n: int = 5) -> list[str]:
    table = screen.table
    return [table.window.row(i).ref for i in range(min(n, table.total))]


def open_count(db, **where) -> int:
    with db.read_session() as s:
        stmt = select(func.count()).select_from(Ticket).where(Ticket.is_open.is_(True))
        for name, value in where.items():
            stmt = stmt.where(getattr(Ticket, name) == value)
        return s.scalar(stmt)


async def test_the_default_view_is_all_open_in_sla_order(demo, config):
    db, actor = demo
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await settle(pilot, screen)
        assert "All open" in bar(screen)
        total_open = open_count(db)
        assert f"({total_open:,})" in bar(screen)

        # the default order is SLA time left, overdue first
        rows = [screen.table.window.row(i) for i in range(10)]
        assert [r.resolution_due_at for r in rows] == sorted(r.resolution_due_at for r in rows)


async def test_the_major_view_shows_p1_and_p2_only(demo, config):
    db, actor = demo
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await settle(pilot, screen)
        await pilot.press("5")  # Major (P1/P2)
        await settle(pilot, screen)
        assert "Major" in bar(screen)
        assert all(screen.table.window.row(i).priority in (1, 2) for i in range(screen.table.total))


async def test_a_filter_narrows_the_queue_and_a_wrong_token_says_what_would_work(demo, config):
    db, actor = demo
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await settle(pilot, screen)
        await pilot.press("4")
        await settle(pilot, screen)
        await pilot.press("slash")
        await pilot.press(*"p:4 status:new")
        await settle(pilot, screen)
        expected = open_count(db, priority=4, status="new")
        assert f"({expected:,})" in bar(screen)
        assert {screen.table.window.row(i).status for i in range(min(50, screen.table.total))} == {"new"}

        await pilot.press(*" foo:bar")
        await settle_work(pilot)
        error = str(screen.query_one("#queue-error").render())
        assert "unknown filter 'foo:'" in error and "p:, status:" in error
        for _ in range(8):
            await pilot.press("backspace")
        await pilot.press("enter")
        await settle(pilot, screen)
        assert not screen.query_one("#queue-error").has_class("shown")


async def test_free_text_matches_the_title(demo, config):
    db, actor = demo
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await settle(pilot, screen)
        await pilot.press("4")
        await settle(pilot, screen)
        await pilot.press("slash", "end", "ctrl+u")  # clear the filter
        await pilot.press(*"printer", "enter")
        await settle(pilot, screen)
        assert all(
            "printer" in screen.table.window.row(i).title.lower() for i in range(min(20, screen.table.total))
        )


async def sort_by_status_descending(pilot, screen: QueueScreen) -> None:
    """Sort by the next column (status), then reverse."""
    await pilot.press("right_square_bracket")
    await settle(pilot, screen)
    assert "sort: Status" in bar(screen)
    table = screen.table
    statuses = [table.window.row(i).status for i in range(table.total if table.total < 50 else 50)]
    assert statuses == sorted(statuses)
    await pilot.press("minus")
    await settle(pilot, screen)
    assert "sort: Status desc" in bar(screen)


async def test_sorting_by_status_reversed_then_paging_to_the_end(demo, config):
    db, actor = demo
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await settle(pilot, screen)
        await pilot.press("4")
        await settle(pilot, screen)
        await sort_by_status_descending(pilot, screen)

        # page to the very end of the queue: the last row is the last ticket by that order
        await pilot.press("end")
        await settle(pilot, screen, lambda: screen.table.current is not None)
        last = screen.table.current
        with db.read_session() as s:
            q = screen.query_state
            first_of_reverse = queue.fetch_page(
                s, q.__class__(**{**q.__dict__, "descending": not q.descending}), limit=1
            )[0]
        assert last.id == first_of_reverse.id
        await pilot.press("pageup", "pageup")
        await settle(pilot, screen, lambda: screen.table.current is not None)
        assert screen.table.cursor == screen.table.total - 1 - 2 * (screen.table.size.height - 1)


async def test_take_from_the_queue(demo, config):
    db, actor = demo
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await settle(pilot, screen)
        await pilot.press("2")  # unassigned in my groups
        await settle(pilot, screen)
        row = screen.table.current
        assert row is not None and row.assignee is None
        await pilot.press("t")
        await settle_work(pilot)  # the take is saved before its worker ends
        with db.read_session() as s:
            login = s.scalar(
                select(User.login).join(Ticket, Ticket.assignee_id == User.id).where(Ticket.id == row.id)
            )
        assert login == actor.login


async def test_rows_follow_other_peoples_work_and_the_cursor_stays(demo, config):
    db, actor = demo
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await settle(pilot, screen)
        await pilot.press("down", "down", "down")
        chosen = screen.table.current
        above = screen.table.window.row(0)
        # someone else resolves the ticket at the top: rows move up, the cursor stays on the chosen ticket
        with db.session() as s:
            lead = resolve_actor(s, "mlopez")
            t = tickets.get_ticket(s, above.ref)
            if t.assignee_id is None:
                tickets.assign(s, config, lead, above.ref)
            if t.status in ("new", "assigned", "pending"):
                tickets.transition(s, config, lead, above.ref, "in_progress")
            tickets.resolve(s, config, lead, above.ref, code="fixed", note="done elsewhere")

        def moved_up() -> bool:  # the queue's poll notices the change and reloads
            first = screen.table.window.row(0)
            return bool(first and first.id != above.id and screen.up_to_date)

        await wait_until(pilot, moved_up, "the resolved ticket to leave the queue")
        assert screen.table.window.row(0).id != above.id
        assert screen.table.current.id == chosen.id
        assert screen.table.cursor == 2


async def test_a_sort_keeps_the_ticket_on_its_line_and_a_new_filter_starts_at_the_top(demo, config):
    db, actor = demo
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await settle(pilot, screen)
        await pilot.press(*["pagedown"] * 3, *["down"] * 4)
        await settle(pilot, screen, lambda: screen.table.current is not None)
        table = screen.table
        chosen, line = table.current, table.cursor - int(table.scroll_offset.y)

        await pilot.press("right_square_bracket")  # sort by the next column: status
        await settle(pilot, screen, lambda: table.current is not None)
        assert "sort: Status" in bar(screen)
        assert table.current.id == chosen.id
        assert table.cursor - int(table.scroll_offset.y) == line  # the same screen line
        with db.read_session() as s:
            ordered = [r.id for r in queue.fetch_page(s, screen.query_state, limit=10**6)]
        assert table.cursor == ordered.index(chosen.id)
        visible = range(int(table.scroll_offset.y), int(table.scroll_offset.y) + table.size.height)
        assert [table.window.row(i).id for i in visible] == [ordered[i] for i in visible]

        await pilot.press("slash", *"p:3", "enter")
        await settle(pilot, screen)
        assert table.cursor == 0 and int(table.scroll_offset.y) == 0
        assert table.current.priority == 3


async def test_paging_down_reads_each_page_from_its_neighbour(demo, config, monkeypatch):
    """No page is read twice or by OFFSET while paging down; the rows shown are the queue's order."""
    db, actor = demo
    plans: list[dict] = []
    fetch_page = queue.fetch_page

    def recording(session, query, **plan):
        plans.append(plan)
        return fetch_page(session, query, **plan)

    monkeypatch.setattr(queue, "fetch_page", recording)
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("4")  # all open
        await settle(pilot, screen)
        table = screen.table
        plans.clear()
        for _ in range(8):
            await pilot.press("pagedown")
            await settle(pilot, screen, lambda: table.current is not None)
        assert table.cursor == 8 * (table.size.height - 1) < table.total
        assert not [p for p in plans if "offset" in p]
        afters = [p["after"] for p in plans if "after" in p]
        assert len(afters) == len(set(afters))  # each page once
        with db.read_session() as s:
            ordered = [r.id for r in fetch_page(s, screen.query_state, limit=10**6)]
        top = int(table.scroll_offset.y)
        assert [table.window.row(i).id for i in range(top, top + table.size.height)] == ordered[
            top : top + table.size.height
        ]


async def test_moving_while_a_live_reload_reads_keeps_the_ticket_moved_to(demo, config, monkeypatch):
    """A reload after others' work keeps the cursor's ticket; if the agent moves on before its rows arrive,
    the cursor stays where the agent went, and the rows they paged to are read."""
    db, actor = demo
    release = threading.Event()
    locate = queue.locate

    def slow_locate(session, query, ticket_id):
        release.wait(10)
        return locate(session, query, ticket_id)

    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("4")
        await settle(pilot, screen)
        table = screen.table
        await pilot.press("down", "down", "down")
        monkeypatch.setattr(queue, "locate", slow_locate)

        screen.reload(keep_cursor=True)  # what the poll does when someone else saved a ticket
        await pilot.press("down", "down")
        moved_to = table.current
        release.set()
        await settle(pilot, screen)
        assert table.current.id == moved_to.id and table.cursor == 5

        release.clear()
        screen.reload(keep_cursor=True)
        await pilot.press("pagedown", "pagedown", "pagedown")
        await settle_work(pilot, except_groups={"queue-query"})  # all but the held-up reload
        release.set()
        await settle(pilot, screen, lambda: table.current is not None)
        with db.read_session() as s:
            ordered = [r.id for r in queue.fetch_page(s, screen.query_state, limit=10**6)]
        top = int(table.scroll_offset.y)
        assert top > 0
        assert [table.window.row(i).id for i in range(top, top + table.size.height)] == ordered[
            top : top + table.size.height
        ]


async def test_the_sla_column_reads_in_order_and_marks_response_and_paused_tickets(staff_sqlite, config):
    """On screen, the SLA column shows the wall-clock time to the instant the rows are ordered by: from the
    most overdue down, R marking a response target; the paused tickets stand together at the end."""
    from pilot_helpers import screen_lines
    from test_queue_service import PAUSED_ORDER, RUNNING_ORDER, SLA_NOW, build_sla_mix, sla_order_of

    from itsm_tui.screens.queue import PAUSED_TEXT, RESPONSE_MARK, columns_for

    db, staff = staff_sqlite
    refs = build_sla_mix(db, config, staff)
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False, clock=lambda: SLA_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await settle(pilot, screen)
        assert "All open" in bar(screen) and "sort: SLA due" in bar(screen)
        columns = columns_for(80, "all_open")
        start = sum(c.width + 1 for c in columns[: [c.key for c in columns].index("sla")])
        width = next(c.width for c in columns if c.key == "sla")
        lines = [line[1:] for line in screen_lines(app)]  # after the first column, the marks'
        header = next(line for line in lines if line.startswith("Ref "))
        assert header[start : start + width].strip() == "SLA due"
        shown = {
            line[:10].strip(): line[start : start + width].strip()
            for line in lines
            if line[:3] in ("INC", "REQ") and line[:10].strip() in refs.values()
        }
    cells = [shown[refs[name]] for name in RUNNING_ORDER + PAUSED_ORDER]
    assert cells[0] == f"{RESPONSE_MARK}  -3d21h"  # its response is long overdue; its resolution far away
    assert cells[-len(PAUSED_ORDER) :] == [PAUSED_TEXT] * len(PAUSED_ORDER)
    assert [c.startswith(RESPONSE_MARK) for c in cells[: len(RUNNING_ORDER)]] == [
        True, False, True, True, False,
    ]  # fmt: skip
    order = [sla_order_of(c) for c in cells]
    assert order == sorted(order)
    in_screen_order = [line[:10].strip() for line in lines if line[:10].strip() in refs.values()]
    assert in_screen_order == [refs[name] for name in RUNNING_ORDER + PAUSED_ORDER]
