"""Views of one's own: the rules of saving, sharing, editing and deleting them (services/views.py), the
queries they are read by, the console (save the queue shown on a key, press the key again later, a shared
view applied but not edited by a group member) and ``itsm view``."""

from __future__ import annotations

import json
import re

import pytest
from access_helpers import run_as
from pilot_helpers import Toasts, screen_text, settle, type_text, wait_until
from plan_helpers import captured_statements
from sqlalchemy import select
from textual.widgets import Input

from itsm_tui.app import ItsmApp
from itsm_tui.keymap import Keys
from itsm_tui.models import AuditEvent
from itsm_tui.screens.help import HelpScreen
from itsm_tui.screens.queue import QueueScreen, QueueTable
from itsm_tui.screens.views import ViewForm, ViewsManager, queue_keys
from itsm_tui.services import audit, tickets, views
from itsm_tui.services.errors import NotFound, ValidationError
from itsm_tui.services.views import NotOwner

RESERVED = {"t": "queue.take (Take)", "1": "queue.view.my_work (My work)"}


def save(db, config, actor, name, key, **options):
    with db.session() as s:
        return views.save_view(s, config, actor, name=name, key=key, reserved=RESERVED, **options)


def listed(db, actor) -> list[tuple[str, str, str]]:
    with db.read_session() as s:
        return [(v.owner_login, v.name, v.key) for v in views.list_views(s, actor)]


# --------------------------------------------------------------------------- the rules


def test_a_view_is_its_owners_and_shared_ones_reach_the_groups_members(staff_sqlite, config) -> None:
    db, staff = staff_sqlite
    lead, agent1, net1 = staff["lead"], staff["agent1"], staff["net1"]
    saved = save(
        db,
        config,
        lead,
        " Urgent ",
        "8",
        filter_text="p:1,2   assignee:none",
        sort="priority",
        descending=True,
        share_with="sd-l1",
    )
    assert (saved.name, saved.key, saved.filter_text) == ("Urgent", "8", "p:1,2 assignee:none")
    assert (saved.base_view, saved.sort, saved.descending, saved.shared_group) == (
        "all_open",
        "priority",
        True,
        "SD-L1",
    )
    save(db, config, lead, "Mine only", "m", filter_text="assignee:me")
    save(db, config, agent1, "Printers", "p", filter_text="printer", base_view="my_work")
    assert listed(db, lead) == [("lead", "Mine only", "m"), ("lead", "Urgent", "8")]  # own, by name
    assert listed(db, agent1) == [("agent1", "Printers", "p"), ("lead", "Urgent", "8")]  # own, then shared
    assert listed(db, net1) == []  # not in SD-L1

    with db.read_session() as s:
        shared = views.find_view(s, agent1, "urgent")  # any case
        assert views.find_view(s, agent1, "lead/Urgent") == shared
        with pytest.raises(NotFound, match=r"no view 'Mine only'; your views: Printers, lead/Urgent"):
            views.find_view(s, agent1, "Mine only")  # the lead's, not shared
        with pytest.raises(NotFound, match="no views of your own or shared"):
            views.find_view(s, net1, "Urgent")
    offered = views.available_actions(agent1, shared)
    assert offered["apply"] is None
    assert offered["edit"] is not None and offered["edit"].reason == "lead's view"
    assert offered["delete"] is not None and offered["delete"].reason == "lead's view"
    assert set(views.available_actions(lead, shared).values()) == {None}

    with db.session() as s, pytest.raises(NotOwner, match="is lead's, shared with SD-L1: only its owner"):
        views.update_view(s, config, agent1, shared.id, name="Mine now")
    with db.session() as s, pytest.raises(NotOwner):
        views.delete_view(s, agent1, shared.id)
    with db.session() as s, pytest.raises(NotFound):
        views.delete_view(s, net1, shared.id)  # one not shared with you is not there for you
    assert listed(db, lead) == [("lead", "Mine only", "m"), ("lead", "Urgent", "8")]


