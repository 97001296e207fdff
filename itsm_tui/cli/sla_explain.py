"""``itsm sla explain REF``: why a ticket's SLA times are what they are, target by target."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from itsm_tui.cli.desk import Desk, Handler, with_desk
from itsm_tui.cli.output import local, plain

if TYPE_CHECKING:
    from itsm_tui.services.sla_explain import Explanation, TargetExplanation

LABEL = 12  # the width of the labels of the text output


@with_desk
def cmd_sla_explain(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import sla_explain

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        explained = sla_explain.explain(session, desk.config, args.ref, args.now)
    if args.json:
        print(json.dumps(explained.as_json(), indent=2))
    else:
        print("\n".join(explanation_lines(explained, actor.timezone)))
    return 0


def explanation_lines(explained: Explanation, tz: str) -> list[str]:
    """The explanation as text, instants in the zone ``tz`` (each labelled with its zone)."""
    lines = [
        f"{explained.ref}  P{explained.priority}  {explained.status}  (times in {tz}, "
        f"judged at {local(explained.now, tz)})",
        f"  {plain(explained.title).replace(chr(10), ' ')}",
    ]
    for target in explained.targets:
        lines.append("")
        lines += target_lines(target, tz)
    return lines


def target_lines(t: TargetExplanation, tz: str) -> list[str]:
    from itsm_tui.services.sla_explain import hours_minutes

    def row(label: str, value: str) -> str:
        return f"  {label:<{LABEL}}{value}"

    head = f"{t.target.capitalize()} target: {t.verdict}"
    if not t.running:
        head += f" (stopped: {plain(t.stopped_by or '')} {local(t.stopped_at, tz)}; its times are frozen)"
    lines = [head]
    calendar = f"{t.calendar} ({'always open' if t.always_open else t.calendar_timezone + ' working hours'})"
    lines.append(row("Policy", f"P{t.priority}, measured on calendar {calendar}"))
    start = "opened" if t.start_kind == "opened" else "restarted by a reopen"
    lines.append(row("Start", f"{local(t.start, tz)} ({start})"))
    warn_minutes = t.target_minutes * t.warning_ratio
    lines.append(
        row(
            "Target",
            f"{t.target_minutes} min of business time; warning at {round(t.warning_ratio * 100)}% "
            f"({warn_minutes:g} min)",
        )
    )
    if not t.pauses:
        lines.append(row("Pauses", "none"))
    for index, pause in enumerate(t.pauses):
        end = local(pause.end, tz) if pause.end else "now (under way)"
        span = f"{local(pause.start, tz)} - {end}  {plain(pause.reason or '')}"
        if pause.under_way and pause.counted:
            effect = f"{hours_minutes(pause.business_seconds)} so far; the due moves by it on resuming"
        elif pause.counted:
            effect = f"{hours_minutes(pause.business_seconds)} business time, moved the due"
        else:
            effect = "moved nothing (outside the running target)"
        lines.append(row("Pauses" if index == 0 else "", f"{span}: {effect}"))
    if t.pauses:
        lines.append(row("", f"paused in all: {hours_minutes(t.paused_seconds)} of business time"))
    if not t.retargets:
        lines.append(row("Re-targets", "none"))
    for index, change in enumerate(t.retargets):
        effect = "re-measured from the start" if change.applied else "after it stopped: moved nothing"
        lines.append(
            row(
                "Re-targets" if index == 0 else "",
                f"{local(change.at, tz)} by {plain(change.by)}: P{change.old_priority} -> "
                f"P{change.new_priority} ({effect})",
            )
        )
    lines.append(
        row("Warning at", local(t.warn_at, tz) + (" (flagged by the SLA job)" if t.warned_at else ""))
    )
    lines.append(
        row("Due", local(t.due_at, tz) + (" (breach flagged by the SLA job)" if t.breached_at else ""))
    )
    if t.due_if_resumed_now is not None:
        lines.append(row("", f"were it to resume now: due {local(t.due_if_resumed_now, tz)}"))
    if t.recomputed_due_at is not None:
        lines.append(
            row("", f"the rules give {local(t.recomputed_due_at, tz)}; the stored due above is what counts")
        )
    verdict = t.verdict
    if t.seconds_left is not None:
        word = "left" if t.seconds_left >= 0 else "overdue"
        verdict += f", {hours_minutes(t.seconds_left)} of business time {word}"
    lines.append(row("Verdict", verdict))
    return lines


HANDLERS: dict[str, Handler] = {
    "sla explain": cmd_sla_explain,
}
