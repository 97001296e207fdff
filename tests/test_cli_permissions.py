"""Every command that writes checks a permission in the services, whoever runs it and however.

The commands are read from the parser itself (argparse's subparsers, every ``COMMAND [ACTION]``), so a
command added later fails :func:`test_every_command_is_classified` until it is classified here as one that
only reads or one that writes. For each that writes, a real ``itsm_tui.cli.main`` call with an attempt
that only a more privileged role may make is run as a plain desk user (an agent, or the role named) and as
a login that is no desk user: each is refused with exit code 2 and one line on stderr, nothing in the
database changes (every row of every table, compared before and after), and the refusal is recorded
under the login that tried. Both databases.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from access_helpers import CAST, refusals, run_as, snapshot, user_id
from sqlalchemy import text

from itsm_tui.cli.parser import build_parser
from itsm_tui.db import Database
from itsm_tui.services import articles, changes, problems, tickets
from itsm_tui.services import users as user_service

STRANGER = "mallory"  # an OS login that is no user of the desk
LEAVER = "leaver"  # a desk user who was deactivated
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)
START_AT, END_AT = START.isoformat(), (START + timedelta(days=1)).isoformat()
WHEN = ("--start", "22:00", "--minutes", "60", "--timezone", "UTC")  # a maintenance window's
FAR_FUTURE = "2099-01-01T00:00:00Z"


def command_keys(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``COMMAND`` and ``COMMAND ACTION`` the parser defines (those with actions by the action)."""
    keys: set[str] = set()
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            inner = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
            if inner:
                keys |= {f"{name} {verb}" for verb in inner[0].choices}
            else:
                keys.add(name)
    return keys


# Commands that only read the desk (they may write a cache, such as the KPI roll-up, or a file).
READING = {
    "db status",
    "db check",
    "user list",
    "ticket list",
    "ticket search",
    "ticket show",
    "sla explain",
    "report kpi",  # refreshes the KPI roll-up: derived figures, the same whoever asks
    "report handover",
    "report access",  # privileged reading: see test_the_access_review_is_refused_to_agents_and_recorded
    "change list",
    "change show",
    "change conflicts",
    "change agenda",
    "change slots",
    "change export",  # writes the .ics file it is given, not the database
    "change windows",
    "change risk",
    "audit verify",
    "problem list",
    "problem show",
    "problem candidates",
    "view list",
    "kb list",
    "kb show",
}


@dataclass(frozen=True)
class Attempt:
    """A writing command tried with what only a more privileged role may do; ``refused`` are the desk users
    (besides a login that is no desk user) it must refuse."""

    argv: tuple[str, ...]
    refused: tuple[str, ...] = ("agent1",)
    recorded: bool = True  # the refusal is a permission's (recorded), not a check of the command line
    postgresql_only: bool = False  # SQLite refuses it for what it is, before any permission
    # Privileged commands refuse a stranger as they refuse a user without the role (naming the
    # permission); the others tell a stranger how to become a desk user (recorded without a permission).
    stranger_told_to_join: bool = False


