"""Taking a ticket means "take it if nobody has it yet", and every lost race ends in one clear line.

Real processes (agents and shift leads, each its own ``itsm`` with the OS login patched) race to take the
same unassigned ticket, round after round, on SQLite and PostgreSQL: exactly one wins, every loser exits 2
with the line naming the winner and nothing on stderr besides, and the database holds the winner's take
alone. A lead's take never replaces an agent; only the explicit assign reassigns, version-checked, and the
agent who had the ticket is told. Interleaved transactions on PostgreSQL reach each way the database
refuses a loser (the take's claim, the version check at flush, a deadlock, a serialization failure, a
unique row) and each reads as a refusal, never a traceback. Last, the console: the queue's and the ticket
screen's ``t`` on a ticket another process took a moment before, and a lead's assign form over it.

Expected lines and names are written out by hand from the users each test makes.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from select import select as wait_readable

import pytest
from forked import PIPE, Forked
from pilot_helpers import settle, shows, wait_until
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from itsm_tui.app import ItsmApp
from itsm_tui.models import AuditEvent, Notification, SatisfactionRating, Ticket, User
from itsm_tui.screens.forms import AssignForm
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import tickets, versions
from itsm_tui.services import users as user_service
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import StaleEdit

# Besides the standard cast (names are the logins in title case: "Agent1", "Lead"), an agent and a second
# shift lead with names of two words, all in SD-L1.
EXTRA = {"dana": ("Dana Lee", "agent"), "sam": ("Sam Okafor", "shift_lead")}
NAMES = {"agent1": "Agent1", "agent2": "Agent2", "lead": "Lead", "dana": "Dana Lee", "sam": "Sam Okafor"}
LEADS = {"lead", "sam"}
RACERS = ("agent1", "agent2", "dana", "lead", "sam")
ROUNDS = 4
LEAD_HINT = " (assign reassigns it)"  # what a shift lead's refusal adds: the explicit assign reassigns
LINE_SECONDS = 120  # how long a racer may take over one command
RACE_TAIL = "at the same moment; nothing of yours was saved: reload it and try again"

CLI = (
    "import sys; import itsm_tui.services.users as u; u.os_login = lambda: {login!r}; "
    "from itsm_tui.cli import main; sys.exit(main(sys.argv[1:]))"
)

# A racer: one process of its own for one login, running ``itsm`` (the CLI's main) once a round. It loads
# the command's modules first, says "ready", waits for the round's go file and only then runs the command,
# so that every racer's command starts at the same moment. It reports the exit code and what the command
# wrote to stdout and stderr (an exception escaping ``main`` as its traceback), and how many of its takes'
# claims found the ticket gone: only a take that overlapped the winner's transaction loses there, so that
# count shows the race was a real one.
RACER = r"""
import contextlib, io, json, sys, time, traceback
from pathlib import Path

import itsm_tui.services.users as users

users.os_login = lambda: sys.argv[1]
from itsm_tui.cli import main
import itsm_tui.cli.tickets  # the command's module, loaded before any race
import itsm_tui.services.tickets.editing as editing

claims_lost = []
claim = editing._claim


def watched_claim(*args):
    won = claim(*args)
    if not won:
        claims_lost.append(1)
    return won


editing._claim = watched_claim
for line in sys.stdin:
    argv, go = json.loads(line)
    claims_lost.clear()
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.0005)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException:
            traceback.print_exc()
            code = -1
    result = {"code": code, "out": out.getvalue(), "err": err.getvalue(), "claims_lost": len(claims_lost)}
    print(json.dumps(result), flush=True)
"""


@pytest.fixture
def desk(db, staff):
    """The standard cast plus Dana Lee (agent) and Sam Okafor (shift lead), by login."""
    with db.session() as s:
        for login, (name, role) in EXTRA.items():
            user_service.add_user(
                s, actor_login="admin1", login=login, roles=[role], groups=["SD-L1"], name=name
            )
    with db.read_session() as s:
        return {**staff, **{login: user_service.resolve_actor(s, login) for login in EXTRA}}


def new_ticket(db, config, actor, title: str = "Printer on fire") -> str:
    with db.session() as s:
        return tickets.create_ticket(s, config, actor, title=title, requester="Ann Example").ref


def state(db, ref: str) -> tuple[str | None, int]:
    """The ticket's assignee (login) and version."""
    with db.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        return (ticket.assignee.login if ticket.assignee else None), ticket.version


