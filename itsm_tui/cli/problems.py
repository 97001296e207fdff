"""``itsm problem``: raising problems (also from a cluster of incidents), their analysis, known errors, links,
the lifecycle to closing, and the linked incidents resolved with the fix."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.cli.output import local, plain, print_table
from itsm_tui.services.jsondata import instant, jsonable
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.services.problems import ProblemDetail
    from itsm_tui.services.tickets.bulk import BulkResult
    from itsm_tui.services.users import Actor

# The long texts of a problem that may come from a file (``--X-file PATH``, ``-`` for stdin): option -> field.
TEXT_FILES = {
    "description": "description",
    "root_cause": "root_cause",
    "workaround": "workaround",
    "fix": "permanent_fix",
}
HISTORY_VALUE_WIDTH = 100  # a long text's old and new values in the history, cut to this

# ``itsm problem update``'s plain options: option -> field (an empty value clears the field).
UPDATE_FIELDS = {
    "title": "title",
    "service": "service",
    "ci": "ci",
    "category": "category",
    "impact": "impact",
    "urgency": "urgency",
    "owner": "owner",
}


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return instant(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dump(data: object) -> None:
    """JSON with every instant, at any depth, as ``jsondata.instant`` writes it."""
    print(json.dumps(data, indent=2, default=_json_default))


def _long_text(args: argparse.Namespace, name: str) -> str | None:
    """``--NAME TEXT`` or the text of ``--NAME-file PATH`` (``-``: stdin); None when neither is given."""
    option = "--" + name.replace("_", "-")
    given, path = getattr(args, name, None), getattr(args, f"{name}_file", None)
    if given is not None and path is not None:
        raise CliError(f"give {option} or {option}-file, not both")
    if path is None:
        return given
    if path == "-":
        if getattr(args, "_stdin_read", None):
            raise CliError(f"{option}-file -: stdin is read once, by {args._stdin_read}-file")
        args._stdin_read = option
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError:
        raise CliError(f"{option}-file: {path} is not UTF-8 text") from None
    except OSError as exc:
        raise CliError(f"{option}-file: cannot read {path}: {exc.strerror}") from None


def _detail(desk: Desk, session: Session, actor: Actor, ref: str) -> ProblemDetail:
    from itsm_tui.services import problems

    return problems.detail(session, desk.config, actor, ref)


def _line(view: ProblemDetail, version: bool = True) -> str:
    """``PRB0000001 P3 new v1: title``: a problem as a write leaves it."""
    at = f" v{view.version}" if version else ""
    return f"{view.ref} P{view.priority} {view.status}{at}: {plain(view.title)}"


def _changed(view: ProblemDetail, args: argparse.Namespace, extra: dict[str, Any] | None = None) -> int:
    """Print a changed problem (once its transaction has committed): one line, or the whole detail."""
    if args.json:
        _dump({**view.as_json(), **(extra or {})})
    else:
        print(_line(view))
    return 0


# --------------------------------------------------------------------------- reading


@with_desk
def cmd_problem_list(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import problems
    from itsm_tui.services.problems.reading import LIMIT_MAX

    if args.limit > LIMIT_MAX:
        raise CliError(f"--limit: at most {LIMIT_MAX}; narrow the list with --filter")
    with desk.db.read_session() as session:
        actor = desk.actor(session)
        found = problems.list_problems(session, actor, view=args.view, text=args.filter, limit=args.limit)
    if found.error:
        option = "--view" if args.view not in problems.VIEWS else "--filter"
        raise CliError(f"{option}: {found.error}")
    if args.json:
        _dump([row.as_json() for row in found.rows])
        return 0
    print_table(
        ["REF", "P", "STATUS", "SERVICE", "CI", "OWNER", "INC", "KE", "OPENED", "TITLE"],
        [
            [
                r.ref,
                f"P{r.priority}",
                r.status_label,
                plain(r.service or ""),
                plain(r.ci or ""),
                plain(r.owner or ""),
                str(r.incidents),
                r.known_error or "",
                local(r.opened_at, actor.timezone),
                plain(r.title)[:50],
            ]
            for r in found.rows
        ],
    )
    if len(found.rows) == args.limit:
        print(f"(the first {args.limit}; narrow with --filter or raise --limit)")
    return 0


@with_desk
def cmd_problem_show(desk: Desk, args: argparse.Namespace) -> int:
    with desk.db.read_session() as session:
        actor = desk.actor(session)
        view = _detail(desk, session, actor, args.ref)
    if args.json:
        _dump(view.as_json())
        return 0
    if view.history_warning:
        print(view.history_warning)
    _print_problem(view, actor.timezone)
    return 0


def _value(text: str | None, tz: str) -> str:
    """An old or new value of the history: an instant in the reader's zone, a long text cut short."""
    value = text or ""
    if len(value) >= 19 and value[:4].isdigit() and value[10:11] == "T":
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            return local(when, tz)
    width = HISTORY_VALUE_WIDTH
    return value if len(value) <= width else value[: width - 3] + "..."