REFUSED = [  # name, key, options: the field refused and what it says
    ("x", "t", {}, "key", "t is the queue's key for queue.take (Take); choose another key"),
    ("x", "1", {}, "key", "1 is the queue's key for queue.view.my_work (My work)"),
    ("x", "ab", {}, "key", "a view's key is one digit or letter (0-9, a-z, A-Z), not 'ab'"),
    ("x", "#", {}, "key", "one digit or letter (0-9, a-z, A-Z), not '#'"),
    ("x", "m", {}, "key", "m is the key of your view 'Mine' already"),
    ("Mine", "y", {}, "name", "you have a view called 'Mine' already"),
    (" ", "y", {}, "name", "a view needs a name"),
    ("a/b", "y", {}, "name", "may not hold '/'"),
    ("x\x1b[31m", "y", {}, "name", "one line of printable characters"),
    ("x" * 41, "y", {}, "name", "at most 40 characters"),
    ("x", "y", {"filter_text": "p:0"}, "filter", "p: takes priorities 1 to 5, not '0'"),
    ("x", "y", {"filter_text": "assignee:nobody"}, "filter", "assignee: no desk user 'nobody'"),
    ("x", "y", {"sort": "colour"}, "sort", "no sort 'colour'; use one of sla, priority"),
    ("x", "y", {"base_view": "someday"}, "view", "no queue view 'someday'; use one of my_work"),
    ("x", "y", {"share_with": "NET-L2"}, "group", "a group you are in (SD-L1), not 'NET-L2'"),
    ("x", "y", {"share_with": "NOPE"}, "group", "a group you are in (SD-L1), not 'NOPE'"),
]


def test_what_a_view_may_be_called_keyed_and_filtered(staff_sqlite, config) -> None:
    db, staff = staff_sqlite
    agent1 = staff["agent1"]
    save(db, config, agent1, "Mine", "m")
    for name, key, options, field, message in REFUSED:
        with pytest.raises(ValidationError) as refused:
            save(db, config, agent1, name, key, **options)
        assert (refused.value.field, message in str(refused.value)) == (field, True), (
            name,
            key,
            refused.value,
        )
    assert listed(db, agent1) == [("agent1", "Mine", "m")]  # nothing of them saved
    assert save(db, config, agent1, "mine", "M").name == "mine"  # names and keys differ by case


def test_each_key_applies_one_view_own_ones_first_and_never_a_queue_key(staff_sqlite, config) -> None:
    db, staff = staff_sqlite
    lead, agent1 = staff["lead"], staff["agent1"]
    save(db, config, lead, "Lead 8", "8", share_with="SD-L1")
    save(db, config, lead, "Lead 9", "9", share_with="SD-L1")
    save(db, config, agent1, "Own 8", "8")
    with db.read_session() as s:
        found = views.list_views(s, agent1)
    assigned = views.key_assignments(agent1, found, RESERVED)
    assert {key: v.name for key, v in assigned.items()} == {"8": "Own 8", "9": "Lead 9"}
    # A key file that later gives 9 to a queue binding leaves the view on 9 without its key.
    assigned = views.key_assignments(agent1, found, {**RESERVED, "9": "queue.take (Take)"})
    assert {key: v.name for key, v in assigned.items()} == {"8": "Own 8"}


def test_the_queues_keys_are_those_the_key_file_leaves() -> None:
    """Take remapped to 8 frees t and holds 8; an unbound binding holds nothing."""
    keys = Keys(None, {"queue.take": "8"}, frozenset({"queue.new"}))
    held = queue_keys(keys, [QueueScreen, QueueTable, ItsmApp])
    assert held["8"] == "queue.take (Take)" and "t" not in held and "n" not in held
    assert held["S"] == "queue.save_view (Save view)" and held["j"] == "queue.down (Down)"
    assert held["question_mark"] == "app.help (Help)"


def test_editing_renames_rekeys_refilters_and_unshares_and_every_change_is_audited(staff_sqlite, config):
    db, staff = staff_sqlite
    lead, agent1 = staff["lead"], staff["agent1"]
    first = save(db, config, lead, "Urgent", "8", filter_text="p:1", share_with="SD-L1")
    save(db, config, lead, "Other", "o")
    with db.session() as s, pytest.raises(ValidationError, match="o is the key of your view 'Other'"):
        views.update_view(s, config, lead, first.id, key="o", reserved=RESERVED)
    with db.session() as s, pytest.raises(ValidationError, match="called 'Other' already"):
        views.update_view(s, config, lead, first.id, name="Other")
    with db.session() as s:
        edited = views.update_view(
            s, config, lead, first.id, name="Hot", key="h", filter_text="p:1 svc:email", share_with=None
        )
    assert (edited.name, edited.key, edited.filter_text, edited.shared_group) == (
        "Hot",
        "h",
        "p:1 svc:email",
        None,
    )
    assert listed(db, agent1) == []  # no longer shared
    with db.session() as s:  # nothing changed: nothing audited
        views.update_view(s, config, lead, first.id, name="Hot", key="h")
    with db.session() as s:
        views.delete_view(s, lead, first.id)
    assert listed(db, lead) == [("lead", "Other", "o")]
    with db.read_session() as s:
        trail = [
            (e.action, e.field, e.old_value, e.new_value)
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity_type == "saved_view", AuditEvent.entity_id == first.id)
                .order_by(AuditEvent.seq)
            )
        ]
        assert trail == [
            ("create", "name", None, "Urgent"),
            ("create", "key", None, "8"),
            ("create", "view", None, "all_open"),
            ("create", "filter", None, "p:1"),
            ("create", "sort", None, "sla"),
            ("create", "shared_with", None, "SD-L1"),
            ("update", "name", "Urgent", "Hot"),
            ("update", "key", "8", "h"),
            ("update", "filter", "p:1", "p:1 svc:email"),
            ("update", "shared_with", "SD-L1", None),
            ("delete", "name", "Hot", None),
        ]
        assert audit.verify_record(s, "saved_view", first.id) is None  # the chain holds


