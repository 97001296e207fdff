"""What a change touches, as the change screen and the new-change form show it: a compact section (the counts
and the first few references of each list) and a one-line summary."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from itsm_tui.services.changes.impact import Impact
from itsm_tui.text import strip_control

SHOWN = 4  # references shown per list; the count says how many there are


def _refs(refs: list[str], count: int) -> Text:
    line = Text(", ".join(strip_control(ref, single_line=True) for ref in refs[:SHOWN]))
    if count > min(len(refs), SHOWN):
        line.append(f" and {count - min(len(refs), SHOWN)} more", style="dim")
    return line


def impact_section(impact: Impact) -> RenderableType:
    """The heading with the counts, then a line per list that has something: its first references."""
    style = "yellow" if not impact.empty else "green"
    heading = Text("\nImpact  ", style="bold")
    heading.append(strip_control(impact.summary(), single_line=True), style=style)
    if impact.empty:
        return heading
    rows = Table.grid(padding=(0, 1))
    rows.add_column(style="dim", no_wrap=True)
    rows.add_column()
    if impact.incident_count:
        refs = [f"{i.ref} P{i.priority}" for i in impact.incidents]
        rows.add_row("Incidents", _refs(refs, impact.incident_count))
    if impact.problem_count:
        rows.add_row("Problems", _refs([p.ref for p in impact.problems], impact.problem_count))
    if impact.failed_count:
        refs = [f"{c.ref} {c.outcome.replace('_', ' ')}" for c in impact.failed_changes]
        rows.add_row("Failed", _refs(refs, impact.failed_count))
    return Group(heading, rows)


def impact_line(impact: Impact | None, problem: str | None = None) -> Text:
    """The form's one line: the summary for the targets typed (or why it is not there yet)."""
    if impact is None:
        text = "Impact shows here once the targets are known." if problem is None else "Impact not known yet."
        return Text(text, style="dim", no_wrap=True, overflow="ellipsis")
    line = Text("Impact: ", style="bold", no_wrap=True, overflow="ellipsis")
    line.append(
        strip_control(impact.summary(), single_line=True), style="yellow" if not impact.empty else "green"
    )
    return line