def audit_of(db, ref: str) -> list[tuple[str | None, str, str | None, str | None]]:
    """The ticket's audit events as (actor login, action, field, new value), oldest first."""
    with db.read_session() as s:
        ticket_id = tickets.get_ticket(s, ref).id
        rows = s.execute(
            select(User.login, AuditEvent.action, AuditEvent.field, AuditEvent.new_value)
            .outerjoin(User, User.id == AuditEvent.actor_id)
            .where(AuditEvent.entity_type == "ticket", AuditEvent.entity_id == ticket_id)
            .order_by(AuditEvent.id)
        )
        return [tuple(row) for row in rows]


def notes_of(db, ref: str) -> list[tuple[str, str, str]]:
    """The notifications about the ticket as (recipient login, kind, message), oldest first."""
    with db.read_session() as s:
        ticket_id = tickets.get_ticket(s, ref).id
        rows = s.execute(
            select(User.login, Notification.kind, Notification.message)
            .join(User, User.id == Notification.user_id)
            .where(Notification.entity_type == "ticket", Notification.entity_id == ticket_id)
            .order_by(Notification.id)
        )
        return [tuple(row) for row in rows]


class Racers:
    """One racer process per login; :meth:`race` runs one round: each its own command, all at once."""

    def __init__(self, logins: tuple[str, ...], folder: Path) -> None:
        self.folder = folder
        self.rounds = 0
        self.errors: dict[str, str] = {}  # what each stopped racer wrote to its stderr
        self.procs = {login: Forked(RACER, login, stdin=PIPE, stdout=PIPE, stderr=PIPE) for login in logins}

    def race(self, commands: dict[str, list[str]]) -> dict[str, dict]:
        self.rounds += 1
        go = self.folder / f"go-{self.rounds}"
        for login, argv in commands.items():
            stdin = self.procs[login].stdin
            assert stdin is not None
            stdin.write(json.dumps([argv, str(go)]) + "\n")
            stdin.flush()
        for login in commands:
            assert self._line(login) == "ready"
        go.touch()
        return {login: json.loads(self._line(login)) for login in commands}

    def _line(self, login: str) -> str:
        """The racer's next line; a racer that says nothing for long is stopped, failing the test (each
        racer has one line outstanding at most, so none waits unread in the pipe's buffer)."""
        stdout = self.procs[login].stdout
        assert stdout is not None
        if not wait_readable([stdout], [], [], LINE_SECONDS)[0]:
            self.procs[login].kill()
            raise AssertionError(f"racer {login} said nothing for {LINE_SECONDS} s")
        line = stdout.readline()
        if not line:  # the racer died: what it said
            stderr = self.procs[login].stderr
            raise AssertionError(f"racer {login} ended: {stderr.read() if stderr else ''}")
        return line.strip()

    def close(self) -> dict[str, str]:
        """Stop the racers; what each wrote to its own stderr (nothing, unless something escaped)."""
        for login, proc in self.procs.items():
            if login in self.errors:
                continue
            try:  # closing its stdin ends the racer's loop
                _, self.errors[login] = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, self.errors[login] = proc.communicate()
        return dict(self.errors)


@pytest.fixture
def racers(tmp_path, db):
    started: list[Racers] = []

    def start(logins: tuple[str, ...]) -> Racers:
        db.dispose()  # no connection of this process is carried into the racers (forked: see forked.py)
        started.append(Racers(logins, tmp_path))
        return started[-1]

    yield start
    for group in started:
        group.close()


def taken_line(ref: str, winner: str, loser: str) -> str:
    """What a loser of a take race is told, written out: who has the ticket, and that it is not theirs."""
    hint = LEAD_HINT if loser in LEADS else ""
    return f"itsm: error: {ref} was taken by {NAMES[winner]} ({winner}) a moment ago; it is not yours{hint}\n"


