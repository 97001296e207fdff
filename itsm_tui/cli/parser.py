"""The ``itsm`` argument parser: every command, its options and their help.

Kept free of the heavy modules (SQLAlchemy, the models, the services, Textual), since it is built on every
start, also when ``itsm`` only opens the console.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime


def _db_parent(suppress: bool) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--db",
        metavar="URL",
        default=argparse.SUPPRESS if suppress else None,
        help="database URL or SQLite file (default: $ITSM_DB_URL, else itsm.db in your data directory)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options; the command and action words (``dest``) pick the handler to run."""
    db = _db_parent(suppress=True)
    parser = argparse.ArgumentParser(
        prog="itsm",
        description="Keyboard-driven service-desk console. Without a command, opens the console.",
        parents=[_db_parent(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", parents=[db], help="build a realistic demonstration database")
    demo.add_argument("--tickets", type=_positive_int, default=5000, help="number of tickets (default 5000)")
    demo.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same data")
    demo.add_argument(
        "--anchor",
        type=_iso_date,
        default=None,
        help="the day the history ends (YYYY-MM-DD, default today); fix it for identical data",
    )
    demo.add_argument(
        "--force",
        action="store_true",
        help="replace a demo database's records (admins; refused if it holds records the demo did not make)",
    )
    demo.add_argument(
        "--delete-live-records",
        action="store_true",
        help="with --force: replace a live desk too, deleting the tickets, changes and users the demo did "
        "not make (admins)",
    )
    demo.add_argument(
        "--if-empty",
        action="store_true",
        help="build only if the database holds no tickets, changes, users or audit rows yet (otherwise "
        "do nothing)",
    )

    dbcmd = commands.add_parser("db", parents=[db], help="database schema").add_subparsers(
        dest="db_command", metavar="ACTION", required=True
    )
    dbcmd.add_parser("upgrade", parents=[db], help="create the schema or bring it to this version")
    dbcmd.add_parser("status", parents=[db], help="show the database's schema revision")
    backup = dbcmd.add_parser(
        "backup", parents=[db], help="SQLite: copy the desk, while it runs, to a new file (admins)"
    )
    backup.add_argument("file", metavar="FILE", help="the copy to write (created readable by you only)")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    restore = dbcmd.add_parser(
        "restore",
        parents=[db],
        help="SQLite: put a backup in the place of the desk, while consoles run (admins)",
    )
    restore.add_argument("file", metavar="FILE", help="a copy made by `itsm db backup`")
    restore.add_argument(
        "--force", action="store_true", help="do it (without: say what the desk holds and would lose)"
    )
    check = dbcmd.add_parser(
        "check", parents=[db], help="check integrity, schema revision and audit chains (exit 1 if not)"
    )
    check.add_argument("--json", action="store_true")
    grant = dbcmd.add_parser(
        "grant-roles",
        parents=[db],
        help="PostgreSQL: the desk's group roles, least privileges and a login role per person (admins, "
        "connected as the schema's owner)",
    )
    grant.add_argument(
        "--login",
        action="append",
        default=[],
        metavar="NAME",
        help="give this desk user a login role of their own (repeatable)",
    )
    grant.add_argument(
        "--all-users", action="store_true", help="a login role for every active user; leavers lose theirs"
    )
    grant.add_argument(
        "--desk-role", metavar="NAME", help="the group role of every person (default itsm_desk)"
    )
    grant.add_argument(
        "--owner-role",
        metavar="NAME",
        help="the role to own the schema (default: the one that owns it, i.e. ran the migrations)",
    )
    grant.add_argument("--dry-run", action="store_true", help="print the SQL and change nothing")

    user = commands.add_parser("user", parents=[db], help="users and roles").add_subparsers(
        dest="user_command", metavar="ACTION", required=True
    )
    add = user.add_parser("add", parents=[db], help="add a user (admins; the first user becomes admin)")
    add.add_argument("login", help="the person's operating-system login")
    add.add_argument("--role", action="append", required=True, help="a role (repeat for several)")
    add.add_argument("--group", action="append", default=[], help="a support group code (repeatable)")
    add.add_argument("--name", help="full name")
    add.add_argument("--email")
    add.add_argument("--timezone", default="UTC", help="time zone for showing times (e.g. Europe/Berlin)")
    ulist = user.add_parser("list", parents=[db], help="list users")
    ulist.add_argument("--json", action="store_true")
    role = user.add_parser("role", parents=[db], help="grant or withdraw roles and groups (admins)")
    role.add_argument("login")
    role.add_argument("--add", action="append", default=[], metavar="ROLE")
    role.add_argument("--remove", action="append", default=[], metavar="ROLE")
    role.add_argument("--add-group", action="append", default=[], metavar="GROUP")
    role.add_argument("--remove-group", action="append", default=[], metavar="GROUP")
    role.add_argument(
        "--lead-of",
        action="append",
        default=[],
        metavar="GROUP",
        help="make the user lead of a group (joins it)",
    )

    view = commands.add_parser("view", parents=[db], help="queue views of your own").add_subparsers(
        dest="view_command", metavar="ACTION", required=True
    )
    vlist = view.add_parser("list", parents=[db], help="your views and those shared with your groups")
    vlist.add_argument("--json", action="store_true")
    vsave = view.add_parser("save", parents=[db], help="save a filter and sort as a view on a key")
    vsave.add_argument("name", help="the view's name (yours alone)")
    vsave.add_argument("--key", required=True, help="a digit or letter the queue has free, e.g. 8")
    vsave.add_argument("--filter", default="", help='the queue filter, e.g. "p:1,2 group:net"')
    vsave.add_argument("--view", default="all_open", help="the queue view it narrows (default all_open)")
    vsave.add_argument("--sort", default="sla", help="a queue sort: sla, priority, opened, ... (default sla)")
    vsave.add_argument("--desc", action="store_true", help="the sort in reverse")
    vsave.add_argument("--share", metavar="GROUP", help="share it with a group of yours")
    vdelete = view.add_parser("delete", parents=[db], help="delete a view of yours")
    vdelete.add_argument("name")

    sla = commands.add_parser("sla", parents=[db], help="SLA clocks").add_subparsers(
        dest="sla_command", metavar="ACTION", required=True
    )
    scan = sla.add_parser(
        "scan", parents=[db], help="run the SLA job once: flag warnings and breaches, notify"
    )
    scan.add_argument("--now", type=_iso_instant, help="the instant to scan at (ISO, default now)")
    scan.add_argument("--json", action="store_true")
    explain = sla.add_parser(
        "explain",
        parents=[db],
        help="why a ticket's SLA times are what they are: policy, calendar, pauses, re-targets, verdicts",
    )
    explain.add_argument("ref", help="the ticket (e.g. INC0000042)")
    explain.add_argument("--now", type=_iso_instant, help="the instant to judge at (ISO, default now)")
    explain.add_argument("--json", action="store_true", help="as JSON, instants in UTC")
    commands.add_parser(
        "scheduler",
        parents=[db],
        help="run the SLA job and the change reminders headless (for hosts where no console is open)",
    )
    report = commands.add_parser(
        "report", parents=[db], help="KPI reports, the shift handover and the access review"
    ).add_subparsers(dest="report_command", metavar="ACTION", required=True)
    kpi = report.add_parser(
        "kpi", parents=[db], help="every KPI for a period (same figures as the KPI board)"
    )
    kpi.add_argument("--from", dest="date_from", type=_iso_date, help="first day (YYYY-MM-DD, UTC days)")
    kpi.add_argument("--to", dest="date_to", type=_iso_date, help="last day, inclusive (default today)")
    kpi.add_argument(
        "--period",
        choices=["today", "7d", "30d", "quarter"],
        default="30d",
        help="a named period ending now, when --from is not given (default 30d)",
    )
    kpi.add_argument("--group", help="only this support group")
    kpi.add_argument("--format", choices=["table", "csv", "json"], default="table")
    hand = report.add_parser("handover", parents=[db], help="shift handover: what the next shift must know")
    hand.add_argument("--shift-hours", type=_positive_int, default=8, help="length of the last shift (8)")
    hand.add_argument("--json", action="store_true")
    access = report.add_parser(
        "access",
        parents=[db],
        help="access review: accounts and roles, last activity, dormant accounts, admins, refused attempts "
        "(shift leads, process managers, admins)",
    )
    access.add_argument(
        "--dormant-days",
        type=_positive_int,
        default=30,
        metavar="N",
        help="dormant: no activity in N days; refused attempts of the last N days are listed (default 30)",
    )
    access.add_argument("--json", action="store_true")
    serve = commands.add_parser("serve", parents=[db], help="serve the console to a web browser")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_positive_int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the login token from this private (0600) file, made with a new token if missing "
        "(default: a new token, printed once)",
    )
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="the address browsers use, behind a proxy (e.g. https://desk.example.com/itsm/); "
        "default: the address each browser used",
    )
    serve.add_argument(
        "--max-sessions",
        type=_positive_int,
        default=4,
        metavar="N",
        help="consoles open at once (default 4)",
    )

    ticket = commands.add_parser(
        "ticket", parents=[db], help="incidents and service requests"
    ).add_subparsers(dest="ticket_command", metavar="ACTION", required=True)
    create = ticket.add_parser("create", parents=[db], help="log an incident or request")
    create.add_argument("--title", required=True)
    create.add_argument("--description", default="")
    create.add_argument("--kind", default="incident", choices=["incident", "request"])
    create.add_argument("--impact", default="medium", choices=["high", "medium", "low"])
    create.add_argument("--urgency", default="medium", choices=["high", "medium", "low"])
    create.add_argument("--category")
    create.add_argument("--service")
    create.add_argument("--ci", help="configuration item (its service is filled in)")
    create.add_argument("--requester", required=True)
    create.add_argument("--group", help="assignment group (default: the service desk)")
    create.add_argument(
        "--opened-at", type=_iso_instant, help="when it was opened (ISO instant, for imports)"
    )
    create.add_argument("--json", action="store_true")

    tlist = ticket.add_parser("list", parents=[db], help="list tickets, newest first")
    tlist.add_argument("--all", action="store_true", help="include resolved, closed and cancelled")
    tlist.add_argument("--status")
    tlist.add_argument("--group")
    tlist.add_argument("--assignee", help="a login, or 'me'")
    tlist.add_argument("--priority", type=int, choices=range(1, 6))
    tlist.add_argument("--limit", type=_positive_int, default=50)
    tlist.add_argument("--before", type=_row_id, metavar="ID", help="page on: rows older than this id")
    tlist.add_argument("--json", action="store_true")

    tsearch = ticket.add_parser(
        "search",
        parents=[db],
        help="find tickets, open or closed, by words of their ref, title, requester, description and entries",
    )
    tsearch.add_argument("words", nargs="+", metavar="WORD", help="every word must be found (case ignored)")
    scope = tsearch.add_mutually_exclusive_group()
    scope.add_argument("--all", action="store_true", help="every ticket, open or closed (the default)")
    scope.add_argument("--open", action="store_true", help="open tickets only")
    tsearch.add_argument("--limit", type=_positive_int, default=50, help="at most N, newest first (max 500)")
    tsearch.add_argument("--before", type=_row_id, metavar="ID", help="page on: tickets older than this id")
    tsearch.add_argument("--json", action="store_true")

    show = ticket.add_parser("show", parents=[db], help="show one ticket with its timeline")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")

    take_next = ticket.add_parser(
        "take-next",
        parents=[db],
        help="take the most urgent unassigned ticket of your groups (never one someone else takes at once)",
    )
    take_next.add_argument("--json", action="store_true")

    upd = ticket.add_parser("update", parents=[db], help="change a ticket (all changes in one transaction)")
    upd.add_argument(
        "ref", nargs="+", metavar="REF", help="the ticket; several: each changed in its own transaction"
    )
    upd.add_argument(
        "--expected-version",
        type=int,
        help="refuse if the ticket changed since this version (as shown by show --json)",
    )
    upd.add_argument("--title")
    upd.add_argument("--description")
    upd.add_argument("--requester")
    upd.add_argument("--category")
    upd.add_argument("--service")
    upd.add_argument("--ci")
    upd.add_argument("--impact", choices=["high", "medium", "low"])
    upd.add_argument("--urgency", choices=["high", "medium", "low"])
    upd.add_argument(
        "--take",
        action="store_true",
        help="take it if it is still unassigned (refused, naming who has it, if not)",
    )
    upd.add_argument("--assign", metavar="LOGIN", help="assign it to someone (shift leads)")
    upd.add_argument("--group", help="with --assign: the group to assign to")
    upd.add_argument(
        "--escalate",
        metavar="GROUP",
        nargs="?",
        const="",
        help="escalate to a group (default: the service's support group); needs --reason",
    )
    upd.add_argument("--reply", metavar="TEXT", help="add a public reply")
    upd.add_argument("--note", metavar="TEXT", help="add an internal work note")
    upd.add_argument(
        "--status",
        help="new status (pending needs --reason; resolved needs --code and "
        "--resolution-note; cancelled and a reopen need --reason)",
    )
    upd.add_argument("--reason")
    upd.add_argument("--code", help="resolution code")
    upd.add_argument("--resolution-note")
    upd.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="REF",
        help="link to a problem, known error, article, change or ticket",
    )
    upd.add_argument("--rate", type=int, metavar="1-5", help="record the requester's satisfaction")
    upd.add_argument("--json", action="store_true")
    _add_change_commands(commands, db)
    _add_kb_commands(commands, db)
    _add_problem_commands(commands, db)
    _add_audit_commands(commands, db)
    return parser


