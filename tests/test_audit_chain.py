"""The tamper-evident audit trail, on SQLite and PostgreSQL: each record's events hash-chained with a head per
record, ``itsm audit verify`` naming the first broken link of each record, the warning of the ticket and
change screens and their ``show`` commands, writers racing on one ticket from real processes, the demo's
bulk load, the SLA job's batches, and migration 0010 chaining a trail written before it.

Expected hashes are SHA-256 of canonical texts written out here by hand, never the code's own output."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from forked import PIPE, Forked
from pilot_helpers import screen_text, settle, wait_until
from sqlalchemy import DateTime, Integer, String, column, create_engine, inspect, select, table, text
from sqlalchemy.engine import make_url
from ticket_helpers import T0, at, new_ticket, take

from itsm_tui.app import ItsmApp
from itsm_tui.cli import main
from itsm_tui.db import MIGRATIONS_DIR, Database, alembic_config
from itsm_tui.models import AuditEvent, AuditHead, Ticket, TicketEntry
from itsm_tui.screens.change import ChangeScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import audit, changes, tickets
from itsm_tui.services.users import resolve_actor

# Ticket 1's first audit row as the canonical form writes it: created by agent1 (user 3 of the standard
# cast) at T0, status set to "new"; and its SHA-256, worked out with `sha256sum` from these very bytes.
FIRST_ROW = b"6:ticket\n1:1\n1:1\n1:3\n27:2026-03-02T09:00:00.000000Z\n6:create\n6:status\n-\n3:new\n-"
FIRST_HASH = "9d548fb5630e79c9d77576c5dcf2aa8177167962d750e375249039b79458a4d8"
# Its second row (priority 3: medium impact, medium urgency), chained to the first.
SECOND_ROW = (
    b"6:ticket\n1:1\n1:2\n1:3\n27:2026-03-02T09:00:00.000000Z\n6:create\n8:priority\n-\n1:3\n64:"
    + FIRST_HASH.encode()
)
SAT_NIGHT = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def chain(db, entity_type: str, entity_id: int) -> list[tuple[int, str | None, str, str | None]]:
    """A record's links in seq order: (seq, prev_hash, hash, new value)."""
    with db.read_session() as s:
        return list(
            s.execute(
                select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash, AuditEvent.new_value)
                .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
                .order_by(AuditEvent.seq)
            ).tuples()
        )


