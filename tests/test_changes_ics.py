"""The iCalendar export, read back with the icalendar library: one event per change, blackout and window
occurrence, at the right UTC times (across the spring DST change), with text escaped and lines folded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from calendar_data import FIXED, build_calendar

from itsm_tui.cli import main
from itsm_tui.services import changes, ical

MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


def events(text: str) -> list:
    calendar = icalendar.Calendar.from_ical(text)
    assert calendar["VERSION"] == "2.0" and "itsm-tui" in str(calendar["PRODID"])
    return list(calendar.walk("VEVENT"))


def by_category(found: list) -> dict[str, list]:
    result: dict[str, list] = {}
    for event in found:
        result.setdefault(str(event["CATEGORIES"].cats[0]), []).append(event)
    return result


def test_every_change_blackout_and_window_occurrence_is_an_event(db, config, staff):
    refs = build_calendar(db, config, staff)
    with db.read_session() as s:
        text, summary = ical.export(s, *MARCH, now=FIXED)
    found = events(text)
    # 6 changes; the ERP quarter close; network Saturdays (Feb 28 runs into March 1, then 7, 14, 21, 28) and
    # email Wednesdays (4, 11, 18, 25).
    assert (summary.changes, summary.blackouts, summary.windows) == (6, 1, 9)
    assert len(found) == summary.events == 16
    kinds = by_category(found)
    assert {k: len(v) for k, v in kinds.items()} == {
        "normal": 4,
        "standard": 1,
        "emergency": 1,
        "blackout": 1,
        "maintenance-window": 9,
    }
    switch = next(e for e in found if str(e["UID"]) == f"{refs['switch']}@itsm-tui")
    assert switch["DTSTART"].dt == datetime(2026, 3, 21, 21, 30, tzinfo=UTC)
    assert switch["DTEND"].dt == datetime(2026, 3, 22, 0, 30, tzinfo=UTC)
    assert str(switch["SUMMARY"]) == f"{refs['switch']} Replace core switch line card"
    assert str(switch["LOCATION"]) == "network"
    assert str(switch["STATUS"]) == "TENTATIVE"  # assessed: not approved yet
    assert "Normal change, assessed, high risk." in str(switch["DESCRIPTION"])
    assert "Implementer: net1. Requested by: net1." in str(switch["DESCRIPTION"])
    patch = next(e for e in found if str(e["UID"]) == f"{refs['patch']}@itsm-tui")
    assert str(patch["STATUS"]) == "CONFIRMED" and str(patch["LOCATION"]) == "vpn"
    freeze = kinds["blackout"][0]
    assert (freeze["DTSTART"].dt, freeze["DTEND"].dt) == (
        datetime(2026, 3, 30, tzinfo=UTC),
        datetime(2026, 4, 2, tzinfo=UTC),
    )
    assert str(freeze["SUMMARY"]) == "Change freeze: Quarter close" and str(freeze["LOCATION"]) == "erp"
    network = sorted(
        (e["DTSTART"].dt, e["DTEND"].dt)
        for e in kinds["maintenance-window"]
        if str(e["LOCATION"]) == "network"
    )
    assert network[-2:] == [
        (datetime(2026, 3, 21, 21, tzinfo=UTC), datetime(2026, 3, 22, 3, tzinfo=UTC)),
        (datetime(2026, 3, 28, 21, tzinfo=UTC), datetime(2026, 3, 29, 2, tzinfo=UTC)),  # the short night
    ]
    assert len({str(e["UID"]) for e in found}) == len(found)


def test_text_is_escaped_folded_and_read_back_unchanged(db, config, staff):
    title = 'Move; split, merge \\ "quote" \u2013 Ümlaut café ✓ ' + "x" * 80
    with db.session() as s:
        changes.create_change(
            s,
            config,
            staff["net1"],
            change_type="normal",
            title=title,
            targets=["vpn", "email"],
            start=FIXED + timedelta(days=2),
            end=FIXED + timedelta(days=2, hours=1),
            description="Line one,\nline two; \x1b[31m",
            now=FIXED,
        )
    with db.read_session() as s:
        text, _ = ical.export(s, *MARCH, now=FIXED)
    assert "\r\n" in text and all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    (event,) = events(text)
    assert str(event["SUMMARY"]) == f"CHG0000001 {title}"
    assert str(event["LOCATION"]) == "email, vpn"
    assert "Line one,\nline two; ^[[31m" in str(event["DESCRIPTION"])  # the escape made visible


def test_the_command_writes_a_file_calendar_programs_import(
    db_url, db, config, staff, tmp_path, monkeypatch, capsys
):
    build_calendar(db, config, staff)
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "agent1")
    target = tmp_path / "changes.ics"
    code = main(
        [
            "change",
            "export",
            "--db",
            db_url,
            "--ics",
            str(target),
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "6 changes, 1 blackouts, 9 maintenance-window occurrences" in out
    assert len(events(target.read_bytes())) == 16
    assert target.read_bytes().count(b"\r\n") > 100
    code = main(["change", "export", "--db", db_url, "--ics", str(tmp_path / "no" / "x.ics")])
    assert code == 2 and "cannot write" in capsys.readouterr().err


def test_an_export_span_with_too_many_occurrences_of_a_window_is_refused(
    db_url, db, config, staff, tmp_path, monkeypatch, capsys
):
    with db.session() as s:
        changes.add_window(
            s,
            staff["chm"],
            name="Nightly backup window",
            service="storage",
            rrule="FREQ=DAILY",
            start_local="23:00",
            duration_minutes=120,
            timezone="Europe/Berlin",
            config=config,
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            now=FIXED,
        )
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "agent1")
    target = tmp_path / "changes.ics"
    span = ["--from", "2026-01-01", "--to", "2045-12-31"]  # twenty years of nights
    assert main(["change", "export", "--db", db_url, "--ics", str(target), *span]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and not target.exists()
    assert '"Nightly backup window" (FREQ=DAILY) has more than 4000 occurrences' in err
    assert main(["change", "export", "--db", db_url, "--ics", str(target), "--from", "2026-01-01"]) == 0
    assert "maintenance-window occurrences" in capsys.readouterr().out
