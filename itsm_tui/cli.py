"""The ``itsm`` command line: the console, demo data, migrations, users and tickets.

Every command takes ``--db``; errors go to stderr with exit code 2 and say what to do; each command runs
in one transaction, so a refused command writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

EXIT_ERROR = 2


class CliError(Exception):
    """A command-line mistake, reported as it is."""


# --------------------------------------------------------------------------- parser


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
    demo.add_argument("--force", action="store_true", help="replace the records of a database that has some")
    demo.add_argument(
        "--if-empty",
        action="store_true",
        help="build only if the database holds no users or tickets yet (otherwise do nothing)",
    )

    dbcmd = commands.add_parser("db", parents=[db], help="database schema").add_subparsers(
        dest="db_command", metavar="ACTION", required=True
    )
    dbcmd.add_parser("upgrade", parents=[db], help="create the schema or bring it to this version")
    dbcmd.add_parser("status", parents=[db], help="show the database's schema revision")

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

    sla = commands.add_parser("sla", parents=[db], help="SLA clocks").add_subparsers(
        dest="sla_command", metavar="ACTION", required=True
    )
    scan = sla.add_parser(
        "scan", parents=[db], help="run the SLA job once: flag warnings and breaches, notify"
    )
    scan.add_argument("--now", type=_iso_instant, help="the instant to scan at (ISO, default now)")
    scan.add_argument("--json", action="store_true")
    commands.add_parser(
        "scheduler",
        parents=[db],
        help="run the SLA job and the change reminders headless (for hosts where no console is open)",
    )
    report = commands.add_parser(
        "report", parents=[db], help="KPI reports and the shift handover"
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
    serve = commands.add_parser("serve", parents=[db], help="serve the console to a web browser")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_positive_int, default=8000, help="port (default 8000)")

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
    tlist.add_argument("--before", type=int, metavar="ID", help="page on: rows older than this id")
    tlist.add_argument("--json", action="store_true")

    show = ticket.add_parser("show", parents=[db], help="show one ticket with its timeline")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")

    upd = ticket.add_parser("update", parents=[db], help="change a ticket (all changes in one transaction)")
    upd.add_argument("ref")
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
    upd.add_argument("--take", action="store_true", help="assign it to yourself")
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
    return parser


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


def _iso_date(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


# --------------------------------------------------------------------------- running


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = _HANDLERS.get(_command_key(args))
    try:
        return handler(args) if handler else open_console(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = _known_error_message(exc)
        if message is None:
            raise
        print(f"itsm: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _known_error_message(exc: Exception) -> str | None:
    from itsm_tui.config import ConfigError
    from itsm_tui.db import DatabaseError
    from itsm_tui.services.access import PermissionDenied
    from itsm_tui.services.errors import ServiceError, ValidationError
    from itsm_tui.services.users import UnknownUser

    if isinstance(exc, ConfigError):
        return f"bad configuration file {exc.path}: key {exc.key}: {exc.rule}"
    if isinstance(exc, ValidationError):
        return f"{exc.field}: {exc}"
    if isinstance(exc, ServiceError | PermissionDenied | UnknownUser | DatabaseError | CliError):
        return str(exc)
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, OperationalError):
        return f"the database cannot be reached or used: {exc.orig}"
    return None


def _command_key(args: argparse.Namespace) -> str | None:
    if args.command is None:
        return None
    sub = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {sub}" if sub else args.command


class Desk:
    """The configuration and database a command works on."""

    def __init__(self, args: argparse.Namespace, *, create: bool = True, sync: bool = True) -> None:
        from itsm_tui.config import load_config, resolve_database_url
        from itsm_tui.db import open_database

        self.config = load_config()
        self.url = resolve_database_url(getattr(args, "db", None))
        self.db = open_database(self.url, self.config if sync else None, create=create)

    def actor(self, session):
        from itsm_tui.services.users import resolve_actor

        return resolve_actor(session)

    def close(self) -> None:
        self.db.dispose()


def _with_desk(fn: Callable[[Desk, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        desk = Desk(args)
        try:
            return fn(desk, args)
        finally:
            desk.close()

    return run


def open_console(args: argparse.Namespace) -> int:
    desk = Desk(args)
    with desk.db.read_session() as session:
        actor = desk.actor(session)
    from itsm_tui.app import ItsmApp

    ItsmApp(desk.db, desk.config, actor).run()
    desk.close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from itsm_tui.config import load_config, resolve_database_url
    from itsm_tui.db import Database
    from itsm_tui.demo import build_demo, is_empty

    config = load_config()
    url = resolve_database_url(args.db)
    db = Database.connect(url)
    try:
        db.upgrade()
        db.sync_catalog(config)
        if args.if_empty and not args.force and not is_empty(db):
            print("the database already holds data; left as it is")
            return 0
        summary = build_demo(
            db,
            config,
            tickets=args.tickets,
            seed=args.seed,
            anchor=args.anchor,
            force=args.force,
            progress=lambda text: print(text, file=sys.stderr),
        )
    finally:
        db.dispose()
    print(summary)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from itsm_tui.config import load_config, resolve_database_url
    from itsm_tui.db import SCHEMA_REVISION, Database, safe_url

    config = load_config()
    url = resolve_database_url(args.db)
    db = Database.connect(url)
    try:
        before = db.current_revision()
        db.upgrade()
        db.sync_catalog(config)
    finally:
        db.dispose()
    if before == SCHEMA_REVISION:
        print(f"{safe_url(url)}: already at revision {SCHEMA_REVISION}")
    else:
        print(f"{safe_url(url)}: upgraded from {before or 'empty'} to revision {SCHEMA_REVISION}")
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    from itsm_tui.config import resolve_database_url
    from itsm_tui.db import SCHEMA_REVISION, Database, safe_url

    url = resolve_database_url(args.db)
    db = Database.connect(url)
    try:
        current = db.current_revision()
    finally:
        db.dispose()
    state = "up to date" if current == SCHEMA_REVISION else "needs `itsm db upgrade`"
    print(f"{safe_url(url)}: revision {current or 'none'} (this program: {SCHEMA_REVISION}) - {state}")
    return 0


@_with_desk
def cmd_user_add(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import users

    with desk.db.session() as session:
        user = users.add_user(
            session,
            actor_login=users.current_login(),
            login=args.login,
            roles=args.role,
            groups=args.group,
            name=args.name,
            email=args.email,
            timezone=args.timezone,
        )
        roles = ", ".join(user.role_names)
    print(f"added {args.login} ({roles})")
    return 0


@_with_desk
def cmd_user_list(desk: Desk, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from itsm_tui.services import users

    with desk.db.read_session() as session:
        rows = users.list_users(session)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    _print_table(
        ["LOGIN", "NAME", "ROLES", "GROUPS"],
        [
            [
                r.login,
                r.name,
                ",".join(r.roles),
                ",".join(g + ("*" if g in r.lead_of else "") for g in r.groups),
            ]
            for r in rows
        ],
    )
    if rows:
        print("(* = group lead)")
    return 0


@_with_desk
def cmd_user_role(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import users

    if not (args.add or args.remove or args.add_group or args.remove_group or args.lead_of):
        raise CliError(
            "say what to change: --add ROLE, --remove ROLE, --add-group, --remove-group or --lead-of"
        )
    with desk.db.session() as session:
        user = users.change_roles(
            session,
            actor_login=users.current_login(),
            login=args.login,
            add=args.add,
            remove=args.remove,
            add_groups=args.add_group,
            remove_groups=args.remove_group,
            lead_of=args.lead_of,
        )
        summary = f"{user.login}: roles {', '.join(user.role_names)}; groups " + (
            ", ".join(sorted(m.group.code for m in user.groups)) or "none"
        )
    print(summary)
    return 0


@_with_desk
def cmd_ticket_create(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import tickets

    with desk.db.session() as session:
        actor = desk.actor(session)
        ticket = tickets.create_ticket(
            session,
            desk.config,
            actor,
            title=args.title,
            kind=args.kind,
            description=args.description,
            impact=args.impact,
            urgency=args.urgency,
            requester=args.requester,
            category=args.category,
            service=args.service,
            ci=args.ci,
            group=args.group,
            opened_at=args.opened_at,
        )
        view = tickets.view(session, ticket)
    if args.json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        print(f"{view.ref} P{view.priority} {view.status}: {_plain(view.title)}")
    return 0


@_with_desk
def cmd_ticket_list(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import tickets

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        assignee = actor.login if args.assignee == "me" else args.assignee
        rows = tickets.list_tickets(
            session,
            open_only=not args.all,
            status=args.status,
            group=args.group,
            assignee=assignee,
            priority=args.priority,
            limit=args.limit,
            before_id=args.before,
        )
    if args.json:
        print(json.dumps([_jsonable(r.__dict__) for r in rows], indent=2))
        return 0
    _print_table(
        ["REF", "P", "STATUS", "GROUP", "ASSIGNEE", "OPENED", "TITLE"],
        [
            [
                r.ref,
                f"P{r.priority}",
                r.status,
                r.group or "",
                r.assignee or "",
                _local(r.opened_at, actor.timezone),
                _plain(r.title)[:60],
            ]
            for r in rows
        ],
    )
    if len(rows) == args.limit:
        print(f"(more: --before {rows[-1].id})")
    return 0


@_with_desk
def cmd_ticket_show(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import tickets

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        ticket = tickets.get_ticket(session, args.ref)
        view = tickets.view(session, ticket)
        links = tickets.links_of(session, ticket)
        timeline = [item.__dict__ for item in tickets.timeline(session, ticket)]
    if args.json:
        data = view.as_json()
        data["links"] = links
        data["timeline"] = [_jsonable(item) for item in timeline]
        print(json.dumps(data, indent=2))
        return 0
    tz = actor.timezone
    print(
        f"{view.ref}  P{view.priority}  {view.status}"
        + (f" ({view.pending_reason})" if view.pending_reason else "")
        + f"  v{view.version}"
    )
    print(f"  {_plain(view.title)}")
    rows = [
        ("Kind", view.kind),
        ("Requester", _plain(view.requester)),
        ("Impact/urgency", f"{view.impact}/{view.urgency}"),
        ("Category", view.category or "-"),
        ("Service/CI", f"{view.service or '-'} / {view.ci or '-'}"),
        ("Group", view.group or "-"),
        ("Assignee", view.assignee or "-"),
        ("Opened", _local(view.opened_at, tz)),
        ("Responded", _local(view.responded_at, tz)),
        ("Response SLA", f"{view.response_state}, due {_local(view.response_due_at, tz)}"),
        ("Resolution SLA", f"{view.resolution_state}, due {_local(view.resolution_due_at, tz)}"),
        ("Resolved", _local(view.resolved_at, tz)),
    ]
    if view.resolution_code:
        rows.append(("Resolution", f"{view.resolution_code}: {_plain(view.resolution_note or '')}"))
    if view.rating:
        rows.append(("Rating", f"{view.rating}/5"))
    if links:
        rows.append(("Links", ", ".join(links)))
    for label, value in rows:
        print(f"  {label + ':':<16}{value}")
    if view.description:
        print("\n" + _plain(view.description))
    print("\nTimeline (newest first):")
    for item in timeline:
        print(f"  {_local(item['at'], tz)}  {item['kind']:<6} {item['by']:<12} {_plain(item['text'])}")
    return 0


@_with_desk
def cmd_ticket_update(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import tickets

    fields = {
        k: getattr(args, k)
        for k in ("title", "description", "requester", "category", "service", "ci", "impact", "urgency")
        if getattr(args, k) is not None
    }
    if args.group and not args.assign:
        raise CliError("--group goes with --assign (to escalate to a group use --escalate GROUP)")
    if args.take and args.assign:
        raise CliError("use either --take or --assign, not both")
    if args.escalate is not None and not args.reason:
        raise CliError("--escalate needs --reason saying why")
    actions = [
        fields,
        args.take,
        args.assign,
        args.escalate is not None,
        args.reply,
        args.note,
        args.status,
        args.link,
        args.rate is not None,
    ]
    if not any(actions):
        raise CliError("nothing to change; see `itsm ticket update --help`")
    version = args.expected_version
    with desk.db.session() as session:
        actor = desk.actor(session)
        config = desk.config
        ticket = tickets.get_ticket(session, args.ref)
        ref = ticket.ref

        def step(result):
            nonlocal version
            if version is not None:
                version = result.version  # the next step builds on this one
            return result

        if fields:
            step(tickets.update_fields(session, config, actor, ref, expected_version=version, **fields))
        if args.take or args.assign:
            step(
                tickets.assign(
                    session,
                    config,
                    actor,
                    ref,
                    assignee=args.assign,
                    group=args.group,
                    expected_version=version,
                )
            )
        if args.escalate is not None:
            step(
                tickets.escalate(
                    session,
                    config,
                    actor,
                    ref,
                    group=args.escalate or None,
                    reason=args.reason,
                    expected_version=version,
                )
            )
        if args.reply:
            tickets.add_entry(session, config, actor, ref, body=args.reply, public=True)
        if args.note:
            tickets.add_entry(session, config, actor, ref, body=args.note, public=False)
        if args.status:
            step(
                tickets.transition(
                    session,
                    config,
                    actor,
                    ref,
                    args.status,
                    reason=args.reason,
                    code=args.code,
                    note=args.resolution_note,
                    expected_version=version,
                )
            )
        for target in args.link:
            tickets.link(session, actor, ref, target)
        if args.rate is not None:
            tickets.rate(session, actor, ref, score=args.rate)
        view = tickets.view(session, tickets.get_ticket(session, ref))
    if args.json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        print(f"{view.ref} P{view.priority} {view.status} v{view.version}: {_plain(view.title)}")
    return 0


@_with_desk
def cmd_sla_scan(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import sla

    result = sla.scan(desk.db, desk.config, args.now)
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print(
            f"{result.warnings} warnings, {result.breaches} breaches, {result.escalations} escalations, "
            f"{result.notifications} notifications, {result.closed} closed ({result.seconds * 1000:.0f} ms)"
        )
    return 0


@_with_desk
def cmd_scheduler(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.scheduler import run_headless

    run_headless(desk.db, desk.config, lambda text: print(text, flush=True))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Each browser tab runs its own console process, as the user running this command."""
    import shlex

    from textual_serve.server import Server

    from itsm_tui.config import load_config, resolve_database_url
    from itsm_tui.db import open_database

    load_config()  # a bad configuration stops here, not in every browser tab
    url = resolve_database_url(args.db)
    open_database(url).dispose()  # so is a database that cannot be used
    command = shlex.join([sys.executable, "-m", "itsm_tui.cli", "--db", url])
    print(f"serving the console on http://{args.host}:{args.port} (Ctrl+C stops)", flush=True)
    Server(command, host=args.host, port=args.port, title="itsm").serve()
    return 0