WRITING: dict[str, Attempt] = {
    "demo": Attempt(("demo", "--force", "--tickets", "50")),
    "db upgrade": Attempt(("db", "upgrade")),
    "db backup": Attempt(("db", "backup", "/tmp/itsm-refused-backup.db")),  # writes a file, not the desk
    "db restore": Attempt(("db", "restore", "/tmp/itsm-refused-restore.db", "--force")),
    "db grant-roles": Attempt(
        ("db", "grant-roles", "--all-users"), postgresql_only=True, stranger_told_to_join=True
    ),
    "user add": Attempt(("user", "add", "evil", "--role", "admin")),
    "user role": Attempt(("user", "role", "agent1", "--add", "admin")),
    # Agents log tickets; an analyst (read-only reports) may not.
    "ticket create": Attempt(
        ("ticket", "create", "--title", "x", "--requester", "y"), ("analyst1",), stranger_told_to_join=True
    ),
    "ticket update": Attempt(
        ("ticket", "update", "INC0000001", "--assign", "agent2"), stranger_told_to_join=True
    ),
    # Support roles take tickets; an analyst (read-only reports) may not.
    "ticket take-next": Attempt(("ticket", "take-next"), ("analyst1",), stranger_told_to_join=True),
    "sla scan": Attempt(("sla", "scan", "--now", FAR_FUTURE)),
    # Any active desk user may run the jobs headless or serve the console (as themselves): the one who
    # left may not, nor a login that is no desk user.
    "scheduler": Attempt(("scheduler",), (LEAVER,)),
    "serve": Attempt(("serve", "--port", "1"), (LEAVER,), recorded=False),
    "change create": Attempt(
        ("change", "create", "--type", "normal", "--title", "x", "--target", "network", "--start", START_AT),
        stranger_told_to_join=True,
    ),
    "change submit": Attempt(("change", "submit", "CHG0000001"), stranger_told_to_join=True),
    # Who raised a change (chm raised them all) or a change manager edits it; only who raised it withdraws
    # it; a change manager cancels it.
    "change edit": Attempt(("change", "edit", "CHG0000001", "--title", "Mine"), stranger_told_to_join=True),
    "change withdraw": Attempt(("change", "withdraw", "CHG0000001"), stranger_told_to_join=True),
    "change cancel": Attempt(
        ("change", "cancel", "CHG0000001", "--reason", "no"), stranger_told_to_join=True
    ),
    "change assess": Attempt(("change", "assess", "CHG0000002"), stranger_told_to_join=True),
    "change approve": Attempt(("change", "approve", "CHG0000003"), stranger_told_to_join=True),
    "change reject": Attempt(
        ("change", "reject", "CHG0000003", "--reason", "no"), stranger_told_to_join=True
    ),
    "change schedule": Attempt(("change", "schedule", "CHG0000004"), stranger_told_to_join=True),
    "change start": Attempt(("change", "start", "CHG0000005"), stranger_told_to_join=True),
    "change complete": Attempt(
        ("change", "complete", "CHG0000006", "--outcome", "implemented"), stranger_told_to_join=True
    ),
    "change review": Attempt(("change", "review", "CHG0000007"), stranger_told_to_join=True),
    "change close": Attempt(
        ("change", "close", "CHG0000008", "--review-notes", "fine"), stranger_told_to_join=True
    ),
    "change add-window": Attempt(
        (
            "change",
            "add-window",
            "--name",
            "w",
            "--service",
            "network",
            "--rrule",
            "FREQ=WEEKLY;BYDAY=SA",
            *WHEN,
        ),
        stranger_told_to_join=True,
    ),
    "change add-blackout": Attempt(
        ("change", "add-blackout", "--name", "b", "--start", START_AT, "--end", END_AT),
        stranger_told_to_join=True,
    ),
    "change edit-window": Attempt(
        ("change", "edit-window", "1", "--name", "Mine"), stranger_told_to_join=True
    ),
    "change delete-window": Attempt(("change", "delete-window", "1"), stranger_told_to_join=True),
    "change edit-blackout": Attempt(
        ("change", "edit-blackout", "1", "--name", "Mine"), stranger_told_to_join=True
    ),
    "change delete-blackout": Attempt(("change", "delete-blackout", "1"), stranger_told_to_join=True),
    # Anyone's views are their own: an agent may not share one with a group not theirs, nor delete one
    # that is not theirs (here: none of that name); refused by the rule, not by a role.
    "view save": Attempt(
        ("view", "save", "Mine", "--key", "8", "--share", "NET-L2"),
        recorded=False,
        stranger_told_to_join=True,
    ),
    "view delete": Attempt(("view", "delete", "Not mine"), recorded=False, stranger_told_to_join=True),
    # Problems: L2/L3 and problem managers raise and analyse them, problem managers own the lifecycle; who
    # may link a ticket links incidents (an analyst may not). Each step meets a problem it applies to.
    "problem create": Attempt(("problem", "create", "--title", "x"), stranger_told_to_join=True),
    "problem update": Attempt(
        ("problem", "update", "PRB0000001", "--root-cause", "x"), stranger_told_to_join=True
    ),
    "problem investigate": Attempt(("problem", "investigate", "PRB0000001"), stranger_told_to_join=True),
    "problem publish": Attempt(("problem", "publish", "PRB0000001"), stranger_told_to_join=True),
    "problem fix": Attempt(("problem", "fix", "PRB0000002"), stranger_told_to_join=True),
    "problem resolve": Attempt(
        ("problem", "resolve", "PRB0000003", "--incidents", "yes"), stranger_told_to_join=True
    ),
    "problem close": Attempt(
        ("problem", "close", "PRB0000004", "--verification", "ok"), stranger_told_to_join=True
    ),
    "problem reopen": Attempt(
        ("problem", "reopen", "PRB0000004", "--reason", "x"), stranger_told_to_join=True
    ),
    "problem cancel": Attempt(
        ("problem", "cancel", "PRB0000001", "--reason", "x"), stranger_told_to_join=True
    ),
    "problem duplicate": Attempt(
        ("problem", "duplicate", "PRB0000001", "--of", "PRB0000002", "--reason", "x"),
        stranger_told_to_join=True,
    ),
    "problem link": Attempt(
        ("problem", "link", "PRB0000001", "INC0000001"), ("analyst1",), stranger_told_to_join=True
    ),
    "problem unlink": Attempt(
        ("problem", "unlink", "PRB0000001", "INC0000001"), ("analyst1",), stranger_told_to_join=True
    ),
    "problem retire-ke": Attempt(("problem", "retire-ke", "KE0000001"), stranger_told_to_join=True),
    # Knowledge: agents write and submit their own drafts; publishers review, publish and retire.
    "kb create": Attempt(
        ("kb", "create", "--title", "x", "--body", "y"), ("analyst1",), stranger_told_to_join=True
    ),
    "kb update": Attempt(("kb", "update", "KB0000001", "--title", "Mine now"), stranger_told_to_join=True),
    "kb submit": Attempt(("kb", "submit", "KB0000001"), stranger_told_to_join=True),
    "kb publish": Attempt(("kb", "publish", "KB0000002"), stranger_told_to_join=True),
    "kb send-back": Attempt(("kb", "send-back", "KB0000002", "--note", "no"), stranger_told_to_join=True),
    "kb retire": Attempt(("kb", "retire", "KB0000003", "--reason", "old"), stranger_told_to_join=True),
}
# The state each article of the desk is put in (KB0000001 first, each net1's), for the kb steps above.
ARTICLE_STATES = ("draft", "in_review", "published")
# The status each problem of the desk is put in (PRB0000001 first, each net1's), for the problem steps above.
PROBLEM_STATES = ("new", "investigating", "fix_in_progress", "resolved", "known_error")
# The state each change of the desk is put in (CHG0000001 first), so that each lifecycle step above meets
# a change it applies to and only the role can refuse it.
CHANGE_STATES = (
    "draft",
    "submitted",
    "assessed",
    "approved",
    "scheduled",
    "implementing",
    "implemented",
    "review",
)