# --------------------------------------------------------------------------- processes racing


def test_the_cli_offers_take(capsys) -> None:
    from itsm_tui.cli import main

    with pytest.raises(SystemExit):
        main(["ticket", "update", "--help"])
    assert "--take" in capsys.readouterr().out


def test_processes_race_to_take_one_winner_every_loser_told_who(db, db_url, config, desk, racers) -> None:
    """Five consoles (three agents, two shift leads) press take on the same new ticket at the same moment,
    sixteen times over: one takes it, four are told who has it, and only the winner's take is written."""
    group = racers(RACERS)
    winners = []
    claims_lost = 0
    for n in range(ROUNDS):
        ref = new_ticket(db, config, desk["agent1"], title=f"Round {n}")
        created = audit_of(db, ref)
        outcome = group.race({login: ["ticket", "update", ref, "--db", db_url, "--take"] for login in RACERS})
        won = [login for login, result in outcome.items() if result["code"] == 0]
        assert len(won) == 1, outcome
        winner = won[0]
        winners.append(winner)
        assert outcome[winner]["out"].startswith(f"{ref} P3 assigned v2: Round {n}"), outcome[winner]
        assert outcome[winner]["err"] == ""
        for login, result in outcome.items():
            if login == winner:
                continue
            assert result["code"] == 2, (login, result)
            assert result["err"] == taken_line(ref, winner, login), (login, result)
            assert result["out"] == ""
        assert state(db, ref) == (winner, 2)
        # The winner's take alone: the assignment, the status it brings and the first response.
        taken = audit_of(db, ref)[len(created) :]
        assert sorted(row[:3] for row in taken) == sorted(
            [
                (winner, "assign", "assignee"),
                (winner, "transition", "status"),
                (winner, "sla", "responded_at"),
            ]
        )
        assert [row for row in taken if row[2] in ("assignee", "status")] == [
            (winner, "assign", "assignee", winner),
            (winner, "transition", "status", "assigned"),
        ]
        assert notes_of(db, ref) == []  # a take tells nobody (the taker did it); a loser wrote none
        claims_lost += sum(result["claims_lost"] for result in outcome.values())
    errors = group.close()
    assert errors == dict.fromkeys(RACERS, ""), errors  # no racer wrote anything to its own stderr
    assert len(winners) == ROUNDS
    if db.backend == "postgresql":
        # Transactions overlapped: losers got past their read before the winner committed, and the claim
        # refused them (on SQLite each writer waits for the one before, and reads the winner's take).
        assert claims_lost > 0
    else:
        assert claims_lost == 0


def test_a_lead_taking_never_replaces_the_agent_who_took_it_first(db, db_url, config, desk, racers) -> None:
    """The attack: an agent and a lead press take on the same row at once. Whoever is first keeps it; the
    other is told. Run sixteen times, the lead never ends up with a ticket the agent was told was theirs."""
    pair = ("agent2", "lead")
    group = racers(pair)
    for n in range(ROUNDS):
        ref = new_ticket(db, config, desk["agent1"], title=f"Race {n}")
        outcome = group.race({login: ["ticket", "update", ref, "--db", db_url, "--take"] for login in pair})
        told_yours = [login for login, result in outcome.items() if result["code"] == 0]
        assert len(told_yours) == 1, outcome
        (winner,) = told_yours
        loser = "lead" if winner == "agent2" else "agent2"
        assert outcome[loser]["err"] == taken_line(ref, winner, loser)
        assert state(db, ref)[0] == winner  # the one told "yours" is the one who has it
        assignments = [row for row in audit_of(db, ref) if row[2] == "assignee"]
        assert assignments == [(winner, "assign", "assignee", winner)]  # nobody replaced anybody
    assert group.close() == {"agent2": "", "lead": ""}


