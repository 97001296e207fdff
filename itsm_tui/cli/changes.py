"""``itsm change``: the change lifecycle, the conflict check, the calendar export, windows and blackouts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from itsm_tui.cli import cab
from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.cli.output import local, plain, print_table
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.jsondata import jsonable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.config import DeskConfig
    from itsm_tui.services.changes import ChangeView
    from itsm_tui.services.changes.impact import Impact
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
        print(f"  {label + ':' if label else '':<14}{plain(value)}")
    if view.approvals:
        print("\nApprovals:")
        for a in view.approvals:
            when = local(a.decided_at, tz) if a.decided_at else ""
            shown = a.shown or a.decision
            print(f"  {plain(a.login):<12} {shown:<10} {when}  {plain(a.reason or '')}".rstrip())
    for label, text in view.plans():
        print(f"\n{label}:\n{plain(text)}")
    if view.conflicts:
        print("\nConflicts:")
        _print_conflicts(view.conflicts, tz)
    if view.impact is not None:
        _print_impact(view.impact, tz)
    if view.history:
        print("\nHistory (newest first):")
        for item in view.history[:30]:
            change = (
                f"{item.field}: {item.old or ''} -> {item.new or ''}"
                if item.old
                else f"{item.field}: {item.new}"
            )
            print(f"  {local(item.at, tz)}  {plain(item.by):<10} {item.action:<10} {plain(change)}")


def _print_impact(impact: Impact, tz: str) -> None:
    """What the change's targets touch: the counts, then the first of each list."""
    print(f"\nImpact: {impact.summary()}")

    def where(service: str | None, ci: str | None) -> str:
        return plain("/".join(part for part in (service, ci) if part) or "-")

    for i in impact.incidents:
        print(f"  {i.ref}  P{i.priority}  {i.status:<11} {where(i.service, i.ci):<22} {plain(i.title)}")
    for p in impact.problems:
        print(f"  {p.ref}  P{p.priority}  {p.status:<15} {where(p.service, p.ci):<18} {plain(p.title)}")
    for c in impact.failed_changes:
        print(f"  {c.ref}  {c.outcome:<10} ended {local(c.ended_at, tz)}  {plain(c.title)}")
    for shown, count, noun in (
        (impact.incidents, impact.incident_count, "incidents"),
        (impact.problems, impact.problem_count, "problems"),
        (impact.failed_changes, impact.failed_count, "failed changes"),
    ):
        if count > len(shown):
            print(f"  ... and {count - len(shown)} more {noun}")


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
        if args.submit:  # one transaction: a refused submit leaves no draft behind either
            try:
                changes.submit(session, desk.config, actor, ref, override_reason=args.override_reason)
            except ServiceError as refusal:
                raise refusal.explained(f"nothing was saved: {refusal}") from None
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


# ``itsm change edit``'s options, by the service's name for each field
EDIT_FIELDS = (
    "title",
    "description",
    "implementation_plan",
    "backout_plan",
    "test_plan",
    "targets",
    "implementer",
    "start",
    "end",
    "risk",
)


@with_desk
def cmd_change_edit(desk: Desk, args: argparse.Namespace) -> int:
    """Edit a change not yet approved: only the fields given change."""
    from itsm_tui.services import changes

    given = {name: getattr(args, name) for name in EDIT_FIELDS if getattr(args, name) is not None}
    if not given:
        options = ", ".join("--" + name.replace("_", "-") for name in EDIT_FIELDS)
        raise CliError(f"give at least one field to change ({options})")
    with desk.db.session() as session:
        actor = desk.actor(session)
        ref = changes.get_change(session, args.ref).ref
        changes.edit_change(session, desk.config, actor, ref, expected_version=args.expected_version, **given)
        result = _change_result(desk, session, actor, ref)
    return result(args)


def _answers(config: DeskConfig, given: list[str]) -> dict[str, str] | None:
    """``--answer QUESTION=ANSWER`` options as answers (None: none given), each checked against the
    questionnaire of changes.toml before the desk is touched."""
    from itsm_tui.services.changes.risk import normalise

    if not given:
        return None
    answers: dict[str, str] = {}
    for item in given:
        question, equals, answer = item.partition("=")
        if not equals or not question.strip() or not answer.strip():
            known = ", ".join(q.id for q in config.changes.risk.questions)
            raise CliError(f"--answer {item!r}: write QUESTION=ANSWER (questions: {known})")
        answers[question.strip()] = answer.strip()
    try:
        return normalise(config, answers)
    except ValidationError as exc:
        raise CliError(f"--answer: {exc}") from None


@with_desk
def cmd_change_assess(desk: Desk, args: argparse.Namespace) -> int:
    """Assess a submitted change: the risk questionnaire's answers (scored), or a risk, and notes."""
    from itsm_tui.services import changes

    answers = _answers(desk.config, args.answer)
    with desk.db.session() as session:
        actor = desk.actor(session)
        ref = changes.get_change(session, args.ref).ref
        changes.assess(
            session,
            desk.config,
            actor,
            ref,
            risk=args.risk,
            answers=answers,
            notes=args.notes,
            expected_version=args.expected_version,
        )
        result = _change_result(desk, session, actor, ref)
    return result(args)


