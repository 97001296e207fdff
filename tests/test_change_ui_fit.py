"""Change management at 80x24 (and larger), as a viewer in another zone reads it: each maintenance window's
opening time says its own zone, the selected row's line keeps only the key hints that fit (never half of
one), the new-change and move forms say the zone of their times, the change screen and the CAB agenda
label every time with a zone and cut nothing mid-word without an ellipsis, and the notice of an approval
asked again reads as a whole sentence."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from calendar_data import FIXED, build_calendar
from pilot_helpers import screen_lines, screen_text, settle, shows, squash, wait_until

from itsm_tui.app import ItsmApp
from itsm_tui.screens.cab import CabScreen
from itsm_tui.screens.calendar import CalendarScreen
from itsm_tui.screens.change import ChangeScreen, NewChangeForm, ScheduleForm
from itsm_tui.screens.change_windows import WindowsScreen, zone_label
from itsm_tui.services import changes
from itsm_tui.services import users as user_service
from itsm_tui.services.changes.presenter import HistoryItem, _sent_back

BERLIN = "Europe/Berlin"
LONG_REASON = "Finance closes the quarter · and the year, so nothing at all moves in this week, please"
LONG_TITLE = (
    "Replace the core switch line cards in both data centres and re-cable the uplinks to the new "
    "aggregation layer"
)
# What labels a time on these screens: the viewer's zone (or its abbreviation), UTC, a window's own zone.
ZONE_WORDS = ("Berlin", "CET", "CEST", "UTC", "New_York")


def unlabelled_times(lines: list[str]) -> list[str]:
    """The times (HH:MM) on the screen not followed, within a few words, by a zone: the lines joined
    without their frame, so that a line wrapped between a period's end and its zone still counts."""
    text = " ".join(line.strip(" │╭╮╰╯─") for line in lines)
    found = []
    for match in re.finditer(r"\b\d\d:\d\d\b", text):
        after = text[match.end() : match.end() + 26]
        if not any(word in after for word in ZONE_WORDS):
            found.append(text[max(0, match.start() - 20) : match.end() + 26])
    return found


def berlin_app(db, config, actor) -> ItsmApp:
    return ItsmApp(db, config, replace(actor, timezone=BERLIN), run_scheduler=False, clock=lambda: FIXED)


async def to_calendar(pilot, app) -> None:
    await pilot.press("f3")
    await wait_until(
        pilot, lambda: isinstance(app.screen, CalendarScreen) and app.screen.up_to_date, "the calendar"
    )


# --------------------------------------------------------------------------- windows and freezes


def test_a_zone_is_shortened_to_its_place_then_cut_with_an_ellipsis():
    assert zone_label("America/New_York", 11) == "New_York"
    assert zone_label("Europe/Berlin", 11) == "Berlin"
    assert zone_label("Europe/Oslo", 11) == "Europe/Oslo"  # whole when it fits
    assert zone_label("UTC", 11) == "UTC"
    assert zone_label("America/Argentina/Buenos_Aires", 11) == "Buenos_Air…"


async def test_the_windows_list_at_80_columns_says_each_windows_zone_and_fits_its_hints(staff_sqlite, config):
    db, staff = staff_sqlite
    with db.session() as s:
        for service, zone, opens, rule, name in (
            ("crm", "America/New_York", "23:00", "FREQ=WEEKLY;BYDAY=FR", "CRM Friday nights"),
            ("network", BERLIN, "22:00", "FREQ=WEEKLY;BYDAY=SA", "Network weekly window"),
        ):
            changes.add_window(
                s,
                staff["chm"],
                name=name,
                service=service,
                rrule=rule,
                start_local=opens,
                duration_minutes=120,
                timezone=zone,
                config=config,
                valid_until=datetime(2027, 1, 1, tzinfo=UTC),
                now=FIXED,
            )
        for name, start, reason in (
            ("Quarter close", datetime(2026, 3, 30, tzinfo=UTC), LONG_REASON),
            ("Spring freeze", datetime(2026, 3, 25, tzinfo=UTC), "Audit"),
        ):
            changes.add_blackout(
                s,
                staff["chm"],
                name=name,
                start=start,
                end=start + timedelta(days=1),
                reason=reason,
                config=config,
                now=FIXED,
            )
    app = berlin_app(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        await to_calendar(pilot, app)
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WindowsScreen) and app.screen.up_to_date)
        screen = app.screen
        assert isinstance(screen, WindowsScreen)
        lines = screen_lines(app)
        assert lines[2].split() == ["ID", "SERVICE", "OPENS", "(ZONE)", "FOR", "RULE", "NAME"]
        # New York's 23:00 is not the Berlin viewer's: it says so, the rule and the name still show.
        assert lines[3].split()[:6] == ["1", "crm", "23:00", "New_York", "120m", "FREQ=WEEKLY;BYDAY=FR"]
        assert lines[3].rstrip().endswith("CRM Friday nights")
        assert lines[4].split()[2:5] == ["22:00", "Berlin", "120m"]
        assert not unlabelled_times(lines[3:5])

        # The newest blackout first: its reason is too long for the hints; cut with an ellipsis, no hint.
        said = f"1: why: {LONG_REASON}"
        assert lines[-2] == f" {said[:77]}… "
        await pilot.press("down")
        await settle(pilot)
        assert screen_lines(app)[-2].rstrip() == " 2: why: Audit · e edit · d delete"

        await pilot.press("tab")  # the windows' list: the selected one's zone in full, the hints left out
        await settle(pilot)
        assert screen_lines(app)[-2].rstrip() == (
            " 1: opens 23:00 America/New_York; valid from 2026-03-20, until 2026-12-31"
        )
    app = berlin_app(db, config, staff["chm"])
    async with app.run_test(size=(120, 24)) as pilot:
        await to_calendar(pilot, app)
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WindowsScreen) and app.screen.up_to_date)
        await pilot.press("tab")
        await settle(pilot)
        assert screen_lines(app)[-2].rstrip() == (
            " 1: opens 23:00 America/New_York; valid from 2026-03-20, until 2026-12-31 · e edit · d delete"
        )