def test_a_lead_assigning_explicitly_races_agents_taking(db, db_url, config, desk, racers) -> None:
    """Sam, a shift lead, assigns the ticket to Dana in the form opened at version 1 while two agents press
    take. One wins. If Sam did, Dana is told it is hers and the agents are told who has it; if an agent did,
    Sam's assign is refused as stale (nothing to overwrite silently) and nobody is notified."""
    group = racers(("agent1", "agent2", "sam"))
    sam_won = agents_won = 0
    for n in range(ROUNDS):
        ref = new_ticket(db, config, desk["lead"], title=f"Mixed {n}")
        assert state(db, ref) == (None, 1)
        take = ["ticket", "update", ref, "--db", db_url, "--take"]
        outcome = group.race(
            {
                "agent1": take,
                "agent2": take,
                "sam": [
                    "ticket",
                    "update",
                    ref,
                    "--db",
                    db_url,
                    "--assign",
                    "dana",
                    "--expected-version",
                    "1",
                ],
            }
        )
        won = [login for login, result in outcome.items() if result["code"] == 0]
        assert len(won) == 1, outcome
        (winner,) = won
        holder = "dana" if winner == "sam" else winner
        assert state(db, ref) == (holder, 2)
        for login in {"agent1", "agent2", "sam"} - {winner}:
            result = outcome[login]
            assert result["code"] == 2 and result["out"] == "", (login, result)
            if login == "sam":
                pattern = (
                    rf"itsm: error: {ref} was changed by {NAMES[winner]} \({winner}\) at "
                    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC after you opened it \(version 1, now 2\); "
                    r"reload it and apply your change again\n"
                )
                assert re.fullmatch(pattern, result["err"]), result
            elif winner == "sam":
                assert result["err"] == (
                    f"itsm: error: {ref} was assigned to Dana Lee (dana) by Sam Okafor (sam) a moment ago; "
                    "it is not yours\n"
                ), result
            else:
                assert result["err"] == taken_line(ref, winner, login), result
        assignments = [row for row in audit_of(db, ref) if row[2] == "assignee"]
        assert assignments == [(winner, "assign", "assignee", holder)]
        if winner == "sam":
            sam_won += 1
            assert notes_of(db, ref) == [
                ("dana", "assigned", f"{ref} (P3) assigned to you by Sam Okafor: Mixed {n}")
            ]
        else:
            agents_won += 1
            assert notes_of(db, ref) == []
    assert sam_won + agents_won == ROUNDS
    assert group.close() == {"agent1": "", "agent2": "", "sam": ""}


def test_a_take_that_came_too_late_in_its_own_process(db, db_url, config, desk) -> None:
    """One process per command, as a script would run it: the second take is told who has it, on stderr,
    one line, exit 2, and the ticket stays the first taker's."""
    ref = new_ticket(db, config, desk["lead"])
    db.dispose()  # no connection of this process is carried into the commands' (forked: see forked.py)
    argv = ["ticket", "update", ref, "--db", db_url, "--take"]

    def run(login: str) -> tuple[int, str | None, str | None]:
        process = Forked(CLI.format(login=login), *argv, stdout=PIPE, stderr=PIPE)
        out, err = process.communicate(timeout=120)
        return process.returncode or 0, out, err

    code, _, err = run("dana")
    assert code == 0 and err == "", err
    for login in ("agent2", "sam"):
        code, out, err = run(login)
        assert (code, out) == (2, "")
        assert err == taken_line(ref, "dana", login)
    code, _, err = run("dana")  # Dana again: it is hers already, so nothing changes and nothing is refused
    assert code == 0 and err == ""
    assert state(db, ref) == ("dana", 2)


# --------------------------------------------------------------------------- the services, step by step


def test_taking_ones_own_ticket_again_changes_nothing(db, config, desk) -> None:
    ref = new_ticket(db, config, desk["lead"])
    with db.session() as s:
        tickets.take(s, config, desk["agent1"], ref)
    before = (state(db, ref), audit_of(db, ref), notes_of(db, ref))
    with db.session() as s:
        ticket = tickets.take(s, config, desk["agent1"], ref)
        assert ticket.assignee_id == desk["agent1"].id
    assert (state(db, ref), audit_of(db, ref), notes_of(db, ref)) == before
    assert before[0] == ("agent1", 2)


