"""The knowledge screens, driven by keys: the Knowledge mode (F8) with its views and filter; an article
written, submitted, refused to its author for publishing (four eyes) and published by someone else; an
article written from a resolved ticket's resolution; a stale save that keeps what was typed; and snapshots
of the list and an article at 80x24 and 160x48 on a small desk built here through the services, at a fixed
clock.

Update the snapshots with ``pytest tests/test_knowledge_screens.py --snapshot-update`` after an intended
change, and look at the SVG files under ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pilot_helpers import Toasts, settle, shows, type_into, type_text, wait_until

from itsm_tui.app import ItsmApp
from itsm_tui.screens.bulk import ConfirmForm
from itsm_tui.screens.knowledge import ArticleForm, ArticleScreen, KnowledgeScreen, NoteForm
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import articles, tickets

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)  # a Friday noon
DAY = timedelta(days=1)
SIZES = [(80, 24), (160, 48)]

VPN_TEXT = "Open the self-service portal.\nChoose Reset [bold]password[/bold] and follow the mail."


def build_desk(db, config, staff) -> dict[str, str]:
    """Four articles in four states (one used by a ticket), a resolved printer ticket and an open one.
    Returns the references by name."""
    agent, net, eng = staff["agent1"], staff["net1"], staff["eng1"]
    refs: dict[str, str] = {}
    with db.session() as s:

        def write(name: str, who, days_ago: float, **fields) -> str:
            ref = articles.create_article(s, config, who, now=NOW - days_ago * DAY, **fields).ref
            refs[name] = ref
            return ref

        vpn = write("vpn", agent, 30, title="Reset a forgotten VPN password", body=VPN_TEXT, service="vpn",
                    category="how-to")  # fmt: skip
        articles.submit(s, config, agent, vpn, now=NOW - 29 * DAY)
        articles.publish(s, config, net, vpn, now=NOW - 28 * DAY)
        mail = write("mail", agent, 5, title="Outlook keeps asking for the password", service="email",
                     body="Remove the stored credential in the Credential Manager.")  # fmt: skip
        articles.submit(s, config, agent, mail, now=NOW - 4 * DAY)
        write("tray", net, 2, title="Printer tray jams on A3", service="workplace", body="Use tray 2 for A3.")
        old = write(
            "old", eng, 90, title="Dial-up settings", body="Modem init string: ATZ.", category="legacy"
        )
        articles.submit(s, config, eng, old, now=NOW - 89 * DAY)
        articles.publish(s, config, net, old, now=NOW - 88 * DAY)
        articles.retire(s, config, net, old, "Nobody dials in any more", now=NOW - 10 * DAY)

        user = tickets.create_ticket(s, config, agent, title="VPN password forgotten", requester="Rita",
                                     service="vpn", now=NOW - 3 * DAY)  # fmt: skip
        tickets.link(s, agent, user.ref, vpn, now=NOW - 3 * DAY)
        printer = tickets.create_ticket(
            s, config, staff["lead"], title="Printer jams on A3 paper", requester="Rita", service="workplace",
            description="The A3 tray jams on every job.", now=NOW - DAY,
        )  # fmt: skip
        refs["printer"] = printer.ref
        refs["open"] = tickets.create_ticket(
            s, config, agent, title="Screen flickers", requester="Kim", now=NOW - DAY
        ).ref
    with db.session() as s:
        tickets.transition(s, config, agent, refs["printer"], "in_progress", now=NOW - DAY)
        tickets.resolve(s, config, agent, refs["printer"], code="workaround", note="Feed A3 from tray 2.",
                        now=NOW - DAY)  # fmt: skip
    return refs


@pytest.fixture
def desk(staff_sqlite, config):
    db, staff = staff_sqlite
    return db, staff, build_desk(db, config, staff)


def console(db, config, actor) -> ItsmApp:
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: NOW)


async def list_shown(pilot) -> KnowledgeScreen:
    app = pilot.app
    await wait_until(
        pilot, lambda: isinstance(app.screen, KnowledgeScreen) and app.screen.up_to_date, "the list"
    )
    assert isinstance(app.screen, KnowledgeScreen)
    return app.screen


async def article_shown(pilot, version: int = 0) -> ArticleScreen:
    app = pilot.app

    def ready() -> bool:
        screen = app.screen
        return (
            isinstance(screen, ArticleScreen)
            and screen.detail is not None
            and screen.detail.version > version
        )

    await wait_until(pilot, ready, "the article")
    assert isinstance(app.screen, ArticleScreen)
    return app.screen


async def form_shown(pilot, kind: type):
    """The form ``kind`` on top, mounted and focused (the keys typed on go to it)."""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, kind) and app.screen.is_mounted, kind.__name__)
    await settle(pilot)
    return app.screen


async def open_article(pilot, ref: str) -> ArticleScreen:
    """F8, all articles, the cursor onto ``ref``, Enter."""
    await pilot.press("f8")
    await list_shown(pilot)
    await pilot.press("5")
    screen = await list_shown(pilot)
    index = [row.ref for row in screen.table.rows].index(ref)
    await pilot.press(*["down"] * index, "enter")
    return await article_shown(pilot)


# --------------------------------------------------------------------------- the list


async def test_f8_lists_the_views_filters_and_opens_an_article_shown_literally(desk, config):
    db, staff, refs = desk
    app = console(db, config, staff["agent1"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f8")
        screen = await list_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs["vpn"]]  # published
        assert shows(app, "Published articles (1)") and shows(app, "Reset a forgotten VPN password")
        assert screen.table.rows[0].uses == 1
        await pilot.press("2")  # my drafts: the agent's article in review
        screen = await list_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs["mail"]] and shows(app, "in review")
        await pilot.press("4")
        screen = await list_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs["old"]] and shows(app, "retired")
        await pilot.press("5")  # all, most recently updated first
        screen = await list_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs[n] for n in ("tray", "mail", "old", "vpn")]
        await pilot.press("slash")
        await type_text(pilot, "password")
        screen = await list_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs["mail"], refs["vpn"]]
        await type_text(pilot, " svc:vpn")
        screen = await list_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs["vpn"]]
        await pilot.press("ctrl+u")  # the filter emptied
        await type_text(pilot, "status:draft")
        screen = await list_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs["tray"]]
        await type_text(pilot, "s")  # refused: one line at the filter, the list kept
        await settle(pilot)
        assert screen.filter_error is not None and "no article status 'drafts'" in screen.filter_error
        assert shows(app, "no article status 'drafts'")
        assert [row.ref for row in screen.table.rows] == [refs["tray"]]
        await pilot.press("ctrl+u")
        await type_text(pilot, "svc:vpn")
        screen = await list_shown(pilot)
        await pilot.press("enter", "enter")  # out of the filter, then open
        article = await article_shown(pilot)
        assert article.ref == refs["vpn"]
        assert shows(app, "Choose Reset [bold]password[/bold] and follow the mail.")  # literally
        assert shows(app, "used by 1 ticket") and shows(app, "VPN password forgotten")
        # An agent publishes nothing: struck through with why, and the key says so.
        assert article.refusal("retire") is not None and article.refusal("edit") is not None


# --------------------------------------------------------------------------- writing and reviewing


async def test_written_by_keys_submitted_refused_to_its_author_and_published_by_another(
    desk, config, monkeypatch
):
    db, staff, refs = desk
    app = console(db, config, staff["net1"])
    async with app.run_test(size=(80, 24)) as pilot:
        toasts = Toasts(app, monkeypatch)
        await pilot.press("f8")
        await list_shown(pilot)
        await pilot.press("n")
        form = await form_shown(pilot, ArticleForm)
        await type_into(pilot, "Map a network drive")
        await pilot.press("tab", "tab")  # past the service, to the category
        await type_into(pilot, "how-to")
        await pilot.press("tab")
        await type_into(pilot, "Open Explorer.\nChoose Map network drive.")
        assert form.text_of("body") == "Open Explorer.\nChoose Map network drive."
        await pilot.press("ctrl+s")
        screen = await article_shown(pilot)
        ref = screen.ref
        assert screen.detail.status == "draft" and screen.detail.category == "how-to"
        assert shows(app, "Choose Map network drive.")
        await pilot.press("s")
        await form_shown(pilot, ConfirmForm)
        await pilot.press("y")
        screen = await article_shown(pilot, 1)
        assert screen.detail.status == "in_review" and shows(app, "in review")
        # Four eyes: the author may not publish it; the actions line strikes it with why, the key says so.
        reason = screen.refusal("publish")
        assert reason is not None and f"You wrote {ref}" in reason
        assert shows(app, "someone else must review and publish it")
        await pilot.press("p")
        await settle(pilot)
        assert app.screen is screen and any(f"You wrote {ref}" in toast for toast in toasts.shown)
    app = console(db, config, staff["eng1"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_article(pilot, ref)
        assert screen.refusal("publish") is None
        await pilot.press("p")
        await form_shown(pilot, ConfirmForm)
        await pilot.press("enter")
        screen = await article_shown(pilot, 2)
        assert (screen.detail.status, screen.detail.reviewer) == ("published", "eng1")
        assert shows(app, "Reviewer eng1")
        await pilot.press("escape")  # another in review goes back to its author, with a note
        screen = await open_article(pilot, refs["mail"])
        await pilot.press("b")
        await form_shown(pilot, NoteForm)
        await type_into(pilot, "Name the Outlook versions it applies to.")
        await pilot.press("ctrl+s")
        screen = await article_shown(pilot, 2)
        assert (screen.detail.status, screen.detail.review_note) == (
            "draft",
            "Name the Outlook versions it applies to.",
        )
        assert shows(app, "Sent back: Name the Outlook versions it applies to.")


async def test_an_article_from_a_resolved_tickets_resolution(desk, config, monkeypatch):
    db, staff, refs = desk
    app = console(db, config, staff["agent1"])
    with db.read_session() as s:
        open_id = tickets.get_ticket(s, refs["open"]).id
        printer_id = tickets.get_ticket(s, refs["printer"]).id
    async with app.run_test(size=(80, 24)) as pilot:
        toasts = Toasts(app, monkeypatch)
        app.open_ticket(open_id)
        await wait_until(
            pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail, "the ticket"
        )
        await pilot.press("A")  # not resolved: the key says why
        await settle(pilot)
        assert isinstance(app.screen, TicketScreen)
        assert any("written from its resolution once it is resolved" in toast for toast in toasts.shown), (
            toasts.shown
        )
        await pilot.press("escape")
        app.open_ticket(printer_id)
        await wait_until(
            pilot,
            lambda: (
                isinstance(app.screen, TicketScreen)
                and app.screen.detail
                and app.screen.ticket_id == printer_id
            ),
            "the resolved ticket",
        )
        ticket_screen = app.screen
        await pilot.press("A")
        form = await form_shown(pilot, ArticleForm)
        assert form.text_of("title") == "Printer jams on A3 paper"
        assert (
            form.text_of("body")
            == "The A3 tray jams on every job.\n\nResolution (workaround):\nFeed A3 from tray 2."
        )
        assert form.choice("service") == "workplace"
        await pilot.press("ctrl+s")
        screen = await article_shown(pilot)
        assert screen.detail.source_ticket == refs["printer"] and screen.detail.uses == 1
        assert shows(app, f"From {refs['printer']}")
        await pilot.press("escape")  # back to the ticket, which links to it now
        await wait_until(pilot, lambda: app.screen is ticket_screen, "the ticket")
        await wait_until(pilot, lambda: screen.ref in ticket_screen.detail.links, "the link")


async def test_a_stale_save_keeps_what_was_typed_and_a_second_save_applies_it(desk, config):
    db, staff, refs = desk
    app = console(db, config, staff["net1"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_article(pilot, refs["tray"])
        shown = screen.detail.version
        await pilot.press("e")
        form = await form_shown(pilot, ArticleForm)
        assert form.focused is form.field("category")  # the first field still empty
        await pilot.press("shift+tab", "shift+tab")  # to the title, its text selected
        await type_into(pilot, "Printer tray jams on A3 paper")
        with db.session() as s:  # someone else saves first
            articles.update_article(s, config, staff["eng1"], refs["tray"], {"category": "hardware"}, now=NOW)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert app.screen is form and "was changed by Eng1" in form.error_shown
        assert form.text_of("title") == "Printer tray jams on A3 paper"  # kept
        await wait_until(pilot, lambda: screen.detail.version > shown, "the reload underneath")
        await pilot.press("ctrl+s")  # over what is shown now
        await wait_until(pilot, lambda: app.screen is screen, "the form closed")
        await wait_until(pilot, lambda: screen.detail.title == "Printer tray jams on A3 paper", "saved")
        assert screen.detail.category == "hardware"  # the other change stays


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_knowledge_list_snapshot(snap_compare, desk, config, size):
    db, staff, _ = desk

    async def run_before(pilot) -> None:
        await pilot.press("f8")
        await list_shown(pilot)
        await pilot.press("5")
        await list_shown(pilot)
        await settle(pilot)

    assert snap_compare(console(db, config, staff["net1"]), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_article_screen_snapshot(snap_compare, desk, config, size):
    db, staff, refs = desk

    async def run_before(pilot) -> None:
        await pilot.press("f8")
        await list_shown(pilot)
        pilot.app.push_screen(ArticleScreen(refs["vpn"]))
        await article_shown(pilot)
        await settle(pilot)

    assert snap_compare(console(db, config, staff["net1"]), terminal_size=size, run_before=run_before)


async def test_the_authors_notification_opens_the_article(desk, config):
    db, staff, refs = desk
    app = console(db, config, staff["agent1"])  # told when net1 published the VPN article
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: shows(app, refs["vpn"]), "the notification")
        await pilot.press("enter")
        screen = await article_shown(pilot)
        assert screen.detail is not None and screen.detail.ref == refs["vpn"]
