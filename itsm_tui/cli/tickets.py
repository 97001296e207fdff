"""``itsm ticket``: logging, listing, showing and changing incidents and service requests."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.cli.output import local, plain, print_table
from itsm_tui.services.jsondata import jsonable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.services.tickets.commands import Update


@with_desk
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
        print(f"{view.ref} P{view.priority} {view.status}: {plain(view.title)}")
    return 0


@with_desk
def cmd_ticket_list(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.models import TICKET_STATUSES
    from itsm_tui.services import tickets

    if args.status is not None and args.status not in TICKET_STATUSES:  # else an empty list, as if none
        raise CliError(f"--status: {args.status!r} is not a status; use one of {', '.join(TICKET_STATUSES)}")
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
        print(json.dumps([jsonable(r.__dict__) for r in rows], indent=2))
        return 0
    _print_tickets(rows, actor.timezone, args.limit)
    return 0


def _print_tickets(rows: Sequence[Any], tz: str, limit: int) -> None:
    """The table of ``ticket list`` and ``ticket search`` (rows with ref, priority, status, group, assignee,
    opened_at, title and id), and how to page on when the page is full."""
    print_table(
        ["REF", "P", "STATUS", "GROUP", "ASSIGNEE", "OPENED", "TITLE"],
        [
            [
                r.ref,
                f"P{r.priority}",
                r.status,
                plain(r.group or ""),
                plain(r.assignee or ""),
                local(r.opened_at, tz),
                plain(r.title)[:60],
            ]
            for r in rows
        ],
    )
    if len(rows) == limit:
        print(f"(more: --before {rows[-1].id})")


@with_desk
def cmd_ticket_search(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import search

    words = search.search_words(args.words)
    if not words:
        raise CliError("ticket search: give a word to find (a short one needs a letter or a digit)")
    if args.limit > search.LIMIT_MAX:
        raise CliError(f"--limit: at most {search.LIMIT_MAX} (page on with --before)")
    with desk.db.read_session() as session:
        actor = desk.actor(session)
        hits = search.search(session, words, open_only=args.open, limit=args.limit, before_id=args.before)
    if args.json:
        print(json.dumps([jsonable(h.__dict__) for h in hits], indent=2))
        return 0
    _print_tickets(hits, actor.timezone, args.limit)
    return 0


@with_desk
def cmd_ticket_show(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import tickets

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        shown = tickets.detail(session, desk.config, actor, args.ref)
    view, links = shown.view, shown.links
    linked_here = [record.ref for record in shown.linked if not record.outgoing]  # the links back to it
    timeline = [item.__dict__ for item in shown.timeline]
    if args.json:
        data = view.as_json()
        data["links"] = links
        data["linked_here"] = linked_here
        data["timeline"] = [jsonable(item) for item in timeline]
        data["history_warning"] = shown.history_warning
        print(json.dumps(data, indent=2))
        return 0
    if shown.history_warning:
        print(shown.history_warning)
    tz = actor.timezone
    print(
        f"{view.ref}  P{view.priority}  {view.status}"
        + (f" ({plain(view.pending_reason)})" if view.pending_reason else "")
        + f"  v{view.version}"
    )
    print(f"  {plain(view.title)}")
    rows = [
        ("Kind", view.kind),
        ("Requester", plain(view.requester)),
        ("Impact/urgency", f"{view.impact}/{view.urgency}"),
        ("Category", plain(view.category or "-")),
        ("Service/CI", plain(f"{view.service or '-'} / {view.ci or '-'}")),
        ("Group", plain(view.group or "-")),
        ("Assignee", plain(view.assignee or "-")),
        ("Opened", local(view.opened_at, tz)),
        ("Responded", local(view.responded_at, tz)),
        ("Response SLA", f"{view.response_state}, due {local(view.response_due_at, tz)}"),
        ("Resolution SLA", f"{view.resolution_state}, due {local(view.resolution_due_at, tz)}"),
        ("Resolved", local(view.resolved_at, tz)),
    ]
    if view.resolution_code:
        rows.append(("Resolution", f"{view.resolution_code}: {plain(view.resolution_note or '')}"))
    if view.rating:
        rows.append(("Rating", f"{view.rating}/5"))
    if links:
        rows.append(("Links", plain(", ".join(links))))
    if linked_here:
        rows.append(("Linked here", plain(", ".join(linked_here))))
    for label, value in rows:
        print(f"  {label + ':':<16}{value}")
    if view.description:
        print("\n" + plain(view.description))
    print("\nTimeline (newest first):")
    for item in timeline:
        who = plain(item["by"] or "")
        print(f"  {local(item['at'], tz)}  {item['kind']:<6} {who:<12} {plain(item['text'])}")
    return 0


@with_desk
def cmd_ticket_update(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services.tickets import commands

    # The same change the console's : line makes (`:assign mlopez`), made by the same code, refused in
    # the same words.
    update = commands.Update(
        fields={name: getattr(args, name) for name in commands.FIELDS if getattr(args, name) is not None},
        take=args.take,
        assign=args.assign,
        group=args.group,
        escalate=args.escalate,
        reason=args.reason,
        reply=args.reply,
        note=args.note,
        status=args.status,
        code=args.code,
        resolution_note=args.resolution_note,
        links=tuple(args.link),
        rate=args.rate,
    )
    commands.check(update)  # before any ticket is read
    refs = [args.ref] if isinstance(args.ref, str) else list(dict.fromkeys(args.ref))  # each ticket once
    if len(refs) > 1:
        return _update_each(desk, args, refs, update)
    with desk.db.session() as session:
        actor = desk.actor(session)
        view = commands.apply(
            session, desk.config, actor, refs[0], update, expected_version=args.expected_version
        )
    if args.json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        print(f"{view.ref} P{view.priority} {view.status} v{view.version}: {plain(view.title)}")
    return 0


def _update_each(desk: Desk, args: argparse.Namespace, refs: list[str], update: Update) -> int:
    """The same update on several tickets, each in its own transaction (as the queue's marked tickets):
    one line says what was done and what was refused; exit 0 when all were done, 1 when some were not."""
    from itsm_tui.services import access_log, tickets
    from itsm_tui.services.access import PermissionDenied
    from itsm_tui.services.tickets import commands

    if args.expected_version is not None:
        raise CliError("--expected-version goes with one ticket, not several")
    with desk.db.read_session() as session:
        actor = desk.actor(session)

    @contextlib.contextmanager
    def recorded() -> Iterator[Session]:
        """A ticket's transaction; a permission refused in it is recorded (once it was rolled back) as
        this command's, as a refusal of one ticket would be."""
        try:
            with desk.db.session() as session:
                yield session
        except PermissionDenied as exc:
            access_log.record_refusal(
                desk.db,
                login=actor.login,
                user_id=actor.id,
                action="ticket update",
                permission=exc.permission,
                detail=str(exc),
            )
            raise

    try:
        result = tickets.apply_each(
            recorded, refs, lambda session, ref: commands.apply(session, desk.config, actor, ref, update)
        )
    except tickets.BulkStopped as stopped:  # what was done is said; then the failure, as any command's
        stop = f"stopped at {stopped.ref}, {len(stopped.not_tried)} not tried"
        print(plain(f"{stopped.result.summary}; {stop}"))
        raise stopped.__cause__ or stopped from None
    code = 1 if result.refused else 0
    try:  # a reader gone away changes nothing of what was done, nor of the exit that says it
        if args.json:
            refused = [{"ref": r.ref, "reason": r.reason} for r in result.refused]
            print(json.dumps({"done": list(result.done), "refused": refused}, indent=2))
        else:
            print(plain(result.summary))
    except BrokenPipeError:
        pass  # the command's end flushes stdout again, finds it closed and exits with the code returned
    return code


@with_desk
def cmd_ticket_take_next(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import tickets

    with desk.db.session() as session:
        actor = desk.actor(session)
        ticket = tickets.take_next(session, desk.config, actor)
        view = tickets.view(session, ticket)
    if args.json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        print(f"{view.ref} P{view.priority} {view.status} v{view.version}: {plain(view.title)}")
    return 0


HANDLERS: dict[str, Handler] = {
    "ticket create": cmd_ticket_create,
    "ticket list": cmd_ticket_list,
    "ticket search": cmd_ticket_search,
    "ticket show": cmd_ticket_show,
    "ticket update": cmd_ticket_update,
    "ticket take-next": cmd_ticket_take_next,
}