def test_a_take_needs_no_version_but_never_reassigns(db, config, desk) -> None:
    """The ticket screen showed version 1; the lead raised the urgency since. Taking is still what the
    agent means while nobody has it; once someone has it, neither an agent's take nor a lead's takes it."""
    ref = new_ticket(db, config, desk["lead"])
    with db.session() as s:
        tickets.update_fields(s, config, desk["lead"], ref, urgency="high")
    assert state(db, ref) == (None, 2)
    with db.session() as s:
        tickets.assign(s, config, desk["dana"], ref, expected_version=1)  # a take: the version is moot
    assert state(db, ref) == ("dana", 3)
    before = audit_of(db, ref), notes_of(db, ref)
    for login in ("agent2", "lead"):
        with pytest.raises(tickets.AlreadyTaken) as info, db.session() as s:
            tickets.take(s, config, desk[login], ref)
        hint = LEAD_HINT if login in LEADS else ""
        assert str(info.value) == f"{ref} was taken by Dana Lee (dana) a moment ago; it is not yours{hint}"
    assert (audit_of(db, ref), notes_of(db, ref)) == before
    assert state(db, ref) == ("dana", 3)


def test_the_explicit_assign_over_an_agents_ticket_tells_the_agent(db, config, desk) -> None:
    ref = new_ticket(db, config, desk["lead"], title="VPN drops")
    with db.session() as s:
        tickets.take(s, config, desk["dana"], ref)
    with db.session() as s:
        tickets.assign(s, config, desk["sam"], ref, assignee="agent2", expected_version=2)
    assert state(db, ref) == ("agent2", 3)
    assert notes_of(db, ref) == [
        ("agent2", "assigned", f"{ref} (P3) assigned to you by Sam Okafor: VPN drops"),
        ("dana", "assigned", f"{ref} (P3) is no longer yours: assigned to Agent2 (agent2) by Sam Okafor"),
    ]
    assert [row for row in audit_of(db, ref) if row[2] == "assignee"] == [
        ("dana", "assign", "assignee", "dana"),
        ("sam", "assign", "assignee", "agent2"),
    ]
    # Naming himself, a lead assigns explicitly too (over agent2, who is told); an agent naming herself
    # takes, and is refused: the ticket is someone else's.
    with db.session() as s:
        tickets.assign(s, config, desk["sam"], ref, assignee="sam")
    assert state(db, ref) == ("sam", 4)
    assert notes_of(db, ref)[-1] == (
        "agent2",
        "assigned",
        f"{ref} (P3) is no longer yours: assigned to Sam Okafor (sam) by Sam Okafor",
    )
    with pytest.raises(tickets.AlreadyTaken), db.session() as s:
        tickets.assign(s, config, desk["dana"], ref, assignee="dana")
    assert state(db, ref) == ("sam", 4)


def pg_only(db) -> None:
    if db.backend != "postgresql":
        pytest.skip("SQLite writers cannot overlap: each BEGIN IMMEDIATE waits for the one before")


def test_interleaved_takes_the_claim_decides(db, config, desk) -> None:
    """B reads the ticket unassigned; A takes it and commits; then B's take, whose read is stale, loses at
    the claim and is told who has it, writing nothing."""
    pg_only(db)
    ref = new_ticket(db, config, desk["lead"])
    before = audit_of(db, ref)
    with pytest.raises(tickets.AlreadyTaken) as info, db.session() as session_b:
        loaded = tickets.get_ticket(session_b, ref)  # held, as the CLI holds the ticket it resolved
        assert loaded.assignee_id is None and loaded.version == 1
        with db.session() as session_a:
            tickets.take(session_a, config, desk["agent2"], ref)
        tickets.take(session_b, config, desk["lead"], ref)
    assert str(info.value) == f"{ref} was taken by Agent2 (agent2) a moment ago; it is not yours{LEAD_HINT}"
    assert state(db, ref) == ("agent2", 2)
    assert [row for row in audit_of(db, ref)[len(before) :] if row[0] == "lead"] == []