@_with_desk
def cmd_report_kpi(desk: Desk, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from itsm_tui.services import kpi

    now = datetime.now(UTC)
    try:
        if args.date_from:
            period = kpi.custom_period(args.date_from, args.date_to or now.date(), now)
        else:
            if args.date_to:
                raise CliError("--to goes with --from")
            period = kpi.period_for(args.period, now)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    with desk.db.session() as session:  # refreshing the roll-up writes
        try:
            result = kpi.report(session, desk.config, period, args.group, now=now)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    rows = kpi_rows(result)
    if args.format == "json":
        print(json.dumps(result.as_json(), indent=2, default=str))
    elif args.format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["kpi", "value", "unit", "status", "target", "previous"])
        writer.writerows(rows)
    else:
        print(
            f"KPIs {period.start:%Y-%m-%d %H:%M} to {period.end:%Y-%m-%d %H:%M} UTC"
            + (f", group {args.group}" if args.group else "")
        )
        _print_table(
            ["KPI", "VALUE", "UNIT", "STATUS", "TARGET", "PREVIOUS"],
            [["" if v is None else str(v) for v in row] for row in rows],
        )
    return 0


def kpi_rows(result) -> list[list]:
    """The report as rows of (kpi, value, unit, status, target, previous period)."""
    headline = {f.name: f for f in result.headline}

    def row(name, label, value, unit):
        figure = headline.get(name)
        return [
            label,
            value,
            unit,
            figure.status if figure else "",
            figure.target if figure else None,
            figure.previous if figure else None,
        ]

    rows = [
        row("", "Tickets opened", result.opened, ""),
        row("", "Tickets resolved", result.resolved, ""),
        row("", "MTTA", result.mtta_hours, "h"),
        row("mttr_hours", "MTTR (wall clock)", result.mttr_hours, "h"),
        row("", "MTTR (business clock)", result.mttr_business_hours, "h"),
        row("sla_response", "SLA compliance, response", result.sla_response_pct, "%"),
        row("sla_resolution", "SLA compliance, resolution", result.sla_resolution_pct, "%"),
    ]
    for priority, value in result.sla_resolution_by_priority.items():
        rows.append(row("", f"  resolution P{priority}", value, "%"))
    for priority, value in result.sla_response_by_priority.items():
        rows.append(row("", f"  response P{priority}", value, "%"))
    rows += [
        row("fcr", "First-contact resolution", result.fcr_pct, "%"),
        row("reopen_rate", "Reopen rate", result.reopen_rate_pct, "%"),
        row("", "Escalation rate", result.escalation_rate_pct, "%"),
        row("csat", "CSAT", result.csat_pct, "%"),
        row("", "Ratings", result.ratings, ""),
        row("", "Backlog (open now)", result.backlog, ""),
    ]
    rows += [row("", f"  open {label}", count, "") for label, count in result.backlog_by_age.items()]
    rows += [
        row("change_success", "Change success rate", result.change_success_pct, "%"),
        row("", "Emergency-change share", result.emergency_share_pct, "%"),
    ]
    return rows


