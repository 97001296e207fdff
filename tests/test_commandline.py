"""The console's ``:`` command line (screens/commandline.py): in the queue on the cursor's ticket or the
marked ones, on the ticket screen on the ticket shown; Tab completion, a refusal kept with what was typed,
the history; snapshots of the line at 80x24 and 160x48."""

from __future__ import annotations

import pytest
from pilot_helpers import Toasts, settle, shows, type_text, wait_until
from sqlalchemy import select
from ticket_helpers import new_ticket, snapshot

from itsm_tui.app import ItsmApp
from itsm_tui.models import Ticket, TicketEntry
from itsm_tui.screens.commandline import CommandLine, History
from itsm_tui.screens.help import HelpScreen
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import views
from itsm_tui.services.tickets import commands

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def history_file(tmp_path, monkeypatch):
    """The history of the tests' consoles, in a file of the test's own."""
    path = tmp_path / "state" / "command_history"
    monkeypatch.setattr("itsm_tui.screens.commandline.history_path", lambda: path)
    return path


async def write(pilot, line: CommandLine, text: str) -> None:
    """Put a line into the input as a paste would (keys one by one are typed in the tests above), then
    Enter."""
    line.input.insert_text_at_cursor(text.removesuffix("\n"))
    await pilot.press("enter")


def notes(db, ref: str) -> list[str]:
    with db.read_session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.ref == ref))
        return list(s.scalars(select(TicketEntry.body).where(TicketEntry.ticket_id == ticket_id)))


