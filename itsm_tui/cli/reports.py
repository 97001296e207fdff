"""``itsm report``: every KPI for a period (the KPI board's figures), the shift handover and the access
review."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.cli.output import local, plain, print_table
from itsm_tui.services.access import require

if TYPE_CHECKING:
    from itsm_tui.services.kpi import KpiReport


@with_desk
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
        require(desk.actor(session).roles, "report.read")
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
        print_table(
            ["KPI", "VALUE", "UNIT", "STATUS", "TARGET", "PREVIOUS"],
            [["" if v is None else str(v) for v in row] for row in rows],
        )
    return 0


def kpi_rows(result: KpiReport) -> list[list[object]]:
    """The report as rows of (kpi, value, unit, status, target, previous period)."""
    headline = {f.name: f for f in result.headline}

    def row(name: str, label: str, value: object, unit: str) -> list[object]:
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
    rows += change_rows(result, row)
    rows += problem_rows(result, row)
    return rows


def change_rows(
    result: KpiReport, row: Callable[[str, str, object, str], list[object]]
) -> list[list[object]]:
    """The change rows of the report by type, by risk and for all changes (``row`` shapes each)."""
    c = result.changes
    rows = []
    for r in [*c.by_type, *c.by_risk, c.total]:
        rows += [
            row("", f"Changes {r.key}: finished", r.finished, ""),
            row("", f"  {r.key}: success rate", r.success_pct, "%"),
            row("", f"  {r.key}: emergency share", r.emergency_pct, "%"),
            row("", f"  {r.key}: changes that caused incidents", r.caused_incidents, f"{c.incident_days} d"),
            row("", f"  {r.key}: incidents they caused", r.incidents, f"{c.incident_days} d"),
            row("", f"  {r.key}: reviews overdue", r.overdue_reviews, f"{c.review_due_days} d"),
        ]
    return rows


def problem_rows(
    result: KpiReport, row: Callable[[str, str, object, str], list[object]]
) -> list[list[object]]:
    """The problem-management and knowledge rows of the report (``row`` shapes each)."""
    p = result.problems
    rows = [
        row("", "Problems opened", p.opened, ""),
        row("", "Problems resolved", p.resolved, ""),
        row("", "Mean time to root cause (wall clock)", p.root_cause_hours, "h"),
        row("", "Incidents linked to a known error", p.known_error_share_pct, "%"),
        row("", "Fixes measured (window before/after)", p.fixes_measured, f"{p.fix_window_days} d"),
        row("", "  incidents before the fix", p.before_fix_per_30d, "/30 d"),
        row("", "  incidents after the fix", p.after_fix_per_30d, "/30 d"),
        row("", "  incidents avoided", p.avoided_per_30d, "/30 d"),
        row("", "Article uses", p.article_uses, ""),
        row("", "Articles used", p.articles_used, ""),
    ]
    rows += [row("", f"  published by {plain(a.login)}", a.published, "") for a in p.top_authors]
    return rows


@with_desk
def cmd_report_handover(desk: Desk, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from itsm_tui.services import kpi

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        require(actor.roles, "report.read")
        result = kpi.handover(session, datetime.now(UTC), shift_hours=args.shift_hours)
    if args.json:
        print(json.dumps({k: v for k, v in result.__dict__.items()}, indent=2, default=str))
        return 0
    tz = actor.timezone
    print(f"Shift handover, {local(result.now, tz)}")

    def ticket(r: dict, state: str, *more: str) -> list[str]:
        """A ticket's line: reference, priority, ``state``, group, assignee, ``more`` and the title."""
        return [
            r["ref"],
            f"P{r['priority']}",
            state,
            r["group"] or "",
            r["assignee"] or "-",
            *more,
            plain(r["title"])[:50],
        ]

    sections = [
        (
            "Open P1/P2",
            result.major_open,
            lambda r: ticket(r, r["status"], local(r["resolution_due_at"], tz)),
        ),
        (
            f"Breaches in the last {result.shift_hours} h",
            result.breaches,
            lambda r: ticket(r, r["status"], "response" if r["response_breached_at"] else "resolution"),
        ),
        ("Pending on others", result.pending_on_others, lambda r: ticket(r, r["pending_reason"] or "")),
        (
            "Changes in the next 12 h",
            result.changes_next,
            lambda r: [
                r["ref"],
                r["change_type"],
                r["state"],
                local(r["planned_start"], tz),
                r["services"],
                plain(r["title"])[:50],
            ],
        ),
    ]
    for title, rows, shape in sections:
        print(f"\n{title} ({len(rows)})")
        if rows:
            print_table([""] * len(shape(rows[0])), [shape(r) for r in rows])
    return 0


@with_desk
def cmd_report_access(desk: Desk, args: argparse.Namespace) -> int:
    """The access review (shift leads, process managers, admins; refused and recorded for anyone else)."""
    from itsm_tui.services import access_report

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        review = access_report.review(session, actor, dormant_days=args.dormant_days)
    if args.json:
        print(json.dumps(review.as_json(), indent=2))
        return 0
    tz = actor.timezone
    days = review.dormant_days
    print(f"Access review, {local(review.now, tz)} (dormant: no activity in {days} days)")
    shown = f"{len(review.accounts)} of {review.accounts_total}" if review.truncated else len(review.accounts)
    print(f"\nAccounts ({shown})")
    print_table(
        ["LOGIN", "NAME", "ROLES", "GROUPS", "ACTIVE", "CREATED", "LAST ACTIVITY"],
        [
            [
                plain(a.login),
                plain(a.name)[:30],
                ",".join(a.roles),
                ",".join(plain(g) + ("*" if g in a.lead_of else "") for g in a.groups),
                ("yes" if a.active else "no") + (" (dormant)" if a.dormant else ""),
                local(a.created_at, tz),
                local(a.last_activity_at, tz) if a.last_activity_at else "never",
            ]
            for a in review.accounts
        ],
    )
    if review.accounts:
        print("(* = group lead)")
    print(f"\nAdmins ({len(review.admins)}): {plain(', '.join(review.admins)) or 'none'}")
    dormant = [plain(a.login) for a in review.dormant]
    print(f"Dormant accounts ({len(dormant)}): {', '.join(dormant) or 'none'}")
    print(f"\nRefused privileged attempts in the last {days} days ({review.refusals_total})")
    print_table(
        ["WHEN", "LOGIN", "WHAT", "REFUSAL"],
        [[local(r.at, tz), plain(r.login), plain(r.action), plain(r.detail)[:90]] for r in review.refusals],
    )
    if review.refusals_total > len(review.refusals):
        print(f"(the newest {len(review.refusals)} shown)")
    return 0


HANDLERS: dict[str, Handler] = {
    "report kpi": cmd_report_kpi,
    "report handover": cmd_report_handover,
    "report access": cmd_report_access,
}