@with_desk
def cmd_change_risk(desk: Desk, args: argparse.Namespace) -> int:
    """The risk questionnaire of a change: the answers recorded, or else suggested, and their score."""
    from itsm_tui.services.changes import get_change
    from itsm_tui.services.changes.risk import questionnaire

    with desk.db.read_session() as session:
        desk.actor(session)
        shown = questionnaire(session, desk.config, get_change(session, args.ref))
    if args.json:
        print(json.dumps(shown.as_json(), indent=2))
        return 0
    given = "answers recorded" if shown.recorded else "answers suggested by the desk"
    print(f"{shown.ref}  {shown.state}  {shown.risk} risk  v{shown.version}  ({given})")
    for question in shown.questions:
        mark = "" if question.recorded or question.answer is None else " (suggested)"
        points = question.points(question.answer)
        answer = f"{question.answer} ({points:+d}){mark}" if question.answer is not None else "-"
        print(f"  {question.id:<10} {plain(question.text)}")
        print(f"  {'':<10} answer: {plain(answer)}")
        options = ", ".join(f"{a.label} ({a.points:+d})" for a in question.answers)
        print(f"  {'':<10} answers: {plain(options)}")
        if question.why:
            print(f"  {'':<10} desk: {plain(question.why)}")
    bounds = f"medium from {shown.medium}, high from {shown.high}"
    if shown.score is not None:
        print(f"Score {shown.score}: {shown.level} risk ({bounds})")
    else:
        print(f"Score: none yet, every question needs an answer ({bounds})")
    if shown.notes:
        print(f"Notes: {plain(shown.notes)}")
    return 0