async def test_the_command_line_acts_on_the_cursors_ticket_the_marked_ones_and_the_ticket_shown(
    staff_sqlite, config, monkeypatch, history_file
):
    db, staff = staff_sqlite
    monkeypatch.setattr("itsm_tui.screens.queue.REFRESH_SECONDS", 3600.0)
    first, second, third = (new_ticket(db, config, staff["lead"], title=t) for t in ("Toner", "Paper", "Jam"))
    with db.session() as s:
        views.save_view(s, config, staff["lead"], name="Paper only", key="8", filter_text="paper")
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:  # toasts recorded, not drawn over the line
        toasts = Toasts(app, monkeypatch)
        await wait_until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date, "queue"
        )
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        line = queue.query_one(CommandLine)
        assert queue.table.current.ref == first

        await pilot.press("question_mark")  # the help lists the key
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        assert (":", "Command line") in app.screen.rows()
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is queue, "the queue")

        # Tab completes the verb, then as far as the logins agree, then steps through them.
        await pilot.press("colon")
        await wait_until(pilot, lambda: line.is_open and line.vocabulary.logins, "the line and its words")
        await type_text(pilot, "as")
        await pilot.press("tab")
        assert line.input.value == "assign "
        await type_text(pilot, "ag")
        await pilot.press("tab")
        assert line.input.value == "assign agent"
        assert shows(app, "agent1  agent2")
        await pilot.press("tab")
        assert line.input.value == "assign agent1"
        await pilot.press("tab")
        assert line.input.value == "assign agent2"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not line.is_open, "the line closed")
        assert snapshot(db, first).assignee == "agent2"
        assert toasts.shown[-1] == f"{first} assigned to agent2."

        # A refusal, in the command line's words, over what was typed (kept).
        await pilot.press("colon")
        await type_text(pilot, "status closed\n")
        refusal = (
            f"{first} cannot go from assigned to closed; from assigned it may go to: in_progress, cancelled"
        )
        await wait_until(pilot, lambda: shows(app, refusal), "the refusal")
        assert line.is_open and line.input.value == "status closed"
        assert snapshot(db, first).status == "assigned"

        # Up and Down walk the lines run before, back to what was being typed.
        await pilot.press("escape")
        await pilot.press("colon")
        await type_text(pilot, "no")
        walked = []
        for key in ("up", "up", "up", "down", "down"):
            await pilot.press(key)
            walked.append(line.input.value)
        assert walked == ["status closed", "assign agent2", "assign agent2", "status closed", "no"]
        assert history_file.read_text(encoding="utf-8") == "assign agent2\nstatus closed\n"

        # Marked tickets: the count is asked first, then each gets the note; the marks go with it.
        await pilot.press("escape")
        await pilot.press("home")
        marked = []
        for _ in range(2):
            marked.append(queue.table.current.ref)
            await pilot.press("space")
        assert queue.marked_refs() == marked
        (unmarked,) = {first, second, third} - set(marked)
        await pilot.press("colon")
        await write(pilot, line, "note Checked the toner\n")
        await wait_until(pilot, lambda: shows(app, "on the 2 marked tickets? Enter again"), "the question")
        assert notes(db, marked[0]) == []
        await pilot.press("enter")
        await wait_until(pilot, lambda: not line.is_open and not queue.marked_refs(), "the notes written")
        assert notes(db, marked[0]) == notes(db, marked[1]) == ["Checked the toner"]
        assert notes(db, unmarked) == []
        assert "2 done" in toasts.shown[-1]

        # :open, then on the ticket screen a change to the ticket shown, then back to a view of the queue.
        await pilot.press("colon")
        await write(pilot, line, f"open {unmarked.lower()}\n")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None,
            "the ticket opened",
        )
        ticket_screen = app.screen
        assert ticket_screen.ref == unmarked
        line = ticket_screen.query_one(CommandLine)  # the ticket screen's own
        await pilot.press("colon")
        shown = ticket_screen.detail.view.version
        await write(pilot, line, "note Seen by the lead\n")
        await wait_until(pilot, lambda: ticket_screen.detail.view.version == shown + 1, "the ticket reloaded")
        assert notes(db, unmarked) == ["Seen by the lead"]
        assert toasts.shown[-1] == f"{unmarked} work note added."
        # Changed by someone else since it was shown: refused as stale, kept, and the ticket shown anew.
        with db.session() as s:
            commands.apply(s, config, staff["agent1"], unmarked, commands.parse(":note Meanwhile"))
        await pilot.press("colon")
        await write(pilot, line, "note Too late\n")
        await wait_until(pilot, lambda: shows(app, "Not saved:"), "the ticket's notice")
        assert (
            shows(app, f"{unmarked} was changed by Agent1 (agent1)") and line.input.value == "note Too late"
        )
        assert ticket_screen.detail.view.version == shown + 2
        assert notes(db, unmarked) == ["Seen by the lead", "Meanwhile"]
        await pilot.press("escape")
        await pilot.press("colon")
        await write(pilot, line, "view unassigned\n")
        await wait_until(pilot, lambda: app.screen is queue and queue.view_key == "unassigned", "the view")
        line = queue.query_one(CommandLine)
        await pilot.press("colon")
        await write(pilot, line, "view paper ONLY\n")  # a view of one's own, by its name in any case
        await wait_until(pilot, lambda: queue.filter_text == "paper" and queue.up_to_date, "the saved view")
        assert queue.view_key == "all_open" and queue.table.current.ref == second


def test_the_history_keeps_the_last_lines_in_a_file_only_its_owner_reads(tmp_path, monkeypatch):
    monkeypatch.setattr("itsm_tui.screens.commandline.HISTORY_LIMIT", 3)
    path = tmp_path / "state" / "command_history"
    history = History(path)
    for line in ("take", "take", "note a", "note b", "note c"):
        history.add(line)
    assert history.lines == ["note a", "note b", "note c"]  # the same line twice in a row is kept once
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    for line in ("note d", "note e", "note f"):
        history.add(line)
    again = History(path)  # the next console: the last lines, the file cut back to them
    assert again.lines == ["note d", "note e", "note f"]
    assert path.read_text(encoding="utf-8") == "note d\nnote e\nnote f\n"
    assert path.stat().st_mode & 0o777 == 0o600


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_command_line_completing_a_login(
    snap_compare, demo_copy, demo_anchor, config, size, history_file
):
    db, actor = demo_copy(1500, 3)
    app = ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: demo_anchor)

    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date and app.unread,
            "the queue and the unread count",
        )
        app.clear_notifications()  # the start-up toast of the unread ones (test_change_fit): the line alone
        line = app.screen.query_one(CommandLine)
        await pilot.press("colon")
        await wait_until(pilot, lambda: line.vocabulary.logins, "the logins")
        line.input.cursor_blink = False
        await type_text(pilot, "assign ")
        await pilot.press("tab")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
