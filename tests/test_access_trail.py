"""The access trail: refusals recorded in their own transaction (from the command line and the console),
each user's last activity, and the access review (``itsm report access``) built from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from access_helpers import refusals, run_as, user_id
from pilot_helpers import settle, wait_until
from sqlalchemy import select, text

from itsm_tui.app import ItsmApp
from itsm_tui.models import User
from itsm_tui.services import access_log, access_report, tickets
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.access_log import RecordingDatabase
from itsm_tui.services.audit import record
from itsm_tui.services.errors import ValidationError

NOW = datetime.now(UTC).replace(microsecond=0)  # the review command judges at the real present


def seen_at(db, login: str) -> datetime | None:
    with db.read_session() as s:
        return s.scalar(select(User.last_seen_at).where(User.login == login))


# --------------------------------------------------------------------------- recording


def test_a_refusal_survives_the_rollback_of_the_refused_transaction(db, staff) -> None:
    recording = RecordingDatabase.around(db, "agent1", staff["agent1"].id)
    with pytest.raises(PermissionDenied), recording.session() as s:
        s.execute(text("UPDATE users SET name = 'Changed' WHERE login = 'agent1'"))  # rolled back
        raise PermissionDenied("ticket.assign_others", staff["agent1"].roles)
    with db.read_session() as s:
        assert s.execute(text("SELECT name FROM users WHERE login = 'agent1'")).scalar() == "Agent1"
    assert refusals(db) == [
        (
            "agent1",
            staff["agent1"].id,
            "console: ticket.assign_others",
            "ticket.assign_others",
            "You may not assign a ticket to someone else: it needs the role shift_lead (you have agent).",
        )
    ]


def test_other_refusals_and_failures_are_not_recorded(db, staff) -> None:
    recording = RecordingDatabase.around(db, "agent1", staff["agent1"].id)
    with pytest.raises(ValidationError), recording.session():
        raise ValidationError("title", "give the ticket a title")
    with pytest.raises(ZeroDivisionError), recording.read_session():
        _ = 1 / 0
    assert refusals(db) == []


def test_a_refusal_the_database_cannot_take_is_told_all_the_same(tmp_path, caplog) -> None:
    caplog.set_level("INFO", logger="itsm.access")
    from itsm_tui.db import Database

    db = Database.connect(f"sqlite:///{tmp_path / 'no-schema.db'}")  # no tables at all
    try:
        assert access_log.record_refusal(db, login="x", action="user add", detail="no") is False
    finally:
        db.dispose()
    assert "could not record the refused attempt of x at user add" in caplog.text


async def test_the_console_records_a_refusal_its_service_gave(staff_sqlite, config) -> None:
    """A network engineer presses take on a service-desk ticket in the queue: the key is offered (the role
    takes tickets of its own groups), the service refuses this one, the screen says so, and the refusal is in
    the trail as the engineer's. (An analyst's take is not offered at all: tests/test_keys_offered.py.)"""
    db, staff = staff_sqlite
    with db.session() as s:
        tickets.create_ticket(s, config, staff["lead"], title="Printer jammed", requester="Rita")
    engineer = staff["net1"]
    app = ItsmApp(db, config, engineer, run_scheduler=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = app.screen
        await settle(pilot)
        await pilot.press("4")  # all open
        await wait_until(pilot, lambda: screen.table.current is not None, "the ticket's row")
        await pilot.press("t")
        await settle(pilot)
        told = [str(n.message) for n in app._notifications]
    assert any("You may not take INC0000001" in m for m in told), told
    ((login, uid, action, permission, detail),) = refusals(db)
    assert (login, uid, action, permission) == (
        "net1",
        engineer.id,
        "console: ticket.assign_others",
        "ticket.assign_others",
    )
    assert detail in told


# --------------------------------------------------------------------------- last seen


def test_a_command_notes_when_its_user_was_last_seen_once_a_minute(db, staff, monkeypatch, capsys) -> None:
    assert seen_at(db, "agent1") is None
    before = datetime.now(UTC)
    code, _, err = run_as(monkeypatch, capsys, "agent1", "ticket", "list", "--db", db.url)
    assert code == 0, err
    first = seen_at(db, "agent1")
    assert first is not None and before <= first <= datetime.now(UTC)
    assert seen_at(db, "agent2") is None  # nobody else's
    run_as(monkeypatch, capsys, "agent1", "ticket", "list", "--db", db.url)
    assert seen_at(db, "agent1") == first  # within the minute: not written again
    later = first + timedelta(minutes=2)
    with db.session() as s:
        access_log.mark_seen(s, "agent1", later)
    assert seen_at(db, "agent1") == later


def test_noting_activity_gives_way_to_a_long_write(staff_sqlite) -> None:
    """Another process holds the write lock (a migration, a big import): the note waits a second, gives
    up, and the command goes on; the pooled connection keeps its usual busy timeout."""
    import sqlite3
    import time

    db, _ = staff_sqlite
    holder = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        access_log.seen(db, "agent1")
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert 0.9 <= waited < 5
    assert seen_at(db, "agent1") is None
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    access_log.seen(db, "agent1")
    assert seen_at(db, "agent1") is not None


# --------------------------------------------------------------------------- the review


@pytest.fixture
def reviewed(db, staff):
    """Activity by hand: agent1 seen 2 days ago, agent2 changed something 10 days ago and was seen 40 days
    ago, net1 seen 50 days ago; everyone created 60 days ago; an admin who left; refusals at 3 and 45 days."""
    with db.session() as s:
        s.execute(text("UPDATE users SET created_at = :at"), {"at": NOW - timedelta(days=60)})
        for login, days in (("agent1", 2), ("agent2", 40), ("net1", 50)):
            access_log.mark_seen(s, login, NOW - timedelta(days=days))
        record(
            s,
            entity_type="ticket",
            entity_id=1,
            actor_id=staff["agent2"].id,
            at=NOW - timedelta(days=10),
            action="update",
            field="title",
            new="x",
        )
        s.execute(text("UPDATE users SET active = :no WHERE login = 'cab1'"), {"no": False})
    for login, days in (("agent1", 3), ("mallory", 45)):
        access_log.record_refusal(
            db,
            login=login,
            action="user add",
            permission="user.admin",
            detail="no",
            at=NOW - timedelta(days=days),
        )
    return db


def test_the_review_lists_activity_dormant_accounts_admins_and_refusals(reviewed, staff) -> None:
    with reviewed.read_session() as s:
        review = access_report.review(s, staff["lead"], dormant_days=30, now=NOW)
    by_login = {a.login: a for a in review.accounts}
    assert list(by_login) == sorted(by_login)  # by login
    assert by_login["agent1"].last_activity_at == NOW - timedelta(days=2)
    # agent2: seen 40 days ago, but changed something 10 days ago: active 10 days ago
    assert by_login["agent2"].last_change_at == NOW - timedelta(days=10)
    assert by_login["agent2"].last_activity_at == NOW - timedelta(days=10)
    assert by_login["net1"].last_activity_at == NOW - timedelta(days=50)
    assert by_login["lead"].last_activity_at is None
    # Dormant: active and nothing for 30 days (never at work counts from the creation, 60 days ago);
    # cab1 left (inactive): not dormant, just inactive. admin1 added everyone just now: at work.
    assert by_login["admin1"].last_change_at is not None
    dormant = {"lead", "net1", "app1", "eng1", "analyst1", "chm", "prm"}
    assert {a.login for a in review.dormant} == dormant
    assert by_login["cab1"].active is False and by_login["cab1"].dormant is False
    assert by_login["lead"].lead_of == ["SD-L1"] and by_login["lead"].roles == ["shift_lead"]
    assert review.admins == ["admin1"]
    assert [(r.login, r.user_id, r.action) for r in review.refusals] == [
        ("agent1", staff["agent1"].id, "user add")
    ]  # the one of 45 days ago is older than the 30 days
    assert review.refusals_total == 1
    with reviewed.read_session() as s:
        longer = access_report.review(s, staff["lead"], dormant_days=50, now=NOW)
    assert [r.login for r in longer.refusals] == ["agent1", "mallory"]
    assert {a.login for a in longer.dormant} == dormant - {"net1"}  # 50 days ago is not more than 50


def test_the_review_is_refused_to_agents(reviewed, staff) -> None:
    with pytest.raises(PermissionDenied) as refused, reviewed.read_session() as s:
        access_report.review(s, staff["agent1"])
    assert "shift_lead or process_manager or admin" in str(refused.value)


def test_the_review_command_as_table_and_json(reviewed, staff, monkeypatch, capsys) -> None:
    code, out, err = run_as(monkeypatch, capsys, "lead", "report", "access", "--json", "--db", reviewed.url)
    assert code == 0, err
    data = json.loads(out)
    assert data["dormant_days"] == 30 and data["admins"] == ["admin1"]
    agent2 = next(a for a in data["accounts"] if a["login"] == "agent2")
    assert agent2["last_change_at"] == f"{NOW - timedelta(days=10):%Y-%m-%dT%H:%M:%S}Z"
    code, out, err = run_as(
        monkeypatch, capsys, "lead", "report", "access", "--dormant-days", "400", "--db", reviewed.url
    )
    assert code == 0, err
    assert "Admins (1): admin1" in out
    assert "Dormant accounts (0): none" in out  # nobody was quiet for 400 days
    assert "Refused privileged attempts in the last 400 days (2)" in out
    assert user_id(reviewed, "lead") is not None