def _print_problem(view: ProblemDetail, tz: str) -> None:
    print(f"{view.ref}  P{view.priority}  {view.status_label}  v{view.version}")
    print(f"  {plain(view.title)}")
    owner = view.owner and (f"{view.owner} ({view.owner_name})" if view.owner_name else view.owner)
    rows = [
        ("Service/CI", f"{view.service or '-'} / {view.ci or '-'}"),
        ("Category", view.category or "-"),
        ("Impact/urgency", f"{view.impact}/{view.urgency}"),
        ("Owner", owner or "-"),
        ("Raised by", view.created_by or "-"),
        ("Opened", local(view.opened_at, tz)),
        ("Root cause at", local(view.root_cause_at, tz)),
        ("Resolved", local(view.resolved_at, tz)),
        ("Closed", local(view.closed_at, tz)),
    ]
    if view.status_reason:
        rows.append(("Reason", view.status_reason))
    if view.duplicate_of:
        rows.append(("Duplicate of", view.duplicate_of))
    for label, value in rows:
        print(f"  {label + ':':<16}{plain(value)}")
    if view.description:
        print("\n" + plain(view.description))
    print("\nRoot cause:\n" + (plain(view.root_cause) if view.root_cause else "  -"))
    if view.whys:
        print("\nFive whys:")
        for number, why in enumerate(view.whys, 1):
            print(f"  {number}. {plain(why)}")
    print("\nCause categories: " + (", ".join(view.cause_categories) or "-"))
    print("\nWorkaround:\n" + (plain(view.workaround) if view.workaround else "  -"))
    print("\nPermanent fix:\n" + (plain(view.permanent_fix) if view.permanent_fix else "  -"))
    since = (
        "" if view.incidents_since_fix is None else f" (incidents since the fix: {view.incidents_since_fix})"
    )
    print(f"\nVerification{since}:\n" + (plain(view.verification) if view.verification else "  -"))
    print(f"\nIncidents ({view.incidents_total}, {view.incidents_open} open):")
    for i in view.incidents:
        who = plain(i.assignee or "-")
        print(f"  {i.ref}  {i.status:<11} {who:<10} {local(i.opened_at, tz)}  {plain(i.title)[:50]}")
    if view.incidents_total > len(view.incidents):
        print(f"(the newest {len(view.incidents)} shown)")
    if view.changes:
        print("\nChanges:")
        for change in view.changes:
            print(f"  {change.ref}  {change.state:<12} {plain(change.title)}")
    if view.known_errors:
        print("\nKnown errors:")
        for known in view.known_errors:
            uses = f"{known.uses} use" + ("" if known.uses == 1 else "s")
            published = local(known.published_at, tz)
            print(f"  {known.ref}  {known.status:<9} {published}  {uses:<8} {plain(known.title)}")
    if view.history:
        print("\nHistory (newest first):")
        for item in view.history:
            old, new = _value(item.old, tz), _value(item.new, tz)
            if item.field is None:
                what = new
            elif old:
                what = f"{item.field}: {old} -> {new}"
            else:
                what = f"{item.field}: {new}"
            line = f"  {local(item.at, tz)}  {item.who:<10} {item.action:<9} {what}"
            print(strip_control(line.rstrip(), single_line=True))