def test_every_command_is_classified() -> None:
    keys = command_keys(build_parser())
    unclassified = keys - READING - set(WRITING)
    assert not unclassified, f"classify as reading or writing: {sorted(unclassified)}"
    assert "ticket update" in keys and "change add-blackout" in keys and "demo" in keys  # the walk works
    assert not set(WRITING) - keys, "an attempt for a command that no longer exists"


@pytest.fixture(scope="module")
def desk(module_db: Database, config) -> Database:
    """A working desk: the cast, a leaver, a ticket, and a change in each state a step needs."""
    db = module_db
    with db.session() as s:
        for login, (roles, groups) in {**CAST, LEAVER: (["agent"], ["SD-L1"])}.items():
            user_service.add_user(s, actor_login="admin1", login=login, roles=roles, groups=groups)
        s.execute(text("UPDATE users SET active = :no WHERE login = :l"), {"no": False, "l": LEAVER})
    with db.session() as s:
        actors = {login: user_service.resolve_actor(s, login) for login in CAST}
        tickets.create_ticket(s, config, actors["agent1"], title="Printer jam", requester="Pat")
        for index, state in enumerate(CHANGE_STATES):
            change = changes.create_change(
                s,
                config,
                actors["chm"],
                change_type="normal",
                title=f"Change {index + 1}",
                targets=["network"],
                start=START + timedelta(days=index),
                end=START + timedelta(days=index, hours=1),
                implementation_plan="Do it.",
                backout_plan="Undo it.",
                implementer="net1",
            )
            s.execute(text("UPDATE changes SET state = :s WHERE id = :i"), {"s": state, "i": change.id})
        for state in PROBLEM_STATES:
            problem = problems.create_problem(s, config, actors["net1"], title=f"Problem {state}")
            if state == "known_error":  # with its known error, KE0000001, published
                analysis = {"root_cause": "Cause", "workaround": "Restart"}
                problems.update_problem(s, config, actors["net1"], problem.ref, analysis)
                problems.publish_known_error(s, config, actors["net1"], problem.ref)
            else:
                s.execute(
                    text("UPDATE problems SET status = :s WHERE id = :i"), {"s": state, "i": problem.id}
                )
        for state in ARTICLE_STATES:
            article = articles.create_article(
                s, config, actors["net1"], title=f"Article {state}", body="Text"
            )
            s.execute(
                text("UPDATE knowledge_articles SET status = :s WHERE id = :i"), {"s": state, "i": article.id}
            )
    return db


