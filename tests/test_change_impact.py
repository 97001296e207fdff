"""What a change touches, on SQLite and PostgreSQL: the open incidents and problems on its CIs and services
and the changes on them that failed in the last days, worked out by hand (a CI of a service, another CI of
it, the service itself, another service), their order, counts and limit, and the statements' index plans."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta

from pilot_helpers import shows, type_into, wait_until
from plan_helpers import captured_statements
from sqlalchemy import insert, select, text

from itsm_tui.app import ItsmApp
from itsm_tui.cli import main
from itsm_tui.models import Change, ChangeTarget, Group, Problem, Ticket
from itsm_tui.screens.change import ChangeScreen, NewChangeForm
from itsm_tui.services.changes.impact import impact, impact_of

NOW = datetime(2026, 5, 12, 12, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)

# (ref, kind, service, ci, status, priority, opened): email has CIs mx-01 (the change's) and mx-02.
TICKETS = [
    ("INC0000001", "incident", "email", "mx-01", "in_progress", 3, NOW - DAY),
    ("INC0000002", "incident", "email", "mx-01", "new", 1, NOW - 3 * DAY),
    ("INC0000003", "incident", "email", "mx-01", "resolved", 1, NOW - DAY),  # not open
    ("INC0000004", "incident", "email", "mx-02", "new", 2, NOW - DAY),  # another CI of the service
    ("INC0000005", "incident", "email", None, "pending", 3, NOW - 2 * HOUR),  # the service, no CI
    ("REQ0000006", "request", "email", "mx-01", "new", 1, NOW - DAY),  # a request, not an incident
    ("INC0000007", "incident", "vpn", "vpn-gw-01", "new", 1, NOW - 5 * DAY),  # another service
    ("INC0000008", "incident", "email", "mx-01", "cancelled", 1, NOW - DAY),
    ("INC0000009", "incident", None, None, "new", 1, NOW - DAY),
]
# (ref, service, ci, status, priority)
PROBLEMS = [
    ("PRB0000001", "email", "mx-01", "investigating", 2),
    ("PRB0000002", "email", "mx-02", "new", 1),
    ("PRB0000003", "email", None, "known_error", 3),
    ("PRB0000004", None, "mx-01", "fix_in_progress", 1),  # a CI named without its service
    ("PRB0000005", "email", "mx-01", "resolved", 1),
    ("PRB0000006", "vpn", "vpn-gw-01", "new", 4),
    ("PRB0000007", "email", "mx-01", "closed", 1),
]
# (ref, targets, outcome, actual end, planned end)
CHANGES = [
    ("CHG0000001", [("email", "mx-01")], "failed", NOW - 5 * DAY, NOW - 5 * DAY),
    ("CHG0000002", [("email", "mx-02")], "backed_out", NOW - 2 * DAY, NOW - 2 * DAY),
    ("CHG0000003", [("email", None)], "failed", NOW - 10 * DAY, NOW - 11 * DAY),
    ("CHG0000004", [("email", "mx-01")], "implemented", NOW - DAY, NOW - DAY),
    ("CHG0000005", [("email", "mx-01")], "failed", NOW - 31 * DAY, NOW - 20 * DAY),  # ended too long ago
    ("CHG0000006", [("email", "mx-01")], "failed", None, NOW - 29 * DAY),  # no actual end: the planned one
    ("CHG0000007", [("vpn", None)], "failed", NOW - DAY, NOW - DAY),
    ("CHG0000008", [("email", "mx-01"), ("email", "owa-web")], "backed_out", NOW - 3 * DAY, NOW - 3 * DAY),
    ("CHG0000009", [("email", "mx-01")], "failed", NOW - 30 * DAY, NOW - 30 * DAY),  # the first day counted
    ("CHG0000010", [("email", "mx-01")], None, None, NOW + DAY),  # the change looked at (draft)
]


def _ticket(ref, kind, service, ci, status, priority, opened, group) -> dict:
    return {
        "ref": ref, "kind": kind, "title": f"Title of {ref}", "description": "", "requester": "Ann Example",
        "impact": "medium", "urgency": "medium", "priority": priority, "status": status,
        "is_open": status in ("new", "assigned", "in_progress", "pending"), "group_id": group,
        "service": service, "ci": ci, "opened_at": opened, "updated_at": opened, "version": 1,
        "reopen_count": 0, "escalation_count": 0, "reassignment_count": 0,
    }  # fmt: skip


def _change(number, ref, outcome, actual_end, planned_end) -> dict:
    return {
        "id": number, "ref": ref, "title": f"Title of {ref}", "change_type": "normal",
        "state": {"implemented": "closed", None: "draft"}.get(outcome, "review"), "risk": "low",
        "outcome": outcome, "planned_start": planned_end - 2 * HOUR, "planned_end": planned_end,
        "actual_start": None if actual_end is None else actual_end - HOUR, "actual_end": actual_end,
        "created_at": NOW - 40 * DAY, "updated_at": NOW - 40 * DAY, "version": 1,
    }  # fmt: skip


def build(db) -> None:
    with db.session() as s:
        group = s.scalar(select(Group.id).limit(1))
        s.execute(insert(Ticket), [_ticket(*row, group) for row in TICKETS])
        s.execute(
            insert(Problem),
            [
                {"ref": ref, "title": f"Title of {ref}", "status": status, "service": service, "ci": ci,
                 "priority": priority, "opened_at": NOW - number * HOUR, "version": 1}
                for number, (ref, service, ci, status, priority) in enumerate(PROBLEMS, 1)
            ],
        )  # fmt: skip
        s.execute(insert(Change), [_change(n, *row[:1], *row[2:]) for n, row in enumerate(CHANGES, 1)])
        s.execute(
            insert(ChangeTarget),
            [
                {"change_id": n, "service": service, "ci": ci}
                for n, row in enumerate(CHANGES, 1)
                for service, ci in row[1]
            ],
        )


def refs(found) -> tuple[list[str], list[str], list[str]]:
    return (
        [i.ref for i in found.incidents],
        [p.ref for p in found.problems],
        [c.ref for c in found.failed_changes],
    )


def test_a_change_on_a_ci_reaches_that_ci_and_its_service_without_a_ci(db, config, staff):
    build(db)
    with db.read_session() as s:
        found = impact(s, config, services=[], cis=["mx-01"], now=NOW)
    # most urgent first, the newest first within a priority
    assert refs(found) == (
        ["INC0000002", "INC0000005", "INC0000001"],
        ["PRB0000004", "PRB0000001", "PRB0000003"],
        ["CHG0000008", "CHG0000001", "CHG0000003", "CHG0000006", "CHG0000009"],
    )
    assert (found.incident_count, found.problem_count, found.failed_count) == (3, 3, 5)
    first = found.incidents[0]
    assert (first.title, first.priority, first.status, first.service, first.ci) == (
        "Title of INC0000002", 1, "new", "email", "mx-01"
    )  # fmt: skip
    assert first.opened_at == NOW - 3 * DAY
    failed = found.failed_changes[3]
    assert (failed.outcome, failed.ended_at, failed.change_type) == ("failed", NOW - 29 * DAY, "normal")
    assert found.summary() == "3 open incidents, 3 open problems, 5 failed changes in 30 days"


def test_a_change_of_a_whole_service_reaches_all_its_cis_and_another_service_adds_its_own(db, config, staff):
    build(db)
    with db.read_session() as s:
        whole = impact(s, config, services=["email"], cis=[], now=NOW)
        both = impact(s, config, services=["vpn"], cis=["mx-01"], now=NOW)
        cut = impact(s, config, services=["email", "vpn"], cis=[], now=NOW, limit=2)
        nothing = impact(s, config, services=["crm"], cis=["erp-db-01"], now=NOW)
    assert refs(whole) == (
        ["INC0000002", "INC0000004", "INC0000005", "INC0000001"],
        ["PRB0000002", "PRB0000001", "PRB0000003"],  # PRB4 names mx-01 without its service
        ["CHG0000002", "CHG0000008", "CHG0000001", "CHG0000003", "CHG0000006", "CHG0000009"],
    )
    assert refs(both) == (
        ["INC0000002", "INC0000007", "INC0000005", "INC0000001"],
        ["PRB0000004", "PRB0000001", "PRB0000003", "PRB0000006"],
        ["CHG0000007", "CHG0000008", "CHG0000001", "CHG0000003", "CHG0000006", "CHG0000009"],
    )
    # the first two of each, with the whole counts
    assert refs(cut) == (
        ["INC0000002", "INC0000007"],
        ["PRB0000002", "PRB0000001"],
        ["CHG0000007", "CHG0000002"],
    )
    assert (cut.incident_count, cut.problem_count, cut.failed_count) == (5, 4, 7)
    assert nothing.empty and refs(nothing) == ([], [], [])
    assert nothing.summary() == "no open incident, no open problem, no failed change in 30 days"
    assert cut.as_json()["incidents"][0] == {
        "ref": "INC0000002", "title": "Title of INC0000002", "priority": 1, "status": "new",
        "service": "email", "ci": "mx-01", "opened_at": "2026-05-09T12:00:00Z",
    }  # fmt: skip


def test_the_impact_of_a_change_is_that_of_its_targets_without_itself(db, config, staff):
    build(db)
    with db.read_session() as s:
        looked_at = s.scalar(select(Change).where(Change.ref == "CHG0000010"))
        failed = s.scalar(select(Change).where(Change.ref == "CHG0000001"))
        assert refs(impact_of(s, config, looked_at, now=NOW)) == (
            ["INC0000002", "INC0000005", "INC0000001"],
            ["PRB0000004", "PRB0000001", "PRB0000003"],
            ["CHG0000008", "CHG0000001", "CHG0000003", "CHG0000006", "CHG0000009"],
        )
        assert refs(impact_of(s, config, failed, now=NOW))[2] == [
            "CHG0000008", "CHG0000003", "CHG0000006", "CHG0000009"
        ]  # fmt: skip
        # a day later the change ended 30 days before is no longer counted
        assert refs(impact_of(s, config, looked_at, now=NOW + DAY))[2] == [
            "CHG0000008", "CHG0000001", "CHG0000003", "CHG0000006"
        ]  # fmt: skip


def test_change_show_prints_the_impact_and_its_json_carries_it(
    db, db_url, config, staff, capsys, monkeypatch
):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "chm")
    monkeypatch.setattr("itsm_tui.services.changes.helpers.utc_or_now", lambda now: now or NOW)  # the clock
    build(db)
    assert main(["change", "show", "CHG0000010", "--db", db_url]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index("Impact: 3 open incidents, 3 open problems, 5 failed changes in 30 days")
    assert [line.split()[:3] for line in out[at + 1 : at + 4]] == [
        ["INC0000002", "P1", "new"],
        ["INC0000005", "P3", "pending"],
        ["INC0000001", "P3", "in_progress"],
    ]
    assert out[at + 1].split()[3:] == ["email/mx-01", "Title", "of", "INC0000002"]
    assert [line.split()[0] for line in out[at + 4 : at + 12]] == [
        "PRB0000004", "PRB0000001", "PRB0000003", "CHG0000008", "CHG0000001", "CHG0000003", "CHG0000006",
        "CHG0000009",
    ]  # fmt: skip
    assert main(["change", "show", "CHG0000010", "--db", db_url, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["impact"]
    assert (got["incident_count"], got["problem_count"], got["failed_count"], got["failed_days"]) == (
        3,
        3,
        5,
        30,
    )
    assert got["failed_changes"][0] == {
        "ref": "CHG0000008", "title": "Title of CHG0000008", "change_type": "normal", "outcome": "backed_out",
        "ended_at": "2026-05-09T12:00:00Z",
    }  # fmt: skip
    # a finished change has none
    assert main(["change", "show", "CHG0000001", "--db", db_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["impact"] is None


# --------------------------------------------------------------------------- the change screen and form


def widget_lines(widget) -> list[str]:
    return [widget.render_line(y).text.rstrip() for y in range(widget.size.height)]


async def test_the_change_screen_and_the_new_change_form_show_the_impact(staff_sqlite, config):
    db, staff = staff_sqlite
    build(db)
    app = ItsmApp(db, config, staff["chm"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(ChangeScreen("CHG0000010"))
        await wait_until(
            pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view, "the change"
        )
        lines = widget_lines(app.screen.query_one("#change-fields"))
        at = lines.index("Impact  3 open incidents, 3 open problems, 5 failed changes in 30 days")
        end = next((n for n in range(at, len(lines)) if not lines[n]), len(lines))  # a heading's blank line
        section = lines[at + 1 : end]
        assert " ".join(" ".join(section).split()) == (
            "Incidents INC0000002 P1, INC0000005 P3, INC0000001 P3 "
            "Problems PRB0000004, PRB0000001, PRB0000003 "
            "Failed CHG0000008 backed out, CHG0000001 failed, CHG0000003 failed, CHG0000006 failed and 1 more"
        )  # the first four of each list, wrapped within 80 columns
        assert all(len(line) <= 80 for line in lines)
        await pilot.press("escape")

        app.push_screen(NewChangeForm(NOW + timedelta(days=3)))
        await wait_until(pilot, lambda: isinstance(app.screen, NewChangeForm), "the new-change form")
        form = app.screen
        form.field("targets").focus()
        await type_into(pilot, "vpn")
        await wait_until(pilot, lambda: form.impact is not None, "the impact of vpn")
        assert form.impact.summary() == "1 open incident, 1 open problem, 1 failed change in 30 days"
        await type_into(pilot, ", mx-01")
        await wait_until(pilot, lambda: form.impact is not None and form.impact.incident_count == 4, "mx-01")
        assert shows(app, "Impact: 4 open incidents, 4 open problems, 6 failed changes in 30 days")


# --------------------------------------------------------------------------- the plans

_SQLITE_READ = re.compile(
    r"^(SCAN|SEARCH) (tickets|problems|changes|change_targets)(?: AS \w+)?"
    r"(?: USING (?:COVERING )?(?:INDEX (\w+)|(INTEGER PRIMARY KEY)))?"
)
_PG_READ = re.compile(
    r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)(?: Backward)?(?: using (\w+))?"
    r" on (tickets|problems|changes|change_targets)\b"
)
_PG_BITMAP = re.compile(r"Bitmap Index Scan on (\w+)")


def _bulk(db, n: int = 3000) -> None:
    """A desk's history: ``n`` tickets over 200 days on the services' CIs, most of them closed; 2,000
    problems, most of them closed, and 2,000 changes, both on many CIs; then ANALYZE."""
    rng = random.Random(11)
    places = [("email", "mx-01"), ("email", "mx-02"), ("email", None), ("vpn", "vpn-gw-01"), ("erp", None)]
    places += [("network", "core-sw-01"), ("network", "core-sw-02"), ("erp", "erp-db-01"), ("crm", None)]
    with db.session() as s:
        group = s.scalar(select(Group.id).limit(1))
        rows = []
        for i in range(1, n + 1):
            service, ci = rng.choice(places)
            status = rng.choices(["new", "in_progress", "pending", "closed"], [2, 6, 2, 90])[0]
            kind = rng.choice(["incident", "incident", "request"])
            opened = NOW - timedelta(minutes=rng.uniform(0, 200 * 1440))
            rows.append(_ticket(f"INC{i:07d}", kind, service, ci, status, rng.randint(1, 5), opened, group))
        s.execute(insert(Ticket), rows)
        s.execute(
            insert(Problem),
            [
                {"ref": f"PRB{i:07d}", "title": f"P {i}", "status": "closed" if i % 10 else "new",
                 "service": place[0], "ci": place[1], "opened_at": NOW - i * HOUR, "version": 1}
                for i in range(1, 2001)
                for place in [rng.choice(places) if i <= 100 else ("erp", f"ci-{i}")]
            ],
        )  # fmt: skip
        s.execute(
            insert(Change),
            [
                _change(i, f"CHG{i:07d}", rng.choice(["implemented", "failed", None]), end, end)
                for i, end in ((i, NOW - timedelta(hours=rng.uniform(-2000, 2000))) for i in range(1, 2001))
            ],
        )
        s.execute(
            insert(ChangeTarget),
            [
                {"change_id": i, "service": service, "ci": ci}
                for i in range(1, 2001)
                for service, ci in [rng.choice(places) if i <= 300 else ("storage", f"ci-{i}")]
            ],
        )
    with db.session() as s:
        s.execute(text("ANALYZE"))


def _reads(db, run) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Each statement ``run(session)`` executes: its plan and the (table, index) pairs it reads by (index
    None: a scan of the whole table; "pk": by primary key)."""
    sqlite = db.backend == "sqlite"
    with db.read_session() as session, captured_statements(db, "SELECT") as captured:
        run(session)
        out = []
        for sql, params in captured:
            explain = ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql
            lines = [str(r[-1]).strip() for r in session.connection().exec_driver_sql(explain, params)]
            reads: list[tuple[str, str | None]] = []
            for number, line in enumerate(lines):
                if sqlite:
                    if found := _SQLITE_READ.match(line):
                        reads.append((found[2], "pk" if found[4] else found[3]))
                elif found := _PG_READ.search(line):
                    index = found[2]
                    if found[1] == "Bitmap Heap Scan":
                        inner = [_PG_BITMAP.search(x) for x in lines[number + 1 :]]
                        index = next((m[1] for m in inner if m), None)
                    reads.append((found[3], "pk" if index in ("changes_pkey", "pk_changes") else index))
            out.append((" / ".join(lines), reads))
        return out


