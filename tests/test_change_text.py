"""People's text in change management, on SQLite and PostgreSQL: one-line fields (a change's title, a window's
or a freeze's name) refuse line breaks and control characters; what was stored before that check (or by SQL)
is written literally everywhere else: the .ics carries no control character but its escaped newline, a
notification is one line with ESC shown as ``^[``, a conflict quotes a freeze's name in double quotes (no
Python repr). The risk questionnaire's "failures" suggestion is the Impact list's rule. Refusals say what
they refuse: "an emergency change", the step a change manager's role is needed for, a version that never
was, and that nothing was saved when ``create --submit`` is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from sqlalchemy import select, update

from itsm_tui.cli import main
from itsm_tui.models import Blackout, Change, Notification
from itsm_tui.services import changes, ical, notifications
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.changes import risk
from itsm_tui.services.changes.impact import impact_of
from itsm_tui.services.conflicts import Conflict
from itsm_tui.services.errors import ServiceError, StaleEdit, ValidationError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
SAT_NIGHT = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ONE_LINE = "is one line of printable characters: no line break, tab or control character"


def raise_change(db, config, actor, *, targets=("network:core-sw-01",), start=SAT_NIGHT, kind="normal", **kw):
    with db.session() as s:
        return changes.create_change(
            s,
            config,
            actor,
            change_type=kind,
            title=kw.pop("title", "Replace core switch line card"),
            targets=list(targets),
            start=start,
            end=start + timedelta(hours=2),
            implementation_plan="Swap the card.",
            backout_plan="Put the old card back.",
            implementer="net1",
            now=kw.pop("now", NOW),
            **kw,
        ).ref


def stored_as(db, model, row_id: int, **values) -> None:
    """Text written before the one-line check (an older desk, or SQL): set without the services."""
    with db.session() as s:
        s.execute(update(model).where(model.id == row_id).values(**values))


def change_id(db, ref: str) -> int:
    with db.read_session() as s:
        return changes.get_change(s, ref).id


# --------------------------------------------------------------------------- one-line fields


def test_one_line_fields_refuse_line_breaks_and_control_characters(db, config, staff):
    for title in ("Swap the card\nand the fan", "Swap\tthe card", "Swap \x1b[31mthe card", "Swap\x85card"):
        with pytest.raises(ValidationError) as refused, db.session() as s:
            changes.create_change(
                s,
                config,
                staff["net1"],
                change_type="normal",
                title=title,
                targets=["network"],
                start=SAT_NIGHT,
                end=SAT_NIGHT + timedelta(hours=1),
                now=NOW,
            )
        assert refused.value.field == "title" and str(refused.value) == f"the title {ONE_LINE}"
    ref = raise_change(db, config, staff["net1"])
    with pytest.raises(ValidationError, match=f"the title {ONE_LINE}"), db.session() as s:
        changes.edit_change(s, config, staff["net1"], ref, title="Two\nlines", now=NOW)
    window = {
        "service": "network",
        "rrule": "FREQ=WEEKLY;BYDAY=SA",
        "start_local": "22:00",
        "duration_minutes": 60,
        "timezone": "UTC",
        "config": config,
        "now": NOW,
    }
    with pytest.raises(ValidationError, match=f"a window's name {ONE_LINE}"), db.session() as s:
        changes.add_window(s, staff["chm"], name="Network\nnights", **window)
    with db.session() as s:
        window_id = changes.add_window(s, staff["chm"], name="Network nights", **window).id
    with pytest.raises(ValidationError, match=f"a window's name {ONE_LINE}"), db.session() as s:
        changes.edit_window(s, staff["chm"], window_id, config=config, name="Nights \x1b[2J", now=NOW)
    freeze = {"start": NOW + 10 * DAY, "end": NOW + 11 * DAY, "config": config, "now": NOW}
    with pytest.raises(ValidationError, match=f"a freeze's name {ONE_LINE}") as refused, db.session() as s:
        changes.add_blackout(s, staff["chm"], name="Year\nend", **freeze)
    assert refused.value.field == "name"
    with db.session() as s:  # a reason is text: it may run over lines
        blackout_id = changes.add_blackout(
            s, staff["chm"], name="Year end", reason="Audit.\nAll of it.", **freeze
        ).id
    with pytest.raises(ValidationError, match=f"a freeze's name {ONE_LINE}"), db.session() as s:
        changes.edit_blackout(s, staff["chm"], blackout_id, config=config, name="Year\tend", now=NOW)
    # A name stored before the check is no new input: the other fields of that freeze are still edited.
    stored_as(db, Blackout, blackout_id, name="Old\nname")
    with db.session() as s:
        changes.edit_blackout(s, staff["chm"], blackout_id, config=config, reason="Moved.", now=NOW)
    with db.session() as s:
        changes.cancel(s, config, staff["chm"], ref, reason="Not needed.\nThe vendor fixed it.", now=NOW)
        assert changes.get_change(s, ref).cancel_reason == "Not needed.\nThe vendor fixed it."


def test_a_title_with_a_line_break_is_refused_by_the_command_line(db_url, staff, monkeypatch, capsys):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "net1")
    start = (datetime.now(UTC) + 8 * DAY).strftime("%Y-%m-%dT21:00Z")
    argv = ["change", "create", "--db", db_url, "--type", "normal", "--target", "network", "--start", start]
    code = main([*argv, "--minutes", "60", "--title", "Two\nlines"])
    _, err = capsys.readouterr()
    assert code == 2 and err == f"itsm: error: title: the title {ONE_LINE}\n"


# --------------------------------------------------------------------------- text written literally


def test_the_ics_holds_no_control_character_but_the_escaped_newline(db, config, staff):
    ref = raise_change(
        db, config, staff["net1"], targets=["vpn"], description="Tab\there\r\nESC \x1b[0m BEL \x07"
    )
    stored_as(db, Change, change_id(db, ref), title="Old \x1b[31mtitle\twith a tab")
    with db.session() as s:
        changes.add_blackout(
            s,
            staff["chm"],
            name="Quarter close",
            start=NOW + 3 * DAY,
            end=NOW + 4 * DAY,
            reason="Books\tclosed \x1b]2;x\x07",
            config=config,
            now=NOW,
        )
    with db.read_session() as s:
        text, summary = ical.export(s, NOW, NOW + 10 * DAY, now=NOW)
    assert (summary.changes, summary.blackouts) == (1, 1)
    controls = {c for c in text.replace("\r\n", "") if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F}
    assert controls == set()  # RFC 5545: no CONTROL in a content line (the newline is written \n)
    change, freeze = sorted(icalendar.Calendar.from_ical(text).walk("VEVENT"), key=lambda e: str(e["UID"]))
    assert str(change["SUMMARY"]) == f"{ref} Old ^[[31mtitle with a tab"
    assert "Tab here\nESC ^[[0m BEL ^G" in str(change["DESCRIPTION"])  # the CRLF a line end, not ^M
    assert (
        str(freeze["DESCRIPTION"]) == "No changes to all services except emergencies. Books closed ^[]2;x^G"
    )


def test_notifications_are_stored_as_one_line_with_control_characters_shown(db, config, staff):
    ref = raise_change(db, config, staff["net1"])
    stored_as(db, Change, change_id(db, ref), title="Swap \x1b[31mcard\nnow")
    with db.session() as s:
        changes.cancel(s, config, staff["chm"], ref, reason="Vendor\nfixed it", now=NOW)
        notifications.notify(
            s,
            [staff["agent1"].id],
            kind="change_conflict",
            event_key="direct",
            entity=None,
            message="a\x1b[2J\r\nb\x9b",
            now=NOW,
        )
    with db.read_session() as s:
        told = s.execute(select(Notification.user_id, Notification.message).order_by(Notification.id)).all()
    assert told == [
        (staff["net1"].id, f"{ref} cancelled by chm (Vendor fixed it): Swap ^[[31mcard now"),
        (staff["agent1"].id, "a^[[2J b<U+009B>"),
    ]


def test_conflicts_quote_a_freeze_name_literally():
    start, end = datetime(2026, 3, 7, 22, tzinfo=UTC), datetime(2026, 3, 7, 23, tzinfo=UTC)
    name = "[red]Freeze[/red] \x1b[31mX\nY"
    blocked = Conflict(
        "blackout", "blocked", ("CHG0000001",), "service network", start, end, (name, "network")
    )
    assert blocked.message == (
        'CHG0000001 is inside the change freeze "[red]Freeze[/red] ^[[31mX Y" (network, '
        "2026-03-07 22:00-23:00 UTC); move it out of the freeze"
    )
    assert (
        blocked.fitted(90) == 'CHG0000001 in freeze "[red]Freeze[/red] ^[[31mX Y": 2026-03-07 22:00-23:00 UTC'
    )
    override = Conflict(
        "blackout",
        "overridden",
        ("CHG0000002",),
        "all services",
        start,
        end,
        ("Q", "every service", "Core\nsw"),
    )
    assert override.message.endswith(
        'freeze "Q" (every service, 2026-03-07 22:00-23:00 UTC); emergency override: Core sw'
    )
    outside = Conflict("outside_window", "warning", ("CHG0000003",), "service vpn", start, end, ("A\x1b, B",))
    assert outside.message == (
        "CHG0000003 (2026-03-07 22:00-23:00 UTC) is outside every maintenance window of service vpn (A^[, B)"
    )


# --------------------------------------------------------------------------- one rule of a recent failure


def test_the_failures_suggestion_is_the_impact_lists_rule(db, config, staff):
    """By hand, [impact] failed_days = 30, the change looked at on network:core-sw-01 reaches that CI and the
    network as a whole, not core-sw-02:
    - early: planned for the 12th, it ran on 27 Feb and failed then (ended 3 days ago): reached, in both;
    - other_ci: failed 5 days ago on core-sw-02 alone: in neither;
    - whole: backed out 8 days ago on the whole network: in both."""
    looked_at = raise_change(db, config, staff["net1"])

    def ended(ref: str, outcome: str, actual_end: datetime) -> None:
        stored_as(
            db,
            Change,
            change_id(db, ref),
            state="review",
            outcome=outcome,
            actual_start=actual_end - timedelta(hours=1),
            actual_end=actual_end,
        )

    early = raise_change(db, config, staff["net1"], start=NOW + 10 * DAY, now=NOW - 5 * DAY)
    ended(early, "failed", NOW - 3 * DAY)
    other_ci = raise_change(
        db,
        config,
        staff["net1"],
        targets=["network:core-sw-02"],
        start=NOW - 5 * DAY - timedelta(hours=2),
        now=NOW - 6 * DAY,
    )
    ended(other_ci, "failed", NOW - 5 * DAY)
    whole = raise_change(
        db,
        config,
        staff["net1"],
        targets=["network"],
        start=NOW - 8 * DAY - timedelta(hours=2),
        now=NOW - 9 * DAY,
    )
    ended(whole, "backed_out", NOW - 8 * DAY)
    with db.read_session() as s:
        change = changes.get_change(s, looked_at)
        shown = risk.questionnaire(s, config, change, NOW)
        listed = [c.ref for c in impact_of(s, config, change, now=NOW).failed_changes]
        found = risk.recent_failures(s, config, change, NOW)
    assert listed == [early, whole]
    assert found == [(early, "failed", NOW - 3 * DAY), (whole, "backed_out", NOW - 8 * DAY)]
    failures = next(q for q in shown.questions if q.id == "failures")
    assert (failures.answer, failures.why) == (
        "yes",
        f"{early} failed 3 days ago, {whole} backed out 8 days ago",
    )


# --------------------------------------------------------------------------- refusals that say what


def test_refusals_name_the_step_and_the_version(db, config, staff):
    emergency = raise_change(db, config, staff["net1"], kind="emergency", start=NOW + DAY)
    normal = raise_change(db, config, staff["net1"])
    with db.session() as s:
        changes.submit(s, config, staff["net1"], emergency, now=NOW)
        changes.submit(s, config, staff["net1"], normal, now=NOW)
    with pytest.raises(ServiceError) as refused, db.session() as s:
        changes.assess(s, config, staff["chm"], emergency, now=NOW)
    assert str(refused.value).startswith(f"{emergency} is an emergency change: a change manager approves it")
    with pytest.raises(PermissionDenied) as denied, db.session() as s:
        changes.assess(s, config, staff["net1"], normal, now=NOW)
    assert str(denied.value) == (
        f"You may not assess {normal}: it needs the role change_manager (you have support_l2)."
    )
    with db.session() as s:
        blackout_id = changes.add_blackout(
            s, staff["chm"], name="Year end", start=NOW + 20 * DAY, end=NOW + 21 * DAY, config=config, now=NOW
        ).id
    with pytest.raises(PermissionDenied) as denied, db.session() as s:
        changes.delete_blackout(s, staff["net1"], blackout_id)
    assert str(denied.value) == (
        "You may not add, edit or delete maintenance windows and change freezes: it needs the role "
        "change_manager (you have support_l2)."
    )
    with db.read_session() as s:
        version = changes.get_change(s, normal).version
    with pytest.raises(StaleEdit) as stale, db.session() as s:
        changes.edit_change(
            s, config, staff["net1"], normal, title="New title", expected_version=999, now=NOW
        )
    assert str(stale.value) == f"there is no version 999 of {normal} (it is at version {version})"
    with pytest.raises(StaleEdit) as stale, db.session() as s:
        changes.delete_blackout(s, staff["chm"], blackout_id, expected_version=2)
    assert str(stale.value) == f"there is no version 2 of blackout {blackout_id} (it is at version 1)"
    with pytest.raises(StaleEdit, match=r"after you opened it \(version 1, now 2\)"), db.session() as s:
        changes.edit_change(s, config, staff["net1"], normal, title="New title", expected_version=1, now=NOW)


def test_create_and_submit_into_a_freeze_says_nothing_was_saved(
    db_url, db, config, staff, monkeypatch, capsys
):
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + 8 * DAY
    with db.session() as s:
        changes.add_blackout(
            s, staff["chm"], name="Audit week", start=start - DAY, end=start + DAY, config=config
        )
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "net1")
    code = main(
        [
            "change",
            "create",
            "--db",
            db_url,
            "--type",
            "normal",
            "--title",
            "Replace line card",
            "--target",
            "network",
            "--start",
            start.strftime("%Y-%m-%dT%H:%MZ"),
            "--minutes",
            "60",
            "--implementation-plan",
            "Swap it.",
            "--backout-plan",
            "Swap back.",
            "--submit",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(
        "itsm: error: nothing was saved: CHG0000001 cannot be submitted: CHG0000001 is inside"
    )
    assert 'the change freeze "Audit week"' in err and err.count("\n") == 1
    with db.read_session() as s:
        assert s.scalars(select(Change.id)).all() == []
