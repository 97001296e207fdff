"""``itsm change``: the change lifecycle, the conflict check, the calendar export, windows and blackouts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.cli.output import local, plain, print_table
from itsm_tui.services.jsondata import jsonable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.services.changes import ChangeView
    from itsm_tui.services.conflicts import Conflict
    from itsm_tui.services.users import Actor


def _day_range(args: argparse.Namespace, before_days: int, after_days: int) -> tuple[datetime, datetime]:
    """[--from 00:00 UTC, the day after --to) with defaults around today."""
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


def _print_conflicts(found: Iterable[Conflict], tz: str) -> None:
    from itsm_tui.services.conflicts import SEVERITY_LABEL

    for conflict in found:
        print(f"  {SEVERITY_LABEL[conflict.severity]:<8} {plain(conflict.message)}")


def _print_notices(view: ChangeView) -> None:
    """What must be known about the change's approval (nobody can approve it, approvers skipped, ...)."""
    for notice in view.notices:
        print(f"  ! {plain(notice)}")


def _print_change(view: ChangeView, tz: str) -> None:
    print(f"{view.ref}  {view.change_type}  {view.state}  {view.risk} risk  v{view.version}")
    print(f"  {plain(view.title)}")
    _print_notices(view)

    def window(start: datetime | None, end: datetime | None) -> str:
        return f"{local(start, tz)} to {local(end, tz)}"

    for label, value in view.fields(window(view.planned_start, view.planned_end), window, plain):
        print(f"  {label + ':':<14}{plain(value)}")
    if view.approvals:
        print("\nApprovals:")
        for a in view.approvals:
            when = local(a.decided_at, tz) if a.decided_at else ""
            print(f"  {plain(a.login):<12} {a.decision:<9} {when}  {plain(a.reason or '')}".rstrip())
    for label, text in view.plans():
        print(f"\n{label}:\n{plain(text)}")
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
            print(f"  {local(item.at, tz)}  {plain(item.by):<10} {item.action:<10} {plain(change)}")


def _change_result(
    desk: Desk, session: Session, actor: Actor, ref: str
) -> Callable[[argparse.Namespace], int]:
    """What to print of a changed change, read in its transaction and printed (by calling it) once that
    has committed: output cut short by a reader that went away must not undo the change."""
    from itsm_tui.services import changes

    view = changes.view(session, desk.config, changes.get_change(session, ref), actor)
    return lambda args: _show_changed(view, actor, args)


def _show_changed(view: ChangeView, actor: Actor, args: argparse.Namespace) -> int:
    """Print a changed change (one line and its conflicts, or --json)."""
    if getattr(args, "json", False):
        print(json.dumps(view.as_json(), indent=2))
        return 0
    print(f"{view.ref} {view.change_type} {view.state} v{view.version}: {plain(view.title)}")
    _print_notices(view)
    _print_conflicts(view.conflicts, actor.timezone)
    return 0


@with_desk
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
    print_table(
        ["REF", "TYPE", "STATE", "START", "END", "SERVICES", "TITLE"],
        [
            [
                r.ref,
                r.change_type,
                r.state,
                local(r.planned_start, actor.timezone),
                local(r.planned_end, actor.timezone),
                plain(",".join(r.services)),
                plain(r.title)[:50],
            ]
            for r in rows
        ],
    )
    return 0


@with_desk
def cmd_change_show(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import changes

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        view = changes.view(session, desk.config, changes.get_change(session, args.ref), actor)
    if args.json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        if view.history_warning:
            print(view.history_warning)
        _print_change(view, actor.timezone)
    return 0


@with_desk
def cmd_change_create(desk: Desk, args: argparse.Namespace) -> int:
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
        result = _change_result(desk, session, actor, ref)
    return result(args)


def _change_step(fn_name: str, **fixed: str) -> Handler:
    """A handler that runs one lifecycle step on ``args.ref`` in one transaction and prints the result."""

    @with_desk
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
            result = _change_result(desk, session, actor, ref)
        return result(args)

    return run


@with_desk
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


@with_desk
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


@with_desk
def cmd_change_windows(desk: Desk, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from itsm_tui.models import Blackout, MaintenanceWindow
    from itsm_tui.services.conflicts import rule_refusal

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        windows = list(session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.service)))
        blackouts = list(session.scalars(select(Blackout).order_by(Blackout.starts_at)))
        if args.json:
            columns = MaintenanceWindow.__table__.columns.keys()  # every column, in the table's order
            data = {
                "windows": [jsonable({c: getattr(w, c) for c in columns}) for w in windows],
                "blackouts": [
                    jsonable(
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
        print_table(
            ["SERVICE", "RULE", "START", "MINUTES", "ZONE", "NAME"],
            [
                [w.service, w.rrule, w.start_local, str(w.duration_minutes), w.timezone, plain(w.name)]
                for w in windows
            ],
        )
        for w in windows:
            refusal = rule_refusal(w.rrule)
            if refusal is not None:  # stored before such rules were refused: it has no occurrences
                print(f"  window {w.id} ({plain(w.name)}) is not expanded: {refusal}")
        print("\nBlackouts:")
        print_table(
            ["FROM", "TO", "SERVICE", "NAME"],
            [
                [
                    local(b.starts_at, actor.timezone),
                    local(b.ends_at, actor.timezone),
                    b.service or "all",
                    plain(b.name),
                ]
                for b in blackouts
            ],
        )
    return 0


@with_desk
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
        said = f"window {window.id} added: {where}"
    print(said)  # once committed: a reader that went away must not undo the write
    return 0


@with_desk
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
        said = f"blackout {blackout.id} added: {plain(blackout.name)} ({blackout.service or 'all services'})"
    print(said)  # once committed: a reader that went away must not undo the write
    return 0


HANDLERS: dict[str, Handler] = {
    "change list": cmd_change_list,
    "change show": cmd_change_show,
    "change create": cmd_change_create,
    "change submit": _change_step("submit", override_reason="override_reason"),
    "change assess": _change_step("assess", risk="risk"),
    "change approve": _change_step("approve", reason="reason"),
    "change reject": _change_step("reject", reason="reason"),
    "change schedule": _change_step("schedule", start="start", end="end", override_reason="override_reason"),
    "change start": _change_step("start_implementation", override_reason="override"),
    "change complete": _change_step("complete", outcome="outcome", note="note"),
    "change review": _change_step("start_review", notes="notes"),
    "change close": _change_step("close", review_notes="review_notes"),
    "change conflicts": cmd_change_conflicts,
    "change export": cmd_change_export,
    "change windows": cmd_change_windows,
    "change add-window": cmd_change_add_window,
    "change add-blackout": cmd_change_add_blackout,
}