@with_desk
def cmd_change_conflicts(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import conflicts

    start, end = _day_range(args, 0, desk.config.changes.conflict_horizon_days)
    with desk.db.read_session() as session:
        actor = desk.actor(session)
        found = conflicts.between(session, start, end, same_service=desk.config.changes.same_service_severity)
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
                            for c in ("id", "version", "name", "service", "reason", "starts_at", "ends_at")
                        }
                    )
                    for b in blackouts
                ],
            }
            print(json.dumps(data, indent=2))
            return 0
        print("Maintenance windows:")
        print_table(
            ["ID", "V", "SERVICE", "RULE", "START", "MINUTES", "ZONE", "NAME"],
            [
                [
                    str(w.id),
                    str(w.version),
                    w.service,
                    w.rrule,
                    w.start_local,
                    str(w.duration_minutes),
                    w.timezone,
                    plain(w.name),
                ]
                for w in windows
            ],
        )
        for w in windows:
            refusal = rule_refusal(w.rrule)
            if refusal is not None:  # stored before such rules were refused: it has no occurrences
                print(f"  window {w.id} ({plain(w.name)}) is not expanded: {refusal}")
        print(f"\nBlackouts (times in {actor.timezone}):")
        print_table(
            ["ID", "V", "FROM", "TO", "SERVICE", "NAME"],
            [
                [
                    str(b.id),
                    str(b.version),
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


class _DryRun(Exception):
    """Ends a --dry-run's transaction (rolled back) with what it would have said."""

    def __init__(self, said: str) -> None:
        super().__init__(said)
        self.said = said


def _blackout_saved(desk: Desk, session: Session, blackout_id: int, verb: str, dry_run: bool) -> str:
    """What to print of a blackout just written in ``session``: it and the live changes it blocks (raising
    :class:`_DryRun` with that instead, for a dry run: nothing is saved)."""
    from itsm_tui.models import Blackout
    from itsm_tui.services import changes

    blackout = session.get(Blackout, blackout_id)
    assert blackout is not None  # written in this very transaction
    found = changes.blocked_by_saved(session, desk.config, blackout)
    scope = blackout.service or "all services"
    if dry_run:
        head = f"dry run, nothing saved: the blackout {plain(blackout.name)} ({scope}) would be {verb}"
        raise _DryRun(f"{head}. {plain(found.summary())}")
    head = f"blackout {blackout.id} {verb} (v{blackout.version}): {plain(blackout.name)} ({scope})"
    return f"{head}. {plain(found.summary())}"


@with_desk
def cmd_change_add_blackout(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import changes

    try:
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
            said = _blackout_saved(desk, session, blackout.id, "added", args.dry_run)
    except _DryRun as dry:
        said = dry.said
    print(said)  # once committed: a reader that went away must not undo the write
    return 0


def _some_field(args: argparse.Namespace, fields: tuple[str, ...]) -> None:
    """An edit of a window or a blackout changes something: with no field given it is refused, as
    ``change edit`` is, before the desk is touched."""
    if all(getattr(args, name) is None for name in fields):
        options = ", ".join("--" + name.replace("_", "-") for name in fields)
        raise CliError(f"give at least one field to change ({options})")


@with_desk
def cmd_change_edit_blackout(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import changes

    _some_field(args, ("name", "reason", "service", "start", "end"))
    service = args.service
    if service is not None and service.strip().lower() in ("", "all"):
        service = ""  # every service
    try:
        with desk.db.session() as session:
            blackout = changes.edit_blackout(
                session,
                desk.actor(session),
                args.id,
                config=desk.config,
                name=args.name,
                reason=args.reason,
                service=service,
                start=args.start,
                end=args.end,
                expected_version=args.expected_version,
            )
            said = _blackout_saved(desk, session, blackout.id, "saved", args.dry_run)
    except _DryRun as dry:
        said = dry.said
    print(said)  # once committed
    return 0


@with_desk
def cmd_change_edit_window(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import changes

    _some_field(args, ("name", "service", "rrule", "start", "minutes", "timezone", "valid_until"))
    # Not given: kept; "": no end.
    valid_until = changes.KEEP if args.valid_until is None else (args.valid_until or None)
    with desk.db.session() as session:
        window = changes.edit_window(
            session,
            desk.actor(session),
            args.id,
            config=desk.config,
            name=args.name,
            service=args.service,
            rrule=args.rrule,
            start_local=args.start,
            duration_minutes=args.minutes,
            timezone=args.timezone,
            valid_until=valid_until,
            expected_version=args.expected_version,
        )
        where = f"{window.service} {window.rrule} at {window.start_local} {window.timezone}"
        said = f"window {window.id} saved (v{window.version}): {where} for {window.duration_minutes} min"
    print(said)  # once committed
    return 0


def _delete(kind: str) -> Handler:
    """``delete-window ID`` or ``delete-blackout ID``: one delete in one transaction, said once committed."""

    @with_desk
    def run(desk: Desk, args: argparse.Namespace) -> int:
        from itsm_tui.services import changes

        delete = changes.delete_window if kind == "window" else changes.delete_blackout
        with desk.db.session() as session:
            what = delete(session, desk.actor(session), args.id, expected_version=args.expected_version)
        print(f"{kind} {args.id} deleted: {plain(what)}")
        return 0

    return run


@with_desk
def cmd_change_slots(desk: Desk, args: argparse.Namespace) -> int:
    """The next free slots of a change, in the person's zone (or --timezone), each with its window."""
    from itsm_tui.services import changes
    from itsm_tui.services.changes.reading import _planned_window, _target_text
    from itsm_tui.services.changes.slots import describe
    from itsm_tui.services.inputs import known_timezone

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        tz = args.timezone or actor.timezone
        known_timezone(tz)
        change = changes.get_change(session, args.ref)
        slots = changes.slots_for(session, desk.config, change.ref, count=args.count, after=args.after)
        start, end = _planned_window(change)
        ref, length = change.ref, end - start
        targets = ", ".join(sorted(_target_text(t.service, t.ci) for t in change.targets))
    if args.json:
        data = {
            "change": ref,
            "duration_minutes": int(length.total_seconds() // 60),
            "timezone": tz,
            "slots": [slot.as_json() for slot in slots],
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"{ref}: the next free slots of {describe(length)} for {plain(targets)} (times in {tz})")
    if not slots:
        days = desk.config.changes.slot_horizon_days
        print(f"  none in the next {days} days; try a later --after")
    for slot in slots:
        window = f"  {plain(slot.window)}" if slot.window else ""
        print(f"  {local(slot.start, tz)} to {local(slot.end, tz)}{window}")
    return 0


HANDLERS: dict[str, Handler] = {
    "change list": cmd_change_list,
    "change show": cmd_change_show,
    "change create": cmd_change_create,
    "change submit": _change_step("submit", override_reason="override_reason"),
    "change edit": cmd_change_edit,
    "change withdraw": _change_step("withdraw", reason="reason"),
    "change cancel": _change_step("cancel", reason="reason"),
    "change assess": cmd_change_assess,
    "change risk": cmd_change_risk,
    "change approve": cab.decision(True, _change_step("approve", reason="reason"), _change_result),
    "change reject": cab.decision(False, _change_step("reject", reason="reason"), _change_result),
    "change agenda": cab.cmd_change_agenda,
    "change schedule": _change_step("schedule", start="start", end="end", override_reason="override_reason"),
    "change start": _change_step("start_implementation", override_reason="override"),
    "change complete": _change_step("complete", outcome="outcome", note="note"),
    "change review": _change_step("start_review", notes="notes"),
    "change close": _change_step("close", review_notes="review_notes"),
    "change conflicts": cmd_change_conflicts,
    "change slots": cmd_change_slots,
    "change export": cmd_change_export,
    "change windows": cmd_change_windows,
    "change add-window": cmd_change_add_window,
    "change add-blackout": cmd_change_add_blackout,
    "change edit-window": cmd_change_edit_window,
    "change delete-window": _delete("window"),
    "change edit-blackout": cmd_change_edit_blackout,
    "change delete-blackout": _delete("blackout"),
}
