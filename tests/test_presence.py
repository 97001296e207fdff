"""Presence: heartbeats are upserted per console and record; others see fresh ones only; leaving forgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from itsm_tui.models import Presence
from itsm_tui.services import presence

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def rows(db) -> list[tuple[str, str, int, datetime]]:
    with db.read_session() as s:
        return [
            (p.console_id, p.entity_type, p.entity_id, p.heartbeat_at)
            for p in s.scalars(select(Presence).order_by(Presence.console_id, Presence.entity_id))
        ]


def test_heartbeat_upserts_one_row_per_console_and_record(db, staff) -> None:
    agent = staff["agent1"]
    with db.session() as s:
        presence.heartbeat(s, agent.id, "c1", "ticket", 7, T0)
    with db.session() as s:
        presence.heartbeat(s, agent.id, "c1", "ticket", 7, T0 + timedelta(seconds=10))
        presence.heartbeat(s, agent.id, "c1", "ticket", 8, T0 + timedelta(seconds=10))
    assert rows(db) == [
        ("c1", "ticket", 7, T0 + timedelta(seconds=10)),
        ("c1", "ticket", 8, T0 + timedelta(seconds=10)),
    ]


def test_others_viewing_names_fresh_other_consoles_only(db, staff) -> None:
    now = T0 + timedelta(minutes=5)
    with db.session() as s:
        presence.heartbeat(s, staff["agent1"].id, "mine", "ticket", 1, now)
        presence.heartbeat(s, staff["agent2"].id, "a2", "ticket", 1, now - timedelta(seconds=5))
        presence.heartbeat(s, staff["lead"].id, "lead-1", "ticket", 1, now - timedelta(seconds=29))
        presence.heartbeat(s, staff["lead"].id, "lead-2", "ticket", 1, now - timedelta(seconds=2))
        presence.heartbeat(s, staff["net1"].id, "n1", "ticket", 1, now - timedelta(seconds=31))  # stale
        presence.heartbeat(s, staff["app1"].id, "p1", "ticket", 2, now)  # another ticket
        presence.heartbeat(s, staff["eng1"].id, "e1", "change", 1, now)  # another kind of record
    with db.read_session() as s:
        assert presence.others_viewing(s, "ticket", 1, "mine", now) == ["Agent2", "Lead"]
        assert presence.others_viewing(s, "ticket", 1, "a2", now) == ["Agent1", "Lead"]
        assert presence.others_viewing(s, "ticket", 1, "mine", now, stale_after=timedelta(seconds=60)) == [
            "Agent2",
            "Lead",
            "Net1",
        ]
        assert presence.others_viewing(s, "ticket", 3, "mine", now) == []


def test_the_same_user_on_another_console_counts(db, staff) -> None:
    with db.session() as s:
        presence.heartbeat(s, staff["agent1"].id, "laptop", "ticket", 1, T0)
        presence.heartbeat(s, staff["agent1"].id, "desk", "ticket", 1, T0)
    with db.read_session() as s:
        assert presence.others_viewing(s, "ticket", 1, "laptop", T0) == ["Agent1"]


def test_leave_forgets_one_record_or_all_of_a_console(db, staff) -> None:
    agent = staff["agent1"]
    with db.session() as s:
        for entity in (1, 2, 3):
            presence.heartbeat(s, agent.id, "c1", "ticket", entity, T0)
        presence.heartbeat(s, agent.id, "c2", "ticket", 1, T0)
    with db.session() as s:
        assert presence.leave(s, "c1", "ticket", 2) == 1
    assert [(c, e) for c, _, e, _ in rows(db)] == [("c1", 1), ("c1", 3), ("c2", 1)]
    with db.session() as s:
        assert presence.leave(s, "c1") == 2
    assert [(c, e) for c, _, e, _ in rows(db)] == [("c2", 1)]
    with db.read_session() as s:
        assert presence.others_viewing(s, "ticket", 1, "c1", T0) == ["Agent1"]


def test_long_dead_rows_of_a_record_are_forgotten_on_its_next_heartbeat(db, staff) -> None:
    with db.session() as s:
        presence.heartbeat(s, staff["agent2"].id, "crashed", "ticket", 1, T0)
        presence.heartbeat(s, staff["agent2"].id, "crashed", "ticket", 2, T0)
    with db.session() as s:
        presence.heartbeat(s, staff["agent1"].id, "c1", "ticket", 1, T0 + timedelta(hours=2))
    assert [(c, e) for c, _, e, _ in rows(db)] == [("c1", 1), ("crashed", 2)]


def test_naive_instants_are_refused(db, staff) -> None:
    import pytest

    with db.session() as s, pytest.raises(ValueError):
        presence.heartbeat(s, staff["agent1"].id, "c1", "ticket", 1, datetime(2025, 1, 1))
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Presence)) == 0


def test_console_ids_are_distinct_and_fit_the_column() -> None:
    first, second = presence.new_console_id(), presence.new_console_id()
    assert first != second
    assert len(first) <= 64
