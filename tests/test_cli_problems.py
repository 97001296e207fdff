"""``itsm problem ...`` on SQLite and PostgreSQL: a problem from raising to closing through the command line
(analysis, known error, links, the fix, its incidents resolved each on its own, one of them refused),
--json shapes, bad input (exit 2 and one line, or argparse's usage), refusals recorded, and people's text
printed literally."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from access_helpers import refusals, run_as

from itsm_tui.db import Database
from itsm_tui.services import changes, tickets

TITLE = "Mail [bold]bounces[/] \x1b[31m"  # markup and an escape sequence, as someone typed them
SHOWN = "Mail [bold]bounces[/] ^[[31m"  # printed: the markup as it is, the escape made visible


class AnsweringTerminal:
    """stdin at a terminal where, while the question waits, someone else changes a ticket; then yes."""

    def __init__(self, meanwhile: Callable[[], None]) -> None:
        self.meanwhile = meanwhile

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        self.meanwhile()
        return "y\n"


@pytest.fixture
def desk(db: Database, staff, config) -> Database:
    """Three incidents (INC0000001-3, agent1's group) and a change, CHG0000001."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    with db.session() as s:
        for title in ("Bounce one", "Bounce two", "Bounce three"):
            tickets.create_ticket(s, config, staff["agent1"], title=title, requester="Pat", service="email")
        changes.create_change(
            s,
            config,
            staff["chm"],
            change_type="normal",
            title="Patch the relay",
            targets=["email"],
            start=start,
            end=start + timedelta(hours=1),
            implementation_plan="Patch.",
            backout_plan="Unpatch.",
            implementer="net1",
        )
    return db


def test_a_problem_from_raising_to_closing(desk, staff, config, monkeypatch, capsys, tmp_path) -> None:
    url = desk.url

    def itsm(login: str, *argv: str) -> tuple[int, str, str]:
        return run_as(monkeypatch, capsys, login, *argv, "--db", url)

    monkeypatch.setattr("sys.stdin", io.StringIO("Read from stdin.\n"))
    code, out, err = itsm(
        "net1", "problem", "create", "--title", TITLE, "--service", "email", "--impact", "high",
        "--incident", "INC0000001", "--description-file", "-",
    )  # fmt: skip
    assert (code, out, err) == (0, f"PRB0000001 P2 new: {SHOWN}\n  1 incident(s) linked\n", "")

    code, out, err = itsm("net1", "problem", "investigate", "prb1")
    assert (code, err) == (0, "") and out.startswith("PRB0000001 P2 investigating v")

    cause = tmp_path / "cause.txt"
    cause.write_text("The relay's certificate expired.\n", encoding="utf-8")
    code, out, err = itsm(
        "net1", "problem", "update", "PRB0000001", "--root-cause-file", str(cause),
        "--why", "Mail bounced", "--why", "The relay refused TLS", "--why", "Its certificate expired",
        "--cause-category", "technology", "--cause-category", "process",
        "--workaround", "Send through mx-02", "--fix", "Renew the certificate; alert 30 days ahead",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["title"] == TITLE and data["description"] == "Read from stdin."
    assert data["root_cause"] == "The relay's certificate expired."
    assert data["whys"] == ["Mail bounced", "The relay refused TLS", "Its certificate expired"]
    assert data["cause_categories"] == ["process", "technology"]  # in the vocabulary's order
    assert (data["owner"], data["status"], data["priority"]) == ("net1", "investigating", 2)
    version = data["version"]

    code, out, err = itsm("net1", "problem", "update", "PRB0000001", "--title", "Old", "--version", "1")
    assert code == 2 and "reload it" in err and out == ""  # a stale save

    code, out, err = itsm("net1", "problem", "publish", "PRB0000001", "--symptom", "Mail bounces")
    assert code == 0, err
    assert out.splitlines()[1] == f"  KE0000001 published: {SHOWN}"

    code, out, err = itsm("agent1", "problem", "link", "PRB0000001", "INC0000002", "inc0000003", "INC0000001")
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == "  2 incident(s) linked, 1 linked already"
    code, out, err = itsm("net1", "problem", "link", "PRB0000001", "--change", "CHG0000001", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [c["ref"] for c in data["changes"]] == ["CHG0000001"] and data["linked"] == []
    assert data["version"] > version

    code, out, err = itsm("net1", "problem", "fix", "PRB0000001")
    assert (code, err) == (0, "") and " fix_in_progress " in out

    # Resolving asks at a terminal; while the question waits, agent1 changes INC0000002, which is then
    # refused as changed since it was shown; the other two are resolved, each on its own. Exit 1.
    def meanwhile() -> None:
        with desk.session() as s:
            tickets.update_fields(s, config, staff["agent1"], "INC0000002", title="Bounce two, again")

    monkeypatch.setattr("itsm_tui.cli.problems._interactive", lambda: True)
    monkeypatch.setattr("sys.stdin", AnsweringTerminal(meanwhile))
    code, out, err = itsm("prm", "problem", "resolve", "PRB0000001")
    assert code == 1, err
    assert "3 linked incident(s) still open: INC0000001 (new), INC0000002 (new), INC0000003 (new)" in err
    first, summary = out.splitlines()
    assert first.startswith("PRB0000001 P2 resolved v")
    assert summary.startswith(
        "  incidents: 2 done, 1 refused: INC0000002 (was changed by Agent1 (agent1) at "
    )
    # INC0000002: created (version 1), linked to the problem (2), then changed by agent1 (3)
    assert summary.endswith("after you opened it (version 2, now 3); reload it and apply your change again)")

    # On the resolved problem, --incidents yes resolves the one still open.
    code, out, err = itsm("prm", "problem", "resolve", "PRB0000001", "--incidents", "yes", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["incidents_resolved"] == {"done": ["INC0000002"], "refused": []}
    assert {i["status"] for i in data["incidents"]} == {"resolved"}
    assert data["known_errors"][0]["status"] == "retired"  # the fix is in: its known error retired

    # An agent may not close it; the attempt is refused (exit 2, one line) and recorded.
    before = len(refusals(desk))
    code, out, err = itsm("agent1", "problem", "close", "PRB0000001", "--verification", "ok")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "problem_manager" in err
    assert [r[:4] for r in refusals(desk)[before:]] == [
        ("agent1", staff["agent1"].id, "problem close", "problem.own")
    ]

    with pytest.raises(SystemExit) as usage:  # the verification is required
        itsm("prm", "problem", "close", "PRB0000001")
    assert usage.value.code == 2 and "--verification" in capsys.readouterr().err
    code, out, err = itsm("prm", "problem", "close", "PRB0000001", "--verification", "No bounce in a week")
    assert (code, err) == (0, "") and " closed " in out

    code, out, err = itsm("agent1", "problem", "show", "PRB0000001")
    assert (code, err) == (0, "")
    head, title = out.splitlines()[:2]
    assert re.fullmatch(r"PRB0000001  P2  closed  v\d+", head) and title == f"  {SHOWN}"
    assert "\x1b" not in out
    assert "Five whys:\n  1. Mail bounced\n  2. The relay refused TLS\n  3. Its certificate expired\n" in out
    assert "Cause categories: process, technology\n" in out
    assert "Verification (incidents since the fix: 0):\nNo bounce in a week\n" in out
    assert "Incidents (3, 0 open):" in out and "CHG0000001" in out
    assert "KE0000001  retired" in out and "0 uses" in out
    history = out.split("History (newest first):\n", 1)[1]
    assert history.index("status: resolved -> closed") < history.index("status: new -> investigating")

    code, out, err = itsm("agent1", "problem", "show", "PRB0000001", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["status"], data["verification"], data["incidents_since_fix"]) == (
        "closed",
        "No bounce in a week",
        0,
    )
    assert data["incidents"][0]["ref"] == "INC0000003" and data["incidents"][0]["opened_at"].endswith("Z")
    assert data["history"][0]["field"] == "closed_at" and data["history"][0]["at"].endswith("Z")
    assert data["actions"]["link_incident"] is not None  # what the reader is offered: nothing, said why


def test_lists_candidates_and_bad_input(desk, staff, config, monkeypatch, capsys) -> None:
    url = desk.url

    def itsm(login: str, *argv: str) -> tuple[int, str, str]:
        return run_as(monkeypatch, capsys, login, *argv, "--db", url)

    with desk.session() as s:
        for number in range(5):
            tickets.create_ticket(
                s, config, staff["agent1"], title=f"Relay {number}", requester="Pat", ci="mx-01"
            )
    code, out, err = itsm("net1", "problem", "candidates", "--json")
    assert code == 0, err
    (found,) = json.loads(out)
    assert (found["key"], found["count"], found["suggested_title"]) == (
        "ci:mx-01",
        5,
        "Repeated incidents on mx-01",
    )
    assert found["incident_refs"] == [f"INC{n:07d}" for n in (8, 7, 6, 5, 4)]
    code, out, err = itsm("net1", "problem", "create", "--from-candidate", "ci:mx-01", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["title"], data["ci"], data["incidents_total"]) == ("Repeated incidents on mx-01", "mx-01", 5)
    code, out, err = itsm("net1", "problem", "candidates")
    assert (code, out) == (0, "(none)\n")  # the cluster is covered now

    code, out, err = itsm("agent1", "problem", "list", "--json")
    assert code == 0, err
    assert [sorted(row) for row in json.loads(out)] == [
        [
            "ci",
            "incidents",
            "known_error",
            "opened_at",
            "owner",
            "priority",
            "ref",
            "service",
            "status",
            "title",
        ]
    ]
    code, out, err = itsm("agent1", "problem", "list", "--filter", "ci:MX-01 repeated")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["REF", "P", "STATUS", "SERVICE", "CI", "OWNER", "INC", "KE", "OPENED", "TITLE"]
    assert row.startswith("PRB0000001  P3  new") and row.endswith("Repeated incidents on mx-01")

    for argv, said in [
        (("list", "--view", "nope"), "--view: no view 'nope'; the views are: mine, open, known_errors, all"),
        (("list", "--filter", "p:9"), "--filter: p: takes a priority 1 to 5, not '9'"),
        (
            ("show", "PRB0000099"),
            "no problem 'PRB0000099'; give a reference such as PRB0000004 (itsm problem list)",
        ),
        (("create",), "give the problem a --title (or raise it from a cluster: --from-candidate KEY)"),
        (("update", "prb1"), "problem update: give something to change, e.g. --root-cause TEXT (see --help)"),
        (
            ("update", "prb1", "--cause-category", "luck"),
            "cause_categories: a cause category is one of people, process, technology, supplier, "
            "environment, not 'luck'",
        ),
        (("link", "prb1"), "problem link: name incidents to link (e.g. INC0000042) or --change CHG"),
    ]:  # fmt: skip
        code, out, err = itsm("net1", "problem", *argv)
        assert (code, out, err) == (2, "", f"itsm: error: {said}\n"), argv
    with pytest.raises(SystemExit) as usage:
        itsm("net1", "problem", "create", "--title", "x", "--impact", "huge")
    assert usage.value.code == 2 and "--impact" in capsys.readouterr().err
