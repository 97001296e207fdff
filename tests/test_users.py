"""Users and roles: the first user is admin, only admins administer, unknown logins are told what to do;
and the same through the command line."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from itsm_tui.cli import main
from itsm_tui.models import AuditEvent, User
from itsm_tui.services import users
from itsm_tui.services.access import ROLES, PermissionDenied
from itsm_tui.services.errors import NotFound, ValidationError


def user_count(db) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.count()).select_from(User))


def roles_of(db, login: str) -> set[str]:
    with db.read_session() as s:
        return set(users.resolve_actor(s, login).roles)


# --------------------------------------------------------------------------- services


def test_first_user_becomes_admin(db) -> None:
    with db.session() as s:
        users.add_user(s, actor_login="nobody-yet", login="boss", roles=["shift_lead"], groups=["SD-L1"])
    with db.read_session() as s:
        actor = users.resolve_actor(s, "boss")
        assert users.admin_logins(s) == ["boss"]
    assert actor.roles == {"admin", "shift_lead"}
    assert actor.group_codes == {"SD-L1"}


def test_second_user_is_not_made_admin(db) -> None:
    with db.session() as s:
        users.add_user(s, actor_login="boss", login="boss", roles=["shift_lead"], groups=[])
        users.add_user(s, actor_login="boss", login="ann", roles=["agent"], groups=["sd-l1"])
    actor = roles_of(db, "ann")
    assert actor == {"agent"}
    with db.read_session() as s:
        assert users.resolve_actor(s, "ann").group_codes == {"SD-L1"}  # codes match case-insensitively


def test_non_admin_cannot_add_users(db, staff) -> None:
    before = user_count(db)
    with pytest.raises(PermissionDenied) as info, db.session() as s:
        users.add_user(s, actor_login="lead", login="newbie", roles=["agent"], groups=["SD-L1"])
    message = str(info.value)
    assert "admin" in message and "admin1" in message  # the role needed, and who holds it
    assert user_count(db) == before
    with pytest.raises(PermissionDenied), db.session() as s:
        users.change_roles(s, actor_login="agent1", login="agent1", add=["shift_lead"])
    assert roles_of(db, "agent1") == {"agent"}


def test_admin_adds_a_user_and_it_is_audited(db, staff) -> None:
    with db.session() as s:
        user = users.add_user(
            s,
            actor_login="admin1",
            login="newbie",
            roles=["agent"],
            groups=["SD-L1"],
            name="New Bie",
            timezone="Europe/Berlin",
        )
        user_id = user.id
    with db.read_session() as s:
        actor = users.resolve_actor(s, "newbie")
        events = s.execute(
            select(AuditEvent.field, AuditEvent.new_value, AuditEvent.actor_id).where(
                AuditEvent.entity_type == "user", AuditEvent.entity_id == user_id
            )
        ).all()
    assert (actor.name, actor.roles, actor.timezone) == ("New Bie", {"agent"}, "Europe/Berlin")
    assert {(field, new) for field, new, _ in events} == {("roles", "agent"), ("groups", "SD-L1")}
    assert {actor_id for _, _, actor_id in events} == {staff["admin1"].id}


def test_add_user_validation(db, staff) -> None:
    cases = [
        ({"login": "1bad login"}, "login"),
        ({"login": "agent1"}, "login"),  # exists already
        ({"roles": []}, "role"),
        ({"timezone": "Mars/Base"}, "timezone"),
    ]
    for override, field in cases:
        kwargs = {"actor_login": "admin1", "login": "someone", "roles": ["agent"], "groups": [], **override}
        with pytest.raises(ValidationError) as info, db.session() as s:
            users.add_user(s, **kwargs)
        assert info.value.field == field, override


def test_unknown_login_is_told_how_to_be_added(db, staff) -> None:
    with pytest.raises(users.UnknownUser) as info, db.read_session() as s:
        users.resolve_actor(s, "ghost")
    message = str(info.value)
    assert "itsm user add ghost" in message
    assert "admin" in message


def test_unknown_login_on_an_empty_database_is_told_to_become_first_user(db) -> None:
    with pytest.raises(users.UnknownUser) as info, db.read_session() as s:
        users.resolve_actor(s, "founder")
    assert "itsm user add founder" in str(info.value)
    assert "first user" in str(info.value)


def test_resolve_actor_defaults_to_os_login(db, staff, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "current_login", lambda: "net1")
    with db.read_session() as s:
        actor = users.resolve_actor(s)
    assert (actor.login, actor.roles, actor.group_codes) == ("net1", {"support_l2"}, {"NET-L2"})


def test_change_roles_add_and_remove(db, staff) -> None:
    with db.session() as s:
        users.change_roles(s, actor_login="admin1", login="agent1", add=["problem_manager"])
    assert roles_of(db, "agent1") == {"agent", "problem_manager"}
    with db.session() as s:
        users.change_roles(s, actor_login="admin1", login="agent1", remove=["agent"], add_groups=["NET-L2"])
    with db.read_session() as s:
        actor = users.resolve_actor(s, "agent1")
        events = s.execute(
            select(AuditEvent.field, AuditEvent.old_value, AuditEvent.new_value, AuditEvent.actor_id)
            .where(
                AuditEvent.entity_type == "user",
                AuditEvent.entity_id == actor.id,
                AuditEvent.action == "update",
            )
            .order_by(AuditEvent.id)
        ).all()
    assert actor.roles == {"problem_manager"}
    assert actor.group_codes == {"SD-L1", "NET-L2"}
    assert [tuple(row[:3]) for row in events] == [
        ("roles", "agent", "agent,problem_manager"),
        ("roles", "agent,problem_manager", "problem_manager"),
        ("groups", "SD-L1", "NET-L2,SD-L1"),
    ]
    assert {row.actor_id for row in events} == {staff["admin1"].id}


def test_group_lead_and_group_removal(db, staff) -> None:
    with db.session() as s:
        users.change_roles(s, actor_login="admin1", login="net1", lead_of=["NET-L2"])
        users.change_roles(
            s, actor_login="admin1", login="agent2", remove_groups=["SD-L1"], add_groups=["APP-L2"]
        )
    with db.read_session() as s:
        rows = {row.login: row for row in users.list_users(s)}
    assert rows["net1"].lead_of == ["NET-L2"] and rows["lead"].lead_of == ["SD-L1"]
    assert rows["agent2"].groups == ["APP-L2"]
    assert rows["agent1"].lead_of == []


def test_a_user_keeps_at_least_one_role(db, staff) -> None:
    with pytest.raises(ValidationError) as info, db.session() as s:
        users.change_roles(s, actor_login="admin1", login="agent1", remove=["agent"])
    assert info.value.field == "role"
    assert roles_of(db, "agent1") == {"agent"}


def test_last_admin_cannot_be_removed(db, staff) -> None:
    with db.session() as s:
        users.change_roles(s, actor_login="admin1", login="admin1", add=["shift_lead"])
    with pytest.raises(ValidationError) as info, db.session() as s:
        users.change_roles(s, actor_login="admin1", login="admin1", remove=["admin"])
    assert info.value.field == "role" and "last admin" in str(info.value)
    assert roles_of(db, "admin1") == {"admin", "shift_lead"}
    with db.session() as s:  # with a second admin it works
        users.change_roles(s, actor_login="admin1", login="lead", add=["admin"])
        users.change_roles(s, actor_login="lead", login="admin1", remove=["admin"])
    assert roles_of(db, "admin1") == {"shift_lead"}
    with db.read_session() as s:
        assert users.admin_logins(s) == ["lead"]


def test_unknown_role_is_refused_with_the_known_list(db, staff) -> None:
    for call in (
        lambda s: users.add_user(s, actor_login="admin1", login="x1", roles=["wizard"], groups=[]),
        lambda s: users.change_roles(s, actor_login="admin1", login="agent1", add=["wizard"]),
        lambda s: users.change_roles(s, actor_login="admin1", login="agent1", remove=["wizard"]),
    ):
        with pytest.raises(ValidationError) as info, db.session() as s:
            call(s)
        assert info.value.field == "role"
        assert "wizard" in str(info.value)
        assert all(role in str(info.value) for role in ROLES)


def test_unknown_group_is_refused_with_the_known_list(db, staff) -> None:
    for call in (
        lambda s: users.add_user(s, actor_login="admin1", login="x1", roles=["agent"], groups=["HR-L9"]),
        lambda s: users.change_roles(s, actor_login="admin1", login="agent1", add_groups=["HR-L9"]),
        lambda s: users.change_roles(s, actor_login="admin1", login="agent1", lead_of=["HR-L9"]),
    ):
        with pytest.raises(ValidationError) as info, db.session() as s:
            call(s)
        assert info.value.field == "group"
        assert "HR-L9" in str(info.value)
        assert all(code in str(info.value) for code in ("SD-L1", "NET-L2", "APP-L2", "ENG-L3"))
    with db.read_session() as s:
        assert s.scalar(select(User.id).where(User.login == "x1")) is None


def test_change_roles_of_unknown_user(db, staff) -> None:
    with pytest.raises(NotFound) as info, db.session() as s:
        users.change_roles(s, actor_login="admin1", login="ghost", add=["agent"])
    assert "ghost" in str(info.value)


# --------------------------------------------------------------------------- command line


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``itsm`` against the test database as a given OS login; returns (exit code, stdout, stderr)."""
    monkeypatch.delenv("ITSM_CONFIG_DIR", raising=False)
    monkeypatch.delenv("ITSM_DB_URL", raising=False)

    def run(login: str, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setattr(users, "current_login", lambda: login)
        capsys.readouterr()
        code = main([*argv, "--db", db_url])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_first_user_then_list(cli) -> None:
    code, out, err = cli(
        "boss", "user", "add", "boss", "--role", "shift_lead", "--group", "SD-L1", "--name", "Big Boss"
    )
    assert (code, err) == (0, "")
    assert "boss" in out and "admin" in out
    code, out, _ = cli("boss", "user", "add", "ann", "--role", "agent", "--group", "SD-L1")
    assert code == 0 and "ann" in out
    code, out, err = cli("ann", "user", "list", "--json")
    assert (code, err) == (0, "")
    rows = {row["login"]: row for row in json.loads(out)}
    assert rows["boss"]["roles"] == ["admin", "shift_lead"] and rows["boss"]["name"] == "Big Boss"
    assert rows["ann"]["roles"] == ["agent"] and rows["ann"]["groups"] == ["SD-L1"]
    code, out, _ = cli("ann", "user", "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["LOGIN", "NAME", "ROLES", "GROUPS"]
    assert any(line.split()[0] == "ann" for line in out.splitlines()[1:])


def test_cli_non_admin_cannot_add(cli) -> None:
    cli("boss", "user", "add", "boss", "--role", "shift_lead")
    cli("boss", "user", "add", "ann", "--role", "agent", "--group", "SD-L1")
    code, out, err = cli("ann", "user", "add", "eve", "--role", "admin")
    assert code == 2 and out == ""
    assert err.startswith("itsm: error:")
    assert "admin" in err and "boss" in err
    code, out, _ = cli("boss", "user", "list", "--json")
    assert [row["login"] for row in json.loads(out)] == ["ann", "boss"]


def test_cli_role_changes(cli) -> None:
    cli("boss", "user", "add", "boss", "--role", "shift_lead")
    cli("boss", "user", "add", "ann", "--role", "agent", "--group", "SD-L1")
    code, out, err = cli("boss", "user", "role", "ann", "--add", "support_l2", "--add-group", "NET-L2")
    assert (code, err) == (0, "")
    assert "support_l2" in out and "NET-L2" in out
    code, out, err = cli("boss", "user", "role", "ann", "--add", "wizard")
    assert code == 2 and "wizard" in err and "agent" in err
    code, out, err = cli("boss", "user", "role", "ann")
    assert code == 2 and "--add" in err
    code, out, err = cli("boss", "user", "role", "boss", "--remove", "admin")
    assert code == 2 and "last admin" in err


def test_cli_unknown_login_goes_to_stderr(cli) -> None:
    cli("boss", "user", "add", "boss", "--role", "shift_lead")
    code, out, err = cli("ghost", "ticket", "list")
    assert code == 2 and out == ""
    assert "itsm user add ghost" in err


def test_cli_unknown_login_on_empty_database(cli) -> None:
    code, out, err = cli("founder", "ticket", "list")
    assert code == 2 and out == ""
    assert "itsm user add founder" in err and "first user" in err
