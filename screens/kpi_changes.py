"""The KPI board's change figures: a compact table of the period's changes by type and by risk."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from itsm_tui.services.kpi import ChangeKpis


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def change_table(figures: ChangeKpis) -> Group:
    """A heading saying what "caused" and "reviews due" count, then one line per type, per risk and for all
    changes (at most 62 cells wide)."""
    title = Text("Changes", style="bold")
    title.append(
        f"  caused: an incident within {figures.incident_days} d;"
        f" reviews due after {figures.review_due_days} d",
        style="dim",
    )
    table = Table(box=None, show_header=True, header_style="bold", padding=(0, 1))
    table.add_column("", no_wrap=True)
    for heading in ("Finished", "Success", "Emergency", "Caused (inc.)", "Reviews due"):
        table.add_column(heading, justify="right", no_wrap=True)
    for row in [*figures.by_type, *figures.by_risk, figures.total]:
        table.add_row(
            row.key,
            f"{row.finished:,}",
            _pct(row.success_pct),
            _pct(row.emergency_pct),
            f"{row.caused_incidents:,} ({row.incidents:,})",
            f"{row.overdue_reviews:,}",
            end_section=row.key in ("emergency", "high"),
        )
    return Group(title, table)