def test_a_take_that_finds_the_ticket_edited_meanwhile_looks_again(db, config, desk) -> None:
    """B reads the ticket; A edits its title (not the assignee) and commits; B's claim misses the version it
    read, reads again, and takes it: still unassigned, so still B's to take."""
    pg_only(db)
    ref = new_ticket(db, config, desk["lead"])
    with db.session() as session_b:
        tickets.get_ticket(session_b, ref)
        with db.session() as session_a:
            tickets.update_fields(session_a, config, desk["lead"], ref, title="Printer still on fire")
        tickets.take(session_b, config, desk["dana"], ref)
    assert state(db, ref) == ("dana", 3)


def test_a_take_that_finds_the_ticket_escalated_away_meanwhile_is_refused(db, config, desk) -> None:
    """B reads the ticket in SD-L1; A escalates it to NET-L2 (still unassigned) and commits; B's claim misses,
    B looks again and the guard refuses: the ticket is now queued for a group B is not in."""
    pg_only(db)
    ref = new_ticket(db, config, desk["lead"])
    with pytest.raises(PermissionDenied) as info, db.session() as session_b:
        tickets.get_ticket(session_b, ref)
        with db.session() as session_a:
            tickets.escalate(session_a, config, desk["lead"], ref, group="NET-L2", reason="network")
        tickets.take(session_b, config, desk["dana"], ref)
    assert "queued for another group" in str(info.value)
    with db.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        assert (ticket.assignee_id, ticket.group.code) == (None, "NET-L2")


def test_interleaved_explicit_assign_is_stale_not_a_traceback(db, config, desk) -> None:
    """The lead's session read the ticket at version 1 (no lock); an agent takes it and commits; the lead's
    assign, version-checked against what it read, is refused naming the agent."""
    pg_only(db)
    ref = new_ticket(db, config, desk["lead"])
    with pytest.raises(StaleEdit) as info, db.session() as lead_session:
        tickets.get_ticket(lead_session, ref)
        with db.session() as agent_session:
            tickets.take(agent_session, config, desk["agent1"], ref)
        tickets.assign(lead_session, config, desk["sam"], ref, assignee="dana", expected_version=1)
    assert (info.value.expected, info.value.current, info.value.who) == (1, 2, "Agent1 (agent1)")
    assert str(info.value).startswith(f"{ref} was changed by Agent1 (agent1) at ")
    assert state(db, ref) == ("agent1", 2)
    assert notes_of(db, ref) == []


def test_a_lost_flush_anywhere_in_a_write_session_is_refused(db, config, desk) -> None:
    """A version mismatch found by an autoflush (a query while changes are pending), not by a service's own
    flush, is refused by the write session in the same words: who changed the ticket, the versions."""
    pg_only(db)
    ref = new_ticket(db, config, desk["lead"])
    with pytest.raises(StaleEdit) as info, db.session() as s:
        ticket = tickets.get_ticket(s, ref)
        with db.session() as other:
            tickets.update_fields(other, config, desk["agent2"], ref, title="Smoke now")
        ticket.title = "Fire out"  # pending ...
        s.scalar(select(func.count()).select_from(User))  # ... and flushed by this query: 0 rows matched
    assert (info.value.expected, info.value.current, info.value.who) == (1, 2, "Agent2 (agent2)")
    with db.read_session() as s:
        assert tickets.get_ticket(s, ref).title == "Smoke now"


