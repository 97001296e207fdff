"""``itsm change ...`` on SQLite and PostgreSQL: the lifecycle from the command line with --json, refusals on
stderr with exit code 2 and nothing written, the conflict check, windows and blackouts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from itsm_tui.cli import main


@pytest.fixture
def as_login(monkeypatch):
    def use(login: str) -> None:
        monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: login)

    return use


@pytest.fixture
def base() -> datetime:
    """A Saturday evening at least a week ahead (the command line plans against the real clock)."""
    day = datetime.now(UTC).replace(hour=21, minute=0, second=0, microsecond=0) + timedelta(days=8)
    return day + timedelta(days=(5 - day.weekday()) % 7)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%MZ")


def create(capsys, db_url, start, *extra) -> dict:
    code, out, err = run(
        capsys,
        "change",
        "create",
        "--db",
        db_url,
        "--type",
        "normal",
        "--title",
        "Replace line card",
        "--target",
        "network:core-sw-01",
        "--start",
        iso(start),
        "--minutes",
        "120",
        "--implementation-plan",
        "Swap it.",
        "--backout-plan",
        "Swap back.",
        "--implementer",
        "net1",
        "--json",
        *extra,
    )
    assert code == 0, err
    return json.loads(out)


def test_the_lifecycle_from_the_command_line(db_url, staff, capsys, as_login, base):
    as_login("net1")
    data = create(capsys, db_url, base, "--submit")
    ref = data["ref"]
    assert (data["state"], data["change_type"], data["targets"]) == (
        "submitted",
        "normal",
        ["network:core-sw-01"],
    )
    assert data["planned_start"] == iso(base).replace("Z", ":00Z")
    as_login("chm")
    code, out, err = run(capsys, "change", "assess", ref, "--db", db_url, "--risk", "high")
    assert code == 0, err
    assert out.startswith(f"{ref} normal assessed v")
    as_login("agent1")
    code, out, err = run(capsys, "change", "approve", ref, "--db", db_url)
    assert code == 2 and "cab_member or change_manager" in err and out == ""
    as_login("cab1")
    code, out, err = run(capsys, "change", "approve", ref, "--db", db_url, "--reason", "Fine", "--json")
    assert code == 0, err
    assert json.loads(out)["state"] == "approved"
    assert json.loads(out)["approvals"][0] | {"decided_at": None} == {
        "login": "cab1",
        "name": "Cab1",
        "decision": "approved",
        "reason": "Fine",
        "decided_at": None,
        "shown": "approved",
    }
    as_login("chm")
    code, out, err = run(capsys, "change", "schedule", ref, "--db", db_url, "--expected-version", "1")
    assert code == 2 and "reload it" in err  # an old version: refused
    code, out, err = run(capsys, "change", "schedule", ref, "--db", db_url)
    assert code == 0 and f"{ref} normal scheduled" in out, err
    as_login("net1")  # a week before its window: its implementer may not begin it, a change manager may
    code, out, err = run(capsys, "change", "start", ref, "--db", db_url)
    assert code == 2 and f"{ref} is planned for" in err and "override" in err and out == ""
    as_login("chm")
    code, out, err = run(capsys, "change", "start", ref, "--db", db_url, "--override", "Vendor only now")
    assert code == 0 and f"{ref} normal implementing" in out, err
    as_login("net1")
    code, out, err = run(
        capsys, "change", "complete", ref, "--db", db_url, "--outcome", "backed_out", "--note", "Card faulty"
    )
    assert code == 0, err
    as_login("chm")
    code, out, err = run(capsys, "change", "close", ref, "--db", db_url)
    assert code == 2 and "post-implementation review" in err
    code, out, err = run(capsys, "change", "review", ref, "--db", db_url)
    assert code == 0, err
    code, out, err = run(capsys, "change", "close", ref, "--db", db_url, "--review-notes", "Spare was faulty")
    assert code == 0 and f"{ref} normal closed" in out, err

    code, out, err = run(capsys, "change", "show", ref, "--db", db_url)
    assert code == 0, err
    for text in (
        "closed",
        "Outcome:",
        "backed_out (review required)",
        "Review:",
        "Spare was faulty",
        "History",
    ):
        assert text in out
    code, out, err = run(capsys, "change", "list", "--db", db_url, "--json", "--state", "closed")
    assert [r["ref"] for r in json.loads(out)] == [ref]


def test_reject_needs_a_reason_and_a_standard_change_is_pre_approved(db_url, staff, capsys, as_login, base):
    as_login("net1")
    ref = create(capsys, db_url, base, "--submit")["ref"]
    as_login("chm")
    run(capsys, "change", "assess", ref, "--db", db_url)
    as_login("cab1")
    with pytest.raises(SystemExit) as usage:
        main(["change", "reject", ref, "--db", db_url])
    assert usage.value.code == 2 and "--reason" in capsys.readouterr().err
    code, out, err = run(
        capsys, "change", "reject", ref, "--db", db_url, "--reason", "Not in the freeze week"
    )
    assert code == 0 and "rejected" in out, err
    as_login("net1")
    code, out, err = run(
        capsys,
        "change",
        "create",
        "--db",
        db_url,
        "--type",
        "standard",
        "--template",
        "std-cert-renewal",
        "--service",
        "vpn",
        "--start",
        iso(base + timedelta(days=1)),
        "--submit",
    )
    assert code == 0 and "standard approved" in out and "Renew a TLS certificate" in out, err


def test_conflicts_blackouts_and_the_emergency_override(db_url, staff, capsys, as_login, base):
    as_login("chm")
    code, out, err = run(
        capsys,
        "change",
        "add-window",
        "--db",
        db_url,
        "--name",
        "Net window",
        "--service",
        "network",
        "--rrule",
        "FREQ=WEEKLY;BYDAY=SA",
        "--start",
        "22:00",
        "--minutes",
        "360",
        "--timezone",
        "UTC",
    )
    assert code == 0 and "window 1 added" in out, err
    freeze_day = base + timedelta(days=7)
    code, out, err = run(
        capsys,
        "change",
        "add-blackout",
        "--db",
        db_url,
        "--name",
        "Audit week",
        "--start",
        iso(freeze_day - timedelta(hours=21)),
        "--end",
        iso(freeze_day + timedelta(days=1)),
    )
    assert code == 0 and "Audit week (all services)" in out, err
    as_login("net1")
    first = create(capsys, db_url, base + timedelta(hours=1), "--submit")["ref"]
    as_login("lead")
    data = create(capsys, db_url, base + timedelta(hours=2), "--submit")
    assert [(c["kind"], c["changes"]) for c in data["conflicts"]] == [
        ("overlap", [first, data["ref"]]),
        ("implementer", [first, data["ref"]]),
    ]
    code, out, err = run(capsys, "change", "conflicts", "--db", db_url, "--json")
    assert code == 0, err
    found = json.loads(out)
    assert [(c["kind"], c["severity"], c["resource"]) for c in found] == [
        ("overlap", "conflict", "CI core-sw-01 (network)"),
        ("implementer", "conflict", "implementer net1"),
    ]
    assert found[0]["start"] == iso(base + timedelta(hours=2)).replace("Z", ":00Z")
    code, out, err = run(capsys, "change", "conflicts", "--db", db_url)
    assert (
        "Conflicts of the planned changes" in out and "CONFLICT" in out and "both change CI core-sw-01" in out
    )

    # In the blackout a normal change is refused (nothing written); an emergency needs a manager's reason.
    as_login("net1")
    frozen = create(capsys, db_url, freeze_day + timedelta(hours=1))["ref"]
    code, out, err = run(capsys, "change", "submit", frozen, "--db", db_url)
    assert code == 2 and 'change freeze "Audit week"' in err
    code, out, err = run(
        capsys,
        "change",
        "create",
        "--db",
        db_url,
        "--type",
        "emergency",
        "--title",
        "Fix core switch",
        "--target",
        "core-sw-02",
        "--start",
        iso(freeze_day + timedelta(hours=2)),
        "--minutes",
        "60",
        "--implementation-plan",
        "Replace PSU.",
        "--backout-plan",
        "None possible.",
        "--submit",
    )
    assert code == 2 and "override reason" in err
    code, out, err = run(capsys, "change", "list", "--db", db_url, "--json")
    assert len(json.loads(out)) == 3  # the refused create wrote nothing
    as_login("chm")
    code, out, err = run(
        capsys,
        "change",
        "create",
        "--db",
        db_url,
        "--type",
        "emergency",
        "--title",
        "Fix core switch",
        "--target",
        "core-sw-02",
        "--start",
        iso(freeze_day + timedelta(hours=2)),
        "--minutes",
        "60",
        "--implementation-plan",
        "Replace PSU.",
        "--backout-plan",
        "None possible.",
        "--submit",
        "--override-reason",
        "Switch failing",
        "--json",
    )
    assert code == 0, err
    first_conflict = json.loads(out)["conflicts"][0]
    assert (first_conflict["kind"], first_conflict["severity"]) == ("blackout", "overridden")
    code, out, err = run(capsys, "change", "windows", "--db", db_url, "--json")
    assert [w["rrule"] for w in json.loads(out)["windows"]] == ["FREQ=WEEKLY;BYDAY=SA"]
    assert [b["name"] for b in json.loads(out)["blackouts"]] == ["Audit week"]


def test_errors_say_what_to_do(db_url, staff, capsys, as_login, base):
    as_login("net1")
    code, _, err = run(capsys, "change", "show", "CHG0000042", "--db", db_url)
    assert code == 2 and "itsm change list" in err
    code, _, err = run(
        capsys,
        "change",
        "create",
        "--db",
        db_url,
        "--type",
        "normal",
        "--title",
        "x",
        "--target",
        "nowhere",
        "--start",
        iso(base),
        "--minutes",
        "60",
    )
    assert code == 2 and "targets:" in err and "neither a service" in err
    ref = create(capsys, db_url, base)["ref"]
    code, _, err = run(capsys, "change", "schedule", ref, "--db", db_url)
    assert code == 2 and "is not approved; to move it give --start" in err
