"""The problem screens, driven by keys: the Problems mode (F7) with its views, filter and candidate problems;
one problem's screen with its analysis, known error, resolution (and the linked incidents resolved with it)
and closing; a stale save that keeps what was typed; and snapshots of both screens at 80x24 and 160x48 on a
small desk built here through the services, at a fixed clock.

Update the snapshots with ``pytest tests/test_problem_screens.py --snapshot-update`` after an intended
change, and look at the SVG files under ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pilot_helpers import Toasts, screen_text, settle, shows, type_into, type_text, wait_shown, wait_until

from itsm_tui.app import ItsmApp
from itsm_tui.screens.formscreen import FormScreen
from itsm_tui.screens.problems import AnalysisForm, EditProblemForm, ProblemScreen, ProblemsScreen, StepForm
from itsm_tui.services import problems, tickets

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)  # a Friday noon
DAY = timedelta(days=1)
SIZES = [(80, 24), (160, 48)]


def build_desk(db, config, staff) -> dict[str, str]:
    """A small desk: four problems in four states, their incidents, and a cluster of six VPN incidents that
    no problem covers yet (a candidate). Returns the references by name."""
    agent, prm, net = staff["agent1"], staff["prm"], staff["net1"]
    refs: dict[str, str] = {}
    with db.session() as s:

        def incident(name: str, title: str, service: str, ci: str, category: str, days_ago: float) -> str:
            at = NOW - days_ago * DAY
            ticket = tickets.create_ticket(
                s, config, agent, title=title, requester="Ann Example", service=service, ci=ci,
                category=category, opened_at=at, now=at,
            )  # fmt: skip
            refs[name] = ticket.ref
            return ticket.ref

        mail = [
            incident(f"mail{n}", f"Mail stuck in outbox ({n})", "email", "mx-01", "outage", 9 - n)
            for n in (1, 2, 3)
        ]
        for n in range(1, 7):
            incident(
                f"vpn{n}", f"VPN drops every few minutes ({n})", "vpn", "vpn-gw-01", "network", 6 - n / 2
            )
        printer = incident("print1", "Print jobs hang", "workplace", "print-srv-01", "hardware", 30)

        def raise_problem(name: str, days_ago: float, **fields) -> str:
            problem = problems.create_problem(s, config, prm, now=NOW - days_ago * DAY, **fields)
            refs[name] = problem.ref
            return problem.ref

        mail_prb = raise_problem(
            "mail", 8, title="Mail delivery delays on mx-01", service="email", ci="mx-01", category="outage",
            impact="high", urgency="medium", owner="prm", incidents=mail,
            description="Outbound mail queues on mx-01 for up to an hour, several times a day.",
        )  # fmt: skip
        problems.start_investigation(s, config, prm, mail_prb, now=NOW - 7 * DAY)
        printer_prb = raise_problem(
            "printer", 25, title="Printer queue stalls after driver update", service="workplace",
            ci="print-srv-01", category="hardware", owner="net1", incidents=[printer],
        )  # fmt: skip
        problems.update_problem(
            s, config, net, printer_prb,
            {"root_cause": "The spooler's new driver leaks handles.", "workaround": "Restart the spooler."},
            now=NOW - 20 * DAY,
        )  # fmt: skip
        problems.publish_known_error(s, config, net, printer_prb, now=NOW - 20 * DAY)
        raise_problem("erp", 2, title="ERP slow at month end", service="erp", impact="medium", urgency="low")
        sso = raise_problem("sso", 60, title="SSO tokens expire early", service="identity", category="access")
        problems.cancel(s, config, prm, sso, reason="Vendor patch fixed it", now=NOW - 50 * DAY)
    return refs


@pytest.fixture
def desk(staff_sqlite, config):
    db, staff = staff_sqlite
    return db, staff, build_desk(db, config, staff)


def console(db, config, actor) -> ItsmApp:
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: NOW)


async def problems_shown(pilot) -> ProblemsScreen:
    app = pilot.app
    await wait_until(
        pilot, lambda: isinstance(app.screen, ProblemsScreen) and app.screen.up_to_date, "the list"
    )
    screen = app.screen
    assert isinstance(screen, ProblemsScreen)
    return screen


async def problem_shown(pilot, version: int | None = None) -> ProblemScreen:
    app = pilot.app

    def ready() -> bool:
        screen = app.screen
        return (
            isinstance(screen, ProblemScreen)
            and screen.detail is not None
            and (version is None or screen.detail.version >= version)
        )

    await wait_until(pilot, ready, "the problem")
    screen = app.screen
    assert isinstance(screen, ProblemScreen)
    return screen


async def open_problem(pilot, ref: str) -> ProblemScreen:
    """From the list (all problems, newest first), the cursor onto ``ref``, Enter."""
    screen = await problems_shown(pilot)
    await pilot.press("4")
    screen = await problems_shown(pilot)
    index = [row.ref for row in screen.table.rows].index(ref)
    await pilot.press(*["down"] * index, "enter")
    return await problem_shown(pilot)


async def form_shown(pilot, kind: type) -> FormScreen:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, kind), kind.__name__)
    return app.screen  # type: ignore[return-value]


async def save(pilot, screen: ProblemScreen, key: str = "ctrl+s") -> None:
    """Save the form (``key``); then the form closed and the problem is shown at a newer version."""
    version = screen.detail.version if screen.detail else 0
    await pilot.press(key)
    try:
        await wait_until(
            pilot,
            lambda: (
                pilot.app.screen is screen and screen.detail is not None and screen.detail.version > version
            ),
            "the save",
            timeout=10,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{screen_text(pilot.app)}") from None


# --------------------------------------------------------------------------- the list


async def test_f7_shows_the_views_the_filter_refuses_a_bad_token_and_a_refused_key_says_why(
    desk, config, monkeypatch
):
    db, staff, refs = desk
    app = console(db, config, staff["agent1"])
    async with app.run_test(size=(80, 24)) as pilot:
        toasts = Toasts(app, monkeypatch)
        await pilot.press("f7")
        screen = await problems_shown(pilot)
        # Open by priority: the P2 mail problem first, the cancelled one left out.
        assert [row.ref for row in screen.table.rows] == [refs["mail"], refs["printer"], refs["erp"]]
        assert shows(app, "Open by priority (3)")
        assert shows(app, "Mail delivery delays on mx-01") and shows(app, "investigating")
        await pilot.press("3")  # known errors: the printer problem's
        screen = await problems_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs["printer"]]
        assert screen.table.rows[0].known_error is not None and shows(app, screen.table.rows[0].known_error)
        await pilot.press("4")  # all, newest first
        screen = await problems_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs[n] for n in ("sso", "erp", "printer", "mail")]
        await pilot.press("1")  # mine: an agent owns none
        screen = await problems_shown(pilot)
        assert screen.table.rows == [] and shows(app, "No problems in this view.")
        await pilot.press("2", "slash")
        await type_text(pilot, "svc:email")
        screen = await problems_shown(pilot)
        assert [row.ref for row in screen.table.rows] == [refs["mail"]]
        await type_text(pilot, " p:9")  # refused: one line beside the filter, the list kept
        await settle(pilot)
        assert screen.filter_error == "p: takes a priority 1 to 5, not '9'"
        assert shows(app, "p: takes a priority 1 to 5, not '9'")
        assert [row.ref for row in screen.table.rows] == [refs["mail"]]
        await pilot.press("enter")  # out of the filter, to the list
        # An agent may not raise a problem: the key says which roles may.
        await pilot.press("n")
        await settle(pilot)
        assert any("problem_manager" in toast for toast in toasts.shown), toasts.shown
        assert not isinstance(app.screen, FormScreen)


async def test_a_candidate_becomes_a_problem_with_all_its_incidents(desk, config):
    db, staff, refs = desk
    app = console(db, config, staff["prm"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f7")
        await problems_shown(pilot)
        await pilot.press("5")
        screen = await problems_shown(pilot)
        # The six VPN incidents: once by their CI, once by their service and category.
        assert sorted(row.key for row in screen.table.rows) == ["ci:vpn-gw-01", "svc:vpn/network"]
        assert shows(app, "Repeated incidents on vpn-gw-01") or shows(app, "Repeated vpn / network")
        key = screen.table.rows[0].key
        await pilot.press("enter")
        form = await form_shown(pilot, StepForm)
        assert "the 6 incidents of" in form.question
        await pilot.press("y")
        problem = await problem_shown(pilot)
        detail = problem.detail
        assert detail is not None and detail.incidents_total == 6
        assert {i.ref for i in detail.incidents} == {refs[f"vpn{n}"] for n in range(1, 7)}
        assert shows(app, "Linked incidents (6, 6 open)")
        assert (detail.ci == "vpn-gw-01") == (key == "ci:vpn-gw-01")
        await pilot.press("escape")  # back: the cluster is covered now, no candidate is left
        screen = await problems_shown(pilot)
        assert screen.table.rows == []


# --------------------------------------------------------------------------- one problem


async def test_the_analysis_is_recorded_then_the_known_error_published(desk, config):
    db, staff, refs = desk
    app = console(db, config, staff["prm"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f7")
        screen = await open_problem(pilot, refs["mail"])
        assert shows(app, "Root cause -") and shows(app, "Linked incidents (3, 3 open)")
        # Not yet: no root cause, no workaround (struck through on the actions line, the key says why).
        assert "no root cause yet" in (screen.refusal("publish") or "")
        await pilot.press("a")
        form = await form_shown(pilot, AnalysisForm)
        await type_into(pilot, "Spool disk full")
        await pilot.press("tab")
        await type_into(pilot, "Queue stalls\nDisk full\nNo log rotation")
        await pilot.press("tab")
        await type_into(pilot, "technology, process")
        await pilot.press("tab")
        await type_into(pilot, "Free the spool")
        await pilot.press("tab")
        await type_into(pilot, "Rotate logs")
        await save(pilot, screen)
        detail = screen.detail
        assert detail.root_cause == "Spool disk full"
        assert detail.whys == ("Queue stalls", "Disk full", "No log rotation")
        assert detail.cause_categories == ("process", "technology")  # in the vocabulary's order
        assert detail.permanent_fix == "Rotate logs"
        assert shows(app, "1. Queue stalls") and shows(app, "3. No log rotation")
        await pilot.press("p")
        form = await form_shown(pilot, FormScreen)
        assert form.text_of("symptom") == detail.description  # prefilled
        await save(pilot, screen)
        detail = screen.detail
        assert detail.status == "known_error" and detail.known_errors[0].status == "published"
        assert shows(app, "known error")  # the status, in the header
        await pilot.press("pagedown")
        assert shows(app, f"{detail.known_errors[0].ref} published")
        assert screen.refusal("publish") is not None


async def test_resolving_offers_the_open_incidents_and_closing_shows_incidents_since_the_fix(
    db, staff, config, monkeypatch
):
    """On SQLite and PostgreSQL: the problem resolved, the offer lists its three open incidents; one changed
    meanwhile is refused (the summary says which and why), the two others are resolved with the fix. An
    incident opened after the fix shows beside the verification, and the close records it."""
    refs = build_desk(db, config, staff)
    prm = staff["prm"]
    with db.session() as s:
        problems.update_problem(
            s, config, prm, refs["mail"], {"root_cause": "Full spool disk", "permanent_fix": "Rotate logs"},
            now=NOW,
        )  # fmt: skip
        problems.start_fix(s, config, prm, refs["mail"], now=NOW)
    app = console(db, config, prm)
    async with app.run_test(size=(80, 24)) as pilot:
        toasts = Toasts(app, monkeypatch)
        await pilot.press("f7")
        screen = await open_problem(pilot, refs["mail"])
        assert shows(app, "fix in progress")
        await pilot.press("r")
        await form_shown(pilot, StepForm)
        await pilot.press("enter")
        offer = await form_shown(pilot, StepForm)
        assert "Resolve the 3 open linked incidents too" in offer.question
        assert all(refs[f"mail{n}"] in offer.detail for n in (1, 2, 3))
        with db.session() as s:  # someone works one of them meanwhile
            tickets.add_entry(
                s, config, staff["agent1"], refs["mail2"], body="Still stuck", public=False, now=NOW
            )
        await pilot.press("y")
        await wait_until(pilot, lambda: bool(screen.last_bulk_summary), "the incidents resolved")
        summary = screen.last_bulk_summary
        assert summary.startswith(f"Linked incidents: 2 done, 1 refused: {refs['mail2']} (")
        assert any(summary == toast for toast in toasts.shown)
        await settle(pilot)
        assert screen.detail.status == "resolved" and screen.detail.incidents_open == 1
        assert shows(app, "incidents since the fix: 0")
        with db.session() as s:  # it comes back after the fix
            later = tickets.create_ticket(
                s, config, staff["agent1"], title="Mail stuck again", requester="Ann Example",
                service="email", ci="mx-01", category="outage", now=NOW + timedelta(hours=1),
            )  # fmt: skip
            problems.link_incidents(s, config, prm, refs["mail"], [later.ref], now=NOW + timedelta(hours=1))
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.detail.incidents_since_fix == 1, "the reload")
        await pilot.press("c")
        form = await form_shown(pilot, FormScreen)
        assert form.note and "Incidents since the fix: 1" in form.note
        await type_into(pilot, "Quiet for a week")
        await save(pilot, screen)
        assert screen.detail.status == "closed"
        assert screen.detail.verification == "Quiet for a week"


async def test_a_stale_save_keeps_what_was_typed_and_a_second_save_applies_it(desk, config):
    db, staff, refs = desk
    app = console(db, config, staff["prm"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f7")
        screen = await open_problem(pilot, refs["erp"])
        shown_version = screen.detail.version
        await pilot.press("e")
        form = await form_shown(pilot, EditProblemForm)
        await pilot.press("shift+tab", "shift+tab", "end")  # from the CI (the empty field) to the title
        await type_into(pilot, " (batch jobs)")
        with db.session() as s:  # someone else saves first
            problems.update_problem(s, config, staff["net1"], refs["erp"], {"ci": "erp-db-01"}, now=NOW)
        await pilot.press("ctrl+s")
        try:
            await wait_until(pilot, lambda: form.error_shown is not None, "the refusal", timeout=8)
        except AssertionError:
            raise AssertionError(screen_text(app)) from None
        assert app.screen is form and "was changed by Net1 (net1)" in form.error_shown
        assert form.text_of("title") == "ERP slow at month end (batch jobs)"  # kept
        await wait_until(pilot, lambda: screen.detail.version > shown_version, "the reload underneath")
        await pilot.press("ctrl+s")  # over what is shown now
        await wait_until(pilot, lambda: app.screen is screen, "the form closed")
        await wait_until(pilot, lambda: screen.detail.title == "ERP slow at month end (batch jobs)", "saved")
        assert screen.detail.ci == "erp-db-01"  # the other change stays


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_problem_list_snapshot(snap_compare, desk, config, size):
    db, staff, _ = desk

    async def run_before(pilot) -> None:
        await pilot.press("f7")
        await problems_shown(pilot)
        await settle(pilot)

    assert snap_compare(console(db, config, staff["prm"]), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_problem_screen_snapshot(snap_compare, desk, config, size):
    db, staff, refs = desk

    async def run_before(pilot) -> None:
        await pilot.press("f7")
        await problems_shown(pilot)
        pilot.app.push_screen(ProblemScreen(refs["printer"]))
        await problem_shown(pilot)
        await settle(pilot)

    assert snap_compare(console(db, config, staff["prm"]), terminal_size=size, run_before=run_before)


async def test_a_notification_and_a_tickets_link_open_the_problem_screen(desk, config):
    db, staff, refs = desk
    with db.session() as s:  # agent2 links an incident: the owner (prm) is told
        problems.link_incidents(s, config, staff["agent2"], refs["mail"], [refs["vpn1"]], now=NOW)
        vpn1 = tickets.get_ticket(s, refs["vpn1"]).id
    app = console(db, config, staff["prm"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await wait_shown(pilot, f"1 incident(s) linked to {refs['mail']}")
        await pilot.press("enter")
        screen = await problem_shown(pilot)
        assert screen.detail is not None and screen.detail.ref == refs["mail"]
        await pilot.press("escape")
        app.open_ticket(vpn1)
        await wait_shown(pilot, refs["vpn1"])
        await pilot.press("f")  # its one link: the problem, on the problem's screen
        screen = await problem_shown(pilot)
        assert screen.detail is not None and screen.detail.ref == refs["mail"]