@_with_desk
def cmd_report_handover(desk: Desk, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from itsm_tui.services import kpi

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        result = kpi.handover(session, datetime.now(UTC), shift_hours=args.shift_hours)
    if args.json:
        print(json.dumps({k: v for k, v in result.__dict__.items()}, indent=2, default=str))
        return 0
    tz = actor.timezone
    print(f"Shift handover, {_local(result.now, tz)}")
    sections = [
        (
            "Open P1/P2",
            result.major_open,
            lambda r: [
                r["ref"],
                f"P{r['priority']}",
                r["status"],
                r["group"] or "",
                r["assignee"] or "-",
                _local(r["resolution_due_at"], tz),
                _plain(r["title"])[:50],
            ],
        ),
        (
            f"Breaches in the last {result.shift_hours} h",
            result.breaches,
            lambda r: [
                r["ref"],
                f"P{r['priority']}",
                r["status"],
                r["group"] or "",
                r["assignee"] or "-",
                "response" if r["response_breached_at"] else "resolution",
                _plain(r["title"])[:50],
            ],
        ),
        (
            "Pending on others",
            result.pending_on_others,
            lambda r: [
                r["ref"],
                f"P{r['priority']}",
                r["pending_reason"] or "",
                r["group"] or "",
                r["assignee"] or "-",
                _plain(r["title"])[:50],
            ],
        ),
        (
            "Changes in the next 12 h",
            result.changes_next,
            lambda r: [
                r["ref"],
                r["change_type"],
                r["state"],
                _local(r["planned_start"], tz),
                r["services"],
                _plain(r["title"])[:50],
            ],
        ),
    ]
    for title, rows, shape in sections:
        print(f"\n{title} ({len(rows)})")
        if rows:
            _print_table([""] * len(shape(rows[0])), [shape(r) for r in rows])
    return 0


# --------------------------------------------------------------------------- changes


def _add_change_commands(commands, db: argparse.ArgumentParser) -> None:
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
    assess = step("assess", "assess a submitted normal change and ask the CAB (change managers)")
    assess.add_argument("--risk", choices=["low", "medium", "high"])
    approve = step("approve", "approve as a CAB member asked, or an emergency change as change manager")
    approve.add_argument("--reason")
    reject = step("reject", "reject, saying why")
    reject.add_argument("--reason", required=True)
    sched = step("schedule", "schedule an approved change, or move a change to a new window")
    sched.add_argument("--start", type=_iso_instant, help="new planned start (ISO instant)")
    sched.add_argument("--end", type=_iso_instant, help="new planned end (default: keep the length)")
    sched.add_argument("--override-reason", help="emergency changes: the reason to enter a blackout")
    step("start", "start implementing a scheduled change")
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


def _day_range(args: argparse.Namespace, before_days: int, after_days: int) -> tuple[datetime, datetime]:
    """[--from 00:00 UTC, the day after --to) with defaults around today."""
    from datetime import timedelta

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = (
        datetime.combine(args.date_from, datetime.min.time(), UTC)
        if args.date_from
        else today - timedelta(days=before_days)
    )
    end = (
        datetime.combine(args.date_to, datetime.min.time(), UTC) + timedelta(days=1)
        if args.date_to
        else max(start, today) + timedelta(days=after_days)
    )
    if end <= start:
        raise CliError("--to lies before --from")
    return start, end


def _print_conflicts(found, tz: str) -> None:
    for conflict in found:
        mark = {"blocked": "BLOCKED", "conflict": "CONFLICT", "warning": "warning", "overridden": "override"}
        print(f"  {mark[conflict.severity]:<8} {_plain(conflict.message)}")


def _print_change(view, tz: str) -> None:
    print(f"{view.ref}  {view.change_type}  {view.state}  {view.risk} risk  v{view.version}")
    print(f"  {_plain(view.title)}")
    rows = [
        ("Planned", f"{_local(view.planned_start, tz)} to {_local(view.planned_end, tz)}"),
        ("Targets", ", ".join(view.targets) or "-"),
        ("Implementer", view.implementer or "-"),
        ("Requested by", view.requested_by or "-"),
        ("Approval", view.approval_rule),
    ]
    if view.template:
        rows.append(("Template", view.template))
    if view.actual_start:
        rows.append(("Actual", f"{_local(view.actual_start, tz)} to {_local(view.actual_end, tz)}"))
    if view.outcome:
        rows.append(("Outcome", view.outcome + (" (review required)" if view.review_required else "")))
    for label, text in (
        ("Override", view.override_reason),
        ("Rejected", view.rejection_reason),
        ("Review", view.review_notes),
    ):
        if text:
            rows.append((label, _plain(text)))
    for label, value in rows:
        print(f"  {label + ':':<14}{value}")
    if view.approvals:
        print("\nApprovals:")
        for a in view.approvals:
            when = _local(a.decided_at, tz) if a.decided_at else ""
            print(f"  {a.login:<12} {a.decision:<9} {when}  {_plain(a.reason or '')}".rstrip())
    for label, text in (
        ("Description", view.description),
        ("Implementation plan", view.implementation_plan),
        ("Back-out plan", view.backout_plan),
        ("Test plan", view.test_plan),
    ):
        if text:
            print(f"\n{label}:\n{_plain(text)}")
    if view.conflicts:
        print("\nConflicts:")
        _print_conflicts(view.conflicts, tz)
    if view.history:
        print("\nHistory (newest first):")
        for item in view.history[:30]:
            change = (
                f"{item.field}: {item.old or ''} -> {item.new or ''}"
                if item.old
                else f"{item.field}: {item.new}"
            )
            print(f"  {_local(item.at, tz)}  {item.by:<10} {item.action:<10} {_plain(change)}")


def _change_result(desk: Desk, session, actor, ref: str, args: argparse.Namespace) -> int:
    """Print a changed change (one line and its conflicts, or --json)."""
    from itsm_tui.services import changes

    view = changes.view(session, desk.config, changes.get_change(session, ref), actor)
    if getattr(args, "json", False):
        print(json.dumps(view.as_json(), indent=2))
        return 0
    print(f"{view.ref} {view.change_type} {view.state} v{view.version}: {_plain(view.title)}")
    _print_conflicts(view.conflicts, actor.timezone)
    return 0


@_with_desk
def cmd_change_list(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import changes

    start, end = _day_range(args, 7, 60)
    with desk.db.read_session() as session:
        actor = desk.actor(session)
        rows = changes.list_changes(
            session,
            start=start,
            end=end,
            states=args.state or None,
            change_type=args.change_type,
            service=args.service,
            limit=args.limit,
        )
    if args.json:
        print(json.dumps([r.as_json() for r in rows], indent=2))
        return 0
    _print_table(
        ["REF", "TYPE", "STATE", "START", "END", "SERVICES", "TITLE"],
        [
            [
                r.ref,
                r.change_type,
                r.state,
                _local(r.planned_start, actor.timezone),
                _local(r.planned_end, actor.timezone),
                ",".join(r.services),
                _plain(r.title)[:50],
            ]
            for r in rows
        ],
    )
    return 0


@_with_desk
def cmd_change_show(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import changes

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        view = changes.view(session, desk.config, changes.get_change(session, args.ref), actor)
    if args.json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        _print_change(view, actor.timezone)
    return 0


@_with_desk
def cmd_change_create(desk: Desk, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from itsm_tui.services import changes

    if args.end and args.minutes:
        raise CliError("give either --end or --minutes, not both")
    if args.override_reason and not args.submit:
        raise CliError("--override-reason goes with --submit (or use `itsm change submit`)")
    end = args.start + timedelta(minutes=args.minutes) if args.minutes else args.end
    with desk.db.session() as session:
        actor = desk.actor(session)
        change = changes.create_change(
            session,
            desk.config,
            actor,
            change_type=args.change_type,
            template=args.template,
            title=args.title,
            targets=[*args.target, *args.service, *args.ci],
            start=args.start,
            end=end,
            risk=args.risk,
            description=args.description,
            implementation_plan=args.implementation_plan,
            backout_plan=args.backout_plan,
            test_plan=args.test_plan,
            implementer=args.implementer,
        )
        ref = change.ref
        if args.submit:
            changes.submit(session, desk.config, actor, ref, override_reason=args.override_reason)
        return _change_result(desk, session, actor, ref, args)


def _change_step(fn_name: str, **fixed):
    """A handler that runs one lifecycle step on ``args.ref`` in one transaction and prints the result."""

    @_with_desk
    def run(desk: Desk, args: argparse.Namespace) -> int:
        from itsm_tui.services import changes

        options = {name: getattr(args, attr) for name, attr in fixed.items()}
        with desk.db.session() as session:
            actor = desk.actor(session)
            ref = changes.get_change(session, args.ref).ref
            fn = getattr(changes, fn_name)
            if fn_name == "schedule" and changes.get_change(session, ref).state != "approved":
                if options.get("start") is None:
                    raise CliError(f"{ref} is not approved; to move it give --start (and --end)")
                fn = changes.reschedule
            fn(session, desk.config, actor, ref, expected_version=args.expected_version, **options)
            return _change_result(desk, session, actor, ref, args)

    return run


@_with_desk
def cmd_change_conflicts(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import conflicts

    start, end = _day_range(args, 0, desk.config.changes.conflict_horizon_days)
    with desk.db.read_session() as session:
        actor = desk.actor(session)
        found = conflicts.between(session, start, end)
    if args.json:
        print(json.dumps([c.as_json() for c in found], indent=2))
        return 0
    print(f"Conflicts of the planned changes, {start:%Y-%m-%d} to {end:%Y-%m-%d} (UTC days): {len(found)}")
    _print_conflicts(found, actor.timezone)
    return 0


@_with_desk
def cmd_change_export(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import ical

    start, end = _day_range(args, 30, 180)
    with desk.db.read_session() as session:
        desk.actor(session)
        text, summary = ical.export(session, start, end)
    if args.ics == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        with open(args.ics, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        raise CliError(f"cannot write {args.ics}: {exc.strerror}") from None
    print(
        f"wrote {args.ics}: {summary.changes} changes, {summary.blackouts} blackouts, "
        f"{summary.windows} maintenance-window occurrences ({start:%Y-%m-%d} to {end:%Y-%m-%d})"
    )
    return 0


@_with_desk
def cmd_change_windows(desk: Desk, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from itsm_tui.models import Blackout, MaintenanceWindow

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        windows = list(session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.service)))
        blackouts = list(session.scalars(select(Blackout).order_by(Blackout.starts_at)))
        if args.json:
            data = {
                "windows": [
                    _jsonable(
                        {
                            c: getattr(w, c)
                            for c in (
                                "id",
                                "name",
                                "service",
                                "timezone",
                                "rrule",
                                "start_local",
                                "duration_minutes",
                                "valid_from",
                                "valid_until",
                            )
                        }
                    )
                    for w in windows
                ],
                "blackouts": [
                    _jsonable(
                        {
                            c: getattr(b, c)
                            for c in ("id", "name", "service", "reason", "starts_at", "ends_at")
                        }
                    )
                    for b in blackouts
                ],
            }
            print(json.dumps(data, indent=2))
            return 0
        print("Maintenance windows:")
        _print_table(
            ["SERVICE", "RULE", "START", "MINUTES", "ZONE", "NAME"],
            [
                [w.service, w.rrule, w.start_local, str(w.duration_minutes), w.timezone, _plain(w.name)]
                for w in windows
            ],
        )
        print("\nBlackouts:")
        _print_table(
            ["FROM", "TO", "SERVICE", "NAME"],
            [
                [
                    _local(b.starts_at, actor.timezone),
                    _local(b.ends_at, actor.timezone),
                    b.service or "all",
                    _plain(b.name),
                ]
                for b in blackouts
            ],
        )
    return 0


@_with_desk
def cmd_change_add_window(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import changes

    with desk.db.session() as session:
        window = changes.add_window(
            session,
            desk.actor(session),
            name=args.name,
            service=args.service,
            rrule=args.rrule,
            start_local=args.start,
            duration_minutes=args.minutes,
            timezone=args.timezone,
            config=desk.config,
        )
        where = f"{window.service} {window.rrule} at {window.start_local} {window.timezone}"
        print(f"window {window.id} added: {where}")
    return 0


@_with_desk
def cmd_change_add_blackout(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import changes

    with desk.db.session() as session:
        blackout = changes.add_blackout(
            session,
            desk.actor(session),
            name=args.name,
            start=args.start,
            end=args.end,
            service=args.service,
            reason=args.reason,
            config=desk.config,
        )
        print(f"blackout {blackout.id} added: {_plain(blackout.name)} ({blackout.service or 'all services'})")
    return 0


CHANGE_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "change list": cmd_change_list,
    "change show": cmd_change_show,
    "change create": cmd_change_create,
    "change submit": _change_step("submit", override_reason="override_reason"),
    "change assess": _change_step("assess", risk="risk"),
    "change approve": _change_step("approve", reason="reason"),
    "change reject": _change_step("reject", reason="reason"),
    "change schedule": _change_step("schedule", start="start", end="end", override_reason="override_reason"),
    "change start": _change_step("start_implementation"),
    "change complete": _change_step("complete", outcome="outcome", note="note"),
    "change review": _change_step("start_review", notes="notes"),
    "change close": _change_step("close", review_notes="review_notes"),
    "change conflicts": cmd_change_conflicts,
    "change export": cmd_change_export,
    "change windows": cmd_change_windows,
    "change add-window": cmd_change_add_window,
    "change add-blackout": cmd_change_add_blackout,
}

_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "report kpi": cmd_report_kpi,
    "report handover": cmd_report_handover,
    "serve": cmd_serve,
    "sla scan": cmd_sla_scan,
    "scheduler": cmd_scheduler,
    "demo": cmd_demo,
    "db upgrade": cmd_db_upgrade,
    "db status": cmd_db_status,
    "user add": cmd_user_add,
    "user list": cmd_user_list,
    "user role": cmd_user_role,
    "ticket create": cmd_ticket_create,
    "ticket list": cmd_ticket_list,
    "ticket show": cmd_ticket_show,
    "ticket update": cmd_ticket_update,
}
_HANDLERS.update(CHANGE_HANDLERS)


# --------------------------------------------------------------------------- output helpers


def _plain(text: str) -> str:
    """User text with terminal control characters made visible instead of acted on."""
    from itsm_tui.text import strip_control

    return strip_control(text)


def _local(instant: datetime | None, tz: str) -> str:
    if instant is None:
        return "-"
    from zoneinfo import ZoneInfo

    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
        for k, v in data.items()
    }


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
