"""``itsm demo`` over a database that holds records: only an admin replaces it, only a demo is replaced by
``--force``, a live desk only with ``--delete-live-records``, and what is deleted is named. An empty
database is filled by anyone; ``--if-empty`` leaves a full one as it is. ``itsm db upgrade`` of a desk
with users is an admin's. Every refused attempt changes nothing, not even the schema's revision."""

from __future__ import annotations

import pytest
from access_helpers import refusals, run_as, snapshot, user_id
from alembic import command
from sqlalchemy import text

from itsm_tui.db import SCHEMA_REVISION, Database, alembic_config

ANCHOR = "2026-11-20"


def count(db: Database, table: str) -> int:
    with db.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0


def revision(db: Database) -> str | None:
    return db.current_revision()


def test_an_empty_database_is_filled_by_anyone(tmp_path, monkeypatch, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, out, err = run_as(monkeypatch, capsys, "newcomer", "demo", "--db", url, "--tickets", "60")
    assert code == 0, err
    assert out.startswith("demo data: 60 tickets") and "replaced" not in out


def test_a_live_desk_is_replaced_only_when_that_is_asked_for_by_name(db, staff, monkeypatch, capsys) -> None:
    # The cast: 11 users; 11 audit rows for their roles, 6 for the groups of those who have one (lead,
    # agent1, agent2, net1, app1, eng1) and 1 for lead becoming lead of SD-L1.
    held = "0 tickets, 0 changes, 11 users and 18 audit rows"
    before = snapshot(db)
    code, out, err = run_as(monkeypatch, capsys, "admin1", "demo", "--db", db.url, "--force")
    assert (code, out) == (2, "")
    assert err == (
        f"itsm: error: the database is a live service desk: it holds {held}, not made by the demo; --force "
        "replaces only a demo, add --delete-live-records to delete them all the same\n"
    )
    assert snapshot(db) == before
    code, out, err = run_as(
        monkeypatch, capsys, "admin1", "demo", "--db", db.url, "--tickets", "60", "--delete-live-records"
    )
    assert code == 0, err
    assert out.startswith(f"replaced {held}; demo data: 60 tickets")
    assert f"deleting {held} ..." in err
    assert count(db, "tickets") == 60 and user_id(db, "agent2") is None  # the cast is gone


def test_a_demo_is_replaced_by_an_admin_until_people_work_in_it(sqlite_url, monkeypatch, capsys) -> None:
    url = sqlite_url
    code, _, err = run_as(monkeypatch, capsys, "deskuser", "demo", "--db", url, "--tickets", "60")
    assert code == 0, err
    db = Database.connect(url)
    try:
        # deskuser built it: its shift lead and admin (with the demo's own itadmin); akhan is an agent.
        before = snapshot(db)
        code, out, err = run_as(monkeypatch, capsys, "akhan", "demo", "--db", url, "--force")
        assert (code, out) == (2, "")
        assert err == (
            "itsm: error: You may not replace the records of this service desk with demonstration data: it "
            "needs the role admin (you have agent). Admins: deskuser, itadmin.\n"
        )
        assert snapshot(db) == before
        assert refusals(db) == [("akhan", user_id(db, "akhan"), "demo --force", "desk.rebuild", err[13:-1])]
        held = (
            f"{count(db, 'tickets')} tickets, {count(db, 'changes')} changes, {count(db, 'users')} users and "
            f"{count(db, 'audit_events')} audit rows"
        )
        code, out, err = run_as(
            monkeypatch, capsys, "deskuser", "demo", "--db", url, "--tickets", "70", "--force"
        )
        assert code == 0, err
        assert out.startswith(f"replaced {held}; demo data: 70 tickets")

        # A ticket logged and a user added since: a live desk now.
        code, _, err = run_as(
            monkeypatch,
            capsys,
            "deskuser",
            "ticket",
            "create",
            "--db",
            url,
            "--title",
            "Real",
            "--requester",
            "r",
        )
        assert code == 0, err
        code, _, err = run_as(
            monkeypatch, capsys, "deskuser", "user", "add", "newhire", "--db", url, "--role", "agent"
        )
        assert code == 0, err
        before = snapshot(db)
        code, out, err = run_as(monkeypatch, capsys, "deskuser", "demo", "--db", url, "--force")
        assert (code, out) == (2, "")
        assert (
            "it holds 1 user and 1 ticket made after the demo was built; --force replaces only a demo" in err
        )
        assert snapshot(db) == before
        code, out, err = run_as(
            monkeypatch, capsys, "deskuser", "demo", "--db", url, "--tickets", "60", "--delete-live-records"
        )
        assert code == 0, err
        assert user_id(db, "newhire") is None and count(db, "tickets") == 60
    finally:
        db.dispose()


def _downgraded(db: Database) -> str:
    """Take the schema one revision back (as a desk not yet upgraded to this version); the revision."""
    command.downgrade(alembic_config(db.url), "-1")
    old = db.current_revision()
    assert old is not None and old != SCHEMA_REVISION
    return old


def test_refused_demo_and_upgrade_leave_an_old_schema_as_it_is(db, staff, monkeypatch, capsys) -> None:
    old = _downgraded(db)
    for argv in (("demo", "--force"), ("db", "upgrade")):
        for login in ("agent1", "mallory"):
            code, out, err = run_as(monkeypatch, capsys, login, *argv, "--db", db.url)
            assert (code, out) == (2, ""), err
            assert err.count("\n") == 1 and "Admins: admin1." in err
            assert revision(db) == old
    code, out, err = run_as(monkeypatch, capsys, "agent1", "demo", "--if-empty", "--db", db.url)
    assert (code, out) == (0, "the database already holds data; left as it is\n")
    assert revision(db) == old  # --if-empty on a full database touches nothing, the schema included
    code, out, err = run_as(monkeypatch, capsys, "admin1", "db", "upgrade", "--db", db.url)
    assert code == 0, err
    assert f"upgraded from {old} to revision {SCHEMA_REVISION}" in out


def test_anyone_creates_the_schema_of_a_database_without_users(tmp_path, monkeypatch, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, out, err = run_as(monkeypatch, capsys, "founder", "db", "upgrade", "--db", url)
    assert code == 0, err
    assert "upgraded from empty" in out


@pytest.mark.parametrize("flags", [(), ("--force",)])
def test_the_demo_refuses_without_force_whoever_asks(db, staff, monkeypatch, capsys, flags) -> None:
    """Without --force the demo never replaces anything, for an admin too (told how); with it, it is
    the admin's question."""
    code, _, err = run_as(monkeypatch, capsys, "agent1", "demo", *flags, "--db", db.url)
    assert code == 2
    if flags:
        assert "it needs the role admin (you have agent)" in err
    else:
        assert "an admin replaces everything in it with demonstration data with --force" in err
