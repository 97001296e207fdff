"""The command line: tickets with --json, errors on stderr with exit code 2, one transaction per command."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from itsm_tui.cli import main
from itsm_tui.db import Database
from itsm_tui.models import AuditEvent, Ticket, TicketEntry


@pytest.fixture
def as_login(monkeypatch):
    """Run commands as a given operating-system login."""

    def use(login: str) -> None:
        monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: login)

    use("agent1")
    return use


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def counts(url: str) -> tuple[int, int, int]:
    db = Database.connect(url)
    with db.read_session() as s:
        result = tuple(
            s.scalar(select(func.count()).select_from(m)) for m in (Ticket, AuditEvent, TicketEntry)
        )
    db.dispose()
    return result


def test_ticket_create_json_has_reference_priority_status_and_timestamps(db_url, staff, capsys, as_login):
    code, out, err = run(
        capsys,
        "ticket",
        "create",
        "--db",
        db_url,
        "--title",
        "Mail server down",
        "--requester",
        "Anna (Sales)",
        "--impact",
        "high",
        "--urgency",
        "high",
        "--service",
        "email",
        "--category",
        "outage",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["ref"] == "INC0000001"
    assert data["priority"] == 1
    assert data["status"] == "new"
    assert data["group"] == "SD-L1"
    assert data["opened_at"].endswith("Z")
    assert data["response_due_at"] > data["opened_at"]
    assert data["resolution_due_at"] > data["response_due_at"]


def test_ticket_create_with_opened_at_imports_history(db_url, staff, capsys, as_login):
    code, out, err = run(
        capsys,
        "ticket",
        "create",
        "--db",
        db_url,
        "--title",
        "Old call",
        "--requester",
        "Ben",
        "--kind",
        "request",
        "--opened-at",
        "2026-03-02T09:30:00+01:00",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["ref"] == "REQ0000001"
    assert data["opened_at"] == "2026-03-02T08:30:00Z"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--opened-at", "yesterday"], "ISO instant"),
        (["--opened-at", "2026-03-02T09:30:00"], "time zone"),
        (["--impact", "huge"], "invalid choice"),
    ],
)
def test_ticket_create_bad_arguments_exit_2(sqlite_url, capsys, as_login, args, needle):
    with pytest.raises(SystemExit) as exc:
        main(["ticket", "create", "--db", sqlite_url, "--title", "x", "--requester", "y", *args])
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


def test_service_refusal_goes_to_stderr_with_exit_2_and_writes_nothing(db_url, staff, capsys, as_login):
    before = counts(db_url)
    code, out, err = run(
        capsys,
        "ticket",
        "create",
        "--db",
        db_url,
        "--title",
        "x",
        "--requester",
        "y",
        "--service",
        "teleportation",
    )
    assert code == 2
    assert out == ""
    assert "unknown service 'teleportation'" in err
    assert counts(db_url) == before


def test_list_show_update_round_trip(db_url, staff, capsys, as_login):
    run(
        capsys,
        "ticket",
        "create",
        "--db",
        db_url,
        "--title",
        "VPN drops",
        "--requester",
        "Carl",
        "--service",
        "vpn",
    )
    code, out, _ = run(capsys, "ticket", "list", "--db", db_url, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["ref"] for r in rows] == ["INC0000001"]

    code, out, err = run(
        capsys,
        "ticket",
        "update",
        "INC0000001",
        "--db",
        db_url,
        "--take",
        "--reply",
        "Looking into it",
        "--status",
        "in_progress",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["assignee"] == "agent1"
    assert data["status"] == "in_progress"
    assert data["responded_at"] is not None

    code, out, err = run(
        capsys,
        "ticket",
        "update",
        "INC0000001",
        "--db",
        db_url,
        "--status",
        "resolved",
        "--code",
        "fixed",
        "--resolution-note",
        "Rebooted the gateway",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["status"] == "resolved"

    code, out, _ = run(capsys, "ticket", "show", "INC0000001", "--db", db_url, "--json")
    shown = json.loads(out)
    assert shown["resolution_code"] == "fixed"
    kinds = [item["kind"] for item in shown["timeline"]]
    assert "reply" in kinds and "audit" in kinds

    code, out, _ = run(capsys, "ticket", "show", "INC0000001", "--db", db_url)
    assert "Rebooted the gateway" in out and "Timeline" in out


def test_update_is_one_transaction(db_url, staff, capsys, as_login):
    run(capsys, "ticket", "create", "--db", db_url, "--title", "Printer", "--requester", "Dora")
    before = counts(db_url)
    # The take and the note are fine, the status change is illegal: nothing at all is written.
    code, _, err = run(
        capsys,
        "ticket",
        "update",
        "INC0000001",
        "--db",
        db_url,
        "--take",
        "--note",
        "checking",
        "--status",
        "closed",
    )
    assert code == 2
    assert "cannot go from assigned to closed" in err
    assert "in_progress" in err
    assert counts(db_url) == before
    _, out, _ = run(capsys, "ticket", "show", "INC0000001", "--db", db_url, "--json")
    assert json.loads(out)["assignee"] is None


def test_stale_expected_version_is_refused(db_url, staff, capsys, as_login):
    run(capsys, "ticket", "create", "--db", db_url, "--title", "Laptop", "--requester", "Eve")
    as_login("lead")
    run(capsys, "ticket", "update", "INC0000001", "--db", db_url, "--assign", "agent2")
    as_login("agent1")
    code, _, err = run(
        capsys,
        "ticket",
        "update",
        "INC0000001",
        "--db",
        db_url,
        "--expected-version",
        "1",
        "--urgency",
        "high",
    )
    assert code == 2
    assert "changed by Lead (lead)" in err
    assert "reload" in err


def test_permission_refusal_names_the_role(db_url, staff, capsys, as_login):
    run(capsys, "ticket", "create", "--db", db_url, "--title", "Desk phone", "--requester", "Finn")
    code, _, err = run(capsys, "ticket", "update", "INC0000001", "--db", db_url, "--assign", "agent2")
    assert code == 2
    assert "shift_lead" in err


def test_unknown_login_is_told_the_admin_command(db_url, staff, capsys, as_login):
    as_login("stranger")
    code, _, err = run(capsys, "ticket", "list", "--db", db_url)
    assert code == 2
    assert "itsm user add stranger" in err


def test_user_commands(db_url, capsys, as_login, config):
    Database.connect(db_url).sync_catalog(config)
    as_login("boss")
    code, out, err = run(
        capsys, "user", "add", "boss", "--db", db_url, "--role", "shift_lead", "--group", "SD-L1"
    )
    assert code == 0, err
    assert "admin" in out  # the first user becomes admin
    code, out, err = run(capsys, "user", "add", "kim", "--db", db_url, "--role", "agent", "--group", "SD-L1")
    assert code == 0, err
    code, out, _ = run(capsys, "user", "list", "--db", db_url, "--json")
    users = {u["login"]: u for u in json.loads(out)}
    assert users["kim"]["roles"] == ["agent"] and users["kim"]["groups"] == ["SD-L1"]
    as_login("kim")
    code, _, err = run(capsys, "user", "role", "kim", "--db", db_url, "--add", "shift_lead")
    assert code == 2
    assert "admin" in err
    as_login("boss")
    code, out, err = run(
        capsys, "user", "role", "kim", "--db", db_url, "--add", "support_l2", "--add-group", "NET-L2"
    )
    assert code == 0, err
    assert "support_l2" in out and "NET-L2" in out


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "db", "user", "ticket"):
        assert command in out


def test_the_console_log_is_a_private_file_that_keeps_the_details(tmp_path):
    import logging
    import stat

    from itsm_tui.cli.running import log_to_file

    path = log_to_file(tmp_path / "logs" / "console.log")
    logger = logging.getLogger("itsm")
    handler = logger.handlers[-1]
    try:
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("itsm.app").exception("worker load of TicketScreen failed")
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = path.read_text()
    assert "ERROR itsm.app: worker load of TicketScreen failed" in text
    assert "KeyError: 'missing'" in text  # the traceback, for whoever investigates
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