def test_the_views_are_read_by_their_indexes(db, staff, config) -> None:
    lead, agent1 = staff["lead"], staff["agent1"]
    for number in range(30):
        save(db, config, lead, f"View {number}", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0234"[number], share_with="SD-L1")
    with captured_statements(db, "FROM saved_views") as captured, db.read_session() as s:
        assert len(views.list_views(s, agent1)) == 30
    (own_sql, own_params), (shared_sql, shared_params) = captured
    with db.read_session() as s:
        conn = s.connection()
        if db.backend == "sqlite":

            def plan(sql, params):
                return " | ".join(
                    str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                )

        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a table this small is read whole
            # and an index read whole is no better: only an index with a condition on the query may serve it
            conn.exec_driver_sql("SET LOCAL enable_indexscan = off")

            def plan(sql, params):
                return " | ".join(str(r[0]) for r in conn.exec_driver_sql("EXPLAIN " + sql, params))

        own, shared = plan(own_sql, own_params), plan(shared_sql, shared_params)
    # The owner's by a unique index on (owner, name): SQLite names a unique constraint's index itself.
    # (PostgreSQL may take the other unique index led by the owner, (owner, key): as good.)
    assert re.search(
        r"saved_views USING INDEX sqlite_autoindex_saved_views|uq_saved_views_(name|key)", own
    ), own
    assert "ix_saved_views_shared" in shared, shared
    assert not re.search(r"SCAN saved_views\b|Seq Scan on saved_views", own + shared), (own, shared)


# --------------------------------------------------------------------------- the console


@pytest.fixture
def desk(staff_sqlite, config):
    """Four open tickets: A and B P1 (high/high), C P2 (high/medium), D P3 (medium/medium)."""
    db, staff = staff_sqlite
    made = {}
    for letter, title, impact, urgency in [
        ("A", "Printer jammed", "high", "high"),
        ("B", "Mail down", "high", "high"),
        ("C", "Laptop slow", "high", "medium"),
        ("D", "Screen flickers", "medium", "medium"),
    ]:
        with db.session() as s:
            made[letter] = tickets.create_ticket(
                s, config, staff["lead"], title=title, requester="Rita", impact=impact, urgency=urgency
            ).ref
    return db, staff, made


def shown(screen: QueueScreen) -> list[str]:
    table = screen.table
    return [table.window.row(i).ref for i in range(table.total)]


async def test_a_view_saved_on_a_key_comes_back_with_its_filter_and_sort(desk, config) -> None:
    db, staff, made = desk
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await settle(pilot)
        await pilot.press("4", "slash")
        await type_text(pilot, "p:1,2")
        await pilot.press("enter")
        await pilot.press("right_square_bracket")  # SLA due -> Status
        await pilot.press("minus")  # descending
        await settle(pilot)
        assert (screen.query_state.sort, screen.query_state.descending) == ("status", True)
        assert sorted(shown(screen)) == [made["A"], made["B"], made["C"]]

        await pilot.press("S")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, ViewForm)
        assert form.text_of("filter") == "p:1,2"
        await type_text(pilot, "Top two")
        await pilot.press("tab")
        await pilot.press("t")  # the queue's Take
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form and "t is the queue's key for queue.take (Take)" in form.error_shown
        await pilot.press("backspace", "8", "ctrl+s")
        await settle(pilot)
        assert app.screen is screen
        assert "Top two" in screen.query_one("#queue-bar").render().plain

        await pilot.press("1", "slash", *["backspace"] * 5, "enter")  # another view, no filter
        await settle(pilot)
        assert screen.query_state.view == "my_work" and screen.filter_text == ""
        await pilot.press("8")
        await settle(pilot)
        query = screen.query_state
        assert (query.view, query.sort, query.descending) == ("all_open", "status", True)
        assert screen.query_one("#queue-filter", Input).value == "p:1,2" and screen.filter_text == "p:1,2"
        assert sorted(shown(screen)) == [made["A"], made["B"], made["C"]]

        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        assert ("8", "View: Top two") in app.screen.rows()
        assert ("S", "Save view") in app.screen.rows() and ("V", "My views") in app.screen.rows()
        await pilot.press("escape")

        # The owner edits it in the list of views (V, e), then deletes it (d, d).
        await pilot.press("V")
        await settle(pilot)
        assert isinstance(app.screen, ViewsManager)
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ViewForm)
        await type_text(pilot, "Top three")  # over the name, all selected as the field takes the focus
        await pilot.press("tab", "0", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ViewsManager)
        assert "0  Top three" in screen_text(app)
        await pilot.press("d")
        await settle(pilot)
        assert "Delete the view 'Top three'? d again deletes it" in screen_text(app)
        await pilot.press("d")
        await settle(pilot)
        assert "No views yet" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert screen.saved_keys == {} and app.screen is screen
    assert listed(db, staff["lead"]) == []


