"""The lead's console tried as a careless or hostile user would: what once gave a traceback, a wrong exit
code, an unrecorded refusal or a lost change, and now gives one plain line.

On both databases: search words holding a control character (a NUL no database takes in a query), a view's
filter holding one, a view over every ticket sorted by what no index holds, two saves of a view on one key
at once (the unique index's refusal in the words of the check), a shared view changed by someone who does
not own it (refused and recorded), and refusals among the tickets of ``itsm ticket update A B`` recorded as
that command's. Without a database: ``--before`` beyond what an id column holds, the exit code of partial
refusals when the reader of stdout has gone, ``:rate`` with a digit ``int`` does not read, and the
summary's wording. Last, one console at 80x24: it survives the ``:rate ²`` that once ended it, and a ``:``
command over marked tickets refuses the one an agent took between its question and its confirmation.
"""

from __future__ import annotations

import io
import sys

import pytest
from access_helpers import refusals
from pilot_helpers import shows, type_text, wait_until
from sqlalchemy import event
from ticket_helpers import new_ticket

from itsm_tui.app import ItsmApp
from itsm_tui.cli import main
from itsm_tui.screens.commandline import CommandLine
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.services import search, tickets, views
from itsm_tui.services.access_log import RecordingDatabase
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.tickets import bulk, commands
from itsm_tui.services.tickets.bulk import Refusal
from itsm_tui.services.views import NotOwner


def close(db, ref: str) -> None:
    with db.session() as s:
        ticket = tickets.get_ticket(s, ref)
        ticket.status, ticket.is_open = "closed", False


# --------------------------------------------------------------------------- search words


def test_a_control_character_in_search_words_parts_them(db, staff, config) -> None:
    ref = new_ticket(db, config, staff["lead"], title="Printer jam on floor 3")
    assert search.search_words("jam\x00printer") == ("jam", "printer")
    assert search.search_words(["paper jam", "x\x1b[31m"]) == ("paper jam", "x", "[31m")
    with db.read_session() as s:  # the NUL once went to the database, which refused the query
        assert [hit.ref for hit in search.search(s, ["jam\x00printer"])] == [ref]
        assert search.search(s, ["\x00\x07"]) == []


# --------------------------------------------------------------------------- saved views


def test_a_views_filter_holding_a_control_character_is_refused(db, staff, config) -> None:
    with db.session() as s, pytest.raises(ValidationError, match="one line of printable characters"):
        views.save_view(s, config, staff["lead"], name="Nul", key="8", filter_text="paper\x00jam")


def test_a_view_over_every_ticket_sorts_only_as_the_queue_offers(db, staff, config) -> None:
    lead = staff["lead"]
    told = "the view 'All tickets' sorts only by ref, opened, updated or resolved, not sla"
    with db.session() as s, pytest.raises(ValidationError, match=f"^{told}$"):
        views.save_view(s, config, lead, name="History", key="8", base_view="all_tickets", sort="sla")
    with db.session() as s:
        saved = views.save_view(s, config, lead, name="Open", key="8", base_view="all_open", sort="sla")
    with db.session() as s, pytest.raises(ValidationError, match=f"^{told}$"):
        views.update_view(s, config, lead, saved.id, base_view="all_tickets")
    with db.session() as s:
        views.update_view(s, config, lead, saved.id, base_view="all_tickets", sort="opened")
    with db.read_session() as s:
        assert [(v.base_view, v.sort) for v in views.list_views(s, lead)] == [("all_tickets", "opened")]


def test_two_saves_on_one_key_at_once_are_refused_in_the_checks_words(db, staff, config, monkeypatch) -> None:
    lead = staff["lead"]
    with db.session() as s:
        views.save_view(s, config, lead, name="First", key="8")
    # The second save checked before the first was committed: its check found nothing, the index refuses.
    monkeypatch.setattr("itsm_tui.services.views._taken", lambda *args: None)
    with db.session() as s, pytest.raises(ValidationError) as same_key:
        views.save_view(s, config, lead, name="Second", key="8")
    assert (same_key.value.field, str(same_key.value)) == (
        "key",
        "8 is the key of another view of yours, saved a moment ago; choose another key",
    )
    with db.session() as s, pytest.raises(ValidationError) as same_name:
        views.save_view(s, config, lead, name="First", key="9")
    assert (same_name.value.field, str(same_name.value)) == (
        "name",
        "you saved a view called 'First' a moment ago; choose another name",
    )
    with db.read_session() as s:
        assert [(v.name, v.key) for v in views.list_views(s, lead)] == [("First", "8")]


