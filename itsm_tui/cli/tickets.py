"""``itsm ticket``: logging, listing, showing and changing incidents and service requests."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.cli.output import local, plain, print_table
from itsm_tui.services.jsondata import jsonable

if TYPE_CHECKING:
    from itsm_tui.models import Ticket


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
    print_table(
        ["REF", "P", "STATUS", "GROUP", "ASSIGNEE", "OPENED", "TITLE"],
        [
            [
                r.ref,
                f"P{r.priority}",
                r.status,
                plain(r.group or ""),
                plain(r.assignee or ""),
                local(r.opened_at, actor.timezone),
                plain(r.title)[:60],
            ]
            for r in rows
        ],
    )
    if len(rows) == args.limit:
        print(f"(more: --before {rows[-1].id})")
    return 0


@with_desk
def cmd_ticket_show(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import tickets

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        shown = tickets.detail(session, desk.config, actor, args.ref)
    view, links = shown.view, shown.links
    timeline = [item.__dict__ for item in shown.timeline]
    if args.json:
        data = view.as_json()
        data["links"] = links
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

        def step(result: Ticket) -> Ticket:
            nonlocal version
            if version is not None:
                version = result.version  # the next step builds on this one
            return result

        if fields:
            step(tickets.update_fields(session, config, actor, ref, expected_version=version, **fields))
        if args.take:  # only if nobody has it yet: a take that came too late says who has it
            step(tickets.take(session, config, actor, ref))
        elif args.assign:  # the explicit assign: version-checked, the previous assignee is told
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
        # A reply or note moves the ticket to a new version too: the steps after it build on that one, or
        # they would be refused as stale, naming the caller's own entry as the change they missed.
        if args.reply:
            tickets.add_entry(
                session, config, actor, ref, body=args.reply, public=True, expected_version=version
            )
            step(ticket)
        if args.note:
            tickets.add_entry(
                session, config, actor, ref, body=args.note, public=False, expected_version=version
            )
            step(ticket)
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
        print(f"{view.ref} P{view.priority} {view.status} v{view.version}: {plain(view.title)}")
    return 0


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
    "ticket show": cmd_ticket_show,
    "ticket update": cmd_ticket_update,
    "ticket take-next": cmd_ticket_take_next,
}
