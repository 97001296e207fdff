"""Fit and finish of change management: conflict severity by resource (the same CI or a whole service
conflicts, different CIs of one service only warn, unless changes.toml says otherwise), outcomes shown
truthfully (the calendar's row, its glyph, the .ics), the change detail refreshing on someone else's step
with its times labelled by zone, conflict lines that keep their interval at 80 columns, a month view that
uses a large terminal, and one toast for many notifications."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pilot_helpers import screen_lines, screen_text, settle, wait_until
from sqlalchemy import select

from itsm_tui.app import ItsmApp
from itsm_tui.models import Notification
from itsm_tui.screens.calendar import CalendarScreen
from itsm_tui.screens.change import ChangeScreen, ScheduleForm
from itsm_tui.services import changes, conflicts, ical, notifications
from itsm_tui.services import users as user_service
from itsm_tui.services.conflicts import Conflict, Planned

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
SAT_NIGHT = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def planned(ref: str, start: datetime, hours: int, *targets: tuple[str, str | None], **kw) -> Planned:
    return Planned(
        id=int(ref[-3:]),
        ref=ref,
        change_type="normal",
        state="submitted",
        start=start,
        end=start + timedelta(hours=hours),
        services=frozenset(s for s, _ in targets),
        cis=frozenset(ci for _, ci in targets if ci),
        targets=frozenset(targets),
        **kw,
    )


def overlaps(found: list[Conflict]) -> list[tuple[tuple[str, ...], str, str]]:
    return [(c.refs, c.severity, c.resource) for c in found if c.kind == "overlap"]


# --------------------------------------------------------------------------- severity by resource (pure)


def test_the_same_ci_or_a_whole_service_conflicts_different_cis_only_warn():
    a = planned("CHG0000001", utc(2026, 3, 7, 21), 3, ("network", "core-sw-01"))
    b = planned("CHG0000002", utc(2026, 3, 7, 22), 3, ("network", "core-sw-02"))
    c = planned("CHG0000003", utc(2026, 3, 8, 0), 2, ("network", "core-sw-02"))  # with b from 00:00
    whole = planned("CHG0000004", utc(2026, 3, 8, 1), 2, ("network", None))  # with c from 01:00
    found = conflicts.find_conflicts([a, b, c, whole])
    assert overlaps(found) == [
        (("CHG0000001", "CHG0000002"), "warning", "service network"),
        (("CHG0000002", "CHG0000003"), "conflict", "CI core-sw-02 (network)"),
        (("CHG0000003", "CHG0000004"), "conflict", "service network"),
    ]
    assert found[0].message == (
        "CHG0000001 and CHG0000002 both change service network (different CIs: core-sw-01, core-sw-02) "
        "during 2026-03-07 22:00 to 2026-03-08 00:00 UTC"
    )
    assert found[2].message == (
        "CHG0000003 and CHG0000004 both change service network during 2026-03-08 01:00-02:00 UTC"
    )
    # changes.toml [conflicts] same_service = "conflict": different CIs conflict as well.
    strict = conflicts.find_conflicts([a, b], same_service="conflict")
    assert overlaps(strict) == [(("CHG0000001", "CHG0000002"), "conflict", "service network")]


def test_cis_of_another_service_do_not_count_for_this_one():
    # Both change the network on different switches, and both the same ERP database: one warning on the
    # network, one conflict on the ERP CI (not "CI erp-db-01 (network)").
    a = planned("CHG0000001", utc(2026, 3, 7, 22), 2, ("network", "core-sw-01"), ("erp", "erp-db-01"))
    b = planned("CHG0000002", utc(2026, 3, 7, 23), 2, ("network", "core-sw-02"), ("erp", "erp-db-01"))
    assert overlaps(conflicts.find_conflicts([a, b])) == [
        (("CHG0000001", "CHG0000002"), "conflict", "CI erp-db-01 (erp)"),
        (("CHG0000001", "CHG0000002"), "warning", "service network"),
    ]


def test_a_service_and_one_of_its_cis_in_one_change_targets_the_service_whole():
    a = planned("CHG0000001", utc(2026, 3, 7, 22), 2, ("network", None), ("network", "core-sw-01"))
    b = planned("CHG0000002", utc(2026, 3, 7, 23), 2, ("network", "core-sw-02"))
    assert overlaps(conflicts.find_conflicts([a, b])) == [
        (("CHG0000001", "CHG0000002"), "conflict", "service network")
    ]


def test_a_long_conflict_line_keeps_its_interval():
    a = planned("CHG0000001", utc(2026, 3, 7, 21), 3, ("network", "core-sw-01"))
    b = planned("CHG0000002", utc(2026, 3, 7, 22), 3, ("network", "core-sw-02"))
    (found,) = conflicts.find_conflicts([a, b])
    span = "2026-03-07 22:00 to 2026-03-08 00:00 UTC"
    assert len(found.message) == 141 and found.fitted(141) == found.message
    assert found.fitted(100) == f"CHG0000001 & CHG0000002 service network (different CIs): {span}"
    assert found.fitted(70) == f"CHG1 & CHG2 network: {span}"
    assert found.fitted(61) == f"CHG1 & CHG2 network: {span}"
    assert found.fitted(50) == f"CHG1 & …: {span}"


# --------------------------------------------------------------------------- on both databases


def new_change(db, config, actor, **kw) -> str:
    values = {
        "change_type": "normal",
        "title": "Replace core switch line card",
        "targets": ["network:core-sw-01"],
        "start": SAT_NIGHT,
        "end": SAT_NIGHT + timedelta(hours=2),
        "implementation_plan": "Swap the card.",
        "backout_plan": "Put the old card back.",
        "implementer": "net1",
        "now": NOW,
    }
    values.update(kw)
    with db.session() as s:
        return changes.create_change(s, config, actor, **values).ref


def step(db, config, fn, actor, ref, **kw):
    kw.setdefault("now", NOW)
    with db.session() as s:
        return fn(s, config, actor, ref, **kw).state


def conflict_notices(db, login: str) -> list[str]:
    with db.read_session() as s:
        user = user_service.resolve_actor(s, login)
        return list(
            s.scalars(
                select(Notification.message).where(
                    Notification.user_id == user.id, Notification.kind == "change_conflict"
                )
            )
        )


def test_different_cis_warn_without_telling_the_change_managers(db, config, staff):
    first = new_change(db, config, staff["net1"])
    second = new_change(db, config, staff["eng1"], targets=["core-sw-02"], implementer="eng1")
    step(db, config, changes.submit, staff["net1"], first)
    step(db, config, changes.submit, staff["eng1"], second)
    with db.read_session() as s:
        found = conflicts.between(s, SAT_NIGHT - timedelta(days=1), SAT_NIGHT + timedelta(days=1))
        whole = changes.preview(
            s,
            config,
            change_type="normal",
            targets=["network"],
            start=SAT_NIGHT,
            end=SAT_NIGHT + timedelta(hours=1),
            implementer="app1",
        )
    assert overlaps(found) == [((first, second), "warning", "service network")]
    assert f"{first} and {second} both change service network (different CIs: core-sw-01, core-sw-02)" in (
        found[0].message
    )
    # A change of the whole service conflicts with both.
    assert {(frozenset(refs), severity, resource) for refs, severity, resource in overlaps(whole)} == {
        (frozenset({"(new)", first}), "conflict", "service network"),
        (frozenset({"(new)", second}), "conflict", "service network"),
    }
    # The warning reached who raised the second change, not the change manager.
    assert conflict_notices(db, "eng1") and conflict_notices(db, "net1")
    assert conflict_notices(db, "chm") == []
    # Configured stricter: the same pair is a conflict, in the check and in the calendar.
    strict = replace(config, changes=replace(config.changes, same_service_severity="conflict"))
    with db.read_session() as s:
        again = changes.preview(
            s,
            strict,
            change_type="normal",
            targets=["core-sw-02"],
            start=SAT_NIGHT + timedelta(minutes=30),
            end=SAT_NIGHT + timedelta(hours=1),
            implementer="app1",
        )
        month = changes.calendar(
            s, utc(2026, 3, 1), utc(2026, 4, 1), same_service=strict.changes.same_service_severity
        )
    assert sorted(c.severity for c in again if c.kind == "overlap") == ["conflict", "conflict"]
    assert month.conflicted == {first: "conflict", second: "conflict"}


def failed_change(db, config, staff) -> tuple[str, datetime, datetime, datetime, datetime]:
    """A standard patch of the VPN planned 20:00-24:00, run 20:10-21:25, failed, reviewed and closed."""
    start = utc(2026, 3, 24, 20)
    with db.session() as s:
        ref = changes.create_change(
            s,
            config,
            staff["net1"],
            change_type="standard",
            template="std-patch",
            targets=["vpn"],
            start=start,
            implementer="net1",
            now=NOW,
        ).ref
    step(db, config, changes.submit, staff["net1"], ref)
    step(db, config, changes.schedule, staff["net1"], ref)
    began, ended = start + timedelta(minutes=10), start + timedelta(hours=1, minutes=25)
    step(db, config, changes.start_implementation, staff["net1"], ref, now=began)
    step(db, config, changes.complete, staff["net1"], ref, outcome="failed", note="Reboot loop", now=ended)
    later = ended + timedelta(days=1)
    step(db, config, changes.start_review, staff["chm"], ref, now=later)
    step(db, config, changes.close, staff["chm"], ref, review_notes="Pin the kernel.", now=later)
    return ref, start, start + timedelta(hours=4), began, ended


def test_a_closed_failed_change_keeps_its_outcome_and_actual_times(db, config, staff):
    ref, start, end, began, ended = failed_change(db, config, staff)
    with db.read_session() as s:
        (row,) = changes.list_changes(s, start=utc(2026, 3, 24), end=utc(2026, 3, 25))
        (drawn,) = changes.calendar(s, utc(2026, 3, 1), utc(2026, 4, 1)).changes
    assert (row.ref, row.state, row.outcome) == (ref, "closed", "failed")
    assert (row.planned_start, row.planned_end) == (start, end)
    assert (row.actual_start, row.actual_end) == (began, ended)
    assert (row.shown_start, row.shown_end) == (began, ended)
    assert drawn == row
    assert row.as_json()["outcome"] == "failed"


def unfolded(text: str) -> list[str]:
    """iCalendar content lines, read by hand: CRLF ends, a line starting with a space continues the last."""
    lines: list[str] = []
    for raw in text.split("\r\n"):
        if raw.startswith(" "):
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
    return lines


def vevents(text: str) -> list[dict[str, str]]:
    events, current = [], None
    for line in unfolded(text):
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            events.append(current)
            current = None
        elif current is not None:
            name, _, value = line.partition(":")
            current[name] = value
    return events


def test_the_ics_carries_the_outcome_and_the_actual_times(db, config, staff):
    ref, *_ = failed_change(db, config, staff)
    live = new_change(
        db, config, staff["net1"], title="Swap a fan", start=utc(2026, 3, 28, 22), end=utc(2026, 3, 29)
    )
    with db.read_session() as s:
        text, summary = ical.export(s, utc(2026, 3, 1), utc(2026, 4, 1), now=NOW)
    assert summary.changes == 2
    events = {e["UID"]: e for e in vevents(text) if e["UID"].startswith("CHG")}
    failed = events[f"{ref}@itsm-tui"]
    assert failed["SUMMARY"] == f"{ref} [failed] Apply monthly OS security patches"
    assert failed["X-ITSM-OUTCOME"] == "failed" and failed["X-ITSM-STATE"] == "closed"
    assert (failed["DTSTART"], failed["DTEND"]) == ("20260324T201000Z", "20260324T212500Z")
    assert (failed["X-ITSM-PLANNED-START"], failed["X-ITSM-PLANNED-END"]) == (
        "20260324T200000Z",
        "20260325T000000Z",
    )
    assert "Standard change\\, closed (outcome: failed)\\, low risk." in failed["DESCRIPTION"]
    other = events[f"{live}@itsm-tui"]
    assert other["SUMMARY"] == f"{live} Swap a fan" and "X-ITSM-OUTCOME" not in other
    assert (other["DTSTART"], other["DTEND"]) == ("20260328T220000Z", "20260329T000000Z")
    assert other["X-ITSM-PLANNED-START"] == "20260328T220000Z"


def test_the_version_of_a_change_is_one_lookup(db, config, staff):
    ref = new_change(db, config, staff["net1"])
    with db.read_session() as s:
        assert changes.version_of(s, ref) == changes.get_change(s, ref).version
        assert changes.version_of(s, "CHG9999999") is None


def test_a_summary_counts_the_kinds_most_first(db, config, staff):
    assert notifications.summary({"change_conflict": 3, "change_approval": 2, "sla_warning": 2}) == (
        "7 new notifications: 3 change conflicts, 2 SLA warnings, 2 approvals"
    )
    assert notifications.summary({"assigned": 1}, "unread") == "1 unread notification: 1 assignment"
    seed_unread(db, staff["chm"].id, {"change_conflict": 3, "change_approval": 4})
    with db.read_session() as s:
        assert notifications.unread_kinds(s, staff["chm"].id) == {"change_conflict": 3, "change_approval": 4}
        notifications.mark_read(s, staff["chm"].id)
        assert notifications.unread_kinds(s, staff["chm"].id) == {}


def seed_unread(db, user_id: int, kinds: dict[str, int]) -> None:
    with db.session() as s:
        number = 0
        for kind, count in kinds.items():
            for _ in range(count):
                number += 1
                notifications.notify(
                    s,
                    [user_id],
                    kind=kind,
                    event_key=f"seed:{number}",
                    entity=None,
                    message=f"Seeded {kind} {number}",
                    now=NOW,
                )


# --------------------------------------------------------------------------- the console (SQLite)


FIXED = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)  # the console's clock: the day after the failed patch


def console(db, config, actor) -> ItsmApp:
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED)


def text_of(app) -> str:
    return " ".join(screen_text(app).split())


async def open_calendar(pilot, app) -> CalendarScreen:
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen) and app.screen.up_to_date, "load")
    await settle(pilot)
    return app.screen


async def test_the_calendar_shows_a_failed_closed_change_failed(staff_sqlite, config):
    db, staff = staff_sqlite
    ref, *_ = failed_change(db, config, staff)
    app = console(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        app.clear_notifications()
        screen = await open_calendar(pilot, app)
        await pilot.press("left")  # Tuesday 24 March
        await wait_until(pilot, lambda: screen.current_ref() == ref, "the patch listed")
        await settle(pilot)
        line = next(line for line in screen_lines(app) if ref in line)
        # Drawn at its actual times with the outcome's glyph, not the ✓ of a closed change.
        assert line.strip().startswith(f"20:10-21:25 ✗ {ref}") and "closed:failed" in line
        grid = "\n".join(screen_lines(app)[:16])
        assert "✗" in grid and "✓" not in grid


async def test_the_change_screen_refreshes_when_someone_else_acts(staff_sqlite, config):
    db, staff = staff_sqlite
    ref = new_change(
        db,
        config,
        staff["app1"],
        change_type="emergency",
        targets=["erp"],
        implementer="app1",
        start=FIXED + timedelta(hours=2),
        end=FIXED + timedelta(hours=3),
        now=FIXED,
    )
    step(db, config, changes.submit, staff["app1"], ref, now=FIXED)
    viewer = replace(staff["net1"], timezone="Europe/Berlin")
    app = console(db, config, viewer)
    async with app.run_test(size=(80, 24)) as pilot:
        app.clear_notifications()
        app.push_screen(ChangeScreen(ref))
        await wait_until(
            pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view, "the change"
        )
        screen = app.screen
        shown = screen.view.version
        text = text_of(app)
        # Berlin is UTC+1 on 25 March: 14:00-15:00 CET, labelled; the history's times too.
        assert "2026-03-25 15:00 CET - 2026-03-25 16:00 CET (Europe/Berlin)" in text
        assert "03-25 13:00 CET" in text
        step(db, config, changes.approve, staff["chm"], ref, now=FIXED)  # another console approves
        await wait_until(
            pilot, lambda: screen.view is not None and screen.view.version != shown, "the poll's reload", 10
        )
        await settle(pilot)
        assert screen.view.state == "approved" and "approved" in text_of(app)


async def test_a_conflict_line_at_80_columns_keeps_its_interval(staff_sqlite, config):
    db, staff = staff_sqlite
    first = new_change(
        db, config, staff["net1"], title="Card", start=utc(2026, 3, 28, 22), end=utc(2026, 3, 29), now=FIXED
    )
    step(db, config, changes.submit, staff["net1"], first, now=FIXED)
    second = new_change(
        db,
        config,
        staff["net1"],
        title="Fan",
        targets=["network:core-sw-02", "erp:erp-app-01"],
        start=utc(2026, 4, 2, 22),
        end=utc(2026, 4, 2, 23),
        now=FIXED,
    )
    app = console(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        app.clear_notifications()
        app.push_screen(ScheduleForm(second, "normal", "draft", utc(2026, 4, 2, 22), None, 1))
        await wait_until(pilot, lambda: isinstance(app.screen, ScheduleForm), "the form")
        form = app.screen
        form.query_one("#start").value = "2026-03-28 22:30"
        form.query_one("#end").value = "2026-03-29 00:30"
        await wait_until(pilot, lambda: form.previewed, "the preview")
        await settle(pilot)
        # The message (141 characters) is said shorter, its interval whole: "warning  CHG1 & CHG2 ...: ...".
        (warned,) = [line for line in screen_lines(app) if "warning " in line]
        assert "warning  CHG1 & CHG2 network: 2026-03-28 22:30 to 2026-03-29 00:00 UTC" in warned


def day_lines(lines: list[str], marker: str) -> int:
    """How many lines of the grid hold ``marker`` (a change's glyph) in its cells."""
    return sum(1 for line in lines if marker in line)


async def test_the_month_view_uses_a_large_terminal(staff_sqlite, config):
    db, staff = staff_sqlite
    for hour in range(4):  # four changes on Saturday 28 March
        new_change(
            db,
            config,
            staff["net1"],
            title=f"Switch step {hour + 1}",
            targets=["network:core-sw-02"],
            start=utc(2026, 3, 28, 18 + hour),
            end=utc(2026, 3, 28, 19 + hour),
            now=FIXED,
        )
    drawn = {}
    for size in ((80, 24), (160, 48)):
        app = console(db, config, staff["chm"])
        async with app.run_test(size=size) as pilot:
            app.clear_notifications()
            screen = await open_calendar(pilot, app)
            grid = [strip.text for strip in screen.grid._strips or []]
            drawn[size] = grid
    small, large = drawn[(80, 24)], drawn[(160, 48)]
    assert len(small) == 13 and len(large) == 25  # three lines of changes per day on 48 lines
    assert day_lines(small, "◌") == 1  # four glyphs in a row
    assert day_lines(large, "◌") == 2  # a change a line, then "+2 more"
    assert any("Switch step 1" in line for line in large) and any("+2 more" in line for line in large)


async def test_unread_notifications_at_start_up_are_one_toast(staff_sqlite, config, monkeypatch):
    db, staff = staff_sqlite
    seed_unread(db, staff["chm"].id, {"change_conflict": 3, "change_approval": 2, "sla_warning": 2})
    app = console(db, config, staff["chm"])
    shown: list[str] = []
    notify = app.notify
    monkeypatch.setattr(app, "notify", lambda message, **kw: (shown.append(message), notify(message, **kw)))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.unread == 7 and shown, "the unread count and its toast")
        await settle(pilot)
        assert shown == [
            "7 unread notifications: 3 change conflicts, 2 SLA warnings, 2 approvals — f5 opens the inbox"
        ]
        assert len(app._notifications) == 1
        # A burst arriving later is one toast too; a single one toasts itself.
        rows = [
            notifications.NotificationRow(i, "change_conflict", f"Clash {i}", None, None, FIXED, False)
            for i in (101, 102, 103, 104)
        ]
        app.show_notifications(rows, 11)
        app.show_notifications(rows[:1], 12)
        assert shown[1:] == ["4 new notifications: 4 change conflicts — f5 opens the inbox", "Clash 101"]