def _logins(attempt: Attempt) -> list[str]:
    return [*attempt.refused, STRANGER]


@pytest.mark.parametrize("key", sorted(WRITING))
def test_writing_commands_refuse_who_may_not(key, desk, monkeypatch, capsys) -> None:
    attempt = WRITING[key]
    assert desk.backend in ("sqlite", "postgresql")
    for login in _logins(attempt):
        before, refused_before = snapshot(desk), refusals(desk)
        code, out, err = run_as(monkeypatch, capsys, login, *attempt.argv, "--db", desk.url)
        assert code == 2, (login, out, err)
        assert err.startswith("itsm: error: ") and err.count("\n") == 1, (login, err)
        assert "\x1b" not in err and "Traceback" not in err
        assert snapshot(desk) == before, f"{key} as {login} changed the database"
        new = refusals(desk)[len(refused_before) :]
        if attempt.postgresql_only and desk.backend == "sqlite":
            assert "PostgreSQL" in err and new == []
            continue
        if not attempt.recorded:
            continue
        assert len(new) == 1, (login, err, new)
        who, uid, action, permission, detail = new[0]
        assert (who, uid) == (login, user_id(desk, login) if login != STRANGER else None)
        assert action.split(" --")[0] == key
        assert detail == err.removeprefix("itsm: error: ").rstrip("\n")
        if login == STRANGER and attempt.stranger_told_to_join:
            assert permission is None and "itsm user add mallory" in err
        else:
            assert permission, err


def test_a_far_sla_scan_names_the_option_in_its_record(desk, monkeypatch, capsys) -> None:
    before = len(refusals(desk))
    code, _, err = run_as(monkeypatch, capsys, "lead", "sla", "scan", "--now", FAR_FUTURE, "--db", desk.url)
    assert code == 2
    assert "process_manager or admin" in err and "(you have shift_lead)" in err
    (login, _, action, permission, _), *_ = refusals(desk)[before:]
    assert (login, action, permission) == ("lead", "sla scan --now", "sla.scan_at")


def test_the_access_review_is_refused_to_agents_and_recorded(desk, monkeypatch, capsys) -> None:
    before = len(refusals(desk))
    code, out, err = run_as(monkeypatch, capsys, "agent1", "report", "access", "--db", desk.url)
    assert (code, out) == (2, "")
    assert err == (
        "itsm: error: You may not read the access review: it needs the role shift_lead or process_manager "
        "or admin (you have agent).\n"
    )
    assert refusals(desk)[before:] == [
        ("agent1", user_id(desk, "agent1"), "report access", "report.access", err[13:-1])
    ]
    code, out, err = run_as(monkeypatch, capsys, "lead", "report", "access", "--db", desk.url)
    assert code == 0, err
    assert "Refused privileged attempts" in out and "report access" in out  # the agent's attempt, listed


# --------------------------------------------------------------------------- the same, allowed


ALLOWED = [
    ("admin1", ("user", "add", "newbie", "--role", "agent", "--group", "SD-L1")),
    ("admin1", ("user", "role", "agent2", "--add", "support_l2")),
    ("admin1", ("db", "upgrade")),
    ("agent1", ("ticket", "take-next")),
    ("lead", ("ticket", "update", "INC0000001", "--assign", "agent2")),
    ("admin1", ("sla", "scan", "--now", FAR_FUTURE)),
    ("agent1", ("sla", "scan")),
    ("chm", ("change", "add-blackout", "--name", "Freeze", "--start", START_AT, "--end", END_AT)),
    ("net1", ("problem", "create", "--title", "Mail bounces", "--service", "email")),
    ("agent1", ("kb", "create", "--title", "Printer jams", "--body", "Open tray 2.")),
]


def test_the_same_commands_work_for_who_may(db, config, staff, monkeypatch, capsys) -> None:
    """The refusals above are the guards', not a harness that fails everything: the holders of the
    permissions run the same commands (exit 0) and they write."""
    with db.session() as s:
        tickets.create_ticket(s, config, staff["agent1"], title="Printer jam", requester="Pat")
    for login, argv in ALLOWED:
        before = snapshot(db)
        code, _, err = run_as(monkeypatch, capsys, login, *argv, "--db", db.url)
        assert code == 0, (login, argv, err)
        if argv[:2] not in (("db", "upgrade"), ("sla", "scan")):
            assert snapshot(db) != before, (login, argv)
    assert refusals(db) == []