def test_a_deadlock_is_refused_as_a_lost_race(db, config, desk) -> None:
    """Two consoles each edit two tickets, in opposite orders, at once: PostgreSQL breaks the deadlock by
    failing one; that one is told someone else was changing its ticket, and nothing of its is kept."""
    pg_only(db)
    first = new_ticket(db, config, desk["lead"], title="One")
    second = new_ticket(db, config, desk["lead"], title="Two")
    barrier = threading.Barrier(2, timeout=30)
    outcome: dict[str, object] = {}

    def edit(login: str, refs: tuple[str, str]) -> None:
        try:
            with db.session() as s:
                tickets.update_fields(s, config, desk[login], refs[0], description=f"by {login}")
                barrier.wait()  # each holds its first ticket's row before asking for the other's
                tickets.update_fields(s, config, desk[login], refs[1], description=f"by {login}")
            outcome[login] = "saved"
        except Exception as exc:  # recorded and checked below
            outcome[login] = exc

    threads = [
        threading.Thread(target=edit, args=("agent1", (first, second))),
        threading.Thread(target=edit, args=("agent2", (second, first))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    saved = [login for login, result in outcome.items() if result == "saved"]
    assert len(saved) == 1, outcome
    (winner,) = saved
    loser = "agent2" if winner == "agent1" else "agent1"
    refusal = outcome[loser]
    assert isinstance(refusal, versions.LostRace), refusal
    own_first = first if loser == "agent1" else second  # the ticket the loser had written when it lost
    assert str(refusal) in (  # the winner may have committed by the time the loser looks (then named)
        f"someone else was changing {own_first} {RACE_TAIL}",
        f"{NAMES[winner]} ({winner}) changed {own_first} {RACE_TAIL}",
    )
    with db.read_session() as s:
        shown = {ref: tickets.get_ticket(s, ref).description for ref in (first, second)}
    assert shown == {first: f"by {winner}", second: f"by {winner}"}


def test_a_serialization_failure_is_refused_as_a_lost_race(db, config, desk) -> None:
    """A transaction under REPEATABLE READ that updates a row another one changed since its snapshot is
    failed by PostgreSQL (40001, before any version is compared); the write session refuses it naming who
    changed the ticket."""
    pg_only(db)
    ref = new_ticket(db, config, desk["lead"])
    with pytest.raises(versions.LostRace) as info, db.session() as s:
        s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        ticket = s.scalar(select(Ticket).where(Ticket.ref == ref))  # the snapshot: version 1
        with db.session() as other:
            tickets.update_fields(other, config, desk["agent2"], ref, title="Changed first")
        ticket.title = "Changed second"
        s.flush()
    assert str(info.value) == f"Agent2 (agent2) changed {ref} {RACE_TAIL}"
    assert (info.value.expected, info.value.current) == (1, 2)
    with db.read_session() as s:
        assert tickets.get_ticket(s, ref).title == "Changed first"


def test_a_duplicate_unique_row_is_refused_as_a_lost_race(db, config, desk) -> None:
    """Two ratings of one ticket: the second transaction, which did not look first, finds the first one's
    row in the unique index; on both databases it is refused in one line, naming the ticket it was saving."""
    ref = new_ticket(db, config, desk["lead"])
    with db.read_session() as s:
        ticket_id = tickets.get_ticket(s, ref).id
    with db.session() as s:
        s.add(SatisfactionRating(ticket_id=ticket_id, score=5, rated_at=tickets.get_ticket(s, ref).opened_at))
    with pytest.raises(versions.LostRace) as info, db.session() as s:
        ticket = tickets.get_ticket(s, ref)
        ticket.requester = "Ann Example-Smith"  # the ticket this transaction is saving ...
        s.add(SatisfactionRating(ticket_id=ticket_id, score=1, rated_at=ticket.opened_at))  # ... and a twin
    assert str(info.value) == f"someone else was changing {ref} {RACE_TAIL}"
    with db.read_session() as s:
        assert s.scalars(select(SatisfactionRating.score)).all() == [5]
        assert tickets.get_ticket(s, ref).requester == "Ann Example"


def test_other_database_errors_are_not_taken_for_races(db, config, desk) -> None:
    """A broken foreign key is a fault of the program, not a race: it goes on as it was raised."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.session() as s:
        s.add(SatisfactionRating(ticket_id=999_999, score=3, rated_at=func.now()))
    assert (
        versions.race_kind(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
        is None
    )


# --------------------------------------------------------------------------- the console


def take_in_another_process(url: str, ref: str, login: str) -> subprocess.CompletedProcess[str]:
    argv = ["ticket", "update", ref, "--db", url, "--take"]
    return subprocess.run(
        [sys.executable, "-c", CLI.format(login=login), *argv], capture_output=True, text=True, timeout=120
    )


def toasts(app) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


async def test_queue_take_of_a_row_another_process_took_says_who_and_the_row_updates(
    staff_sqlite, config, monkeypatch
) -> None:
    db, staff = staff_sqlite
    monkeypatch.setattr("itsm_tui.screens.queue.REFRESH_SECONDS", 3600.0)  # only the take re-reads rows
    ref = new_ticket(db, config, staff["lead"])
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await pilot.press("4")  # all open
        await wait_until(
            pilot, lambda: screen.table.current is not None and screen.table.current.ref == ref, "the row"
        )
        assert screen.table.current.assignee is None

        done = await asyncio.to_thread(take_in_another_process, db.url, ref, "agent2")
        assert done.returncode == 0, done.stderr
        assert screen.table.current.assignee is None  # the row still shows it free

        await pilot.press("t")
        line = f"{ref} was taken by Agent2 (agent2) a moment ago; it is not yours"
        await wait_until(pilot, lambda: line in toasts(app), "the refusal")
        await wait_until(pilot, lambda: screen.table.current.assignee == "agent2", "the row to update")
        await settle(pilot)
        assert shows(app, "agent2")  # in the row's assignee column
        assert "is yours" not in toasts(app)
    assert state(db, ref) == ("agent2", 2)
    assert [row for row in audit_of(db, ref) if row[0] == "agent1"] == []


async def test_ticket_screen_take_after_another_process_took_it(staff_sqlite, config, monkeypatch) -> None:
    db, staff = staff_sqlite
    monkeypatch.setattr(TicketScreen, "HEARTBEAT_SECONDS", 3600.0)  # only the take reloads the ticket
    ref = new_ticket(db, config, staff["lead"])
    with db.read_session() as s:
        ticket_id = tickets.get_ticket(s, ref).id
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        app.open_ticket(ticket_id)
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None,
            "the ticket",
        )
        screen = app.screen
        assert screen.detail.view.assignee is None and screen.detail.actions["take"] is None

        done = await asyncio.to_thread(take_in_another_process, db.url, ref, "agent2")
        assert done.returncode == 0, done.stderr

        await pilot.press("t")
        line = f"{ref} was taken by Agent2 (agent2) a moment ago; it is not yours"
        await wait_until(pilot, lambda: line in toasts(app), "the refusal")
        await wait_until(pilot, lambda: screen.detail.view.assignee == "agent2", "the reload")
        assert screen.detail.actions["take"] == "assigned to someone else; a shift_lead may reassign it"
    assert state(db, ref) == ("agent2", 2)


async def test_a_leads_assign_form_over_a_ticket_taken_meanwhile(staff_sqlite, config, monkeypatch) -> None:
    """The lead opens the assign form at version 1; agent1 takes the ticket from another process; saving
    is refused as stale and the screen reloads showing agent1. Saving again, having seen it, reassigns
    explicitly, and agent1 is told the ticket is no longer theirs."""
    db, staff = staff_sqlite
    monkeypatch.setattr(TicketScreen, "HEARTBEAT_SECONDS", 3600.0)
    ref = new_ticket(db, config, staff["lead"], title="Scanner offline")
    with db.read_session() as s:
        ticket_id = tickets.get_ticket(s, ref).id
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        app.open_ticket(ticket_id)
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None,
            "the ticket",
        )
        screen = app.screen
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, AssignForm), "the AssignForm")
        form = app.screen
        await pilot.press(*"agent2")

        done = await asyncio.to_thread(take_in_another_process, db.url, ref, "agent1")
        assert done.returncode == 0, done.stderr

        await pilot.press("enter")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert app.screen is form and form.field("login").value == "agent2"
        assert "was changed by Agent1 (agent1)" in form.error_shown[1]
        await wait_until(pilot, lambda: screen.detail.view.assignee == "agent1", "the reload")

        await pilot.press("ctrl+s")  # again, over the take it has now seen
        await wait_until(
            pilot, lambda: app.screen is screen and screen.detail.view.assignee == "agent2", "saved"
        )
    assert state(db, ref) == ("agent2", 3)
    assert notes_of(db, ref) == [
        ("agent2", "assigned", f"{ref} (P3) assigned to you by Lead: Scanner offline"),
        ("agent1", "assigned", f"{ref} (P3) is no longer yours: assigned to Agent2 (agent2) by Lead"),
    ]
