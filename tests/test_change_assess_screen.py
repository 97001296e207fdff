"""The change screen's asking forms driven by keyboard at 80x24 (SQLite): ``e`` opens the risk questionnaire
with the desk's suggestions marked, the score follows the answers as they change and saving keeps score,
answers and risk; ``a`` asks for a comment and approves only on the save key; ``z`` asks before closing."""

from __future__ import annotations

import json

import pytest
from calendar_data import FIXED, build_calendar
from pilot_helpers import screen_text, settle, type_into, wait_until
from sqlalchemy import select
from textual.widgets._select import SelectOverlay

from itsm_tui.app import ItsmApp
from itsm_tui.models import ChangeApproval, User
from itsm_tui.screens.calendar import CalendarScreen
from itsm_tui.screens.change import ChangeScreen
from itsm_tui.screens.change_assess import ApproveForm, AssessForm, CloseForm
from itsm_tui.services import changes


@pytest.fixture
def desk(staff_sqlite, config):
    db, staff = staff_sqlite
    return db, staff, build_calendar(db, config, staff)


def make_app(db, config, actor) -> ItsmApp:
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED)


def shown(app) -> str:
    return " ".join(screen_text(app).split())


def stored(db, ref):
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        return change.state, change.risk, change.risk_score, change.risk_answers, change.version


async def open_change(pilot, app, ref: str) -> ChangeScreen:
    """The calendar (F3), the day after the clock's (the clashing network changes), then ``ref``."""
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen) and app.screen.up_to_date, "load")
    calendar = app.screen
    await pilot.press("right")
    await wait_until(pilot, lambda: calendar.up_to_date, "the next day")
    await pilot.press("tab")
    for _ in range(4):
        if calendar.current_ref() == ref:
            break
        await pilot.press("down")
    assert calendar.current_ref() == ref
    await pilot.press("enter")
    await wait_until(
        pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view is not None, "it"
    )
    return app.screen


async def choose(pilot, form: AssessForm, name: str, label: str) -> None:
    """Open the focused select and move to ``label`` with the arrow keys, then Enter."""
    select = form.field(name)
    assert form.focused is select, (name, form.focused)
    await pilot.press("enter")
    for _ in range(6):
        overlay = select.query_one(SelectOverlay)  # the open list: where the arrow keys stand
        highlighted = overlay.highlighted
        option = overlay.get_option_at_index(highlighted) if highlighted is not None else None
        if option is not None and str(option.prompt).startswith(f"{label} ("):
            break
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot)
    assert form.choice(name) == label


async def test_e_opens_the_questionnaire_scored_live_and_saved(desk, config):
    db, staff, refs = desk
    ref = refs["firmware"]  # submitted; network only, inside its window, no failure: three suggestions
    app = make_app(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_change(pilot, app, ref)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, AssessForm), "the assess form")
        form = app.screen
        await settle(pilot)
        assert form.choice("services") == "one" and form.choice("window") == "no"
        assert form.choice("backout") is None and form.choice("users") is None  # the assessor answers these
        assert "one (+0) (suggested)" in shown(app)
        assert "Score: answer every question (2 to go)" in shown(app)
        assert form.focused is form.field("backout")  # the first question without an answer

        await choose(pilot, form, "backout", "no")  # +2
        assert "Score: answer every question (1 to go)" in shown(app)
        await pilot.press("tab", "tab", "tab")  # window, failures, users
        await choose(pilot, form, "users", "many")  # +3: 0 + 2 + 0 + 0 + 3
        assert form.score_shown == (5, "medium") and "Score 5: medium risk" in shown(app)
        await pilot.press("shift+tab", "shift+tab")  # back to the window question
        await choose(pilot, form, "window", "yes")  # +2: 7
        assert form.score_shown == (7, "high") and "Score 7: high risk" in shown(app)

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: stored(db, ref)[0] == "assessed", "the assessment")
        _, risk, score, answers, _ = stored(db, ref)
        assert (risk, score) == ("high", 7)
        assert json.loads(answers) == {
            "services": "one",
            "backout": "no",
            "window": "yes",
            "failures": "no",
            "users": "many",
        }
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), "the change again")
        await wait_until(pilot, lambda: app.screen.view.state == "assessed", "the change read again")
        assert "high (score 7)" in shown(app)


async def test_an_override_without_notes_is_refused_in_the_form(desk, config):
    db, staff, refs = desk
    ref = refs["firmware"]
    app = make_app(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_change(pilot, app, ref)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, AssessForm), "the assess form")
        form = app.screen
        await settle(pilot)
        await choose(pilot, form, "backout", "yes")
        await pilot.press("tab", "tab", "tab")
        await choose(pilot, form, "users", "no")
        assert form.score_shown == (0, "low")
        await pilot.press("tab")
        await choose(pilot, form, "risk", "high")
        assert "Assessed as high risk instead: say why in the notes" in shown(app)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert "score 0, which is low risk" in form.error_shown and stored(db, ref)[0] == "submitted"
        await pilot.press("tab")
        await type_into(pilot, "New vendor firmware")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: stored(db, ref)[0] == "assessed", "the assessment")
        assert stored(db, ref)[1:3] == ("high", 0)


async def test_a_asks_a_comment_and_approves_only_on_the_save_key(desk, config):
    db, staff, refs = desk
    ref = refs["switch"]  # assessed; cab1 is the one CAB member asked
    app = make_app(db, config, staff["cab1"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_change(pilot, app, ref)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ApproveForm), "the approve form")
        form = app.screen
        text = shown(app)
        assert f"Approve {ref} (high risk): Replace core switch line card" in text
        assert "Approvals so far: 0 of 1 approvals; waiting for cab1." in text
        await type_into(pilot, "Fine with the vendor on call")
        await pilot.press("enter")  # Enter does not approve
        await settle(pilot)
        assert stored(db, ref)[0] == "assessed" and app.screen is form
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: stored(db, ref)[0] == "approved", "the approval")
        with db.read_session() as s:
            reason = s.scalar(
                select(ChangeApproval.reason)
                .join(User, User.id == ChangeApproval.approver_id)
                .where(User.login == "cab1", ChangeApproval.decision == "approved")
            )
        assert reason == "Fine with the vendor on call"


async def test_z_asks_before_closing(desk, config):
    db, staff, refs = desk
    ref = refs["mail"]
    with db.session() as s:
        changes.assess(s, config, staff["chm"], ref, now=FIXED)
    with db.session() as s:
        changes.reject(
            s, config, staff["cab1"], ref, reason="Not before the migration tool is fixed", now=FIXED
        )
    app = make_app(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(ChangeScreen(ref))
        await wait_until(
            pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view is not None, "it"
        )
        await pilot.press("z")
        await wait_until(pilot, lambda: isinstance(app.screen, CloseForm), "the close form")
        assert f"Close {ref} (rejected): Migrate shared mailboxes" in shown(app)
        await pilot.press("escape")  # keep it open
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), "the change again")
        assert stored(db, ref)[0] == "rejected"
        await pilot.press("z")
        await wait_until(pilot, lambda: isinstance(app.screen, CloseForm), "the close form")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: stored(db, ref)[0] == "closed", "closed")
