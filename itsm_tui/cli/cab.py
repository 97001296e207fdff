"""``itsm change agenda``: the CAB's agenda and minutes; ``approve`` / ``reject --meeting``: a decision
recorded at a meeting."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.services.errors import ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.services.changes import Meeting
    from itsm_tui.services.users import Actor

# What a command prints of a changed change, read in its transaction (``cli.changes._change_result``).
Result = Callable[[Desk, "Session", "Actor", str], Handler]


def _zone(args: argparse.Namespace, fallback: str) -> str:
    from itsm_tui.services.inputs import known_timezone

    zone = getattr(args, "timezone", None) or fallback
    try:
        known_timezone(zone)
    except ValidationError as exc:
        raise CliError(f"--timezone: {exc}") from None
    return zone


def _meeting(desk: Desk, day: date | None, option: str = "--date") -> Meeting:
    """The meeting of ``day`` (``option`` names where it was given), default the one going on or next."""
    from itsm_tui.services import changes

    if day is None:
        return changes.current_meeting(desk.config)
    try:
        return changes.meeting_on(desk.config, day, name=option.removeprefix("--"))
    except ValidationError as exc:
        raise CliError(f"{option}: {exc}") from None


@with_desk
def cmd_change_agenda(desk: Desk, args: argparse.Namespace) -> int:
    """The agenda of a CAB meeting (default: the one going on, else the next) as minutes."""
    from itsm_tui.services import changes

    meeting = _meeting(desk, args.date)
    with desk.db.read_session() as session:
        actor = desk.actor(session)
        zone = _zone(args, actor.timezone)
        agenda = changes.agenda(session, desk.config, meeting.start, actor)
    print(changes.minutes(agenda, args.format, timezone=zone), end="")
    return 0


def decision(approve: bool, fallback: Handler, result: Result) -> Handler:
    """``change approve`` / ``change reject``: with ``--meeting`` the decision is recorded at that CAB
    meeting (its agenda's), else as ``fallback`` records it."""

    @with_desk
    def with_meeting(desk: Desk, args: argparse.Namespace) -> int:
        from itsm_tui.services import changes

        meeting = _meeting(desk, args.meeting, "--meeting")
        with desk.db.session() as session:
            actor = desk.actor(session)
            ref = changes.get_change(session, args.ref).ref
            try:
                changes.record_decision(
                    session,
                    desk.config,
                    actor,
                    ref,
                    approve=approve,
                    comment=args.reason,
                    meeting_start=meeting.start,
                    expected_version=args.expected_version,
                )
            except ValidationError as exc:
                if exc.field != "meeting":
                    raise
                raise CliError(f"--meeting: {exc}") from None
            show = result(desk, session, actor, ref)
        return show(args)

    def run(args: argparse.Namespace) -> int:
        if getattr(args, "meeting", None) is None:
            return fallback(args)
        return with_meeting(args)

    return run