def test_changing_someone_elses_shared_view_is_refused_and_recorded(
    db, db_url, staff, config, monkeypatch, capsys
) -> None:
    with db.session() as s:
        shared = views.save_view(s, config, staff["lead"], name="Team", key="8", share_with="SD-L1")
    agent = staff["agent1"]
    console = RecordingDatabase.around(db, agent.login, agent.id)  # the console's sessions
    with pytest.raises(NotOwner), console.session() as s:
        views.update_view(s, config, agent, shared.id, filter_text="p:1")
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "agent1")
    capsys.readouterr()
    assert main(["view", "delete", "lead/Team", "--db", db_url]) == 2
    told = (
        "the view 'Team' is lead's, shared with SD-L1: only its owner may change or delete it "
        "(save one of your own under another name)"
    )
    assert capsys.readouterr().err == f"itsm: error: {told}\n"
    assert refusals(db) == [
        ("agent1", agent.id, "console: view.change_others", "view.change_others", told),
        ("agent1", agent.id, "view delete", "view.change_others", told),
    ]
    with db.read_session() as s:
        assert [v.filter_text for v in views.list_views(s, staff["lead"])] == [""]


# --------------------------------------------------------------------------- itsm ticket update A B


def test_refusals_among_several_tickets_are_recorded_as_the_commands(
    db, db_url, staff, config, monkeypatch, capsys
) -> None:
    refs = [new_ticket(db, config, staff["lead"], title=t) for t in ("Toner", "Paper")]
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "agent1")
    capsys.readouterr()
    assert main(["ticket", "update", *refs, "--assign", "agent2", "--db", db_url]) == 1
    said = [f"You may not assign {ref}: needs the role shift_lead (you have agent)." for ref in refs]
    assert capsys.readouterr().out == f"0 done, 2 refused: {refs[0]} ({said[0]}), {refs[1]} ({said[1]})\n"
    agent_id = staff["agent1"].id
    assert refusals(db) == [
        ("agent1", agent_id, "ticket update", "ticket.assign_others", said[0]),
        ("agent1", agent_id, "ticket update", "ticket.assign_others", said[1]),
    ]


class GoneReader(io.StringIO):
    """stdout whose reader has gone (``| head -0``): the first write or the flush finds the pipe closed."""

    def __init__(self, *, on_write: bool) -> None:
        super().__init__()
        self.on_write = on_write

    def write(self, text: str) -> int:
        if self.on_write:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("on_write", [False, True], ids=["at-the-flush", "at-the-write"])
def test_partial_refusals_exit_1_when_the_reader_of_stdout_has_gone(
    staff_sqlite, config, monkeypatch, on_write
) -> None:
    db, staff = staff_sqlite
    refs = [new_ticket(db, config, staff["lead"], title=t) for t in ("Toner", "Paper", "Jam")]
    close(db, refs[1])
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "lead")
    monkeypatch.setattr(sys, "stdout", GoneReader(on_write=on_write))
    url = str(db.engine.url)
    assert main(["ticket", "update", *refs, "--assign", "agent2", "--db", url]) == 1  # refs[1] is closed
    assert main(["ticket", "update", refs[0], refs[2], "--note", "Looked", "--json", "--db", url]) == 0


# --------------------------------------------------------------------------- no database


@pytest.mark.parametrize("command", ["list", "search"])
def test_before_beyond_an_id_column_is_one_line(tmp_path, capsys, command) -> None:
    words = ["printer"] if command == "search" else []
    for value in ("99999999999999999999", "2147483648", "0"):
        with pytest.raises(SystemExit) as ended:  # argparse's refusal: exit 2, before any database
            main(["ticket", command, *words, "--before", value, "--db", str(tmp_path / "none.db")])
        assert ended.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"itsm ticket {command}: error: argument --before: an id is from 1 to 2147483647, not {value}"
        )