def _add_audit_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], db: argparse.ArgumentParser
) -> None:
    """``itsm audit verify``: the audit trail's hash chains checked."""
    audit = commands.add_parser("audit", parents=[db], help="the audit trail: verify it").add_subparsers(
        dest="audit_command", metavar="ACTION", required=True
    )
    verify = audit.add_parser(
        "verify",
        parents=[db],
        help="check every record's audit chain and say where it breaks (exit 1 if it does)",
    )
    verify.add_argument(
        "--entity",
        nargs=2,
        metavar=("TYPE", "REF"),
        help="only one record: ticket INC0000042, change CHG0000003, user LOGIN (window/blackout: its id)",
    )
    verify.add_argument(
        "--heads",
        metavar="FILE",
        help="also compare with heads saved earlier (the output of --json): reports any that went back or "
        "were rewritten",
    )
    verify.add_argument(
        "--json", action="store_true", help="as JSON: the breaks, and every record's head to keep elsewhere"
    )


def _add_problem_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], db: argparse.ArgumentParser
) -> None:
    """``itsm problem ...``: problems from raising to closing, known errors, links, candidate problems."""
    problem = commands.add_parser(
        "problem", parents=[db], help="problems: root cause, known errors, the fix, linked incidents"
    ).add_subparsers(dest="problem_command", metavar="ACTION", required=True)
    levels = ["high", "medium", "low"]

    def text_option(parser: argparse.ArgumentParser, name: str, help_text: str) -> None:
        parser.add_argument(f"--{name}", metavar="TEXT", help=help_text)
        parser.add_argument(f"--{name}-file", metavar="FILE", help="the same, read from FILE (- for stdin)")

    def versioned(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--expected-version",
            "--version",
            dest="expected_version",
            type=int,
            metavar="N",
            help="refuse if the problem changed since this version (show --json)",
        )

    def step(
        name: str, help_text: str, *, version: bool = True, ref: str = "the problem (PRB0000004, or prb4)"
    ) -> argparse.ArgumentParser:
        parser = problem.add_parser(name, parents=[db], help=help_text)
        parser.add_argument("ref", help=ref)
        if version:
            versioned(parser)
        parser.add_argument("--json", action="store_true")
        return parser

    create = problem.add_parser("create", parents=[db], help="raise a problem (problem managers, L2, L3)")
    create.add_argument("--title", help="what keeps happening (default with --from-candidate: suggested)")
    text_option(create, "description", "what is known so far")
    create.add_argument("--service")
    create.add_argument("--ci", help="configuration item")
    create.add_argument("--category")
    create.add_argument("--impact", default="medium", choices=levels)
    create.add_argument("--urgency", default="medium", choices=levels)
    create.add_argument("--owner", metavar="LOGIN", help="who owns it (problem managers give it to others)")
    create.add_argument(
        "--incident", action="append", default=[], metavar="REF", help="link an incident (repeatable)"
    )
    create.add_argument(
        "--from-candidate",
        metavar="KEY",
        help="raise it from a cluster of `itsm problem candidates` (ci:NAME, svc:SERVICE/CATEGORY), "
        "its incidents linked",
    )
    create.add_argument("--json", action="store_true")

    plist = problem.add_parser("list", parents=[db], help="problems of a view, filtered")
    plist.add_argument(
        "--view", default="open", help="mine, open (by priority, the default), known_errors or all"
    )
    plist.add_argument(
        "--filter",
        default="",
        metavar="TEXT",
        help="words and tokens p:1 svc:email status:investigating owner:LOGIN ci:NAME cat:CATEGORY",
    )
    plist.add_argument("--limit", type=_positive_int, default=50, help="at most N rows (max 200)")
    plist.add_argument("--json", action="store_true")

    step("show", "one problem: fields, analysis, incidents, changes, known errors, history", version=False)

    update = step("update", "change fields and the analysis (all in one transaction)")
    update.add_argument("--title")
    text_option(update, "description", "the description")
    update.add_argument("--service", help="'' clears it")
    update.add_argument("--ci", help="'' clears it")
    update.add_argument("--category", help="'' clears it")
    update.add_argument("--impact", choices=levels)
    update.add_argument("--urgency", choices=levels)
    update.add_argument("--owner", metavar="LOGIN", help="the owner (problem managers; '' clears it)")
    text_option(update, "root-cause", "the root cause")
    update.add_argument(
        "--why",
        action="append",
        metavar="TEXT",
        help="one of the five whys, in order (repeatable; replaces them all; --why '' clears them)",
    )
    update.add_argument(
        "--cause-category",
        action="append",
        metavar="NAME",
        help="people, process, technology, supplier or environment (repeatable; replaces them; '' clears)",
    )
    text_option(update, "workaround", "the workaround (published with the known error)")
    text_option(update, "fix", "the permanent fix")

    step("investigate", "start the investigation")
    step("fix", "start the permanent fix (needs the root cause and the fix described)")
    publish = step("publish", "publish the known error (needs the root cause and the workaround)")
    publish.add_argument("--symptom", help="what users see (default: the description)")
    publish.add_argument("--title", help="the known error's title (default: the problem's)")
    step(
        "retire-ke",
        "retire a known error: its workaround is no longer offered",
        version=False,
        ref="the known error (KE0000001)",
    )

    link = step("link", "link incidents, or the change of the fix, to the problem", version=False)
    link.add_argument("incidents", nargs="*", metavar="INC", help="incidents to link")
    link.add_argument("--change", metavar="CHG", help="the change that carries the fix")
    unlink = step("unlink", "unlink an incident from the problem", version=False)
    unlink.add_argument("incident", metavar="INC")

    resolve = step("resolve", "resolve (the fix is in); then its open linked incidents, if asked")
    resolve.add_argument(
        "--incidents",
        choices=["yes", "no", "ask"],
        help="resolve the open linked incidents with the fix, each on its own (default: ask at a "
        "terminal, else no); on a resolved problem, yes resolves those still open",
    )
    resolve.add_argument("--code", default="fixed", help="the incidents' resolution code (default fixed)")
    close = step("close", "close a resolved problem once the fix is verified")
    close.add_argument("--verification", required=True, help="how the fix was verified")
    reopen = step("reopen", "reopen a resolved problem: the fix did not hold")
    reopen.add_argument("--reason", required=True)
    cancel = step("cancel", "cancel a problem not yet resolved")
    cancel.add_argument("--reason", required=True)
    duplicate = step("duplicate", "mark a problem as a duplicate of another")
    duplicate.add_argument("--of", required=True, metavar="PRB", help="the problem that goes on")
    duplicate.add_argument("--reason", required=True)

    candidates = problem.add_parser(
        "candidates", parents=[db], help="incident clusters no problem covers yet (problems.toml)"
    )
    candidates.add_argument("--json", action="store_true")