# The indexes each table may be read by: the open tickets (any partial index of the open ones: the backlog,
# never the history), the problems' CI and service indexes, the changes by primary key from their targets.
ALLOWED = {
    "tickets": {
        "ix_tickets_open_by_service",
        "ix_tickets_open_by_id",
        "ix_tickets_open_due",
        "ix_tickets_open_priority",
        "ix_tickets_open_group",
        "ix_tickets_open_assignee",
        "ix_tickets_open_by_status",
    },
    "problems": {"ix_problems_ci", "ix_problems_service", "ix_problems_status"},
    "changes": {"pk", "ix_changes_state"},
    "change_targets": {"ix_change_targets_service"},
}


def test_impact_is_read_along_the_indexes(db, config, staff):
    _bulk(db)
    read: set[str] = set()
    for run in (
        lambda s: impact(s, config, services=[], cis=["mx-01"], now=NOW),
        lambda s: impact(s, config, services=["email", "vpn"], cis=["core-sw-01"], now=NOW),
    ):
        statements = _reads(db, run)
        assert len(statements) == 3
        if db.backend == "sqlite":  # the open tickets of the services concerned
            assert "ix_tickets_open_by_service" in statements[0][0], statements[0][0]
        for plan, reads in statements:
            assert reads, plan
            for table, index in reads:
                if (table, index) == ("changes", None):  # PostgreSQL may hash the few changes once instead
                    assert db.backend == "postgresql" and "Hash Semi Join" in plan, plan
                    continue
                assert index in ALLOWED[table], plan
                read.add(table)
    assert read == set(ALLOWED)
    with db.read_session() as s:  # and the plans were of a run that found something
        found = impact(s, config, services=["email"], cis=[], now=NOW)
        assert found.incident_count and found.problem_count and found.failed_count
