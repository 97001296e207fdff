"""Tickets saved from two consoles at once, on both backends: stale saves are refused naming who changed
the ticket, interleaved sessions and racing threads leave one consistent result, first references stay
distinct."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from ticket_helpers import at, new_ticket, snapshot

from itsm_tui.services import tickets
from itsm_tui.services.errors import StaleEdit

# --------------------------------------------------------------------------- stale saves and races


def test_stale_save_is_refused_naming_who_changed_it(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    with db.read_session() as s:
        opened_version = tickets.get_ticket(s, ref).version
    with db.session() as s:
        tickets.update_fields(
            s,
            config,
            staff["agent2"],
            ref,
            title="Printer is smoking",
            now=at(5),
            expected_version=opened_version,
        )
    for action in (
        lambda s: tickets.update_fields(
            s, config, staff["agent1"], ref, title="Mine", expected_version=opened_version
        ),
        lambda s: tickets.assign(
            s, config, staff["lead"], ref, assignee="agent1", expected_version=opened_version
        ),
        lambda s: tickets.transition(
            s, config, staff["agent1"], ref, "cancelled", reason="dup", expected_version=opened_version
        ),
        lambda s: tickets.escalate(
            s, config, staff["agent1"], ref, group="NET-L2", reason="x", expected_version=opened_version
        ),
    ):
        with pytest.raises(StaleEdit) as info, db.session() as s:
            action(s)
        assert "agent2" in str(info.value)
        assert "reload" in str(info.value)
        assert (info.value.expected, info.value.current) == (opened_version, opened_version + 1)
    ticket = snapshot(db, ref)
    assert (ticket.title, ticket.status, ticket.version) == ("Printer is smoking", "new", opened_version + 1)


def test_save_with_current_version_succeeds(db, config, staff) -> None:
    ref = new_ticket(db, config, staff["agent1"])
    version = snapshot(db, ref).version
    with db.session() as s:
        ticket = tickets.update_fields(
            s, config, staff["agent1"], ref, title="Better", expected_version=version
        )
        version = ticket.version
    with db.session() as s:
        tickets.assign(s, config, staff["agent1"], ref, expected_version=version)
    assert snapshot(db, ref).assignee == "agent1"


def test_interleaved_sessions(request, db, config, staff) -> None:
    """Both consoles loaded version v; the later save is refused, naming the one who saved first."""
    ref = new_ticket(db, config, staff["agent1"])
    version = snapshot(db, ref).version
    if db.backend == "postgresql":
        # Two open transactions at once: B loads the ticket, A saves and commits, then B saves.
        with pytest.raises(StaleEdit) as info, db.session() as session_b:
            loaded = tickets.get_ticket(session_b, ref)
            assert loaded.version == version
            with db.session() as session_a:
                tickets.update_fields(
                    session_a, config, staff["agent2"], ref, title="A first", expected_version=version
                )
            tickets.update_fields(
                session_b, config, staff["agent1"], ref, title="B second", expected_version=loaded.version
            )
    else:
        # SQLite writers take the write lock at BEGIN, so the sessions queue: B's check sees A's commit.
        with db.session() as session_a:
            tickets.update_fields(
                session_a, config, staff["agent2"], ref, title="A first", expected_version=version
            )
        with pytest.raises(StaleEdit) as info, db.session() as session_b:
            tickets.update_fields(
                session_b, config, staff["agent1"], ref, title="B second", expected_version=version
            )
    assert "agent2" in str(info.value)
    assert (info.value.expected, info.value.current) == (version, version + 1)
    ticket = snapshot(db, ref)
    assert (ticket.title, ticket.version) == ("A first", version + 1)


def test_interleaved_save_without_expected_version(request, db, config, staff) -> None:
    """Even a save that names no version cannot overwrite a change made after it loaded the row."""
    if db.backend != "postgresql":
        pytest.skip("SQLite writer sessions cannot overlap (BEGIN IMMEDIATE)")
    ref = new_ticket(db, config, staff["agent1"])
    with pytest.raises(StaleEdit) as info, db.session() as session_b:
        loaded = tickets.get_ticket(session_b, ref)  # held, as a screen holds its record
        assert loaded.status == "new"
        with db.session() as session_a:
            tickets.update_fields(session_a, config, staff["agent2"], ref, title="A first")
        tickets.update_fields(session_b, config, staff["agent1"], ref, title="B second")
    assert "agent2" in str(info.value)
    assert snapshot(db, ref).title == "A first"


def test_two_threads_race_one_wins(request, db, config, staff) -> None:
    """Two consoles that opened version v save at once: exactly one wins, the other gets StaleEdit."""
    ref = new_ticket(db, config, staff["agent1"])
    version = snapshot(db, ref).version
    barrier = threading.Barrier(2)
    overlap = db.backend == "postgresql"  # SQLite writers cannot both hold a transaction
    outcome: dict[str, object] = {}

    def save(login: str) -> None:
        try:
            if not overlap:
                barrier.wait(timeout=10)
            with db.session() as s:
                loaded = tickets.get_ticket(s, ref)
                if overlap:
                    barrier.wait(timeout=10)  # both hold version v in their transaction before either writes
                    assert loaded.version == version
                tickets.update_fields(
                    s, config, staff[login], ref, title=f"by {login}", expected_version=version
                )
            outcome[login] = "saved"
        except Exception as exc:  # recorded and checked below
            outcome[login] = exc

    threads = [threading.Thread(target=save, args=(login,)) for login in ("agent1", "agent2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [login for login, result in outcome.items() if result == "saved"]
    losers = [result for result in outcome.values() if result != "saved"]
    assert len(winners) == 1 and len(losers) == 1, outcome
    error = losers[0]
    if not isinstance(error, StaleEdit):
        raise error
    assert winners[0] in str(error)
    ticket = snapshot(db, ref)
    assert (ticket.title, ticket.version) == (f"by {winners[0]}", version + 1)


def test_concurrent_first_tickets_get_distinct_references(request, db, config, staff) -> None:
    """Two consoles log the very first incident at the same moment: both succeed, numbered 1 and 2."""
    first_written = threading.Event()
    outcome: dict[str, object] = {}

    def other_is_waiting() -> bool:
        with db.engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                ).scalar()
            )

    def first() -> None:
        try:
            with db.session() as s:
                ticket = tickets.create_ticket(s, config, staff["agent1"], title="a", requester="r")
                outcome["first"] = ticket.ref
                first_written.set()
                deadline = time.monotonic() + 10
                while db.backend == "postgresql" and not other_is_waiting() and time.monotonic() < deadline:
                    time.sleep(0.02)  # commit only once the second console is blocked behind this one
        except Exception as exc:  # recorded and checked below
            first_written.set()
            outcome["first"] = exc

    def second() -> None:
        first_written.wait(timeout=10)
        try:
            with db.session() as s:
                ticket = tickets.create_ticket(s, config, staff["agent2"], title="b", requester="r")
                outcome["second"] = ticket.ref
        except Exception as exc:  # recorded and checked below
            outcome["second"] = exc

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in outcome.values():
        if isinstance(result, Exception):
            raise result
    assert sorted(outcome.values()) == ["INC0000001", "INC0000002"]
