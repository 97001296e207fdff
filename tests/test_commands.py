"""The grammar of a change to a ticket (services/tickets/commands.py): the console's ``:`` line parsed into
the change ``itsm ticket update`` makes, made by the same code, refused in the same words; what its Tab
completes; the logins it offers, read along an index."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from ticket_helpers import new_ticket, snapshot

from itsm_tui.cli import main
from itsm_tui.models import AuditEvent, Link, Ticket, TicketEntry
from itsm_tui.services.errors import ServiceError
from itsm_tui.services.tickets import commands
from itsm_tui.services.tickets.commands import (
    CommandError,
    Help,
    Open,
    ShowView,
    Update,
    Vocabulary,
    candidates,
    parse,
)

# --------------------------------------------------------------------------- parsing

PARSED = [
    (":take", Update(take=True)),
    ("take", Update(take=True)),
    ("  :TAKE  ", Update(take=True)),
    (":assign mlopez", Update(assign="mlopez")),
    (":assign mlopez NET-L2", Update(assign="mlopez", group="NET-L2")),
    (":escalate NET-L2 router down in Lyon", Update(escalate="NET-L2", reason="router down in Lyon")),
    (":escalate - wrong queue", Update(escalate="", reason="wrong queue")),
    (":escalate NET-L2", Update(escalate="NET-L2")),
    (":status pending customer", Update(status="pending", reason="customer")),
    (":status Pending vendor", Update(status="pending", reason="vendor")),
    (":status in_progress", Update(status="in_progress")),
    (":status cancelled raised twice", Update(status="cancelled", reason="raised twice")),
    (
        ":status resolved fixed Replaced the  toner",
        Update(status="resolved", code="fixed", resolution_note="Replaced the  toner"),
    ),
    (":status resolved", Update(status="resolved")),
    (":note Called  the requester: no answer", Update(note="Called  the requester: no answer")),
    (":reply [b]On it[/b]", Update(reply="[b]On it[/b]")),
    (":link PRB0000003", Update(links=("PRB0000003",))),
    (":link PRB0000003 inc0000002", Update(links=("PRB0000003", "inc0000002"))),
    (":rate 4", Update(rate=4)),
    (":title Printer jams on floor 2", Update(fields={"title": "Printer jams on floor 2"})),
    (":impact high", Update(fields={"impact": "high"})),
    (":ci erp-db-01", Update(fields={"ci": "erp-db-01"})),
    (":open INC0000042", Open("INC0000042")),
    (":open 42", Open("42")),
    (":view breaching", ShowView("breaching")),
    (":view My night shift", ShowView("My night shift")),
    (":help", Help()),
]


@pytest.mark.parametrize(("line", "command"), PARSED, ids=[line for line, _ in PARSED])
def test_a_line_says_the_change_itsm_ticket_update_makes(line, command):
    assert parse(line) == command


REFUSED = [
    ("", "type a command, e.g. :assign LOGIN; :help lists them"),
    (":", "type a command, e.g. :assign LOGIN; :help lists them"),
    (":asign mlopez", "no command :asign (did you mean :assign?); :help lists them"),
    (":frobnicate", "no command :frobnicate; :help lists them"),
    (":assign", "use :assign LOGIN [GROUP]"),
    (":assign a b c", "use :assign LOGIN [GROUP]"),
    (":take me", "use :take"),
    (":escalate", "use :escalate GROUP|- REASON..."),
    (":status", "use :status STATUS [REASON...]"),
    (":note   ", "use :note TEXT..."),
    (":link", "use :link REF [REF...]"),
    (":rate five", "use :rate 1-5: the rating is a whole number from 1 to 5"),
    (":open 1 2", "use :open REF"),
    (":help me", "use :help"),
]


@pytest.mark.parametrize(("line", "message"), REFUSED, ids=[line or "empty" for line, _ in REFUSED])
def test_a_line_that_does_not_say_what_to_do_is_refused_saying_what_to_write(line, message):
    with pytest.raises(CommandError) as refused:
        parse(line)
    assert str(refused.value) == message
    assert isinstance(refused.value, ServiceError)  # the family every screen shows where the user is


# --------------------------------------------------------------------------- completion

WORDS = Vocabulary(
    logins=("agent1", "agent2", "analyst1", "mlopez"),
    groups=("SD-L1", "NET-L2", "APP-L2"),
    services=("email", "erp"),
    codes=("fixed", "workaround", "duplicate"),
    views=("my_work", "breaching", "My night shift"),
    refs=("INC0000042", "INC0000007", "PRB0000003"),
)

COMPLETED = [
    (
        "",
        0,
        [
            "take",
            "assign",
            "escalate",
            "status",
            "reply",
            "note",
            "link",
            "rate",
            "title",
            "description",
            "requester",
            "category",
            "service",
            "ci",
            "impact",
            "urgency",
            "open",
            "view",
            "help",
        ],
    ),
    (":as", 1, ["assign"]),
    ("s", 0, ["status", "service"]),
    ("assign ", 7, ["agent1", "agent2", "analyst1", "mlopez"]),
    (":assign ag", 8, ["agent1", "agent2"]),
    (":assign mlopez n", 15, ["NET-L2"]),
    (":assign mlopez NET-L2 ", 22, []),
    (":escalate ", 10, ["-", "SD-L1", "NET-L2", "APP-L2"]),
    (":escalate net-L2 it is the ", 27, []),
    (":status p", 8, ["pending"]),
    (":status in", 8, ["in_progress"]),
    (":status pending ", 16, ["customer", "vendor", "change"]),
    (":status resolved w", 17, ["workaround"]),
    (":status cancelled ", 18, []),
    (":open inc", 6, ["INC0000042", "INC0000007"]),
    (":link PRB0000003 I", 17, ["INC0000042", "INC0000007"]),
    (":view my", 6, ["my_work", "My night shift"]),
    (":impact ", 8, ["high", "medium", "low"]),
    (":service e", 9, ["email", "erp"]),
    (":note Tell agent", 11, []),
]


@pytest.mark.parametrize(
    ("typed", "start", "offered"), COMPLETED, ids=[t or "empty" for t, _, _ in COMPLETED]
)
def test_tab_offers_the_words_that_may_come_next(typed, start, offered):
    assert candidates(typed, WORDS) == (start, offered)


def test_the_logins_offered_are_the_active_users_read_in_the_order_of_the_login_index(db, staff):
    from itsm_tui.services import users

    with db.session() as s:
        users.add_user(s, actor_login="admin1", login="gone", roles=["agent"], groups=["SD-L1"], name="Gone")
        s.execute(text("UPDATE users SET active = false WHERE login = 'gone'"))
    with db.read_session() as s:
        assert commands.logins(s) == sorted(staff)  # the standard cast; "gone" is not offered
        assert commands.logins(s, limit=3) == ["admin1", "agent1", "agent2"]
        if db.backend == "sqlite":
            compiled = (
                select(commands.User.login)
                .where(commands.User.active.is_(True))
                .order_by(commands.User.login)
                .limit(2000)
                .compile(s.get_bind(), compile_kwargs={"literal_binds": True})
            )
            plan = " ".join(row[3] for row in s.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan


# --------------------------------------------------------------------------- making it


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    _, err = capsys.readouterr()
    return code, err.strip()


def console(db, config, actor, ref: str, line: str) -> str | None:
    """The : line run as the console runs it; its refusal as the console shows it (None if made)."""
    try:
        command = parse(line)
        assert isinstance(command, Update)
        with db.session() as s:
            commands.apply(s, config, actor, ref, command)
    except ServiceError as exc:
        return commands.refusal_text(exc)
    return None


def test_the_console_and_the_command_line_refuse_in_the_same_words(
    db, db_url, config, staff, capsys, monkeypatch
):
    """Each refusal, written out here, comes from ``itsm ticket update`` after ``itsm: error:`` and from the
    : line as it is; neither wrote anything."""
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "agent1")
    ref = new_ticket(db, config, staff["lead"])
    with db.session() as s:  # agent1 works on it
        commands.apply(s, config, staff["agent1"], ref, Update(take=True, status="in_progress"))
    before = snapshot(db, ref)
    cases = [
        (
            ["--status", "pending"],
            ":status pending",
            "reason: pending needs a reason: customer, vendor, change",
        ),
        (
            ["--status", "closed"],
            ":status closed",
            f"{ref} cannot go from in_progress to closed; from in_progress it may go to: pending, resolved, "
            "cancelled",
        ),
        (
            ["--escalate", "NET-L2"],
            ":escalate NET-L2",
            "reason: say why the ticket is escalated (it goes into the work notes)",
        ),
        (
            ["--assign", "agent2"],
            ":assign agent2",
            f"You may not assign {ref}: needs the role shift_lead (you have agent).",
        ),
        (["--link", "KE9999999"], ":link KE9999999", "no record 'KE9999999' to link to"),
        (["--rate", "4"], ":rate 4", None),  # the words of the rule on rating, whatever they are: the same
    ]
    for argv, line, words in cases:
        code, err = run_cli(capsys, "ticket", "update", ref, "--db", db_url, *argv)
        told = console(db, config, staff["agent1"], ref, line)
        assert code == 2, (argv, err)
        assert told is not None and err == f"itsm: error: {told}", (argv, err, told)
        if words is not None:
            assert told == words
    code, err = run_cli(capsys, "ticket", "update", "INC0999999", "--db", db_url, "--take")
    assert err == "itsm: error: no ticket 'INC0999999'; `itsm ticket list` shows the tickets"
    assert console(db, config, staff["agent1"], "INC0999999", ":take") == err.removeprefix("itsm: error: ")
    assert snapshot(db, ref) == before


def test_what_only_the_command_line_can_say_wrong_is_refused_before_a_ticket_is_read(capsys, sqlite_url):
    for argv, words in [
        (["--group", "NET-L2"], "--group goes with --assign (to escalate to a group use --escalate GROUP)"),
        (["--take", "--assign", "agent2"], "use either --take or --assign, not both"),
        ([], "nothing to change; see `itsm ticket update --help`"),
    ]:
        with pytest.raises(CommandError) as refused:
            commands.check(
                Update(
                    take="--take" in argv,
                    assign="agent2" if "--assign" in argv else None,
                    group="NET-L2" if "--group" in argv else None,
                )
            )
        assert str(refused.value) == words
        code, err = run_cli(capsys, "ticket", "update", "INC0000001", "--db", sqlite_url, *argv)
        assert (code, err) == (2, f"itsm: error: {words}")


def test_commands_make_their_change_through_the_ticket_services(db, config, staff):
    """Take, a status with its reason, a note, a reply, a link, a field: each a line, each audited; the
    ticket's version goes up by one per change, and each line says what it did."""
    agent = staff["agent1"]
    ref = new_ticket(db, config, staff["lead"])
    other = new_ticket(db, config, staff["lead"], title="Second printer")
    lines = [
        (":take", f"{ref} is yours."),
        (":status in_progress", f"{ref} now in_progress."),
        (":status pending customer", f"{ref} now pending."),
        (":note Called: no answer", f"{ref} work note added."),
        (":reply We will call again at 3 pm", f"{ref} reply sent."),
        (f":link {other.lower()}", f"{ref} linked to {other}."),
        (":urgency high", f"{ref} urgency set."),
    ]
    for line, said in lines:
        command = parse(line)
        assert isinstance(command, Update)
        with db.session() as s:
            view = commands.apply(s, config, agent, ref.lower(), command)
            assert commands.done_text(command, view) == said
    after = snapshot(db, ref)
    assert (after.assignee, after.status, after.pending_reason, after.urgency) == (
        "agent1",
        "pending",
        "customer",
        "high",
    )
    with db.read_session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.ref == ref))
        bodies = s.execute(
            select(TicketEntry.kind, TicketEntry.body)
            .where(TicketEntry.ticket_id == ticket_id)
            .order_by(TicketEntry.id)
        ).all()
        assert [tuple(row) for row in bodies] == [
            ("note", "Called: no answer"),
            ("reply", "We will call again at 3 pm"),
        ]
        assert s.scalar(select(func.count()).select_from(Link).where(Link.source_id == ticket_id)) == 1
        audited = select(AuditEvent.action).where(
            AuditEvent.entity_type == "ticket", AuditEvent.entity_id == ticket_id
        )
        actions = set(s.scalars(audited))
    assert {"assign", "transition", "link"} <= actions  # a take is audited as an assign


def test_a_change_against_the_version_shown_is_refused_once_someone_changed_it(db, config, staff):
    """The ticket screen's : line carries the version it shows; the parts of one change build on each
    other's versions (a note, then a status, against the version shown before both)."""
    agent = staff["agent1"]
    ref = new_ticket(db, config, staff["lead"])
    with db.session() as s:
        commands.apply(s, config, agent, ref, Update(take=True))
    shown = snapshot(db, ref).version
    with db.session() as s:
        commands.apply(
            s, config, agent, ref, Update(note="Looking", status="in_progress"), expected_version=shown
        )
    assert snapshot(db, ref).version == shown + 2
    with db.session() as s:
        commands.apply(s, config, staff["lead"], ref, parse(":note From the lead"))
    with pytest.raises(ServiceError) as stale, db.session() as s:
        commands.apply(s, config, agent, ref, parse(":status pending vendor"), expected_version=shown + 2)
    assert str(stale.value).startswith(f"{ref} was changed by Lead (lead) at ")
    assert snapshot(db, ref).status == "in_progress"
