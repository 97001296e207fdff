"""What people typed never acts on the terminal of whoever reads it: every command that prints stored text
shows control characters in caret notation (ESC as ``^[``, BEL as ``^G``), and no ESC or BEL byte reaches
stdout or stderr. JSON output carries them escaped (``\\u001b``), as JSON does.

The text stored is an OSC 2 sequence (it would retitle the terminal) and an SGR colour (it would paint
everything after it red), in a display name, titles, descriptions, a requester, replies and notes,
plans, a change freeze's name and reason, a window's name and a refusal's message. The one-line fields of
changes (a title, a window's or a freeze's name) refuse control characters now: theirs are written as an
older desk or SQL would have stored them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from access_helpers import run_as
from sqlalchemy import update

from itsm_tui.models import Blackout, Change, MaintenanceWindow
from itsm_tui.services import access_log, changes, tickets
from itsm_tui.services import users as user_service

EVIL = "\x1b]2;pwned\x07\x1b[31m"
SHOWN = "^[]2;pwned^G^[[31m"  # the same, made visible


@pytest.fixture
def desk(staff_sqlite, config):
    db, staff = staff_sqlite
    now = datetime.now(UTC).replace(microsecond=0)
    with db.session() as s:
        user_service.add_user(
            s, actor_login="admin1", login="mal", roles=["shift_lead"], groups=["SD-L1"], name=f"Mal {EVIL}"
        )
    with db.session() as s:
        mal = user_service.resolve_actor(s, "mal")
        agent = staff["agent1"]
        for impact in ("low", "high"):
            tickets.create_ticket(
                s,
                config,
                agent,
                title=f"Title {EVIL}",
                description=f"Description {EVIL}",
                requester=f"Req {EVIL}",
                impact=impact,
                urgency=impact,
            )
        tickets.assign(s, config, agent, "INC0000001")
        tickets.add_entry(s, config, agent, "INC0000001", body=f"Reply {EVIL}", public=True)
        tickets.add_entry(s, config, agent, "INC0000001", body=f"Note {EVIL}", public=False)
        tickets.update_fields(s, config, mal, "INC0000001", title=f"Renamed {EVIL}")  # by Mal: the stale one
        changes.create_change(
            s,
            config,
            staff["chm"],
            change_type="normal",
            title="Change",
            description=f"Why {EVIL}",
            targets=["network"],
            start=now + timedelta(hours=2),
            end=now + timedelta(hours=3),
            implementation_plan=f"Plan {EVIL}",
            backout_plan=f"Back {EVIL}",
            implementer="net1",
        )
        changes.add_window(
            s,
            staff["chm"],
            name="Window",
            service="network",
            rrule="FREQ=WEEKLY;BYDAY=SA",
            start_local="22:00",
            duration_minutes=60,
            timezone="UTC",
            config=config,
        )
        changes.add_blackout(
            s,
            staff["chm"],
            name="Freeze",
            start=now + timedelta(days=30),
            end=now + timedelta(days=31),
            reason=f"Because {EVIL}",
            config=config,
        )
        for model, column, text in (
            (Change, "title", "Change"),
            (MaintenanceWindow, "name", "Window"),
            (Blackout, "name", "Freeze"),
        ):
            s.execute(update(model).values({column: f"{text} {EVIL}"}))
    access_log.record_refusal(db, login="mal", action="demo --force", detail=f"Refused {EVIL}")
    return db


HUMAN = [
    ("admin1", ("user", "list")),
    ("agent1", ("ticket", "list")),
    ("agent1", ("ticket", "show", "INC0000001")),
    ("agent1", ("ticket", "create", "--title", f"New {EVIL}", "--requester", "r")),
    ("agent1", ("ticket", "update", "INC0000001", "--note", "more")),
    ("agent1", ("sla", "explain", "INC0000001")),
    ("chm", ("change", "list")),
    ("chm", ("change", "show", "CHG0000001")),
    ("chm", ("change", "windows")),
    ("lead", ("report", "handover")),
    ("lead", ("report", "access")),
]
JSON = [
    ("admin1", ("user", "list", "--json")),
    ("agent1", ("ticket", "list", "--json")),
    ("agent1", ("ticket", "show", "INC0000001", "--json")),
    ("agent1", ("sla", "explain", "INC0000001", "--json")),
    ("chm", ("change", "list", "--json")),
    ("chm", ("change", "show", "CHG0000001", "--json")),
    ("chm", ("change", "windows", "--json")),
    ("lead", ("report", "handover", "--json")),
    ("lead", ("report", "access", "--json")),
]


def _strings(value: object) -> list[str]:
    """Every string in a JSON value, at any depth."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _clean(text: str) -> bool:
    return "\x1b" not in text and "\x07" not in text and "\x9b" not in text


@pytest.mark.parametrize(
    ("login", "argv"), HUMAN, ids=[" ".join(a[:2]) + f" {i}" for i, (_, a) in enumerate(HUMAN)]
)
def test_human_output_shows_control_characters_instead_of_sending_them(
    desk, monkeypatch, capsys, login, argv
) -> None:
    code, out, err = run_as(monkeypatch, capsys, login, *argv, "--db", desk.url)
    assert code == 0, err
    assert _clean(out) and _clean(err)
    assert SHOWN in out  # the stored text is there, made visible


@pytest.mark.parametrize(
    ("login", "argv"), JSON, ids=[" ".join(a[:2]) + f" {i}" for i, (_, a) in enumerate(JSON)]
)
def test_json_output_carries_control_characters_escaped(desk, monkeypatch, capsys, login, argv) -> None:
    code, out, err = run_as(monkeypatch, capsys, login, *argv, "--db", desk.url)
    assert code == 0, err
    assert _clean(out) and _clean(err)
    assert "\\u001b]2;pwned\\u0007" in out
    assert any(EVIL in text for text in _strings(json.loads(out)))  # read back, they are the text


def test_the_calendar_export_and_the_conflict_check_send_no_control_characters(desk, monkeypatch, capsys):
    code, out, err = run_as(monkeypatch, capsys, "chm", "change", "export", "--ics", "-", "--db", desk.url)
    assert code == 0, err
    assert _clean(out) and "Change ^[]2\\;pwned^G" in out  # (iCalendar escapes the semicolon)
    code, out, err = run_as(monkeypatch, capsys, "chm", "change", "conflicts", "--db", desk.url)
    assert code == 0, err
    assert _clean(out) and _clean(err)


def test_an_error_that_names_someone_shows_their_name_made_visible(desk, monkeypatch, capsys) -> None:
    argv = ("ticket", "update", "INC0000001", "--expected-version", "1", "--urgency", "high")
    code, out, err = run_as(monkeypatch, capsys, "agent1", *argv, "--db", desk.url)
    assert (code, out) == (2, "")
    assert _clean(err)
    assert f"changed by Mal {SHOWN} (mal)" in err
