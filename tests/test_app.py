"""The console shell, driven with Pilot: screens switch by key, data shows literally, the inbox marks read."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from pilot_helpers import screen_text, settle, squash, wait_until
from sqlalchemy import select
from textual.widgets import DataTable, Static

from itsm_tui.app import ItsmApp
from itsm_tui.models import Notification, utcnow
from itsm_tui.screens.help import HelpScreen
from itsm_tui.services import tickets


@pytest.fixture
def sqlite_db(sqlite_url, config):
    from itsm_tui.db import Database

    db = Database.connect(sqlite_url)
    db.sync_catalog(config)
    yield db
    db.dispose()


@pytest.fixture
def desk(sqlite_db, config):
    from itsm_tui.services import users

    with sqlite_db.session() as s:
        users.add_user(
            s, actor_login="lead", login="lead", roles=["shift_lead"], groups=["SD-L1"], name="Lea Lead"
        )
    with sqlite_db.read_session() as s:
        actor = users.resolve_actor(s, "lead")
    return sqlite_db, actor


def table_text(table: DataTable) -> str:
    return "\n".join(" ".join(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count))


async def test_screens_switch_with_keys_and_help_lists_keys(desk, config):
    db, actor = desk
    app = ItsmApp(db, config, actor)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.current_mode == "queue"
        for key, mode in (("f3", "calendar"), ("f4", "kpi"), ("f5", "inbox"), ("f2", "queue")):
            await pilot.press(key)
            assert app.current_mode == mode
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = screen_text(app)
        assert "Take" in help_text and "Filter" in help_text  # the keys of the screen underneath
        assert "Close" not in help_text
        await pilot.press("end")  # the app's own keys are further down
        await settle(pilot)
        help_text = screen_text(app)
        assert "Inbox" in help_text and "Quit" in help_text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_the_screen_text_is_what_the_screenshot_shows_with_a_modal_over_the_screen(desk, config):
    """The tests read the terminal's text from the painted lines; the screenshot agrees with it."""
    db, actor = desk
    with db.session() as s:
        ref = tickets.create_ticket(s, config, actor, title="Mail down", requester="Rita").ref
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await pilot.press("4")
        await wait_until(pilot, lambda: "Mail down" in screen_text(app), "the ticket's row")
        app.notify("Saved [b]x[/b]", markup=False)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        await settle(pilot)
        lines = screen_text(app).splitlines()
        assert len(lines) == 30 and all(len(line) == 120 for line in lines)
        assert ref in screen_text(app) and "Keys" in screen_text(app)  # beneath and on top
        assert "Saved [b]x[/b]" in screen_text(app)  # the notification over both
        svg = ElementTree.fromstring(app.export_screenshot())
        shot = "".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
        assert squash(shot) == app.title + squash(screen_text(app))  # the title comes first


async def test_queue_shows_user_text_literally(desk, config):
    db, actor = desk
    title = "[red]boom[/red] \x1b[31mred\x1b[0m [link=http://x]click[/link]"
    with db.session() as s:
        tickets.create_ticket(
            s, config, actor, title=title, requester="[b]Mallory[/b]", impact="high", urgency="high"
        )
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=(160, 40)) as pilot:
        from itsm_tui.screens.queue import QueueTable

        table = app.screen.query_one(QueueTable)
        await wait_until(pilot, lambda: table.total == 1 and table.window.row(0) is not None, "the row")
        await settle(pilot)
        segments = [segment for y in range(table.size.height) for segment in table.render_line(y)]
        rendered = "".join(segment.text for segment in segments)
        assert "[red]boom[/red] ^[[31mred^[[0m [link=http://x]click[/link]" in rendered
        assert "[b]Mallory[/b]" in rendered
        assert "\x1b" not in rendered
        assert not any(segment.style and segment.style.link for segment in segments)  # no link made
        shown = screen_text(app)
        assert "[red]boom[/red]" in shown


async def test_inbox_marks_read_in_the_database(desk, config):
    db, actor = desk
    with db.session() as s:
        for index in range(3):
            s.add(
                Notification(
                    user_id=actor.id,
                    kind="assigned",
                    event_key=f"t:{index}",
                    entity_type="ticket",
                    entity_id=index,
                    message=f"INC{index} assigned to you",
                    created_at=utcnow(),
                )
            )
    app = ItsmApp(db, config, actor)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 3, "the notifications")
        await pilot.press("m")
        await wait_until(pilot, lambda: "*" not in str(table.get_row_at(0)[0]), "the first one read")
        with db.read_session() as s:
            unread = s.scalars(select(Notification).where(Notification.read_at.is_(None))).all()
        assert len(unread) == 2
        await pilot.press("M")
        await wait_until(
            pilot, lambda: all("*" not in str(table.get_row_at(i)[0]) for i in range(3)), "all read"
        )
        with db.read_session() as s:
            assert s.scalars(select(Notification).where(Notification.read_at.is_(None))).all() == []


async def test_status_line_shows_user_role_and_unread(desk, config):
    db, actor = desk
    with db.session() as s:
        s.add(
            Notification(
                user_id=actor.id, kind="assigned", event_key="x", message="hello", created_at=utcnow()
            )
        )
    app = ItsmApp(db, config, actor)
    async with app.run_test(size=(120, 24)) as pilot:
        from itsm_tui.screens.common import StatusLine

        line = app.screen.query_one(StatusLine)
        await wait_until(pilot, lambda: line.unread == 1, "the unread count")
        text = str(line.render())
        assert "Lea Lead" in text and "shift_lead" in text and "1 unread" in text
        assert isinstance(line, Static)


async def test_inbox_opens_the_change_a_notification_is_about(desk, config):
    from datetime import timedelta

    from itsm_tui.models import Change
    from itsm_tui.screens.change import ChangeScreen
    from itsm_tui.services import changes

    db, actor = desk
    with db.session() as s:
        from itsm_tui.services import users

        users.change_roles(s, actor_login="lead", login="lead", add=["change_manager"])
    with db.read_session() as s:
        manager = users.resolve_actor(s, "lead")
    with db.session() as s:
        start = utcnow() + timedelta(days=3)
        ref = changes.create_change(
            s,
            config,
            manager,
            change_type="normal",
            targets=["network"],
            start=start,
            end=start + timedelta(hours=2),
            title="Replace core switch",
        ).ref
        change_id = s.scalar(select(Change.id).where(Change.ref == ref))
        s.add(
            Notification(
                user_id=actor.id,
                kind="change_approval",
                event_key="c:1",
                entity_type="change",
                entity_id=change_id,
                message=f"{ref} awaits your approval",
                created_at=utcnow(),
            )
        )
    app = ItsmApp(db, config, manager, run_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, "the notification")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), "the change")
        assert app.screen.ref == ref
