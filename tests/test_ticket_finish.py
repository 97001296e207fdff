"""The ticket screen's fit and finish: links both ways and followed, the conversation alone, rating comments,
no internal ids in the timeline, times labelled with their zone where zones mix, business durations said,
F5 the inbox everywhere, footers and the queue's bar whole at 80x24, the inbox's detail line, the KPI board's
focus, the calendar's `n` for whom may raise a change, and the demo's names."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from pilot_helpers import screen_text, settle, squash, wait_until
from rich.console import Console
from sqlalchemy import event, text
from textual.widgets import OptionList, Static
from textual.widgets._footer import FooterKey

from itsm_tui.app import ItsmApp
from itsm_tui.demo.roster import roster
from itsm_tui.models import Problem
from itsm_tui.screens.calendar import CalendarScreen
from itsm_tui.screens.change import ChangeScreen
from itsm_tui.screens.help import HelpScreen
from itsm_tui.screens.inbox import InboxScreen
from itsm_tui.screens.kpi import KpiScreen
from itsm_tui.screens.links import LinkPicker
from itsm_tui.screens.problems import ProblemScreen
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import changes, notifications, tickets
from itsm_tui.services.access import PermissionDenied

SIZE = (80, 24)
OPENED = datetime(2026, 11, 18, 10, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Berlin (office hours 08-18)
NOW = datetime(2026, 11, 18, 12, 30, tzinfo=UTC)  # 13:30 in Berlin: two business hours later
LONG = "INC0000001 assigned to you: " + "printer on the third floor jams on every page " * 2 + "END"


def plain(renderable, width: int = 78) -> str:
    """A renderable as the text it prints (a widget's whole content, scrolled out of sight or not)."""
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.file.getvalue()


def timeline_text(screen: TicketScreen) -> str:
    return plain(screen.render_timeline(screen.detail))


def fields_text(screen: TicketScreen) -> str:
    return plain(screen.render_fields(screen.detail))


@pytest.fixture
def linked_desk(staff_sqlite, config):
    """Ticket A (P4: office hours in Berlin, unassigned), linked to a problem; ticket B (P1, 24x7 in UTC,
    worked by the lead, resolved and rated with a comment) links to A."""
    db, staff = staff_sqlite
    lead = staff["lead"]
    with db.session() as s:
        s.add(Problem(ref="PRB0000001", title="Printers drop jobs", status="investigating", opened_at=OPENED))
        a = tickets.create_ticket(
            s,
            config,
            lead,
            title="Printer jams",
            requester="Rita",
            impact="low",
            urgency="medium",
            now=OPENED,
        )
        b = tickets.create_ticket(
            s, config, lead, title="Mail down", requester="Otto", impact="high", urgency="high",
            now=datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
        )  # fmt: skip
        ids = {"a": a.id, "b": b.id, "a_ref": a.ref, "b_ref": b.ref}
    with db.session() as s:
        tickets.link(s, lead, ids["a_ref"], "prb1", now=OPENED)
        at = datetime(2026, 11, 18, 9, 10, tzinfo=UTC)
        tickets.transition(s, config, lead, ids["b_ref"], "in_progress", now=at)
        tickets.add_entry(s, config, lead, ids["b_ref"], body="Restarting the relay", public=True, now=at)
        tickets.add_entry(
            s, config, lead, ids["b_ref"], body="Relay queue was full", public=False,
            now=datetime(2026, 11, 18, 9, 20, tzinfo=UTC),
        )  # fmt: skip
        tickets.link(s, lead, ids["b_ref"], ids["a_ref"], now=datetime(2026, 11, 18, 9, 30, tzinfo=UTC))
        tickets.resolve(
            s, config, lead, ids["b_ref"], code="fixed", note="Relay restarted",
            now=datetime(2026, 11, 18, 10, 0, tzinfo=UTC),
        )  # fmt: skip
        tickets.rate(
            s, lead, ids["b_ref"], score=4, comment="Fixed fast, thanks",
            now=datetime(2026, 11, 18, 11, 0, tzinfo=UTC),
        )  # fmt: skip
        notifications.notify(
            s, [lead.id], kind="assigned", event_key="test-long", entity=("ticket", ids["a"]), message=LONG,
            now=datetime(2026, 11, 18, 12, 0, tzinfo=UTC),
        )  # fmt: skip
    return db, staff, ids


# --------------------------------------------------------------------------- the services


def test_links_show_on_both_records_and_pages_list_them(linked_desk):
    db, _, ids = linked_desk
    with db.read_session() as s:
        of_a = tickets.linked_records(s, "ticket", ids["a"])
        of_b = tickets.linked_records(s, "ticket", ids["b"])
        page = tickets.record_page(s, "prb0000001")
    assert [(r.ref, r.kind, r.outgoing) for r in of_a] == [
        ("PRB0000001", "problem", True),
        (ids["b_ref"], "ticket", False),
    ]
    assert [(r.ref, r.title, r.outgoing) for r in of_b] == [(ids["a_ref"], "Printer jams", True)]
    assert page.title == "Printers drop jobs" and ("Status", "investigating") in page.fields
    assert [(r.ref, r.outgoing) for r in page.linked] == [(ids["a_ref"], False)]


def test_the_link_queries_use_their_indexes(linked_desk):
    """Both ways of a record's links are read from an index (the pair's unique one, and the target's)."""
    db, _, ids = linked_desk
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "FROM links" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.read_session() as s:
            tickets.linked_records(s, "ticket", ids["a"])
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(seen) == 2
    plans = []
    with db.engine.connect() as conn:
        for statement, parameters in seen:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            plans.append(" ".join(str(row[-1]) for row in rows))
    assert "USING INDEX uq_links_pair" in plans[0] or "sqlite_autoindex_links" in plans[0], plans[0]
    assert "USING INDEX ix_links_target" in plans[1], plans[1]
    assert all("SCAN links" not in plan for plan in plans), plans


def test_the_timeline_holds_no_entry_ids_and_shows_the_rating_comment(linked_desk):
    db, _, ids = linked_desk
    with db.read_session() as s:
        items = tickets.timeline(s, tickets.get_ticket(s, ids["b_ref"]))
        entry_ids = [row[0] for row in s.execute(text("SELECT id FROM ticket_entries")).all()]
    said = [(item.kind, item.by, item.text) for item in items if item.kind != "audit"]
    assert said == [
        ("rating", "Otto", "rated 4 of 5: Fixed fast, thanks"),
        ("note", "lead", "Relay queue was full"),
        ("reply", "lead", "Restarting the relay"),
    ]
    audits = [item.text for item in items if item.kind == "audit"]
    # The audit rows of the reply, the note and the rating ("reply entry: - -> 2") are those items.
    assert audits and not any(re.search(r"\bentry\b|\brating\b", line) for line in audits), audits
    assert not any(line.startswith(("reply", "note", "rate")) for line in audits), audits
    assert len(entry_ids) == 2


def test_only_whom_the_guard_lets_raise_a_change_is_offered_it(staff_sqlite, config):
    _, staff = staff_sqlite
    assert changes.create_refusal(staff["lead"]) is None
    refusal = changes.create_refusal(staff["analyst1"])
    assert refusal is not None and "raise a change" in refusal
    with pytest.raises(PermissionDenied) as refused:
        changes.guard_create(staff["analyst1"])
    assert str(refused.value) == refusal


def test_the_demos_names_are_peoples_names():
    people = roster("root")  # root's account has no person's name: a generated one
    names = [name for _, name, *_ in people]
    assert len(set(names)) == len(names)  # nobody shares a name
    for name in names:
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", name), name
    by_login = {login: name for login, name, *_ in people}
    assert by_login["mlopez"] == "Maria Lopez"
    for role_word in ("Admin", "Problem", "Change", "Deputy", "Process", "Analyst", "Demo", "you"):
        assert not any(role_word in name.split() for name in names), role_word


# --------------------------------------------------------------------------- the console


def footer_fits(app) -> tuple[bool, list[str]]:
    """Whether the footer's keys all lie whole inside the terminal, left of the palette's key; and their
    descriptions."""
    keys = list(app.screen.query(FooterKey))
    palette = [key for key in keys if key.has_class("-command-palette")]
    edge = palette[0].region.x if palette else app.size.width
    own = [key for key in keys if not key.has_class("-command-palette")]
    whole = all(key.region.right <= edge and key.region.width > 0 for key in own)
    return whole, [key.description for key in own]


async def test_the_ticket_screen_links_zones_durations_conversation_and_f5(linked_desk, config):
    db, staff, ids = linked_desk
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        app.open_ticket(ids["a"])
        await wait_until(
            pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail, "ticket A"
        )
        a = app.screen
        shown = squash(fields_text(a))
        # The lead reads UTC; A's business hours are Berlin's: every time says its zone. Opened 10:30 UTC;
        # response 8 business hours: 6.5 on Wednesday (11:30-18:00 Berlin), 1.5 on Thursday -> 09:30 Berlin;
        # resolution 48: 6.5 + 10 + 9 (Friday to 17:00) + 10 + 10 + 2.5 on Wednesday 25th -> 10:30 Berlin.
        assert squash("Opened 2026-11-18 10:30 UTC") in shown
        assert squash("due 11-19 08:30 UTC  6h00m business left") in shown  # 4.5 h + 1.5 h from 13:30
        assert squash("due 11-25 09:30 UTC  1d22h business left") in shown  # 48 h - 2 h = 46 h
        assert squash("Zones yours UTC; desk hours Europe/Berlin") in shown
        assert squash(f"Links PRB0000001, {ids['b_ref']} (links here)") in shown
        times = re.findall(r"\d\d-\d\d \d\d:\d\d(?: [A-Z]+)?", timeline_text(a))
        assert len(times) == len(a.detail.timeline) and all(time.endswith(" UTC") for time in times), times
        whole, described = footer_fits(app)
        assert whole and "Help" in described

        await pilot.press("f")  # two links: the list
        await wait_until(pilot, lambda: isinstance(app.screen, LinkPicker), "the links")
        assert "PRB0000001problem" in squash(screen_text(app)) and "(linkshere)" in squash(screen_text(app))
        await pilot.press("enter")  # the problem, on its screen, with the ticket linked to it
        await wait_until(
            pilot, lambda: isinstance(app.screen, ProblemScreen) and app.screen.detail, "the problem"
        )
        assert squash(f"{ids['a_ref']} new") in squash(screen_text(app))
        assert "Printersdropjobs" in squash(screen_text(app))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is a, "ticket A again")

        await pilot.press("f", "down", "enter")  # B, which links to A
        await wait_until(
            pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen is not a and app.screen.detail,
            "ticket B",
        )  # fmt: skip
        b = app.screen
        shown = fields_text(b)
        assert b.detail.view.ref == ids["b_ref"]
        assert squash(f"Links {ids['a_ref']}") in squash(shown) and "links here" not in shown
        # B counts every hour (24x7 in UTC) and the lead, UTC too, has it: one zone, no labels.
        assert "Opened    2026-11-18 09:00" in shown and "UTC" not in shown and "Zones" not in shown

        everything = timeline_text(b)
        assert "rated 4 of 5: Fixed fast, thanks" in everything and "audit" in everything
        assert "entry" not in everything
        await pilot.press("v")
        await settle(pilot)
        talk = plain(b.query_one("#ticket-timeline", Static).content)
        assert "Conversation only, newest first (3 of" in talk
        assert "audit" not in talk
        kinds = [line.split()[2] for line in talk.splitlines()[1:] if line.strip()]
        assert kinds == ["rating", "note", "reply"]
        await pilot.press("v")
        await settle(pilot)
        assert "Timeline, newest first" in plain(b.query_one("#ticket-timeline", Static).content)

        with db.session() as s:  # someone adds a note; ctrl+r reloads (F5 no longer does)
            tickets.add_entry(
                s, config, staff["agent1"], ids["b_ref"], body="Seen again", public=False, now=NOW
            )
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "Seen again" in timeline_text(b), "the reload")
        assert app.current_mode == "queue"

        await pilot.press("f5")  # the inbox, from the ticket screen
        await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "the inbox")
        inbox = app.screen
        await wait_until(pilot, lambda: getattr(inbox, "rows", None), "the notifications")
        detail = squash(plain(inbox.query_one("#inbox-detail", Static).content))
        assert squash(LONG) in detail and squash("assigned, 2026-11-18 12:00 UTC, unread") in detail
        lines = screen_text(app).splitlines()
        row = next(line for line in lines if LONG[:30] in line)  # cut where the width ends, and says so
        assert row.rstrip().endswith("…") and len(row) == 80
        assert "END" in "\n".join(lines[-5:])
        whole, described = footer_fits(app)
        assert whole and "Help" in described


