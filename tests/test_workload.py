"""The workload: open tickets counted by assignee or group, priority and SLA state (checked against tickets
built by hand, on SQLite and PostgreSQL, and read through the open-ticket indexes); the workload screen and
its drill into a person's queue; the assign form's picker of the group's members with their open counts;
the queue's columns at 80 columns and the user's column file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pilot_helpers import settle, type_text, wait_until
from sqlalchemy import insert, select
from textual.widgets import Select

from itsm_tui import columns
from itsm_tui.app import ItsmApp
from itsm_tui.config import ConfigError
from itsm_tui.models import Group, Ticket, User
from itsm_tui.screens.forms import AssignForm
from itsm_tui.screens.queue import QueueScreen, columns_for
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.screens.workload import WorkloadScreen
from itsm_tui.services import workload

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)

# (assignee, group, priority, state, open): the SLA state is built from the resolution instants below.
HAND_BUILT = [
    ("agent1", "SD-L1", 1, "ok", True),
    ("agent1", "SD-L1", 1, "breached", True),
    ("agent1", "SD-L1", 3, "warning", True),
    ("agent1", "NET-L2", 3, "ok", True),
    ("agent1", "SD-L1", 2, "breached", False),  # resolved: not open work
    ("agent2", "SD-L1", 2, "paused", True),
    ("agent2", "SD-L1", 4, "ok", True),
    (None, "SD-L1", 3, "breached", True),
    (None, "NET-L2", 5, "ok", True),
    (None, "NET-L2", 5, "warning", True),
    ("net1", "NET-L2", 2, "paused", True),
]


def _instants(state: str) -> dict:
    """Resolution warning and due instants (and a pause) that give ``state`` at NOW."""
    if state == "breached":
        return {"resolution_warn_at": NOW - 2 * HOUR, "resolution_due_at": NOW - HOUR}
    if state == "warning":
        return {"resolution_warn_at": NOW - HOUR, "resolution_due_at": NOW + HOUR}
    if state == "paused":  # overdue by the instants, but its clocks stand still
        return {
            "resolution_warn_at": NOW - 2 * HOUR,
            "resolution_due_at": NOW - HOUR,
            "paused_at": NOW - HOUR,
        }
    return {"resolution_warn_at": NOW + HOUR, "resolution_due_at": NOW + 2 * HOUR}


def build(db, rows=HAND_BUILT) -> None:
    with db.session() as s:
        users = {login: user_id for login, user_id in s.execute(select(User.login, User.id))}
        groups = {code: group_id for code, group_id in s.execute(select(Group.code, Group.id))}
        values = []
        for number, (login, group, priority, state, is_open) in enumerate(rows, 1):
            values.append(
                {
                    "ref": f"INC9{number:06d}", "kind": "incident", "title": f"Ticket {number}",
                    "description": "", "requester": "Ann Example", "impact": "medium", "urgency": "medium",
                    "priority": priority, "status": "in_progress" if is_open else "resolved",
                    "is_open": is_open, "group_id": groups[group],
                    "assignee_id": users[login] if login else None, "opened_at": NOW - 30 * HOUR,
                    "updated_at": NOW - 30 * HOUR, "version": 1, "reopen_count": 0, "escalation_count": 0,
                    "reassignment_count": 0, "resolved_at": None if is_open else NOW - HOUR,
                    "response_due_at": NOW - 29 * HOUR, "responded_at": NOW - 29 * HOUR, **_instants(state),
                }
            )  # fmt: skip
        s.execute(insert(Ticket), values)


# --------------------------------------------------------------------------- the service


def test_open_tickets_are_counted_by_assignee_priority_and_sla_state(db, staff):
    build(db)
    with db.read_session() as s:
        by_person = workload.workload(s, NOW, "assignee")
    rows = {row.key: row for row in by_person.rows}
    assert [row.key for row in by_person.rows] == [
        None,
        "agent1",
        "agent2",
        "net1",
    ]  # unassigned, then busiest
    assert rows[None].name == "Unassigned" and rows[None].filter_text == "assignee:none"
    assert rows["agent1"].by_priority == {1: 2, 3: 2}  # the resolved P2 is not counted
    assert rows["agent1"].by_state == {"ok": 2, "breached": 1, "warning": 1}
    assert rows["agent1"].total == 4 and rows["agent1"].name == "Agent1"
    assert rows["agent1"].filter_text == "assignee:agent1"
    assert rows["agent2"].by_priority == {2: 1, 4: 1} and rows["agent2"].by_state == {"paused": 1, "ok": 1}
    assert rows[None].by_priority == {3: 1, 5: 2}
    assert rows[None].by_state == {"breached": 1, "ok": 1, "warning": 1}
    assert rows["net1"].by_state == {"paused": 1}
    assert by_person.total == 10


def test_open_tickets_are_counted_by_group(db, staff):
    build(db)
    with db.read_session() as s:
        by_group = workload.workload(s, NOW, "group")
    rows = {row.key: row for row in by_group.rows}
    assert [row.key for row in by_group.rows] == ["SD-L1", "NET-L2"]
    assert rows["SD-L1"].by_priority == {1: 2, 2: 1, 3: 2, 4: 1}
    assert rows["SD-L1"].by_state == {"ok": 2, "breached": 2, "warning": 1, "paused": 1}
    assert rows["NET-L2"].by_priority == {2: 1, 3: 1, 5: 2}
    assert rows["NET-L2"].by_state == {"ok": 2, "warning": 1, "paused": 1}
    assert rows["NET-L2"].filter_text == "group:NET-L2"


def test_group_members_come_with_their_open_tickets_least_loaded_first(db, staff):
    build(db)
    with db.read_session() as s:
        members = workload.group_members(s, "sd-l1")
        assert workload.group_members(s, "NOPE") == []
    # SD-L1: lead (0 open), agent1 (4 open, one of them in NET-L2: all their open work counts), agent2 (2)
    assert [(m.login, m.open) for m in members] == [("lead", 0), ("agent2", 2), ("agent1", 4)]
    assert [m.is_lead for m in members] == [True, False, False]
    assert [m.login for m in workload.filter_members(members, "AGENT")] == ["agent2", "agent1"]
    assert [m.login for m in workload.filter_members(members, "t1")] == ["agent1"]


def test_the_counts_and_the_members_are_read_through_the_open_ticket_indexes(db, staff):
    """One statement each, reading tickets by a partial index on the open ones, never the whole table."""
    from test_queue_service import _bulk_tickets, _ticket_reads

    _bulk_tickets(db)
    open_indexes = {
        "ix_tickets_open_assignee", "ix_tickets_open_group", "ix_tickets_open_priority",
        "ix_tickets_open_due", "ix_tickets_open_by_assignee", "ix_tickets_open_by_id",
        "ix_tickets_open_by_status", "ix_tickets_open_resolution_due",
    }  # fmt: skip
    for run in (
        lambda s: workload.workload(s, NOW, "assignee"),
        lambda s: workload.workload(s, NOW, "group"),
        lambda s: workload.group_members(s, "SD-L1"),
    ):
        reads = _ticket_reads(db, run)
        assert len(reads) == 1, reads
        plan, indexes = reads[0]
        assert indexes and all(name in open_indexes for name in indexes), plan


# --------------------------------------------------------------------------- the queue's columns


def test_the_queue_shows_group_and_assignee_at_80_columns():
    # ref 10, P 2, SLA 9, status 11, group 7, assignee 10, each and a space: 55 cells; the title the 25 left
    shown = columns_for(80, "all_open")
    assert [c.key for c in shown] == ["ref", "priority", "sla", "status", "group", "assignee", "title"]
    assert 80 - sum(c.width + 1 for c in shown[:-1]) == 25
    # my work is all mine: the requester instead of the assignee, where it fits beside a 24-cell title
    assert [c.key for c in columns_for(80, "my_work")] == [
        "ref",
        "priority",
        "sla",
        "status",
        "group",
        "title",
    ]
    assert "requester" in [c.key for c in columns_for(110, "my_work")]
    assert [c.key for c in columns_for(80, "resolved")][2] == "resolved"
    # 160: requester, service and opening time too (100 cells), the title the 60 left
    assert [c.key for c in columns_for(160, "all_open")][-2:] == ["opened", "title"]


def test_the_column_file_knows_every_column_the_queue_draws():
    from itsm_tui.screens.queue import COLUMNS

    assert set(columns.COLUMN_KEYS) == set(COLUMNS)


def _column_file(tmp_path, text: str):
    path = tmp_path / "columns.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_column_file_chooses_each_views_columns(tmp_path):
    path = _column_file(
        tmp_path,
        '[columns]\nall_open = ["ref", "assignee", "sla"]\n'
        'default = ["ref", "Group", "status", "requester"]\n',
    )
    chosen = columns.load(path)
    assert chosen.for_view("all_open") == ("ref", "assignee", "sla")
    assert chosen.for_view("major") == ("ref", "group", "status", "requester")
    shown = [c.key for c in columns_for(80, "all_open", chosen.for_view("all_open"))]
    assert shown == ["ref", "assignee", "sla", "title"]
    # ref, group, status: 11 + 8 + 12 = 31 cells; the requester's 23 more leave the title 26 (at least 24)
    assert [c.key for c in columns_for(80, "major", chosen.for_view("major"))] == [
        "ref", "group", "status", "requester", "title",
    ]  # fmt: skip
    # at 70 the requester would leave the title 16: left out
    assert [c.key for c in columns_for(70, "major", chosen.for_view("major"))] == [
        "ref", "group", "status", "title",
    ]  # fmt: skip
    assert columns.load(tmp_path / "none.toml", must_exist=False) == columns.NO_CHOICE


@pytest.mark.parametrize(
    ("text", "key", "rule"),
    [
        ('[colums]\nall_open = ["ref"]\n', "colums", "did you mean 'columns'?"),
        ('[columns]\nall_opne = ["ref"]\n', "columns.all_opne", "did you mean 'all_open'?"),
        ('[columns]\nall_open = ["ref", "asignee"]\n', "columns.all_open", "did you mean 'assignee'?"),
        ('[columns]\nall_open = ["ref", "title"]\n', "columns.all_open", "the title is always shown"),
        ('[columns]\nall_open = ["ref", "sla", "ref"]\n', "columns.all_open", "'ref' is named twice"),
        ('[columns]\nall_open = "ref"\n', "columns.all_open", "must be a list of column names"),
        ("[columns]\nall_open = []\n", "columns.all_open", "must be a list of column names"),
        ("columns = 3\n", "columns", "must be a table"),
        ("[columns\n", "(syntax)", "not valid TOML"),
    ],
)
def test_a_bad_column_file_names_the_file_the_key_and_the_problem(tmp_path, text, key, rule):
    path = _column_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        columns.load(path)
    assert caught.value.path == str(path) and caught.value.key == key
    assert rule in caught.value.rule
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_a_column_file_named_by_the_environment_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv(columns.COLUMNS_FILE_ENV, str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match="file is missing"):
        columns.load()


# --------------------------------------------------------------------------- the console


def _lines_with(app, word: str) -> list[str]:
    from pilot_helpers import screen_lines

    return [line for line in screen_lines(app) if word in line]


async def test_the_workload_opens_from_the_queue_and_drills_into_a_persons_queue(staff_sqlite, config):
    db, staff = staff_sqlite
    build(db)
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date, "queue"
        )
        await pilot.press("W")
        await wait_until(
            pilot, lambda: isinstance(app.screen, WorkloadScreen) and app.screen.shown is not None, "workload"
        )
        screen = app.screen
        assert "By assignee (10 open, 3 people)" in _lines_with(app, "By assignee")[0]
        # agent1: 4 open, P1 2, P3 2; ok 2, warning 1, breached 1, paused none
        (agent1,) = _lines_with(app, "agent1")
        assert agent1.split() == ["agent1", "Agent1", "4", "2", "-", "2", "-", "-", "2", "1", "1", "-"], (
            agent1
        )
        (unassigned,) = _lines_with(app, "Unassigned")
        assert unassigned.split()[1:] == ["3", "-", "-", "1", "-", "2", "1", "1", "1", "-"], unassigned
        await pilot.press("down")  # from the unassigned row to agent1's
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date, "queue"
        )
        queue = app.screen
        assert queue.filter_text == "assignee:agent1" and queue.view_key == "all_open"
        assert queue.table.total == 4
        # back (F6), by group, and into a group's queue
        await pilot.press("f6")
        await wait_until(pilot, lambda: app.screen is screen and screen.shown is not None, "workload")
        await pilot.press("g")
        await wait_until(pilot, lambda: screen.shown is not None and screen.shown.by == "group", "by group")
        assert [row.key for row in screen.rows] == ["SD-L1", "NET-L2"]
        await pilot.press("down", "enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date, "queue"
        )
        assert app.screen.filter_text == "group:NET-L2" and app.screen.table.total == 4


async def test_the_assign_form_picks_from_the_groups_members_with_their_open_counts(staff_sqlite, config):
    """The ticket's group's members with their open tickets; another group chosen lists its own; typing
    filters; Up/Down move; Enter picks the one shown."""
    from ticket_helpers import new_ticket

    db, staff = staff_sqlite
    build(db)
    ref = new_ticket(db, config, staff["agent1"])  # a printer: Service Desk L1's
    with db.read_session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.ref == ref))
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_ticket(ticket_id)
        await wait_until(
            pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None, "ticket"
        )
        await pilot.press("a")
        await wait_until(
            pilot, lambda: isinstance(app.screen, AssignForm) and app.screen.members is not None, "members"
        )
        form = app.screen
        # SD-L1's members, least loaded first: lead 0, agent2 2, agent1 4 (the new ticket is nobody's yet)
        assert [(m.login, m.open) for m in form.shown_members] == [("lead", 0), ("agent2", 2), ("agent1", 4)]
        assert "agent2" in _lines_with(app, "2 open")[0]
        # another group chosen: its members (net1 holds one open ticket); back to the ticket's group
        group = form.field_of("group", Select)
        group.value = "NET-L2"
        await wait_until(pilot, lambda: form.members_of == "NET-L2" and form.members is not None, "NET-L2")
        assert [(m.login, m.open) for m in form.shown_members] == [("net1", 1)]
        group.value = Select.NULL
        await wait_until(pilot, lambda: form.members_of == "SD-L1" and form.members is not None, "SD-L1")
        await type_text(pilot, "ag")  # filters as it is typed
        assert [m.login for m in form.shown_members] == ["agent2", "agent1"]
        await pilot.press("down")  # to agent1
        assert form.picked().login == "agent1"
        await pilot.press("up", "1")  # "ag1": matches nobody listed
        assert form.shown_members == []
        await pilot.press("backspace", "backspace", "backspace")  # nothing typed: the whole group again
        await pilot.press("down", "enter")  # agent2, picked
        await wait_until(pilot, lambda: app.screen is not form, "the form to close")
        await settle(pilot)
    with db.read_session() as s:
        assert s.scalar(
            select(User.login).join(Ticket, Ticket.assignee_id == User.id).where(Ticket.ref == ref)
        ) == ("agent2")


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_workload_snapshot(snap_compare, demo_copy, demo_anchor, config, size):
    db, actor = demo_copy(1500, 3)
    app = ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: demo_anchor)

    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date, "queue"
        )
        app.clear_notifications()
        await pilot.press("W")
        await wait_until(
            pilot, lambda: isinstance(app.screen, WorkloadScreen) and app.screen.shown is not None, "workload"
        )
        app.clear_notifications()
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