def test_the_command_lines_junk_is_refused_in_words() -> None:
    for line in (":rate ²", ":rate ½", ":rate 1e3"):
        with pytest.raises(commands.CommandError, match=r"^use :rate 1-5: the rating is a whole number"):
            commands.parse(line)
    with pytest.raises(commands.CommandError) as pasted:
        commands.parse(":" + "x" * 5000)
    assert str(pasted.value) == f"no command :{'x' * 29}…; :help lists them"


def test_the_summary_names_each_refused_ticket_once() -> None:
    assert Refusal("INC0000012", "INC0000012 was taken by Ann (ann) a moment ago").said == (
        "was taken by Ann (ann) a moment ago"
    )
    assert Refusal("INC0000012", "INC0000012: the ticket is closed").said == "the ticket is closed"
    assert Refusal("INC0000012", "the ticket\nis closed").said == "the ticket is closed"


# --------------------------------------------------------------------------- the console


async def test_the_console_survives_the_command_lines_junk(staff_sqlite, config, monkeypatch) -> None:
    db, staff = staff_sqlite
    monkeypatch.setattr("itsm_tui.screens.queue.REFRESH_SECONDS", 3600.0)
    monkeypatch.setattr("itsm_tui.screens.commandline.history_path", lambda: None)
    ref = new_ticket(db, config, staff["lead"], title="Toner [bold red]low[/]")
    for title in ("Paper", "Jam"):
        new_ticket(db, config, staff["lead"], title=title)
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date, "queue"
        )
        queue = app.screen
        assert isinstance(queue, QueueScreen) and queue.table.current.ref == ref
        line = queue.query_one(CommandLine)
        await pilot.press("colon")
        await wait_until(pilot, lambda: line.is_open, "the line")
        await type_text(pilot, "rate ²")  # once a ValueError in the key handler: the console ended
        await pilot.press("enter")
        await wait_until(pilot, lambda: shows(app, "use :rate 1-5: the rating is a whole number"), "refusal")
        assert app.is_running and line.is_open and line.input.value == "rate ²"
        assert shows(app, "Toner [bold red]low[/]")  # a title's markup shown as typed

        # :assign over two marked tickets; an agent takes the second between the question and the Enter
        # that confirms it: that one is refused as changed meanwhile, not taken from the agent.
        await pilot.press("escape", "space", "space")
        first, second = queue.marked_refs()
        await pilot.press("colon")
        await type_text(pilot, "assign agent2")
        await pilot.press("enter")
        await wait_until(pilot, lambda: line._confirm_versions is not None, "the versions confirmed")
        assert shows(app, ":assign agent2 on the 2 marked tickets? Enter again applies it to each")
        with db.session() as s:
            tickets.take(s, config, staff["agent1"], second)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not line.running and shows(app, "1 done, 1 refused"), "the summary")
        assert shows(app, f"1 done, 1 refused: {second} (was changed by Agent1 (agent1) at")
        assert queue.marked_refs() == [second]  # the refused one stays marked
    with db.read_session() as s:
        assert [tickets.get_ticket(s, r).assignee.login for r in (first, second)] == ["agent2", "agent1"]


def test_the_marked_tickets_versions_are_read_along_the_index_of_refs(staff_sqlite, config) -> None:
    db, staff = staff_sqlite
    refs = [new_ticket(db, config, staff["lead"], title=t) for t in ("Toner", "Paper")]
    with db.session() as s:
        tickets.take(s, config, staff["agent1"], refs[1])  # version 1 -> 2
    with db.read_session() as s:
        assert bulk.versions_of(s, [*refs, "INC0009999"]) == {refs[0]: 1, refs[1]: 2}
        statements: list[str] = []

        def seen(conn, cursor, statement, *rest) -> None:
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            bulk.versions_of(s, refs)
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
        plan = " ".join(
            str(row[-1])
            for row in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statements[-1], tuple(refs))
        )
        with pytest.raises(ValidationError, match="more than 500 at once"):
            bulk.versions_of(s, [f"INC{n:07d}" for n in range(501)])
    assert "USING INDEX" in plan and "SCAN" not in plan, plan