# --------------------------------------------------------------------------- the forms


async def test_the_new_change_and_move_forms_say_the_zone_of_their_times(staff_sqlite, config):
    db, staff = staff_sqlite
    refs = build_calendar(db, config, staff)

    async def forms(size: tuple[int, int], move: bool) -> None:
        app = berlin_app(db, config, staff["chm"])
        async with app.run_test(size=size) as pilot:
            await to_calendar(pilot, app)
            await pilot.press("n")
            await wait_until(pilot, lambda: isinstance(app.screen, NewChangeForm), "the new-change form")
            assert shows(app, "Times in Europe/Berlin.")
            text = screen_text(app)
            for label in ("Start", "End", "Submit now"):  # the whole form shows, at 80x24 too
                assert label in text
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen), "the calendar")
            if not move:
                return
            start = datetime(2026, 3, 21, 21, 30, tzinfo=UTC)
            app.push_screen(ScheduleForm(refs["switch"], "normal", "assessed", start, None, 3))
            await wait_until(pilot, lambda: isinstance(app.screen, ScheduleForm), "the move form")
            assert shows(app, "Times in Europe/Berlin.") and shows(app, "Start 2026-03-21 22:30")

    await forms((80, 24), move=True)
    await forms((100, 40), move=False)


# --------------------------------------------------------------------------- the notice


def test_an_approval_asked_again_is_said_in_a_whole_sentence():
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    moved = [HistoryItem(at, "chm", "reschedule", "approvals", None, "reset")]
    edited = [HistoryItem(at, "chm", "edit", "approvals", None, "reset")]
    normal = SimpleNamespace(state="assessed", change_type="normal")
    emergency = SimpleNamespace(state="submitted", change_type="emergency")
    assert _sent_back(normal, moved) == [  # type: ignore[arg-type]
        "Approval asked again: chm moved the change at 2026-03-02 09:00 UTC, and an approval holds only for "
        "the window it was given for"
    ]
    assert _sent_back(emergency, edited) == [  # type: ignore[arg-type]
        "Approval asked again: chm edited the change at 2026-03-02 09:00 UTC, and an approval holds only for "
        "the version of the change it was given for"
    ]


# --------------------------------------------------------------------------- the change and the CAB


async def test_the_change_screen_and_the_agenda_label_every_time_and_cut_nothing(staff_sqlite, config):
    db, staff = staff_sqlite
    build_calendar(db, config, staff)
    monday = datetime(2026, 3, 16, 12, tzinfo=UTC)
    with db.session() as s:
        for i in range(6):  # seven CAB members asked about the network
            user_service.add_user(
                s, actor_login="admin1", login=f"cabnet{i}", roles=["cab_member"], groups=["NET-L2"]
            )
    with db.session() as s:
        ref = changes.create_change(
            s,
            config,
            staff["net1"],
            change_type="normal",
            title=LONG_TITLE,
            targets=["network:core-sw-01", "email"],
            start=datetime(2026, 3, 21, 22, tzinfo=UTC),
            end=datetime(2026, 3, 22, 2, tzinfo=UTC),
            implementation_plan="Follow the runbook.",
            backout_plan="Roll back.",
            implementer="net1",
            now=monday,
        ).ref
        changes.submit(s, config, staff["net1"], ref, now=monday)
        changes.assess(s, config, staff["chm"], ref, now=monday + timedelta(hours=1))
        changes.approve(s, config, staff["cab1"], ref, reason="Tested in the lab", now=FIXED)
    app = berlin_app(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(ChangeScreen(ref))
        await wait_until(
            pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view, "the change"
        )
        pages = [screen_lines(app)]
        for _ in range(3):
            await pilot.press("pagedown")
            await settle(pilot)
            pages.append(screen_lines(app))
        assert squash(LONG_TITLE) in squash("".join(line.strip("│") for line in pages[0][:5]))  # wrapped
        for page in pages:
            assert not unlabelled_times(page)
        shown = squash("".join(line.strip("│") for page in pages for line in page))
        assert squash("cab1 approved 2026-03-20 13:00 CET Tested in the lab") in shown
        await pilot.press("escape")

        await to_calendar(pilot, app)
        await pilot.press("C")
        await wait_until(pilot, lambda: isinstance(app.screen, CabScreen) and app.screen.up_to_date, "agenda")
        lines = screen_lines(app)
        # Too narrow for the counts and the tag: the counts give way whole, the tag stays whole.
        assert lines[1].rstrip() == " CAB Tue 24 Mar 2026 10:00-11:30 Europe/Berlin  4 changes  next meeting"
        for _ in range(4):
            assert not unlabelled_times(screen_lines(app)[1:-1])
            await pilot.press("down")
            await settle(pilot)
    app = berlin_app(db, config, staff["chm"])
    async with app.run_test(size=(120, 30)) as pilot:
        await to_calendar(pilot, app)
        await pilot.press("C")
        await wait_until(pilot, lambda: isinstance(app.screen, CabScreen) and app.screen.up_to_date, "agenda")
        lines = screen_lines(app)
        assert lines[1].rstrip() == (
            " CAB Tue 24 Mar 2026 10:00-11:30 Europe/Berlin  4 changes, 0 decisions  next meeting"
        )
        assert "Planned" in lines[2] and "03-21 22:30 CET" in lines[3]  # the list's planned start, labelled
        assert not unlabelled_times(lines[1:-1])