def _version() -> str:
    from itsm_tui import __version__

    return __version__


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


ROW_ID_MAX = 2**31 - 1  # the largest id a row may have (an INTEGER on PostgreSQL)


def _row_id(text: str) -> int:
    """A row's id as ``--before`` takes it: a whole number a database column holds (larger would be refused
    by the driver, not by the command)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= ROW_ID_MAX:
        raise argparse.ArgumentTypeError(f"an id is from 1 to {ROW_ID_MAX}, not {text}")
    return value


def _iso_instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO instant; write e.g. 2026-11-02T09:30:00Z or 2026-11-02T10:30+01:00"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z for UTC or an offset like +01:00")
    return value.astimezone(UTC)


def _iso_instant_or_blank(text: str) -> datetime | str:
    """An ISO instant, or "" (to clear the option's value)."""
    return "" if not text.strip() else _iso_instant(text)


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _add_change_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], db: argparse.ArgumentParser
) -> None:
    """``itsm change ...``: the change lifecycle, the conflict check and the iCalendar export."""
    change = commands.add_parser(
        "change", parents=[db], help="changes: raise, approve, schedule, conflicts, calendar export"
    ).add_subparsers(dest="change_command", metavar="ACTION", required=True)

    def span(parser: argparse.ArgumentParser, what: str) -> None:
        parser.add_argument(
            "--from", dest="date_from", type=_iso_date, help=f"first day {what} (YYYY-MM-DD, UTC)"
        )
        parser.add_argument(
            "--to", dest="date_to", type=_iso_date, help="last day, inclusive (YYYY-MM-DD, UTC)"
        )

    clist = change.add_parser("list", parents=[db], help="changes by planned start")
    span(clist, "(default: a week ago; --to default: 60 days on)")
    clist.add_argument("--state", action="append", default=[], help="only this state (repeatable)")
    clist.add_argument("--type", dest="change_type", choices=["standard", "normal", "emergency"])
    clist.add_argument("--service")
    clist.add_argument("--limit", type=_positive_int, default=200)
    clist.add_argument("--json", action="store_true")

    show = change.add_parser("show", parents=[db], help="one change: fields, approvals, conflicts, history")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")

    create = change.add_parser("create", parents=[db], help="raise a change (a draft; --submit submits it)")
    create.add_argument(
        "--type", dest="change_type", required=True, choices=["standard", "normal", "emergency"]
    )
    create.add_argument("--template", help="standard changes: the pre-approved template (changes.toml)")
    create.add_argument("--title", help="what changes (standard changes: the template's title by default)")
    create.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="SERVICE[:CI]",
        help="an affected service or configuration item (repeatable, or comma-separated)",
    )
    create.add_argument("--service", action="append", default=[], help="an affected service (repeatable)")
    create.add_argument(
        "--ci", action="append", default=[], help="an affected configuration item (repeatable)"
    )
    create.add_argument("--start", type=_iso_instant, required=True, help="planned start (ISO instant)")
    create.add_argument("--end", type=_iso_instant, help="planned end (ISO instant)")
    create.add_argument("--minutes", type=_positive_int, help="planned length instead of --end")
    create.add_argument("--risk", choices=["low", "medium", "high"])
    create.add_argument("--description", default="")
    create.add_argument("--implementation-plan")
    create.add_argument("--backout-plan")
    create.add_argument("--test-plan")
    create.add_argument("--implementer", metavar="LOGIN")
    create.add_argument("--submit", action="store_true", help="submit it at once")
    create.add_argument(
        "--override-reason", help="with --submit: an emergency change's reason to enter a blackout"
    )
    create.add_argument("--json", action="store_true")

    def step(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = change.add_parser(name, parents=[db], help=help_text)
        parser.add_argument("ref")
        parser.add_argument(
            "--expected-version",
            type=int,
            help="refuse if the change moved on from this version (show --json)",
        )
        parser.add_argument("--json", action="store_true")
        return parser

    submit = step("submit", "submit a draft (blackouts block it; conflicts are reported)")
    submit.add_argument("--override-reason", help="emergency changes: the reason to enter a blackout")
    edit = step("edit", "edit a change not yet approved (only the fields given change)")
    edit.add_argument("--title")
    edit.add_argument("--description")
    edit.add_argument("--implementation-plan")
    edit.add_argument("--backout-plan")
    edit.add_argument("--test-plan")
    edit.add_argument(
        "--targets",
        action="append",
        metavar="SERVICE[:CI]",
        help="the affected services and CIs, replacing the change's (repeatable, or comma-separated)",
    )
    edit.add_argument("--implementer", metavar="LOGIN", help='who implements it ("" : nobody yet)')
    edit.add_argument("--start", type=_iso_instant, help="new planned start (ISO instant)")
    edit.add_argument("--end", type=_iso_instant, help="new planned end (default: keep the length)")
    edit.add_argument("--risk", choices=["low", "medium", "high"])
    withdraw = step("withdraw", "withdraw a change you raised, before it is approved")
    withdraw.add_argument("--reason", help="why (optional; its approvers read it)")
    cancel = step("cancel", "cancel a change not yet implementing (change managers)")
    cancel.add_argument("--reason", required=True, help="why (its approvers and implementer read it)")
    assess = step("assess", "assess a submitted normal change and ask the CAB (change managers)")
    assess.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="QUESTION=ANSWER",
        help="an answer of the risk questionnaire (repeatable; `itsm change risk CHG` lists them); with "
        "answers the risk is the score's",
    )
    assess.add_argument(
        "--risk", choices=["low", "medium", "high"], help="the risk (with --answer: an override, say why)"
    )
    assess.add_argument("--notes", help="the assessment's notes (why the risk, if it overrides the score)")
    risk = change.add_parser(
        "risk", parents=[db], help="a change's risk questionnaire: answers recorded or suggested, the score"
    )
    risk.add_argument("ref")
    risk.add_argument("--json", action="store_true")
    approve = step("approve", "approve as a CAB member asked, or an emergency change as change manager")
    approve.add_argument("--reason")
    reject = step("reject", "reject, saying why")
    reject.add_argument("--reason", required=True)
    for decision in (approve, reject):
        decision.add_argument(
            "--meeting",
            type=_iso_date,
            metavar="YYYY-MM-DD",
            help="record the decision at the CAB meeting of this day (changes.toml [cab])",
        )
    agenda = change.add_parser(
        "agenda", parents=[db], help="the CAB's agenda and minutes: changes awaiting it, decisions taken"
    )
    agenda.add_argument(
        "--date",
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="the meeting of this day, in the CAB's zone (default: the one going on, else the next)",
    )
    agenda.add_argument("--format", choices=["text", "md", "json"], default="text")
    agenda.add_argument("--timezone", help="show the times in this zone (default: yours)")
    sched = step("schedule", "schedule an approved change, or move a change to a new window")
    sched.add_argument("--start", type=_iso_instant, help="new planned start (ISO instant)")
    sched.add_argument("--end", type=_iso_instant, help="new planned end (default: keep the length)")
    sched.add_argument("--override-reason", help="emergency changes: the reason to enter a blackout")
    start = step("start", "start implementing a scheduled change (inside its planned window)")
    start.add_argument(
        "--override",
        metavar="REASON",
        help="change managers: why it starts outside its planned window (recorded in the audit trail)",
    )
    complete = step("complete", "record the outcome of an implementation")
    complete.add_argument("--outcome", required=True, choices=["implemented", "failed", "backed_out"])
    complete.add_argument("--note", help="what happened (required unless implemented)")
    review = step("review", "start the post-implementation review")
    review.add_argument("--notes", help="the review's findings")
    close = step("close", "close a change (a reviewed one needs review notes)")
    close.add_argument("--review-notes", help="the post-implementation review's findings")

    check = change.add_parser("conflicts", parents=[db], help="every conflict of the planned changes")
    span(check, "(default today; --to default: the reminder horizon of changes.toml)")
    check.add_argument("--json", action="store_true")

    slots = change.add_parser(
        "slots", parents=[db], help="the next free slots for a change: in its windows, free of conflicts"
    )
    slots.add_argument("ref")
    slots.add_argument("--count", type=int, default=5, help="how many slots (1-20, default 5)")
    slots.add_argument(
        "--after", type=_iso_instant, help="look from this instant on (ISO; default: now, never earlier)"
    )
    slots.add_argument("--timezone", help="show the times in this zone (default: yours)")
    slots.add_argument("--json", action="store_true")

    export = change.add_parser("export", parents=[db], help="write the change calendar as an .ics file")
    export.add_argument(
        "--ics", required=True, metavar="FILE", help="the iCalendar file to write (- for stdout)"
    )
    span(export, "(default: 30 days ago; --to default: 180 days on)")

    windows = change.add_parser("windows", parents=[db], help="list maintenance windows and blackouts")
    windows.add_argument("--json", action="store_true")
    window = change.add_parser("add-window", parents=[db], help="add a recurring maintenance window")
    window.add_argument("--name", required=True)
    window.add_argument("--service", required=True)
    window.add_argument("--rrule", required=True, help="RFC 5545 rule, e.g. FREQ=WEEKLY;BYDAY=SA")
    window.add_argument("--start", required=True, metavar="HH:MM", help="local start time")
    window.add_argument("--minutes", type=_positive_int, required=True, help="length in minutes")
    window.add_argument("--timezone", required=True, help="the window's time zone (e.g. Europe/Berlin)")
    blackout = change.add_parser("add-blackout", parents=[db], help="add a change freeze")
    blackout.add_argument("--name", required=True)
    blackout.add_argument("--start", type=_iso_instant, required=True)
    blackout.add_argument("--end", type=_iso_instant, required=True)
    blackout.add_argument("--service", help="only this service (default: every service)")
    blackout.add_argument("--reason")
    blackout.add_argument(
        "--dry-run", action="store_true", help="list the live changes it would block; save nothing"
    )

    def by_id(name: str, help_text: str, what: str) -> argparse.ArgumentParser:
        parser = change.add_parser(name, parents=[db], help=help_text)
        parser.add_argument("id", type=_row_id, metavar="ID", help=f"the {what}'s id (`itsm change windows`)")
        parser.add_argument(
            "--expected-version",
            type=int,
            help=f"refuse if the {what} moved on from this version (`itsm change windows` shows it)",
        )
        return parser

    edit_window = by_id("edit-window", "edit a maintenance window (change managers)", "window")
    edit_window.add_argument("--name")
    edit_window.add_argument("--service")
    edit_window.add_argument("--rrule", help="RFC 5545 rule, e.g. FREQ=WEEKLY;BYDAY=SA")
    edit_window.add_argument("--start", metavar="HH:MM", help="local start time")
    edit_window.add_argument("--minutes", type=_positive_int, help="length in minutes")
    edit_window.add_argument("--timezone", help="the window's time zone (e.g. Europe/Berlin)")
    edit_window.add_argument(
        "--valid-until",
        type=_iso_instant_or_blank,
        metavar='ISO|""',
        help='the instant it ends (ISO instant; "" for no end)',
    )
    by_id("delete-window", "delete a maintenance window (change managers)", "window")
    edit_blackout = by_id("edit-blackout", "edit a change freeze (change managers)", "blackout")
    edit_blackout.add_argument("--name")
    edit_blackout.add_argument("--reason", help='why ("" for none)')
    edit_blackout.add_argument("--service", help='only this service ("" or all: every service)')
    edit_blackout.add_argument("--start", type=_iso_instant)
    edit_blackout.add_argument("--end", type=_iso_instant)
    edit_blackout.add_argument(
        "--dry-run", action="store_true", help="list the live changes it would block; save nothing"
    )
    by_id("delete-blackout", "delete a change freeze (change managers)", "blackout")


