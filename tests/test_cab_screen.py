"""The CAB agenda driven by keyboard alone at 80x24: from the calendar (``C``), to the next meeting (``]``),
a change picked and approved with a comment once that meeting is going on, recorded at it; what the guards
refuse, and a decision at a meeting still to come, is not offered (and says why); the minutes written as
Markdown; Enter opens the change, Esc goes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from calendar_data import FIXED, build_calendar
from pilot_helpers import screen_text, settle, type_into, wait_until
from sqlalchemy import select

from itsm_tui.app import ItsmApp
from itsm_tui.models import ChangeApproval, User
from itsm_tui.screens.cab import CabScreen
from itsm_tui.screens.calendar import CalendarScreen
from itsm_tui.screens.change import ChangeScreen, ReasonForm
from itsm_tui.services import changes

# FIXED is Friday 20 March 2026: the meeting now is Tuesday 24 March 10:00 CET (09:00 UTC); the next one,
# after the clocks go forward on the 29th, Tuesday 31 March 10:00 CEST (08:00 UTC).
TUE_24 = datetime(2026, 3, 24, 9, 0, tzinfo=UTC)
TUE_31 = datetime(2026, 3, 31, 8, 0, tzinfo=UTC)
NOT_YET = "the CAB of Tue {} Mar 2026 has not met yet; decisions are recorded at a"  # (wrapped)


def build_cab(db, config, staff) -> dict[str, str]:
    """The calendar's changes (three carried over to the 24th from the 10th) and two changes submitted on
    Monday 23 March, after the cut-off of the 24th: on the agenda of the 31st, assessed (cab1 asked)."""
    refs = build_calendar(db, config, staff)
    monday = datetime(2026, 3, 23, 12, tzinfo=UTC)
    for name, title, hour in (
        ("dns", "Move DNS resolvers", 20),
        ("wifi", "Wi-Fi controller | [b]upgrade[/b]", 22),
    ):
        with db.session() as s:
            ref = changes.create_change(
                s,
                config,
                staff["net1"],
                change_type="normal",
                title=title,
                targets=["network"],
                start=datetime(2026, 4, 4, hour, tzinfo=UTC),
                end=datetime(2026, 4, 4, hour + 1, tzinfo=UTC),
                implementation_plan="Follow the runbook.",
                backout_plan="Roll back.",
                implementer="net1",
                now=monday,
            ).ref
            changes.submit(s, config, staff["net1"], ref, now=monday)
            changes.assess(s, config, staff["chm"], ref, now=monday + timedelta(hours=1))
        refs[name] = ref
    return refs


@pytest.fixture
def desk(staff_sqlite, config):
    db, staff = staff_sqlite
    return db, staff, build_cab(db, config, staff)


def make_app(db, config, actor, clock: list[datetime] | None = None) -> ItsmApp:
    """The console at FIXED, or at ``clock[0]`` (a test moves it)."""
    now = clock if clock is not None else [FIXED]
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: now[0])


def agenda_shown(app, start: datetime) -> bool:
    screen = app.screen
    return (
        isinstance(screen, CabScreen)
        and screen.up_to_date
        and screen.agenda is not None
        and screen.agenda.meeting.start == start
    )


async def open_agenda(pilot, app) -> CabScreen:
    await pilot.press("f3")
    await wait_until(
        pilot, lambda: isinstance(app.screen, CalendarScreen) and app.screen.up_to_date, "calendar"
    )
    await pilot.press("C")
    await wait_until(pilot, lambda: agenda_shown(app, TUE_24), "the agenda of the 24th")
    return app.screen


async def test_approve_at_the_next_meeting_by_keyboard(desk, config):
    db, staff, refs = desk
    clock = [FIXED]
    app = make_app(db, config, staff["cab1"], clock)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_agenda(pilot, app)
        # Carried over from the 10th, by planned start: the switch and firmware (Saturday 21st), mail (26th).
        assert [i.ref for i in screen.agenda.items] == [refs["switch"], refs["firmware"], refs["mail"]]
        text = screen_text(app)
        assert "CAB Tue 24 Mar 2026 09:00-10:30 UTC" in text  # in cab1's zone
        assert "Carried over from the CAB of Tue 10 Mar" in text
        # Planned for Saturday 21st, before the meeting of the 24th: flagged; times labelled with the zone.
        assert "Starts before this meeting: decide it earlier or move it" in text
        assert "Planned Sat 21 Mar 2026 21:30 UTC to Sun 22 Mar 2026 00:30 UTC" in text
        # Friday 20th: the meeting of the 24th is still to come, so nothing is decided at it yet.
        assert NOT_YET.format(24) in text
        assert not screen.check_action("decide", (True,)) and not screen.check_action("decide", (False,))
        await pilot.press("a")
        await settle(pilot)
        assert app.screen is screen  # nothing opened

        await pilot.press("down")  # firmware: submitted, not assessed yet: no decision offered
        await settle(pilot)
        assert screen.current.ref == refs["firmware"]
        assert "awaits assessment" in screen_text(app)

        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: agenda_shown(app, TUE_31), "the agenda of the 31st")
        assert "CAB Tue 31 Mar 2026 08:00-09:30 UTC" in screen_text(app)
        assert [i.ref for i in screen.agenda.items] == [refs["dns"], refs["wifi"]]
        await pilot.press("down")
        await settle(pilot)
        assert screen.current.ref == refs["wifi"]
        assert "Wi-Fi controller | [b]upgrade[/b]" in screen_text(app)  # literally, not as markup
        assert NOT_YET.format(31) in screen_text(app)

        # The meeting of the 31st begins: the undecided of the 10th are carried over to it too.
        clock[0] = TUE_31 + timedelta(minutes=15)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: agenda_shown(app, TUE_31) and len(screen.agenda.items) == 5, "on")
        assert screen.current.ref == refs["wifi"] and "has not met yet" not in screen_text(app)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonForm), "the comment form")
        await type_into(pilot, "Tested in the lab")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: agenda_shown(app, TUE_31) and screen.agenda.decisions, "the decision")
        assert [(d.ref, d.login, d.decision) for d in screen.agenda.decisions] == [
            (refs["wifi"], "cab1", "approved")
        ]
        assert screen.current.ref == refs["wifi"] and screen.current.status == "approved"
        assert "cab1         approved   03-31 08:15 UTC Tested in the lab" in screen_text(app)

    with db.read_session() as s:
        change = changes.get_change(s, refs["wifi"])
        row = s.scalar(
            select(ChangeApproval)
            .join(User, User.id == ChangeApproval.approver_id)
            .where(ChangeApproval.change_id == change.id, User.login == "cab1")
        )
        assert (row.decision, row.reason, row.decided_at, row.meeting) == (
            "approved",
            "Tested in the lab",
            TUE_31 + timedelta(minutes=15),
            TUE_31,
        )
        assert change.state == "approved"


async def test_reject_needs_a_comment_minutes_open_and_back(desk, config, tmp_path, monkeypatch):
    db, staff, refs = desk
    monkeypatch.setattr("itsm_tui.screens.cab.minutes_path", lambda meeting: tmp_path / "minutes.md")
    app = make_app(db, config, staff["cab1"], [TUE_24 + timedelta(minutes=30)])  # during the meeting
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_agenda(pilot, app)
        assert screen.current.ref == refs["switch"]
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonForm), "the comment form")
        await pilot.press("ctrl+s")  # no comment: refused in the form
        await settle(pilot)
        assert isinstance(app.screen, ReasonForm) and app.screen.error_shown is not None
        await type_into(pilot, "Clashes with the firmware upgrade")
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: agenda_shown(app, TUE_24) and screen.agenda.decisions, "the rejection"
        )
        assert screen.current.status == "rejected"

        await pilot.press("m")
        await wait_until(pilot, lambda: screen.last_minutes is not None, "the minutes")
        minutes = (tmp_path / "minutes.md").read_text()
        assert minutes.startswith("# CAB meeting Tue 24 Mar 2026 09:00-10:30 UTC\n")
        assert (
            f"| {refs['switch']} | Replace core switch line card | cab1 | rejected | "
            "Clashes with the firmware upgrade | 2026-03-24 09:30 UTC |"
        ) in minutes
        assert (tmp_path / "minutes.md").stat().st_mode & 0o777 == 0o600

        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), "the change")
        await pilot.press("escape")
        await wait_until(pilot, lambda: agenda_shown(app, TUE_24), "back on the agenda")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen), "back on the calendar")
