"""Demo data: realistic content, deterministic for a seed and an anchor, refused over existing data."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from itsm_tui.cli import main
from itsm_tui.db import Database
from itsm_tui.demo import DemoRefused, build_demo
from itsm_tui.services import audit, tickets
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.users import resolve_actor

ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)


def fingerprint(url: str) -> str:
    db = Database.connect(url)
    digest = hashlib.sha256()
    with db.engine.connect() as conn:
        for table in (
            "tickets",
            "audit_events",
            "ticket_entries",
            "satisfaction_ratings",
            "users",
            "changes",
            "problems",
            "known_errors",
            "links",
            "notifications",
        ):
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")):
                digest.update(repr(tuple(row)).encode())
    db.dispose()
    return digest.hexdigest()


@pytest.fixture
def demo_db(db, config, monkeypatch):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    build_demo(db, config, tickets=3000, seed=7, anchor=ANCHOR)
    return db


def q(db: Database, sql: str):
    with db.engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_demo_content_is_realistic(demo_db):
    db = demo_db
    assert q(db, "SELECT count(*) FROM tickets") == 3000
    assert q(db, "SELECT count(*) FROM groups") >= 4
    assert 25 <= q(db, "SELECT count(*) FROM users") <= 35
    # the OS login is a shift lead, so the demo opens without setup, and (having built it) its admin
    with db.engine.connect() as conn:
        builder = conn.execute(
            text(
                "SELECT r.role FROM users u JOIN role_memberships r ON r.user_id = u.id "
                "WHERE u.login = 'deskuser'"
            )
        ).scalars()
        assert set(builder) == {"admin", "shift_lead"}
    roles = {r for (r,) in db.engine.connect().execute(text("SELECT DISTINCT role FROM role_memberships"))}
    assert roles == {
        "agent",
        "support_l2",
        "support_l3",
        "shift_lead",
        "problem_manager",
        "change_manager",
        "cab_member",
        "process_manager",
        "analyst",
        "admin",
    }
    # 90 days of history
    span = (
        q(db, "SELECT julianday(max(opened_at)) - julianday(min(opened_at)) FROM tickets")
        if db.backend == "sqlite"
        else q(db, "SELECT extract(epoch FROM max(opened_at) - min(opened_at)) / 86400 FROM tickets")
    )
    assert 85 <= float(span) <= 90
    # a realistic priority mix: P3/P4 dominate, P1 rare
    p1 = q(db, "SELECT count(*) FROM tickets WHERE priority = 1")
    p4 = q(db, "SELECT count(*) FROM tickets WHERE priority = 4")
    assert 0 < p1 < 150 and p4 > 800
    assert q(db, "SELECT count(*) FROM tickets WHERE resolution_breached_at IS NOT NULL") > 0
    assert q(db, "SELECT count(*) FROM tickets WHERE reopen_count > 0") > 0
    assert q(db, "SELECT count(*) FROM tickets WHERE escalation_count > 0") > 0
    assert q(db, "SELECT count(*) FROM satisfaction_ratings") > 100
    assert (
        q(db, "SELECT count(*) FROM tickets WHERE status IN ('new','assigned','in_progress','pending')") > 20
    )
    assert q(db, "SELECT count(*) FROM problems") > 0 and q(db, "SELECT count(*) FROM known_errors") > 0
    assert q(db, "SELECT count(*) FROM knowledge_articles") > 0
    assert (
        q(db, "SELECT count(*) FROM maintenance_windows") > 0 and q(db, "SELECT count(*) FROM blackouts") > 0
    )
    assert q(db, "SELECT count(*) FROM audit_events") > 3000
    # resolved tickets have plausible durations: all after opening, most within two weeks
    assert q(db, "SELECT count(*) FROM tickets WHERE resolved_at < opened_at") == 0
    # past and future changes
    anchor = "'2026-11-20 12:00:00'"
    assert q(db, f"SELECT count(*) FROM changes WHERE planned_start < {anchor}") > 10
    assert q(db, f"SELECT count(*) FROM changes WHERE planned_start > {anchor}") > 5
    # at least two changes on the same configuration item with overlapping windows
    overlapping = q(
        db,
        """
        SELECT count(*) FROM changes a JOIN change_targets ta ON ta.change_id = a.id
        JOIN change_targets tb ON tb.ci = ta.ci AND tb.change_id > ta.change_id
        JOIN changes b ON b.id = tb.change_id
        WHERE a.planned_start < b.planned_end AND b.planned_start < a.planned_end""",
    )
    assert overlapping >= 1
    # the reference counters continue after the demo
    assert q(db, "SELECT value FROM counters WHERE name = 'INC'") == q(
        db, "SELECT count(*) FROM tickets WHERE kind = 'incident'"
    )


def test_demo_is_deterministic_for_seed_and_anchor(tmp_path, config, monkeypatch):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    prints = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        url = f"sqlite:///{tmp_path / name}.db"
        db = Database.connect(url)
        db.upgrade()
        db.sync_catalog(config)
        build_demo(db, config, tickets=1500, seed=seed, anchor=ANCHOR)
        db.dispose()
        prints.append(fingerprint(url))
    assert prints[0] == prints[1]
    assert prints[0] != prints[2]


def test_demo_in_chunks_matches_across_worker_processes(tmp_path, config, monkeypatch):
    """Above one chunk the tickets are made in worker processes; the data must not depend on how many."""
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    monkeypatch.setattr("itsm_tui.demo.BATCH", 500)
    url = f"sqlite:///{tmp_path / 'chunks.db'}"
    db = Database.connect(url)
    db.upgrade()
    db.sync_catalog(config)
    build_demo(db, config, tickets=1600, seed=5, anchor=ANCHOR)
    db.dispose()
    monkeypatch.setattr("itsm_tui.demo.BATCH", 500)
    monkeypatch.setattr("os.cpu_count", lambda: 1)  # one worker instead of two
    url2 = f"sqlite:///{tmp_path / 'chunks2.db'}"
    db = Database.connect(url2)
    db.upgrade()
    db.sync_catalog(config)
    build_demo(db, config, tickets=1600, seed=5, anchor=ANCHOR)
    db.dispose()
    assert fingerprint(url) == fingerprint(url2)
    assert q(Database.connect(url), "SELECT count(*) FROM tickets") == 1600


def test_demo_refuses_existing_data_unless_an_admin_forces_it(demo_db, config, monkeypatch):
    with pytest.raises(DemoRefused) as exc:
        build_demo(demo_db, config, tickets=100, seed=1, anchor=ANCHOR)
    assert "--force" in str(exc.value)
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "akhan")  # one of the demo's agents
    with pytest.raises(PermissionDenied):
        build_demo(demo_db, config, tickets=100, seed=1, anchor=ANCHOR, force=True)
    assert q(demo_db, "SELECT count(*) FROM tickets") == 3000
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")  # who built it: its admin
    build_demo(demo_db, config, tickets=100, seed=1, anchor=ANCHOR, force=True)
    assert q(demo_db, "SELECT count(*) FROM tickets") == 100


def test_demo_command_and_console_login(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["demo", "--db", url, "--tickets", "400", "--anchor", "2026-11-20"]) == 0
    assert "console login: deskuser" in capsys.readouterr().out
    assert main(["demo", "--db", url, "--tickets", "400"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["demo", "--db", url, "--if-empty"]) == 0
    assert "left as it is" in capsys.readouterr().out
    # the demo user works with the ticket commands straight away
    assert main(["ticket", "list", "--db", url, "--limit", "5"]) == 0
    assert "REF" in capsys.readouterr().out


def test_chunked_entries_are_numbered_on_and_the_next_ones_follow(db, config, monkeypatch):
    """Each worker numbers its chunk's entries on from those of the chunks before it: the ids run 1 to N
    without a gap, every audit event naming an entry names its ticket's entry written at that instant, the
    chains verify, and an entry or ticket made afterwards through the services takes the next id and ref."""
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    monkeypatch.setattr("itsm_tui.demo.BATCH", 300)
    build_demo(db, config, tickets=1000, seed=9, anchor=ANCHOR)
    entries = q(db, "SELECT count(*) FROM ticket_entries")
    assert entries > 500
    assert q(db, "SELECT min(id) FROM ticket_entries") == 1
    assert q(db, "SELECT max(id) FROM ticket_entries") == entries
    named = q(db, "SELECT count(*) FROM audit_events WHERE field = 'entry'")
    assert named > 200
    matched = q(
        db,
        "SELECT count(*) FROM audit_events a JOIN ticket_entries e ON e.id = CAST(a.new_value AS INTEGER) "
        "AND e.ticket_id = a.entity_id AND e.created_at = a.at "
        "WHERE a.field = 'entry' AND a.entity_type = 'ticket'",
    )
    assert matched == named
    with db.read_session() as s:
        deskuser = resolve_actor(s, "deskuser")
        assert audit.verify(s, deskuser).ok
    incidents = q(db, "SELECT count(*) FROM tickets WHERE kind = 'incident'")
    later = ANCHOR + timedelta(minutes=5)
    with db.session() as s:
        ticket = tickets.create_ticket(
            s, config, deskuser, now=later, title="After the demo", requester="Ann Example"
        )
        ref, ticket_id = ticket.ref, ticket.id
    assert ref == f"INC{incidents + 1:07d}"
    assert ticket_id == 1001
    with db.session() as s:
        entry = tickets.add_entry(s, config, deskuser, ref, body="A note", public=False, now=later)
        assert entry.id == entries + 1
    with db.read_session() as s:
        assert audit.verify(s, deskuser).ok


def test_copy_text_escapes_what_copy_would_read_otherwise():
    from itsm_tui.demo.writer import copy_text

    rows = [("a\tb", None, True, 3, "x\\y\nz\r"), ("plain", "", False, 0, "Zoë")]
    assert copy_text(rows) == "a\\tb\t\\N\tTrue\t3\tx\\\\y\\nz\\r\nplain\t\tFalse\t0\tZoë\n"
    assert copy_text([]) == ""