def _add_kb_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], db: argparse.ArgumentParser
) -> None:
    """``itsm kb ...``: knowledge articles, from a draft through review to publication and retirement."""
    kb = commands.add_parser(
        "kb", parents=[db], help="knowledge articles: write, review, publish, retire"
    ).add_subparsers(dest="kb_command", metavar="ACTION", required=True)

    klist = kb.add_parser("list", parents=[db], help="articles, most recently updated first")
    klist.add_argument(
        "words",
        nargs="*",
        metavar="WORD",
        help="words of the title or text, and svc:SERVICE, cat:CATEGORY, status:STATUS, author:LOGIN (or me)",
    )
    klist.add_argument(
        "--view",
        choices=["published", "drafts", "review", "retired", "all"],
        default="published",
        help="published (default); drafts: yours, and what awaits review for publishers; review; "
        "retired; all",
    )
    klist.add_argument("--limit", type=_positive_int, default=50, help="at most N (max 200)")
    klist.add_argument("--json", action="store_true")

    show = kb.add_parser("show", parents=[db], help="one article: fields, text, uses, actions, history")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")

    def text_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--title", help="one line saying what the article answers")
        parser.add_argument("--body", help="the text (without it, at a terminal: your $EDITOR)")
        parser.add_argument("--body-file", metavar="PATH", help="the text from a file (- for standard input)")
        parser.add_argument("--service", help="the service it is about ('' for none)")
        parser.add_argument("--category", help="a category of your words (up to 40 characters)")
        parser.add_argument("--json", action="store_true")

    create = kb.add_parser("create", parents=[db], help="write a new draft")
    text_options(create)
    create.add_argument(
        "--from-ticket",
        metavar="REF",
        help="written from a ticket: title, text (description and resolution), service and category from it "
        "unless given; the ticket links to the article",
    )

    def versioned(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("ref")
        parser.add_argument(
            "--expected-version",
            type=int,
            help="refuse if the article changed since this version (show --json)",
        )

    update = kb.add_parser("update", parents=[db], help="edit an article (alone: its text in your $EDITOR)")
    versioned(update)
    text_options(update)

    def step(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = kb.add_parser(name, parents=[db], help=help_text)
        versioned(parser)
        parser.add_argument("--json", action="store_true")
        return parser

    step("submit", "submit a draft for review (its author, or a publisher)")
    step("publish", "publish an article in review (a publisher who did not write it)")
    back = step("send-back", "send an article in review back to its author as a draft (publishers)")
    back.add_argument("--note", required=True, help="what the author should change")
    retire = step("retire", "retire a published article (publishers)")
    retire.add_argument("--reason", required=True, help="why it no longer holds")