@with_desk
def cmd_problem_candidates(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services.problems.candidates import candidates

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        found = candidates(session, desk.config)
    if args.json:
        _dump([asdict(c) for c in found])
        return 0
    print_table(
        ["KEY", "INCIDENTS", "FIRST", "LAST", "SUGGESTED TITLE"],
        [
            [
                plain(c.key),
                str(c.count),
                local(c.first_opened, actor.timezone),
                local(c.last_opened, actor.timezone),
                plain(c.suggested_title),
            ]
            for c in found
        ],
    )
    if found:
        print("(raise one with its incidents linked: itsm problem create --from-candidate KEY)")
    return 0


# --------------------------------------------------------------------------- raising and editing


@with_desk
def cmd_problem_create(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import problems

    description = _long_text(args, "description") or ""
    if not args.title and not args.from_candidate:
        raise CliError("give the problem a --title (or raise it from a cluster: --from-candidate KEY)")
    title, service, ci, category = args.title, args.service, args.ci, args.category
    incidents = list(args.incident)
    with desk.db.session() as session:
        actor = desk.actor(session)
        if args.from_candidate:
            from itsm_tui.services.problems import candidates

            problem, _linked = candidates.raise_problem(
                session,
                desk.config,
                actor,
                args.from_candidate,
                title=title or None,
                description=description or None,
                service=service,
                ci=ci,
                category=category,
                impact=args.impact,
                urgency=args.urgency,
                owner=args.owner or None,
                incidents=incidents,
            )
        else:
            problem = problems.create_problem(
                session,
                desk.config,
                actor,
                title=title,
                description=description,
                service=service,
                ci=ci,
                category=category,
                impact=args.impact,
                urgency=args.urgency,
                owner=args.owner or None,
                incidents=incidents,
            )
        view = _detail(desk, session, actor, problem.ref)
    if args.json:
        _dump(view.as_json())
    else:
        print(_line(view, version=False))
        if view.incidents_total:
            print(f"  {view.incidents_total} incident(s) linked")
    return 0


@with_desk
def cmd_problem_update(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import problems

    changes: dict[str, object] = {
        field: getattr(args, option)
        for option, field in UPDATE_FIELDS.items()
        if getattr(args, option) is not None
    }
    if "owner" in changes:
        changes["owner"] = changes["owner"] or None  # '' gives the problem back to nobody
    for option, field in TEXT_FILES.items():
        text = _long_text(args, option)
        if text is not None:
            changes[field] = text
    if args.why is not None:
        changes["five_whys"] = list(args.why)  # the whole ordered list; --why '' clears it
    if args.cause_category is not None:
        changes["cause_categories"] = [c for c in args.cause_category if c.strip()]
    if not changes:
        raise CliError("problem update: give something to change, e.g. --root-cause TEXT (see --help)")
    with desk.db.session() as session:
        actor = desk.actor(session)
        problem = problems.update_problem(
            session, desk.config, actor, args.ref, changes, expected_version=args.expected_version
        )
        view = _detail(desk, session, actor, problem.ref)
    return _changed(view, args)


# --------------------------------------------------------------------------- lifecycle steps


def _step(name: str, **fixed: str) -> Handler:
    """A handler that runs the service step ``name`` on ``args.ref`` (``fixed``: its keyword arguments from
    the options) in one transaction, and prints the problem as it leaves it."""

    @with_desk
    def run(desk: Desk, args: argparse.Namespace) -> int:
        from itsm_tui.services import problems

        options = {keyword: getattr(args, attr) for keyword, attr in fixed.items()}
        with desk.db.session() as session:
            actor = desk.actor(session)
            step: Callable[..., Any] = getattr(problems, name)
            step(session, desk.config, actor, args.ref, expected_version=args.expected_version, **options)
            view = _detail(desk, session, actor, args.ref)
        return _changed(view, args)

    return run


@with_desk
def cmd_problem_publish(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import problems

    with desk.db.session() as session:
        actor = desk.actor(session)
        known = problems.publish_known_error(
            session,
            desk.config,
            actor,
            args.ref,
            symptom=args.symptom,
            title=args.title,
            expected_version=args.expected_version,
        )
        said = f"{known.ref} published: {plain(known.title)}"
        view = _detail(desk, session, actor, args.ref)
    if args.json:
        return _changed(view, args, {"published": known.ref if known else None})
    print(_line(view))
    print(f"  {said}")
    return 0


@with_desk
def cmd_problem_retire_ke(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import problems

    with desk.db.session() as session:
        actor = desk.actor(session)
        known = problems.retire_known_error(session, desk.config, actor, args.ref)
        data = jsonable(
            {
                "ref": known.ref,
                "title": known.title,
                "status": known.status,
                "published_at": known.published_at,
                "retired_at": known.retired_at,
            }
        )
    if args.json:
        _dump(data)
    else:
        print(f"{data['ref']} {data['status']}: {plain(data['title'])}")
    return 0


@with_desk
def cmd_problem_link(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import problems

    if not args.incidents and not args.change:
        raise CliError("problem link: name incidents to link (e.g. INC0000042) or --change CHG")
    linked: list[str] = []
    with desk.db.session() as session:
        actor = desk.actor(session)
        if args.incidents:
            linked = problems.link_incidents(session, desk.config, actor, args.ref, args.incidents)
        if args.change:
            problems.link_change(session, desk.config, actor, args.ref, args.change)
        view = _detail(desk, session, actor, args.ref)
    if args.json:
        return _changed(view, args, {"linked": linked})
    print(_line(view))
    if args.incidents:
        already = len({ref.strip().upper() for ref in args.incidents} - set(linked))
        print(f"  {len(linked)} incident(s) linked" + (f", {already} linked already" if already else ""))
    if args.change:
        print(f"  linked to {plain(args.change.strip().upper())}")
    return 0


@with_desk
def cmd_problem_unlink(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import problems

    with desk.db.session() as session:
        actor = desk.actor(session)
        problems.unlink_incident(session, desk.config, actor, args.ref, args.incident)
        view = _detail(desk, session, actor, args.ref)
    return _changed(view, args)


def _interactive() -> bool:
    """Whether someone is there to answer a question (a terminal on stdin, and on stderr to read it)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask(question: str) -> bool:
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


@with_desk
def cmd_problem_resolve(desk: Desk, args: argparse.Namespace) -> int:
    """Resolve the problem, then (asked, or --incidents yes) its open linked incidents with its fix, each in
    its own transaction; exit 1 when some of them were refused. On a resolved problem, ``--incidents yes``
    resolves the incidents still open."""
    from itsm_tui.services import problems, tickets

    mode = args.incidents or ("ask" if _interactive() else "no")
    with desk.db.session() as session:
        actor = desk.actor(session)
        problem = problems.get_problem(session, args.ref)
        if not (mode == "yes" and problem.status in ("resolved", "closed")):
            problems.resolve(session, desk.config, actor, problem.ref, expected_version=args.expected_version)
        ref = problem.ref
        still_open = problems.open_linked_incidents(session, ref)
        view = _detail(desk, session, actor, ref)
    seen: dict[str, int] | None = None
    printed = False
    if still_open and mode == "ask":
        if not args.json:
            print(_line(view))
            printed = True
        with desk.db.read_session() as session:  # what the question shows, and the versions it shows
            found = [tickets.get_ticket(session, r) for r in still_open]
            shown = [(t.ref, t.status, t.version) for t in found]
        seen = {r: version for r, _, version in shown}
        listed = ", ".join(f"{r} ({status})" for r, status, _ in shown[:10])
        more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
        question = (
            f"{len(shown)} linked incident(s) still open: {listed}{more}.\n"
            f"Resolve them with the permanent fix of {ref}? [y/N] "
        )
        mode = "yes" if _ask(question) else "no"
    result = _resolve_incidents(desk, actor, ref, args.code, seen) if still_open and mode == "yes" else None
    if args.json:
        done = None
        if result is not None:
            refused = [{"ref": r.ref, "reason": r.reason} for r in result.refused]
            done = {"done": list(result.done), "refused": refused}
            with desk.db.read_session() as session:  # the incidents as the run left them
                view = _detail(desk, session, actor, ref)
        _dump({**view.as_json(), "incidents_resolved": done})
        return 1 if result is not None and result.refused else 0
    if not printed:
        print(_line(view))
    if result is not None:
        print(plain(f"  incidents: {result.summary}"))
    elif still_open:
        print(
            f"  {len(still_open)} linked incident(s) still open; to resolve them with the fix: "
            f"itsm problem resolve {ref} --incidents yes"
        )
    return 1 if result is not None and result.refused else 0


def _resolve_incidents(
    desk: Desk, actor: Actor, ref: str, code: str, seen: dict[str, int] | None
) -> BulkResult:
    """``problems.resolve_linked_incidents``, each ticket in a session whose refused permission is recorded
    as this command's (as ``itsm ticket update A B`` records its own)."""
    from itsm_tui.services import access_log, problems, tickets
    from itsm_tui.services.access import PermissionDenied

    @contextlib.contextmanager
    def recorded() -> Iterator[Session]:
        try:
            with desk.db.session() as session:
                yield session
        except PermissionDenied as exc:
            access_log.record_refusal(
                desk.db,
                login=actor.login,
                user_id=actor.id,
                action="problem resolve",
                permission=exc.permission,
                detail=str(exc),
            )
            raise

    try:
        return problems.resolve_linked_incidents(
            recorded, desk.config, actor, ref, code=code, versions_seen=seen
        )
    except tickets.BulkStopped as stopped:  # what was done is said; then the failure, as any command's
        stop = f"stopped at {stopped.ref}, {len(stopped.not_tried)} not tried"
        print(plain(f"  incidents: {stopped.result.summary}; {stop}"))
        raise stopped.__cause__ or stopped from None


HANDLERS: dict[str, Handler] = {
    "problem create": cmd_problem_create,
    "problem list": cmd_problem_list,
    "problem show": cmd_problem_show,
    "problem update": cmd_problem_update,
    "problem investigate": _step("start_investigation"),
    "problem fix": _step("start_fix"),
    "problem publish": cmd_problem_publish,
    "problem retire-ke": cmd_problem_retire_ke,
    "problem link": cmd_problem_link,
    "problem unlink": cmd_problem_unlink,
    "problem resolve": cmd_problem_resolve,
    "problem close": _step("close", verification="verification"),
    "problem reopen": _step("reopen", reason="reason"),
    "problem cancel": _step("cancel", reason="reason"),
    "problem duplicate": _step("mark_duplicate", of="of", reason="reason"),
    "problem candidates": cmd_problem_candidates,
}
