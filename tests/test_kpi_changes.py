"""The change KPIs by type and by risk, on SQLite and PostgreSQL: changes finished in a week, their success
rate, the emergency share of those planned, the changes that caused incidents (incidents linked to them
opened from their start to 7 days after their end) and overdue reviews, every figure worked out by hand;
``itsm report kpi`` (JSON and CSV) and the KPI board show the same figures."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from pilot_helpers import settle, wait_until
from plan_helpers import sqlite_plans
from sqlalchemy import insert, select

from itsm_tui.app import ItsmApp
from itsm_tui.cli import main
from itsm_tui.models import Change, ChangeTarget, Group, Link, Ticket, User
from itsm_tui.screens.kpi import KpiScreen
from itsm_tui.services import kpi

FIRST, LAST = date(2026, 10, 5), date(2026, 10, 11)  # the period: [10-05 00:00, 10-12 00:00) UTC
NOW = datetime(2026, 10, 14, 12, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


def sep(day: int, hour: int) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=UTC)


# ref: (type, risk, state, outcome, review notes), (planned start, end), (actual start, end)
CHANGES = {
    "CHG0000001": (("standard", "low", "closed", "implemented", None), (at(6, 1), at(6, 3)),
                   (at(6, 1), at(6, 2, 30))),
    "CHG0000002": (("normal", "medium", "review", "failed", None), (at(8, 20), at(8, 22)),
                   (at(8, 20, 10), at(8, 23))),
    # no actual times: it started and ended as planned (10-05 02:00 to 04:00)
    "CHG0000003": (("emergency", "high", "review", "backed_out", None), (at(5, 2), at(5, 4)), (None, None)),
    "CHG0000004": (("emergency", "low", "closed", "implemented", "ok"), (at(9, 10), at(9, 11)),
                   (at(9, 10), at(9, 11))),
    "CHG0000005": (("normal", "high", "scheduled", None, None), (at(10, 22), at(10, 23)), (None, None)),
    "CHG0000006": (("normal", "low", "review", "implemented", None), (at(11, 22), at(12, 1)),
                   (at(11, 22), at(12, 0, 30))),
    "CHG0000007": (("emergency", "medium", "failed", "failed", None), (sep(28, 10), sep(28, 12)),
                   (sep(28, 10), sep(28, 12))),
    "CHG0000008": (("normal", "medium", "implemented", "implemented", None), (at(3, 1), at(3, 2)),
                   (at(3, 1), at(3, 2))),
    "CHG0000009": (("emergency", "high", "implemented", "implemented", None), (at(6, 10), at(6, 11)),
                   (at(6, 10), at(6, 11))),
    "CHG0000010": (("standard", "medium", "withdrawn", None, None), (at(7, 9), at(7, 10)), (None, None)),
    "CHG0000011": (("normal", "low", "review", "failed", "looked at"), (at(6, 8), at(6, 9)),
                   (at(6, 8), at(6, 9, 30))),
}  # fmt: skip

# ref: (kind, status, opened, linked to)
INCIDENTS = {
    "INC0000001": ("incident", "in_progress", at(8, 22, 30), "CHG0000002"),
    "INC0000002": ("incident", "new", at(15, 22, 59), "CHG0000002"),  # a minute before 7 days after its end
    "INC0000003": ("incident", "new", at(16, 0), "CHG0000002"),  # an hour after
    "INC0000004": ("incident", "new", at(8, 19), "CHG0000002"),  # before it started
    "INC0000005": ("request", "new", at(9, 1), "CHG0000002"),  # a request
    "INC0000006": ("incident", "cancelled", at(9, 1), "CHG0000002"),
    "INC0000007": ("incident", "closed", at(5, 3), "CHG0000003"),  # during its planned window
    "INC0000008": ("incident", "new", at(9, 12), "CHG0000004"),
    "INC0000009": ("incident", "new", at(6, 8, 30), "CHG0000011"),
    "INC0000010": ("incident", "new", at(13, 9, 30), "CHG0000011"),  # exactly 7 days after its end
    "INC0000011": ("incident", "new", sep(28, 13), "CHG0000007"),  # not finished in the period
    "INC0000012": ("incident", "new", at(12, 1), "CHG0000006"),  # finished after the period
}

# (key, finished, implemented, success %, planned, emergencies, emergency %, caused, incidents, overdue)
EXPECTED = {
    "standard": (1, 1, 100.0, 2, 0, 0.0, 0, 0, 0),
    "normal": (2, 0, 0.0, 4, 0, 0.0, 2, 4, 0),
    "emergency": (3, 2, 66.7, 3, 3, 100.0, 2, 2, 3),
    "low": (3, 2, 66.7, 4, 1, 25.0, 2, 3, 0),
    "medium": (1, 0, 0.0, 2, 0, 0.0, 1, 2, 1),
    "high": (2, 1, 50.0, 3, 2, 66.7, 1, 1, 2),
    "all": (6, 3, 50.0, 9, 3, 33.3, 4, 6, 3),
}
FIELDS = (
    "finished", "implemented", "success_pct", "planned", "emergency", "emergency_pct", "caused_incidents",
    "incidents", "overdue_reviews",
)  # fmt: skip


def build(db) -> None:
    with db.session() as s:
        net1 = s.scalar(select(User.id).where(User.login == "net1"))
        s.execute(
            insert(Change),
            [
                {"ref": ref, "title": f"Change {ref}", "change_type": kind, "risk": risk, "state": state,
                 "outcome": outcome, "review_notes": notes, "planned_start": ps, "planned_end": pe,
                 "actual_start": as_, "actual_end": ae, "created_at": sep(1, 0), "updated_at": sep(1, 0),
                 "implementer_id": net1 if ref == "CHG0000002" else None, "version": 1}
                for ref, ((kind, risk, state, outcome, notes), (ps, pe), (as_, ae)) in CHANGES.items()
            ],
        )  # fmt: skip
        ids = dict(s.execute(select(Change.ref, Change.id)).tuples().all())
        s.execute(insert(ChangeTarget), [{"change_id": i, "service": "email"} for i in ids.values()])
        group = s.scalar(select(Group.id).limit(1))
        s.execute(
            insert(Ticket),
            [
                {"ref": ref, "kind": kind, "title": f"Ticket {ref}", "description": "", "requester": "Ann",
                 "impact": "medium", "urgency": "medium", "priority": 3, "status": status,
                 "is_open": status in ("new", "in_progress"), "group_id": group, "opened_at": opened,
                 "updated_at": opened, "version": 1, "reopen_count": 0, "escalation_count": 0,
                 "reassignment_count": 0}
                for ref, (kind, status, opened, _) in INCIDENTS.items()
            ],
        )  # fmt: skip
        tickets = dict(s.execute(select(Ticket.ref, Ticket.id)).tuples().all())
        s.execute(
            insert(Link),
            [
                {"source_type": "ticket", "source_id": tickets[ref], "target_type": "change",
                 "target_id": ids[change], "created_at": NOW}
                for ref, (*_, change) in INCIDENTS.items()
            ]
            # a link the other way and one to another record kind do not count
            + [
                {"source_type": "change", "source_id": ids["CHG0000004"], "target_type": "ticket",
                 "target_id": tickets["INC0000001"], "created_at": NOW},
                {"source_type": "ticket", "source_id": tickets["INC0000004"], "target_type": "problem",
                 "target_id": ids["CHG0000004"], "created_at": NOW},
            ],
        )  # fmt: skip


def figures(rows) -> dict[str, tuple]:
    return {row.key: tuple(getattr(row, name) for name in FIELDS) for row in rows}


def test_change_kpis_by_type_and_risk_worked_out_by_hand(db, config, staff):
    build(db)
    with db.session() as s:
        report = kpi.report(s, config, kpi.custom_period(FIRST, LAST, NOW), now=NOW)
        netl2 = kpi.report(s, config, kpi.custom_period(FIRST, LAST, NOW), "NET-L2", now=NOW)
        # as of a day within the period: C3 (ended 10-05 04:00) has been due for review since 10-10 04:00
        early = kpi.change_kpis(s, config, kpi.custom_period(FIRST, LAST, NOW), now=at(10, 4))
    c = report.changes
    assert (c.incident_days, c.review_due_days) == (7, 5)
    assert [r.key for r in c.by_type] == ["standard", "normal", "emergency"]
    assert [r.key for r in c.by_risk] == ["low", "medium", "high"]
    assert figures([*c.by_type, *c.by_risk, c.total]) == EXPECTED
    # the desk-wide figures agree with the headline's
    assert (report.change_success_pct, report.emergency_share_pct) == (50.0, 33.3)
    assert (report.changes_finished, report.changes_planned) == (6, 9)
    # NET-L2: the change implemented by net1 alone
    assert figures([netl2.changes.total])["all"] == (1, 0, 0.0, 1, 0, 0.0, 1, 2, 0)
    # C7 (ended 09-28) and C3 due by then; C9 (ended 10-06 11:00) not yet
    assert early.total.overdue_reviews == 2
    assert [r.overdue_reviews for r in early.by_risk] == [0, 1, 1]


def test_a_period_without_changes(db, config, staff):
    with db.session() as s:
        quiet = kpi.change_kpis(s, config, kpi.custom_period(FIRST, LAST, NOW), now=NOW)
    assert figures([quiet.total])["all"] == (0, 0, None, 0, 0, None, 0, 0, 0)
    assert len(quiet.by_type) == 3 and all(r.finished == 0 for r in quiet.by_risk)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_change_figures_are_read_along_the_indexes(db, config, staff):
    """The changes by state (finished, review due) or by window (planned), their incidents from the links to
    them (ix_links_target) and the tickets by primary key; never a walk of every link or change."""
    build(db)
    plans = sqlite_plans(
        db, lambda s: kpi.change_kpis(s, config, kpi.custom_period(FIRST, LAST, NOW), now=NOW), "changes"
    )
    assert len(plans) == 4
    for plan in plans:
        reads = [step for step in plan.split(" / ") if step.startswith(("SCAN", "SEARCH"))]
        assert reads and all(
            step.startswith(
                (
                    "SEARCH changes USING INDEX ix_changes_state",
                    "SEARCH changes USING INDEX ix_changes_window",
                    "SEARCH links USING INDEX ix_links_target",
                    "SEARCH tickets USING INTEGER PRIMARY KEY",
                )
            )
            for step in reads
        ), plan


def test_report_kpi_json_and_csv_carry_the_change_figures(db, db_url, config, staff, capsys, monkeypatch):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "analyst1")
    build(db)
    argv = ["report", "kpi", "--db", db_url, "--from", "2026-10-05", "--to", "2026-10-11"]
    assert main([*argv, "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)["changes"]
    assert (got["incident_days"], got["review_due_days"]) == (7, 5)
    rows = [*got["by_type"], *got["by_risk"], got["total"]]
    assert {r["key"]: tuple(r[name] for name in FIELDS) for r in rows} == EXPECTED
    assert main([*argv, "--format", "csv"]) == 0
    by_name = {r[0]: r for r in csv.reader(io.StringIO(capsys.readouterr().out))}
    assert by_name["Changes emergency: finished"][1] == "3"
    assert by_name["  emergency: success rate"][1:3] == ["66.7", "%"]
    assert by_name["  low: emergency share"][1] == "25.0"
    assert by_name["  all: changes that caused incidents"][1:3] == ["4", "7 d"]
    assert by_name["  all: incidents they caused"][1] == "6"
    assert by_name["  high: reviews overdue"][1:3] == ["2", "5 d"]
    assert main(argv) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["normal:", "incidents", "they", "caused", "4", "7", "d"] in lines


async def test_the_board_shows_the_change_figures_at_80_columns(staff_sqlite, config):
    db, actors = staff_sqlite
    build(db)
    # the last 7 days, seen on 10-11 at 23:59: the same days (to 23:59 instead of midnight)
    app = ItsmApp(db, config, actors["lead"], run_scheduler=False, clock=lambda: at(11, 23, 59))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, KpiScreen) and app.screen.loads >= 1, "board")
        screen = app.screen
        before = screen.loads
        await pilot.press("w")
        await wait_until(pilot, lambda: screen.loads > before, "the week")
        await pilot.press("n")
        await settle(pilot)
        widget = screen.query_one("#kpi-changes")
        lines = [widget.render_line(y).text.rstrip() for y in range(widget.size.height)]
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].strip() == "Changes  caused: an incident within 7 d; reviews due after 5 d"
    assert lines[1].split() == ["Finished", "Success", "Emergency", "Caused", "(inc.)", "Reviews", "due"]
    shown = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.strip()}

    def cells(finished, implemented, success, planned, emergencies, emergency, caused, incidents, overdue):
        pct = [("-" if v is None else f"{v:.1f}%") for v in (success, emergency)]
        return [str(finished), pct[0], pct[1], str(caused), f"({incidents})", str(overdue)]

    assert shown == {key: cells(*values) for key, values in EXPECTED.items()}