def sql(db, statement: str, **params) -> None:
    """What the attacker does: a direct statement, bypassing the program."""
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def verify_cli(url: str, *extra: str, login: str = "agent1", monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: login)
    code = main(["audit", "verify", "--db", url, *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def worked_ticket(db, config, staff) -> str:
    """INC0000001: created (3 rows), taken (assignee, status, response: 3 rows), a note (1 row): 7 links."""
    ref = new_ticket(db, config, staff["agent1"])
    take(db, config, staff["agent1"], ref, now=at(5))
    with db.session() as s:
        tickets.add_entry(s, config, staff["agent1"], ref, body="Toner replaced", public=False, now=at(9))
    assert [link[0] for link in chain(db, "ticket", 1)] == [1, 2, 3, 4, 5, 6, 7]
    return ref


# --------------------------------------------------------------------------- the chain as written


def test_the_hash_of_a_row_is_sha256_of_its_canonical_form_written_out_by_hand(db, config, staff):
    assert hashlib.sha256(FIRST_ROW).hexdigest() == FIRST_HASH  # the constant is what it says it is
    ref = new_ticket(db, config, staff["agent1"], now=T0)
    links = chain(db, "ticket", 1)
    assert links[0] == (1, None, FIRST_HASH, "new")
    assert links[1] == (2, FIRST_HASH, hashlib.sha256(SECOND_ROW).hexdigest(), "3")
    assert links[2][:2] == (3, links[1][2])
    with db.read_session() as s:
        head = s.get(AuditHead, ("ticket", 1))
        assert (head.seq, head.hash) == (3, links[2][2])
        assert tickets.detail(s, config, staff["agent1"], ref).history_warning is None
    # The functions that write it agree with the text above, and instants read alike in every form they
    # come in (what the ORM holds, SQLite's stored text, PostgreSQL's naive datetime).
    assert audit.canonical(
        "ticket", 1, 1, 3, audit.canonical_instant(T0), "create", "status", None, "new", None
    ) == (FIRST_ROW.decode())
    for form in (T0, "2026-03-02 09:00:00.000000", datetime(2026, 3, 2, 9), T0.astimezone(BERLIN)):
        assert audit.canonical_instant(form) == "2026-03-02T09:00:00.000000Z"


def test_no_two_rows_share_a_canonical_form_however_their_text_reads():
    """Text moved from one field into the next, or a null made an empty or a '-' text, reads differently."""
    instant = "2026-03-02T09:00:00.000000Z"
    forms = {
        audit.canonical("ticket", 1, 1, None, instant, "update", "title", "a\nb", "c", None),
        audit.canonical("ticket", 1, 1, None, instant, "update", "title", "a", "b\nc", None),
        audit.canonical("ticket", 1, 1, None, instant, "update", "title", None, "c", None),
        audit.canonical("ticket", 1, 1, None, instant, "update", "title", "", "c", None),
        audit.canonical("ticket", 1, 1, None, instant, "update", "title", "-", "c", None),
        audit.canonical("ticket", 11, 1, None, instant, "update", "title", "-", "c", None),
        audit.canonical("ticket", 1, 11, None, instant, "update", "title", "-", "c", None),
    }
    assert len(forms) == 7


def test_events_of_one_session_chain_in_the_order_they_were_added_and_a_batch_follows_them(db, config, staff):
    """record() waits in the session until the flush; record_many() writes at once, after them."""
    ref = new_ticket(db, config, staff["agent1"])
    with db.session() as s:
        ticket = tickets.get_ticket(s, ref)
        for word in ("one", "two", "three"):
            audit.record_for(s, "ticket", ticket, None, at(1), "update", "category", word)
        audit.record_many(s, [audit.Entry("ticket", ticket.id, None, at(2), "sla", "flag", new="four")])
        audit.record_for(s, "ticket", ticket, None, at(3), "update", "category", "five")
    assert [(seq, new) for seq, _, _, new in chain(db, "ticket", 1)][3:] == [
        (4, "one"),
        (5, "two"),
        (6, "three"),
        (7, "four"),
        (8, "five"),
    ]
    with db.read_session() as s:
        assert audit.verify_record(s, "ticket", 1) is None


# --------------------------------------------------------------------------- what an attacker does


def test_an_actor_rewritten_by_sql_is_named(db, db_url, config, staff, monkeypatch, capsys):
    ref = worked_ticket(db, config, staff)
    sql(
        db,
        "UPDATE audit_events SET actor_id = :lead WHERE entity_type = 'ticket' AND entity_id = 1 AND seq = 4",
        lead=staff["lead"].id,
    )
    code, out, _ = verify_cli(db_url, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1
    assert out.splitlines()[0] == f"{ref} audit #4 was altered"
    assert "1 record does not verify" in out
    code, out, _ = verify_cli(db_url, "--json", monkeypatch=monkeypatch, capsys=capsys)
    report = json.loads(out)
    assert code == 1 and report["verified"] is False
    assert report["breaks"] == [
        {
            "entity_type": "ticket",
            "entity_id": 1,
            "ref": ref,
            "seq": 4,
            "kind": "altered",
            "message": f"{ref} audit #4 was altered",
        }
    ]


def test_a_deleted_middle_row_is_named_missing(db, db_url, config, staff, monkeypatch, capsys):
    ref = worked_ticket(db, config, staff)
    sql(db, "DELETE FROM audit_events WHERE entity_type = 'ticket' AND entity_id = 1 AND seq IN (3, 4)")
    code, out, _ = verify_cli(db_url, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and out.splitlines()[0] == f"{ref} audit #3-#4 are missing"
    sql(db, "DELETE FROM audit_events WHERE entity_type = 'ticket' AND entity_id = 1 AND seq = 6")
    with db.read_session() as s:
        assert audit.verify_record(s, "ticket", 1).message == "audit #3-#4 are missing"  # the first break


def test_deleted_newest_rows_are_named(db, db_url, config, staff, monkeypatch, capsys):
    """Without the head the chain would just end earlier: the head remembers where it ended."""
    ref = worked_ticket(db, config, staff)
    sql(db, "DELETE FROM audit_events WHERE entity_type = 'ticket' AND entity_id = 1 AND seq >= 6")
    code, out, _ = verify_cli(db_url, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and out.splitlines()[0] == f"{ref} the newest 2 rows are missing (audit #6-#7)"
    # ... and the escalation rows of the attack, deleted with the head moved back by hand: the link the head
    # names is not the newest one any more.
    sql(db, "UPDATE audit_heads SET seq = 5 WHERE entity_type = 'ticket' AND entity_id = 1")
    code, out, _ = verify_cli(db_url, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and out.splitlines()[0] == f"{ref} audit #5 was replaced (the head names another)"
    sql(db, "DELETE FROM audit_heads WHERE entity_type = 'ticket' AND entity_id = 1")
    code, out, _ = verify_cli(db_url, monkeypatch=monkeypatch, capsys=capsys)
    assert out.splitlines()[0] == f"{ref} has no head: its newest rows cannot be proven"


def test_a_record_whose_rows_are_all_deleted_is_named(db, db_url, config, staff, monkeypatch, capsys):
    ref = worked_ticket(db, config, staff)
    sql(db, "DELETE FROM audit_events WHERE entity_type = 'ticket'")
    code, out, _ = verify_cli(db_url, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and out.splitlines()[0] == f"{ref} all 7 rows are missing (audit #1-#7)"


def test_a_row_rehashed_by_someone_who_knows_the_algorithm_breaks_the_next_link(db, config, staff):
    worked_ticket(db, config, staff)
    links = chain(db, "ticket", 1)
    with db.read_session() as s:
        row = s.scalar(select(AuditEvent).where(AuditEvent.entity_id == 1, AuditEvent.seq == 4))
        instant = audit.canonical_instant(row.at)
        forged = audit.link_hash(
            "ticket", 1, 4, None, instant, row.action, row.field, None, "lead", links[2][2]
        )
    sql(
        db,
        "UPDATE audit_events SET actor_id = NULL, new_value = 'lead', hash = :forged "
        "WHERE entity_type = 'ticket' AND entity_id = 1 AND seq = 4",
        forged=forged,
    )
    with db.read_session() as s:
        found = audit.verify_record(s, "ticket", 1)
    assert (found.seq, found.kind, found.message) == (
        4,
        "rewritten",
        "audit #4 was replaced (#5 follows another)",
    )


def test_a_chain_rewritten_end_to_end_verifies_but_not_against_saved_heads(
    db, db_url, config, staff, tmp_path, monkeypatch, capsys
):
    """What the chain cannot prove, said by the command, and how a saved copy of the heads proves it."""
    ref = worked_ticket(db, config, staff)
    code, out, _ = verify_cli(db_url, "--json", monkeypatch=monkeypatch, capsys=capsys)
    saved = json.loads(out)
    links = chain(db, "ticket", 1)
    assert code == 0 and saved["verified"] is True and "still verifies" in saved["cannot_prove"]
    assert {"entity_type": "ticket", "entity_id": 1, "ref": ref, "seq": 7, "hash": links[-1][2]} in saved[
        "heads"
    ]
    copy = tmp_path / "heads.json"
    copy.write_text(out)
    # Someone with full rights rewrites row 4 and every hash after it, head included.
    with db.read_session() as s:
        rows = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "ticket", AuditEvent.entity_id == 1)
            .order_by(AuditEvent.seq)
        ).all()
        prev = rows[2].hash
        forged = []
        for row in rows[3:]:
            actor = None if row.seq == 4 else row.actor_id
            digest = audit.link_hash(
                "ticket",
                1,
                row.seq,
                actor,
                audit.canonical_instant(row.at),
                row.action,
                row.field,
                row.old_value,
                row.new_value,
                prev,
            )
            forged.append((row.seq, actor, prev, digest))
            prev = digest
    for seq, actor, prev_hash, digest in forged:
        sql(
            db,
            "UPDATE audit_events SET actor_id = :actor, prev_hash = :prev, hash = :digest "
            "WHERE entity_type = 'ticket' AND entity_id = 1 AND seq = :seq",
            actor=actor,
            prev=prev_hash,
            digest=digest,
            seq=seq,
        )
    sql(
        db,
        "UPDATE audit_heads SET hash = :digest WHERE entity_type = 'ticket' AND entity_id = 1",
        digest=prev,
    )
    code, out, _ = verify_cli(db_url, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "every chain verifies" in out and "still verifies" in out  # it says so
    code, out, _ = verify_cli(db_url, "--heads", str(copy), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1
    assert f"{ref} was rewritten: audit #7 is not the one of the saved copy" in out.splitlines()
    # A trail that only grew since the copy is fine; one cut back is not.
    sql(db, "DELETE FROM audit_events WHERE entity_type = 'ticket'")
    sql(db, "DELETE FROM audit_heads WHERE entity_type = 'ticket'")
    with db.session() as s:
        user = s.scalar(select(AuditHead).where(AuditHead.entity_type == "user").limit(1))
        user_key = (user.entity_type, user.entity_id)
        moved = audit.compare_heads(s, staff["agent1"], {("ticket", 1): (7, links[-1][2])})
    assert [b.describe() for b in moved] == [f"{ref} is gone since the saved copy (its head was at #7)"]
    with db.session() as s:
        saved_user = {user_key: (user.seq, user.hash)}
        audit.record(s, entity_type="user", entity_id=user_key[1], actor_id=None, at=at(60), action="update")
    with db.session() as s:
        assert audit.compare_heads(s, staff["agent1"], saved_user) == []
    sql(
        db,
        "DELETE FROM audit_events WHERE entity_type = 'user' AND entity_id = :id AND seq >= :seq",
        id=user_key[1],
        seq=user.seq,
    )
    sql(
        db,
        "UPDATE audit_heads SET seq = :seq WHERE entity_type = 'user' AND entity_id = :id",
        id=user_key[1],
        seq=user.seq - 1,
    )
    with db.session() as s:
        (moved,) = audit.compare_heads(s, staff["agent1"], saved_user)
    assert moved.kind == "backwards"


def test_bad_input_exits_2(db, db_url, config, staff, tmp_path, monkeypatch, capsys):
    worked_ticket(db, config, staff)
    code, out, err = verify_cli(
        db_url, "--entity", "ticket", "INC0000999", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2 and "no ticket 'INC0000999'" in err and "Traceback" not in err
    code, _, err = verify_cli(db_url, "--entity", "problem", "7", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "no problem '7'; give a reference such as PRB0000004" in err
    code, _, err = verify_cli(db_url, "--entity", "window", "7", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "the types are: article, change, known_error, problem, ticket, user" in err
    broken = tmp_path / "heads.json"
    broken.write_text('{"heads": [{"entity_type": "ticket", "entity_id": 1, "seq": 0, "hash": "x"}]}')
    code, _, err = verify_cli(db_url, "--heads", str(broken), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "head 1 of" in err
    code, _, err = verify_cli(
        db_url, "--heads", str(tmp_path / "none.json"), monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2 and "cannot read the heads file" in err
    code, out, _ = verify_cli(
        db_url, "--entity", "ticket", "inc0000001", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0 and out.startswith("checked 7 audit rows of 1 record: every chain verifies")


# --------------------------------------------------------------------------- where people see it


def test_ticket_show_and_change_show_print_the_warning(db, db_url, config, staff, monkeypatch, capsys):
    ref = worked_ticket(db, config, staff)
    with db.session() as s:
        change = changes.create_change(
            s,
            config,
            staff["lead"],
            change_type="normal",
            title="Replace core switch line card",
            targets=["network:core-sw-01"],
            start=SAT_NIGHT,
            end=SAT_NIGHT + timedelta(hours=2),
            implementation_plan="Swap the card.",
            backout_plan="Put the old card back.",
            now=T0,
        )
        change_ref, change_id = change.ref, change.id
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "agent1")
    assert main(["ticket", "show", ref, "--db", db_url]) == 0
    assert "history does not verify" not in capsys.readouterr().out
    sql(db, "UPDATE audit_events SET new_value = 'agent2' WHERE entity_type = 'ticket' AND seq = 4")
    sql(db, "DELETE FROM audit_events WHERE entity_type = 'change' AND entity_id = :id", id=change_id)
    assert main(["ticket", "show", ref, "--db", db_url]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "history does not verify: audit #4 was altered \N{EM DASH} run itsm audit verify"
    assert main(["ticket", "show", ref, "--db", db_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["history_warning"] == first
    assert main(["change", "show", change_ref, "--db", db_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("history does not verify: ") and lines[0].endswith(" run itsm audit verify")
    assert "rows are missing" in lines[0] or "row is missing" in lines[0]
    assert main(["change", "show", change_ref, "--db", db_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["history_warning"] == lines[0]


async def test_the_ticket_and_change_screens_warn(staff_sqlite, config):
    db, staff = staff_sqlite
    with db.session() as s:
        clean = tickets.create_ticket(s, config, staff["agent1"], title="Mail down", requester="Rita").id
        broken = tickets.create_ticket(s, config, staff["agent1"], title="VPN down", requester="Rita").id
        change = changes.create_change(
            s,
            config,
            staff["lead"],
            change_type="normal",
            title="Upgrade firewall firmware",
            targets=["network:core-sw-01"],
            start=SAT_NIGHT,
            end=SAT_NIGHT + timedelta(hours=2),
            implementation_plan="Flash it.",
            backout_plan="Flash the old one.",
        )
        audit.record_for(s, "change", change, staff["lead"].id, at(1), "update", "risk", "high", "medium")
        change_ref, change_id = change.ref, change.id
    sql(
        db,
        "UPDATE audit_events SET actor_id = NULL "
        "WHERE entity_type = 'ticket' AND entity_id = :id AND seq = 2",
        id=broken,
    )
    sql(
        db,
        "DELETE FROM audit_events WHERE entity_type = 'change' AND entity_id = :id AND seq > 1",
        id=change_id,
    )
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for ticket_id, warned in ((clean, False), (broken, True)):
            app.open_ticket(ticket_id)
            await wait_until(
                pilot,
                lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None,
                "the ticket",
            )
            await settle(pilot)
            shown = screen_text(app)
            assert ("history does not verify: audit #2 was altered" in shown) is warned, shown
            app.pop_screen()
            await settle(pilot)
        app.push_screen(ChangeScreen(change_ref))
        await wait_until(
            pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view is not None, "the change"
        )
        await settle(pilot)
        shown = " ".join(screen_text(app).split())
        assert "history does not verify: the newest" in shown, shown


# --------------------------------------------------------------------------- writers at once

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from itsm_tui.config import load_config
    from itsm_tui.db import Database
    from itsm_tui.models import utcnow
    from itsm_tui.services import audit, tickets, users
    from itsm_tui.services.errors import StaleEdit

    url, login, ref, rounds, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
    writer = sys.argv[6]  # which of the processes: each edit is its own, so that none is a no-op
    config, db = load_config(), Database.connect(sys.argv[1])
    with db.read_session() as s:
        actor = users.resolve_actor(s, login)
        ticket_id = tickets.get_ticket(s, ref).id
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    for n in range(rounds):
        with db.session() as s:
            tickets.add_entry(s, config, actor, ref, body=f"writer {writer} note {n}", public=False)
        while True:  # an edit that names no version is refused if another landed meanwhile: reload, retry
            try:
                with db.session() as s:
                    tickets.update_fields(s, config, actor, ref, description=f"writer {writer} edit {n}")
                break
            except StaleEdit:
                continue
        # Audit rows alone, as a job writes them: nothing but the record's audit head makes these wait.
        with db.session() as s:
            audit.record(s, entity_type="ticket", entity_id=ticket_id, actor_id=actor.id, at=utcnow(),
                         action="probe", field="one", new=f"writer {writer} probe {n}")
        with db.session() as s:
            probes = [audit.Entry("ticket", ticket_id, None, utcnow(), "probe", "b", new=k) for k in "abc"]
            audit.record_many(s, probes)
    print("done", flush=True)
    """
)


def test_eight_processes_writing_one_ticket_leave_one_unbroken_chain(db, db_url, config, staff, tmp_path):
    """Notes, edits and bare audit rows (single and in batches) from 8 processes at once: every link
    numbered once, no gap, the chain verifies. The services lock the ticket's row for a note or an edit; the
    bare rows take turns on the audit head alone (without it two would take one seq and one would fail)."""
    ref = new_ticket(db, config, staff["agent1"])
    logins = ["agent1", "agent2", "lead"] * 2 + ["agent1", "agent2"]  # who works SD-L1's tickets
    rounds, go = 6, tmp_path / "go"
    db.dispose()  # no connection of this process is carried into the writers (forked: see forked.py)
    writers = [
        Forked(WRITER, db_url, login, ref, str(rounds), str(go), str(number), stdout=PIPE, stderr=PIPE)
        for number, login in enumerate(logins)
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        go.touch()
        for writer in writers:
            out, err = writer.communicate(timeout=240)
            assert writer.returncode == 0 and out.strip() == "done", err
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    links = chain(db, "ticket", 1)
    expected = 3 + len(logins) * rounds * 6  # the creation's 3, then per round a note, an edit, 1 + 3 probes
    assert [link[0] for link in links] == list(range(1, expected + 1))
    assert all(links[n][1] == links[n - 1][2] for n in range(1, len(links)))
    with db.read_session() as s:
        assert (
            s.scalar(select(AuditHead.seq).where(AuditHead.entity_id == 1, AuditHead.entity_type == "ticket"))
            == expected
        )
        assert s.query(TicketEntry).count() == len(logins) * rounds
        result = audit.verify(s, staff["analyst1"])
    assert result.ok and result.rows >= expected


# --------------------------------------------------------------------------- bulk writers


def test_a_demo_database_verifies(db, config, monkeypatch):
    """Built in three chunks (worker processes), so the entry ids the main process fills in are hashed."""
    monkeypatch.setattr("itsm_tui.demo.BATCH", 60)
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    from itsm_tui.demo import build_demo

    build_demo(db, config, tickets=150, seed=4, anchor=datetime(2026, 11, 20, 12, tzinfo=UTC))
    with db.read_session() as s:
        deskuser = resolve_actor(s, "deskuser")
        result = audit.verify(s, deskuser)
        ticket_count = s.query(Ticket).count()
        change_count = s.execute(text("SELECT count(*) FROM changes")).scalar()
        # problems, known errors and articles: made by the services, so each has its chain too
        knowledge_count = s.execute(
            text(
                "SELECT (SELECT count(*) FROM problems) + (SELECT count(*) FROM known_errors)"
                " + (SELECT count(*) FROM knowledge_articles)"
            )
        ).scalar()
        heads = s.query(AuditHead).count()
        # A reply's audit row names its entry: the id the entry has, of the same ticket.
        named = s.execute(
            text(
                "SELECT count(*) FROM audit_events a JOIN ticket_entries e "
                "ON e.id = CAST(a.new_value AS INTEGER) AND e.ticket_id = a.entity_id WHERE a.field = 'entry'"
            )
        ).scalar()
        replies = s.execute(text("SELECT count(*) FROM audit_events WHERE field = 'entry'")).scalar()
    assert result.ok, [b.describe() for b in result.breaks[:5]]
    assert knowledge_count > 0
    assert result.records == heads == ticket_count + change_count + knowledge_count
    assert ticket_count == 150
    assert replies > 0 and named == replies


def test_the_sla_jobs_batches_chain_onto_the_tickets(db, config, staff):
    from itsm_tui.jobs import sla_scan

    refs = [new_ticket(db, config, staff["agent1"], impact="high", urgency="high") for _ in range(3)]
    sla_scan.scan(db, config, T0 + timedelta(days=3))
    with db.read_session() as s:
        ids = [tickets.get_ticket(s, ref).id for ref in refs]
        flagged = s.execute(
            select(AuditEvent.entity_id, AuditEvent.seq)
            .where(AuditEvent.action == "sla")
            .order_by(AuditEvent.id)
        ).all()
        result = audit.verify(s, staff["analyst1"])
    assert {entity_id for entity_id, _ in flagged} == set(ids)
    assert min(seq for _, seq in flagged) >= 4  # after each ticket's creation rows
    assert result.ok
    for ticket_id in ids:
        seqs = [link[0] for link in chain(db, "ticket", ticket_id)]
        assert seqs == list(range(1, len(seqs) + 1))


# --------------------------------------------------------------------------- the migration


def _migration():
    path = MIGRATIONS_DIR / "versions" / "0010_audit_chain.py"
    spec = importlib.util.spec_from_file_location("migration_0010", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migrations_copy_of_the_hash_is_the_runtimes():
    migration = _migration()
    cases = [
        ("ticket", 1, 1, 3, T0, "create", "status", None, "new", None),
        (
            "user",
            42,
            7,
            None,
            "2026-03-02 09:00:00.000000",
            "update",
            "roles",
            "agent",
            "agent,lead",
            "ab" * 32,
        ),
        ("change", 5, 2, 1, datetime(2026, 3, 2, 9, 0, 0, 5), "update", None, "a\nb", "", "cd" * 32),
        ("window", 3, 1, None, "2026-03-02 10:00:00", "create", "rule", "Ünïcode ✓", None, None),
        ("ticket", 9, 3, 2, T0.astimezone(BERLIN), "note", "entry", None, "17", "ef" * 32),
    ]
    for entity_type, entity_id, seq, actor, instant, action, field, old, new, prev in cases:
        assert migration.canonical_instant(instant) == audit.canonical_instant(instant)
        canonical = audit.canonical_instant(instant)
        assert migration.link_hash(
            entity_type, entity_id, seq, actor, canonical, action, field, old, new, prev
        ) == (audit.link_hash(entity_type, entity_id, seq, actor, canonical, action, field, old, new, prev))
    assert (
        migration.link_hash(
            "ticket", 1, 1, 3, "2026-03-02T09:00:00.000000Z", "create", "status", None, "new", None
        )
        == FIRST_HASH
    )


RAW_EVENTS = table(
    "audit_events",
    column("id", Integer),
    column("entity_type", String),
    column("entity_id", Integer),
    column("actor_id", Integer),
    column("at", DateTime),
    column("action", String),
    column("field", String),
    column("old_value", String),
    column("new_value", String),
)


def test_migration_0010_chains_a_trail_written_before_it(db, db_url, config, staff):
    from alembic import command

    new_ticket(db, config, staff["agent1"], now=T0)  # ticket 1: its first row is FIRST_ROW once chained
    alembic = alembic_config(db_url)
    db.dispose()
    try:
        command.downgrade(alembic, "0009")
        engine = create_engine(db_url)
        with engine.begin() as conn:
            assert "seq" not in {c["name"] for c in inspect(conn).get_columns("audit_events")}
            # A window's rows written out of order: id 900 is the later one, so it is the second link.
            conn.execute(
                RAW_EVENTS.insert(),
                [
                    {
                        "id": 900,
                        "entity_type": "window",
                        "entity_id": 3,
                        "actor_id": None,
                        "at": datetime(2026, 3, 2, 11),
                        "action": "update",
                        "field": "rule",
                        "old_value": "a",
                        "new_value": "b",
                    },
                    {
                        "id": 901,
                        "entity_type": "window",
                        "entity_id": 3,
                        "actor_id": None,
                        "at": datetime(2026, 3, 2, 10),
                        "action": "create",
                        "field": "rule",
                        "old_value": None,
                        "new_value": "a",
                    },
                ],
            )
        engine.dispose()
        command.upgrade(alembic, "head")
        assert chain(db, "ticket", 1)[0] == (1, None, FIRST_HASH, "new")
        window = chain(db, "window", 3)
        assert [(seq, new) for seq, _, _, new in window] == [(1, "a"), (2, "b")]
        with db.read_session() as s:
            result = audit.verify(s, staff["analyst1"])
            heads = {(h.entity_type, h.entity_id): (h.seq, h.hash) for h in s.scalars(select(AuditHead))}
        assert result.ok and result.records == len(heads)
        assert heads[("window", 3)] == (2, window[1][2]) and heads[("ticket", 1)][0] == 3
        with db.session() as s:  # writes go on from the migrated heads
            take(db, config, staff["agent1"], "INC0000001", now=at(5))
        assert [link[0] for link in chain(db, "ticket", 1)] == [1, 2, 3, 4, 5, 6]
    finally:
        command.upgrade(alembic, "head")


# --------------------------------------------------------------------------- the database role's grants


def test_writing_the_trail_needs_no_update_or_delete_on_audit_events(db, db_url, config, staff):
    """A role granted INSERT and SELECT on audit_events (INSERT, UPDATE, SELECT on audit_heads) works the
    desk and runs the SLA job; it cannot rewrite a row."""
    if db.backend != "postgresql":
        pytest.skip("SQLite has no roles")
    role = f"audit_writer_{uuid.uuid4().hex[:8]}"
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        conn.exec_driver_sql(f"REVOKE UPDATE, DELETE ON audit_events FROM {role}")
        conn.exec_driver_sql(f"REVOKE DELETE ON audit_heads FROM {role}")
        conn.exec_driver_sql(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    limited = Database.connect(make_url(db_url).set(username=role).render_as_string(hide_password=False))
    try:
        ref = new_ticket(limited, config, staff["agent1"])
        take(limited, config, staff["agent1"], ref, now=at(1))
        from itsm_tui.jobs import sla_scan

        sla_scan.scan(limited, config, T0 + timedelta(days=3))
        with limited.read_session() as s:
            assert audit.verify(s, staff["analyst1"]).ok
        with pytest.raises(Exception, match="permission denied"), limited.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE audit_events SET actor_id = NULL")
    finally:
        limited.dispose()
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")


def test_the_verifier_streams_in_index_order(sqlite_url, config):
    """The walk is one scan of the chain's unique index, its record's head found by primary key."""
    plan_rows = []
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        statement = audit._walk_query().compile(engine)
        for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(statement)):
            plan_rows.append(row[-1])
    engine.dispose()
    plan = " ".join(plan_rows)
    assert "SCAN audit_events USING INDEX ix_audit_chain" in plan and "TEMP B-TREE" not in plan, plan
    assert "SEARCH audit_heads" in plan, plan