async def test_a_shared_view_is_applied_by_a_member_but_not_edited(desk, config, monkeypatch) -> None:
    db, staff, made = desk
    save(db, config, staff["lead"], "Lead's P1", "9", filter_text="p:1", share_with="SD-L1")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    toasts = Toasts(app, monkeypatch)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await wait_until(pilot, lambda: "9" in screen.saved_keys, "the shared view's key bound")
        await pilot.press("9")
        await settle(pilot)
        assert sorted(shown(screen)) == [made["A"], made["B"]]
        assert "Lead's P1" in screen.query_one("#queue-bar").render().plain

        await pilot.press("V")
        await settle(pilot)
        manager = app.screen
        assert isinstance(manager, ViewsManager)
        text = screen_text(app)
        assert "Lead's P1  (lead)" in text and "edit: lead's view; delete: lead's view" in text
        await pilot.press("e")
        await settle(pilot)
        assert app.screen is manager  # no form: a notice says why
        assert toasts.shown == [
            "the view \"Lead's P1\" is lead's, shared with SD-L1: only its owner may change or delete it "
            "(save one of your own under another name)"
        ]
        await pilot.press("d", "d")
        await settle(pilot)
        assert app.screen is manager
        await pilot.press("escape")
        await settle(pilot)
    assert listed(db, staff["lead"]) == [("lead", "Lead's P1", "9")]


# --------------------------------------------------------------------------- the command line


def test_itsm_view_saves_lists_and_deletes(staff_sqlite, config, monkeypatch, capsys) -> None:
    db, staff = staff_sqlite
    url = db.url
    code, out, err = run_as(
        monkeypatch, capsys, "lead", "view", "save", "Hot", "--key", "8", "--filter", "p:1", "--sort",
        "priority", "--desc", "--share", "SD-L1", "--db", url,
    )  # fmt: skip
    assert (code, out, err) == (0, "saved view 'Hot' on key 8, shared with SD-L1\n", "")
    code, out, err = run_as(monkeypatch, capsys, "agent1", "view", "save", "Mine", "--key", "t", "--db", url)
    assert (
        code == 2
        and err == "itsm: error: key: t is the queue's key for queue.take (Take); choose another key\n"
    )
    code, out, err = run_as(monkeypatch, capsys, "agent1", "view", "list", "--json", "--db", url)
    assert code == 0
    (listed_view,) = json.loads(out)
    assert {k: listed_view[k] for k in ("name", "key", "owner", "mine", "shared_with", "filter", "sort")} == {
        "name": "Hot",
        "key": "8",
        "owner": "lead",
        "mine": False,
        "shared_with": "SD-L1",
        "filter": "p:1",
        "sort": "priority",
    }
    code, out, err = run_as(monkeypatch, capsys, "agent1", "view", "list", "--db", url)
    assert out.splitlines() == [
        "KEY  NAME  OWNER  SHARED  VIEW      FILTER  SORT",
        "8    Hot   lead   SD-L1   all_open  p:1     priority desc",
    ]
    code, out, err = run_as(monkeypatch, capsys, "agent1", "view", "delete", "Hot", "--db", url)
    assert code == 2 and "only its owner may change or delete it" in err and err.count("\n") == 1
    code, out, err = run_as(monkeypatch, capsys, "lead", "view", "delete", "hot", "--db", url)
    assert (code, out) == (0, "deleted view 'Hot'\n")
    assert listed(db, staff["lead"]) == []
