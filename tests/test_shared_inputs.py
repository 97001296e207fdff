"""What tickets, changes, windows and users share: the checks of inputs, JSON values and audit events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from itsm_tui.models import User
from itsm_tui.services import audit, inputs, jsondata
from itsm_tui.services.errors import ValidationError


def test_a_title_is_stripped_and_needs_a_line_within_the_limit():
    assert inputs.required_title("  Printer jams  ", "what is wrong", 20) == "Printer jams"
    with pytest.raises(ValidationError) as empty:
        inputs.required_title("   ", "one line saying what changes", 20)
    assert (empty.value.field, str(empty.value)) == (
        "title",
        "a title is required (one line saying what changes)",
    )
    with pytest.raises(ValidationError) as long:
        inputs.required_title("x" * 21, "what is wrong", 20)
    assert str(long.value) == "the title is 21 characters; keep it within 20"
    assert inputs.required_title("x" * 20, "what is wrong", 20) == "x" * 20
    with pytest.raises(ValidationError):
        inputs.required_title(None, "what is wrong", 20)


def test_a_service_is_known_by_its_code_in_any_case(config):
    code = next(iter(config.services))
    assert inputs.known_service(config, f"  {code.upper()} ") == code
    with pytest.raises(ValidationError) as unknown:
        inputs.known_service(config, " Nowhere ", "targets")
    assert unknown.value.field == "targets"
    assert str(unknown.value) == f"unknown service 'nowhere'; use one of {', '.join(config.services)}"


def test_a_time_zone_must_be_one_the_zone_database_knows():
    inputs.known_timezone("Europe/Berlin")
    for wrong in ("Mars/Olympus", "../etc"):
        with pytest.raises(ValidationError) as refused:
            inputs.known_timezone(wrong)
        assert refused.value.field == "timezone"
        assert str(refused.value) == f"unknown time zone {wrong!r} (e.g. Europe/Berlin)"


def test_a_user_named_by_login_must_be_active(db, staff):
    with db.session() as session:
        assert inputs.active_user(session, " net1 ", "assignee").login == "net1"
        session.execute(update(User).where(User.login == "net1").values(active=False))
        for login in ("net1", "nobody"):
            with pytest.raises(ValidationError) as refused:
                inputs.active_user(session, login, "implementer")
            assert refused.value.field == "implementer"
            assert str(refused.value) == f"no active user {login!r}; `itsm user list` shows the users"


def test_json_instants_are_utc_with_a_z_and_other_values_stay():
    moment = datetime(2026, 3, 7, 22, 0, tzinfo=timezone(timedelta(hours=1)))
    assert jsondata.instant(moment) == "2026-03-07T21:00:00Z"
    data = {"at": moment, "n": 3, "none": None, "text": "2026-03-07"}
    assert jsondata.jsonable(data) == {
        "at": "2026-03-07T21:00:00Z",
        "n": 3,
        "none": None,
        "text": "2026-03-07",
    }
    assert list(jsondata.jsonable(data)) == ["at", "n", "none", "text"]


class _Session:
    """Collects what is added, as a session would before its flush."""

    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, item: object) -> None:
        self.added.append(item)


def test_set_field_audits_a_change_and_nothing_else():
    session, row, at = _Session(), SimpleNamespace(id=7, state="draft"), datetime(2026, 1, 1, tzinfo=UTC)
    assert not audit.set_field(session, row, "change", "state", "draft", 1, at)
    assert session.added == []
    assert audit.set_field(session, row, "change", "state", "submitted", 1, at, "transition")
    (event,) = session.added
    assert row.state == "submitted"
    assert (event.entity_type, event.entity_id, event.actor_id, event.at, event.action) == (
        "change",
        7,
        1,
        at,
        "transition",
    )
    assert (event.field, event.old_value, event.new_value) == ("state", "draft", "submitted")


def test_set_field_with_names_audits_an_id_by_the_names_once_it_is_set():
    session, row, at = _Session(), SimpleNamespace(id=3, assignee_id=None), datetime(2026, 1, 1, tzinfo=UTC)
    seen: list[object] = []

    def names(old: object, new: object) -> tuple[str | None, str | None]:
        seen.append(row.assignee_id)  # the field is already set when the names are asked for
        return {None: None, 5: "agent1"}[old], {None: None, 5: "agent1"}[new]

    assert audit.set_field(session, row, "ticket", "assignee_id", 5, None, at, "assign", names)
    assert seen == [5]
    (event,) = session.added
    assert (event.field, event.old_value, event.new_value, event.actor_id) == (
        "assignee",
        None,
        "agent1",
        None,
    )
    assert not audit.set_field(session, row, "ticket", "assignee_id", 5, None, at, "assign", names)
    assert seen == [5]


def test_record_for_takes_the_id_of_the_record():
    session, at = _Session(), datetime(2026, 1, 1, tzinfo=UTC)
    event = audit.record_for(session, "user", SimpleNamespace(id=9), 2, at, "update", "roles", "a,b", "a")
    assert session.added == [event]
    assert (event.entity_type, event.entity_id, event.actor_id, event.action) == ("user", 9, 2, "update")
    assert (event.field, event.old_value, event.new_value) == ("roles", "a", "a,b")


def test_an_instant_before_the_first_one_there_is_is_refused_not_crashed():
    from datetime import datetime, timedelta, timezone

    from itsm_tui.services.changes.helpers import _instant
    from itsm_tui.services.errors import ValidationError

    with pytest.raises(ValidationError) as refused:
        _instant("planned_start", datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))))
    assert refused.value.field == "planned_start"
    assert "out of range" in str(refused.value)