async def test_footers_the_queue_bar_the_kpi_focus_and_the_calendars_new_at_80x24(linked_desk, config):
    db, staff, _ = linked_desk
    with db.session() as s:
        change_id = changes.create_change(
            s, config, staff["lead"], change_type="normal", title="Swap a line card",
            targets=["network:core-sw-01"], start=datetime(2026, 11, 21, 22, 0, tzinfo=UTC),
            end=datetime(2026, 11, 21, 23, 0, tzinfo=UTC), implementation_plan="Swap it.",
            backout_plan="Put it back.", implementer="net1", now=NOW,
        ).id  # fmt: skip
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue")
        await pilot.press("2")  # the longest view name
        await settle(pilot)
        bar = app.screen.query_one("#queue-bar", Static)
        text = plain(bar.content, width=200).strip()
        assert text.startswith("Unassigned in my groups (") and len(text) <= 78, text
        assert not text.endswith("[") and "]" in text  # whole hints only
        whole, described = footer_fits(app)
        assert whole and described[0] == "Open" and "Help" in described

        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, KpiScreen) and app.screen.loads, "the board")
        figures = app.screen.query_one("#kpi-figures", OptionList)
        assert app.focused is figures  # arrows and Enter work at once
        await pilot.press("down")
        assert figures.highlighted == 1
        assert footer_fits(app)[0]

        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen), "the calendar")
        await settle(pilot)
        assert "New" in footer_fits(app)[1] and footer_fits(app)[0]

        app.open_change(change_id)  # a change (a modal over the calendar): F5 is the inbox there too
        await wait_until(
            pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view, "the change"
        )
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, InboxScreen), "the inbox")


async def test_the_calendar_does_not_offer_new_to_an_analyst(linked_desk, config):
    db, staff, _ = linked_desk
    app = ItsmApp(db, config, staff["analyst1"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue")
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen), "the calendar")
        calendar = app.screen
        await settle(pilot)
        whole, described = footer_fits(app)
        assert whole and "New" not in described and "Today" in described
        await pilot.press("n")
        await settle(pilot)
        assert app.screen is calendar  # no form
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        assert "New" not in [description for _, description in app.screen.rows()]
