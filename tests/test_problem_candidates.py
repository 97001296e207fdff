"""Candidate problems: incident clusters on a CI or a service and category, worked out by hand on SQLite and
PostgreSQL (the threshold and the window's edges, linked incidents, covering problems, requests), the
references to raise a problem from, the statements' index plans, and problems.toml."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from plan_helpers import captured_statements
from sqlalchemy import insert, select, text, update

from itsm_tui import config as config_module
from itsm_tui.config import ConfigError, ProblemsConfig, load_config, shipped_config_dir
from itsm_tui.models import Counter, Group, Link, Problem, Ticket
from itsm_tui.services import problems, tickets
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.problems import candidates as cand

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)
DAY, HOUR, SECOND = timedelta(days=1), timedelta(hours=1), timedelta(seconds=1)
START = NOW - 14 * DAY  # the window's first instant (counted, as NOW is)

# (ci, service, category, opened, state): the incidents of the desk; state "linked" is linked to a problem,
# "resolved" / "cancelled" set after creation, "request" a service request. CI incidents carry no category
# and service incidents no CI, so that each cluster below is counted alone; erp-db-01's one is both.
DESK = [
    # ci:mx-01: three in the window, the last at NOW itself, one of them resolved: a candidate (3 = N)
    ("mx-01", None, None, NOW - 2 * DAY, ""),
    ("mx-01", None, None, NOW - DAY, "resolved"),
    ("mx-01", None, None, NOW, ""),
    # ci:mx-02: two in the window and one a second before it: not a candidate (N - 1)
    ("mx-02", None, None, START - SECOND, ""),
    ("mx-02", None, None, NOW - 3 * DAY, ""),
    ("mx-02", None, None, NOW - 2 * HOUR, ""),
    # ci:owa-web: two in the window and one at its first instant: a candidate from START
    ("owa-web", None, None, START, ""),
    ("owa-web", None, None, NOW - 5 * DAY, ""),
    ("owa-web", None, None, NOW - HOUR, ""),
    # ci:core-sw-01: three, one linked to a problem: two left, not a candidate
    ("core-sw-01", None, None, NOW - 4 * DAY, "linked"),
    ("core-sw-01", None, None, NOW - 3 * DAY, ""),
    ("core-sw-01", None, None, NOW - 2 * DAY, ""),
    # ci:core-sw-02: two incidents and two requests: not a candidate
    ("core-sw-02", None, None, NOW - 4 * DAY, ""),
    ("core-sw-02", None, None, NOW - 3 * DAY, "request"),
    ("core-sw-02", None, None, NOW - 2 * DAY, "request"),
    ("core-sw-02", None, None, NOW - DAY, ""),
    # ci:fw-edge-01: two incidents and a cancelled one: not a candidate
    ("fw-edge-01", None, None, NOW - 4 * DAY, ""),
    ("fw-edge-01", None, None, NOW - 3 * DAY, "cancelled"),
    ("fw-edge-01", None, None, NOW - 2 * DAY, ""),
    # ci:vpn-gw-01: three, an investigating problem on the CI covers them
    ("vpn-gw-01", None, None, NOW - 4 * DAY, ""),
    ("vpn-gw-01", None, None, NOW - 3 * DAY, ""),
    ("vpn-gw-01", None, None, NOW - 2 * DAY, ""),
    # ci:vpn-gw-02: three; its problems are closed, cancelled and a duplicate: a candidate
    ("vpn-gw-02", None, None, NOW - 6 * DAY, ""),
    ("vpn-gw-02", None, None, NOW - 5 * DAY, ""),
    ("vpn-gw-02", None, None, NOW - 2 * HOUR - 30 * timedelta(minutes=1), ""),
    # ci:erp-app-01: three, a resolved problem (still open: its fix is being verified) covers them
    ("erp-app-01", None, None, NOW - 4 * DAY, ""),
    ("erp-app-01", None, None, NOW - 3 * DAY, ""),
    ("erp-app-01", None, None, NOW - 2 * DAY, ""),
    # svc:email/outage: four, the largest cluster
    (None, "email", "outage", NOW - 10 * DAY, ""),
    (None, "email", "outage", NOW - 9 * DAY, ""),
    (None, "email", "outage", NOW - 8 * DAY, ""),
    (None, "email", "outage", NOW - 7 * DAY, ""),
    # svc:email/access: two, not a candidate
    (None, "email", "access", NOW - 7 * DAY, ""),
    (None, "email", "access", NOW - 6 * DAY, ""),
    # svc:network/outage: three, an open problem of network / outage covers them
    (None, "network", "outage", NOW - 7 * DAY, ""),
    (None, "network", "outage", NOW - 6 * DAY, ""),
    (None, "network", "outage", NOW - 5 * DAY, ""),
    # svc:network/performance: three; the open problem of network has another category: a candidate
    (None, "network", "performance", NOW - 7 * DAY, ""),
    (None, "network", "performance", NOW - 6 * DAY, ""),
    (None, "network", "performance", NOW - 3 * HOUR, ""),
    # svc:erp/security: two, and one on erp-db-01 (of erp): a candidate of three; ci:erp-db-01 has one
    (None, "erp", "security", NOW - 9 * DAY, ""),
    (None, "erp", "security", NOW - 8 * DAY, ""),
    ("erp-db-01", None, "security", NOW - 4 * HOUR, ""),
]

# (ci, service, category, status) of the problems on the desk
PROBLEMS = [
    ("core-sw-01", "network", None, "new"),  # the one core-sw-01's linked incident is linked to
    ("vpn-gw-01", "vpn", None, "investigating"),
    ("vpn-gw-02", "vpn", None, "closed"),
    ("vpn-gw-02", "vpn", None, "cancelled"),
    ("vpn-gw-02", "vpn", None, "duplicate"),
    ("erp-app-01", "erp", None, "resolved"),
    (None, "network", "outage", "known_error"),
    (None, "network", "hardware", "fix_in_progress"),
]

# The candidates at NOW with min_incidents 3, by hand: the largest first, then the most recent last opening.
EXPECTED = [
    # key, kind, ci, service, category, count, first opened, last opened
    ("svc:email/outage", "service_category", None, "email", "outage", 4, NOW - 10 * DAY, NOW - 7 * DAY),
    ("ci:mx-01", "ci", "mx-01", None, None, 3, NOW - 2 * DAY, NOW),
    ("ci:owa-web", "ci", "owa-web", None, None, 3, START, NOW - HOUR),
    ("ci:vpn-gw-02", "ci", "vpn-gw-02", None, None, 3, NOW - 6 * DAY, NOW - 150 * 60 * SECOND),
    ("svc:network/performance", "service_category", None, "network", "performance", 3,
     NOW - 7 * DAY, NOW - 3 * HOUR),
    ("svc:erp/security", "service_category", None, "erp", "security", 3, NOW - 9 * DAY, NOW - 4 * HOUR),
]  # fmt: skip


def build_desk(db, config, actor) -> dict[str, list[str]]:
    """The desk above; returns each cluster key's incident refs in the order DESK lists them."""
    refs: dict[str, list[str]] = {}
    with db.session() as s:
        problem_ids = []
        for number, (ci, service, category, status) in enumerate(PROBLEMS, 1):
            problem = Problem(
                ref=f"PRB{number:07d}", title=f"Problem {number}", status=status, ci=ci, service=service,
                category=category, opened_at=NOW - 20 * DAY,
            )  # fmt: skip
            s.add(problem)
            s.flush()
            problem_ids.append(problem.id)
        for ci, service, category, opened, state in DESK:
            ticket = tickets.create_ticket(
                s, config, actor, title="Something broke", requester="Ann Example",
                kind="request" if state == "request" else "incident", ci=ci, service=service,
                category=category, opened_at=opened, now=opened,
            )  # fmt: skip
            if state in ("resolved", "cancelled"):
                s.execute(update(Ticket).where(Ticket.id == ticket.id).values(status=state, is_open=False))
            if state == "linked":
                s.add(
                    Link(source_type="ticket", source_id=ticket.id, target_type="problem",
                         target_id=problem_ids[0], created_at=opened)
                )  # fmt: skip
            if state in ("", "resolved"):
                if ci is not None:
                    refs.setdefault(f"ci:{ci}", []).append(ticket.ref)
                if category is not None:
                    refs.setdefault(f"svc:{ticket.service}/{category}", []).append(ticket.ref)
    return refs


def three(config):
    return replace(config, problems=ProblemsConfig(min_incidents=3, window_days=14))


def test_candidates_worked_out_by_hand(db, config, staff, monkeypatch):
    """The thresholds' and the window's edges, linked incidents, covering problems, requests; the
    clusterings and the limit; the references of one cluster."""
    refs = build_desk(db, config, staff["agent1"])
    config = three(config)
    with db.read_session() as s:
        found = cand.candidates(s, config, now=NOW)
        assert [
            (c.key, c.kind, c.ci, c.service, c.category, c.count, c.first_opened, c.last_opened)
            for c in found
        ] == EXPECTED
        for c in found:
            assert c.incident_refs == tuple(reversed(refs[c.key]))  # newest first
        assert [c.suggested_title for c in found[:2]] == [
            "Repeated email / outage incidents",
            "Repeated incidents on mx-01",
        ]
        # one more incident needed: at N = 4 only the cluster of four is left
        four = replace(config, problems=ProblemsConfig(min_incidents=4, window_days=14))
        assert [c.key for c in cand.candidates(s, four, now=NOW)] == ["svc:email/outage"]
        # a second later owa-web's first incident is out of the window (and mx-02's stays out)
        later = [c.key for c in cand.candidates(s, config, now=NOW + SECOND)]
        assert "ci:owa-web" not in later and "ci:mx-01" in later and "ci:mx-02" not in later
        # a second earlier mx-01's last incident is not opened yet
        assert "ci:mx-01" not in [c.key for c in cand.candidates(s, config, now=NOW - SECOND)]

        by_ci = replace(config, problems=replace(config.problems, by=("ci",)))
        assert [c.key for c in cand.candidates(s, by_ci, now=NOW)] == [
            "ci:mx-01", "ci:owa-web", "ci:vpn-gw-02"
        ]  # fmt: skip
        by_service = replace(config, problems=replace(config.problems, by=("service_category",)))
        assert [c.key for c in cand.candidates(s, by_service, now=NOW)] == [
            "svc:email/outage", "svc:network/performance", "svc:erp/security"
        ]  # fmt: skip
        two = replace(config, problems=replace(config.problems, limit=2))
        assert [c.key for c in cand.candidates(s, two, now=NOW)] == ["svc:email/outage", "ci:mx-01"]
        monkeypatch.setattr(cand, "REFS_SHOWN", 2)
        largest = cand.candidates(s, config, now=NOW)[0]
        assert largest.count == 4 and largest.incident_refs == tuple(reversed(refs["svc:email/outage"]))[:2]

        assert cand.candidate_incident_refs(s, config, "svc:email/outage", now=NOW) == list(
            reversed(refs["svc:email/outage"])
        )
        # a cluster's members whether a candidate or not: mx-02's two in the window, core-sw-01's unlinked
        assert cand.candidate_incident_refs(s, config, "ci:mx-02", now=NOW) == refs["ci:mx-02"][:0:-1]
        assert (
            cand.candidate_incident_refs(s, config, "ci:core-sw-01", now=NOW) == refs["ci:core-sw-01"][::-1]
        )
        assert len(refs["ci:core-sw-01"]) == 2
        assert cand.candidate_incident_refs(s, config, "ci:nowhere", now=NOW) == []
        for bad in ("", "ci:", "svc:email", "svc:/outage", "prb:1"):
            with pytest.raises(ValidationError, match="names no incident cluster"):
                cand.candidate_incident_refs(s, config, bad, now=NOW)


# --------------------------------------------------------------------------- the plans


_SQLITE_READ = re.compile(
    r"^(SCAN|SEARCH) (tickets|links|problems)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+))?"
)
_PG_READ = re.compile(
    r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)(?: Backward)?(?: using (\w+))?"
    r" on (tickets|links|problems)\b"
)
_PG_BITMAP = re.compile(r"Bitmap Index Scan on (\w+)")


def test_a_problem_raised_from_a_cluster_links_all_of_it_and_then_covers_it(db, config, staff):
    refs = build_desk(db, config, staff["agent1"])
    config = three(config)
    with db.session() as s:  # the problems above were written as rows: the references go on after them
        s.add(Counter(name="PRB", value=len(PROBLEMS)))
    with db.session() as s:
        problem, linked = cand.raise_problem(s, config, staff["net1"], "ci:mx-01", now=NOW)
        # mx-01 is the email service's CI in the catalog; its incidents carry no category
        assert (problem.title, problem.ci, problem.service, problem.category, linked) == (
            "Repeated incidents on mx-01",
            "mx-01",
            "email",
            None,
            3,
        )
        assert problem.description == "Raised from 3 incidents of mx-01 (2026-03-18 to 2026-03-20)."
        ref = problem.ref
    with db.read_session() as s:
        shown = problems.detail(s, config, staff["net1"], ref)
        assert sorted(i.ref for i in shown.incidents) == sorted(refs["ci:mx-01"])
        assert "ci:mx-01" not in [c.key for c in cand.candidates(s, config, now=NOW)]  # covered now
    with pytest.raises(ValidationError, match="ci:mx-01 has no incident left"), db.session() as s:
        cand.raise_problem(s, config, staff["net1"], "ci:mx-01", now=NOW)
    with pytest.raises(PermissionDenied), db.session() as s:  # raising a problem is not an agent's
        cand.raise_problem(s, config, staff["agent1"], "svc:email/outage", now=NOW)


def _bulk(db, n: int = 3000) -> None:
    """``n`` incidents over 200 days on a few CIs (a third of them linked to a problem) and 2,000 problems,
    40 of them on these CIs, written in bulk, then ANALYZE: enough rows for the planners to plan as at
    scale."""
    rng = random.Random(7)
    cis = ["mx-01", "mx-02", "owa-web", "vpn-gw-01", "erp-db-01"]
    with db.session() as s:
        group = s.scalar(select(Group.id).limit(1))
        rows = []
        for i in range(1, n + 1):
            opened = NOW - timedelta(minutes=rng.uniform(0, 200 * 1440))
            rows.append(
                {
                    "ref": f"INC{i:07d}", "kind": "incident", "title": f"Ticket {i}", "description": "",
                    "requester": "Ann Example", "impact": "medium", "urgency": "medium", "priority": 3,
                    "status": "closed", "is_open": False, "group_id": group, "ci": rng.choice(cis),
                    "service": "email", "category": rng.choice(["outage", "access"]), "opened_at": opened,
                    "updated_at": opened, "version": 1, "reopen_count": 0, "escalation_count": 0,
                    "reassignment_count": 0,
                }
            )  # fmt: skip
        s.execute(insert(Ticket), rows)
        s.execute(
            insert(Problem),
            [
                {"ref": f"PRB{i:07d}", "title": f"P {i}", "description": "", "status": "closed",
                 "ci": cis[i % 5], "service": "email", "category": "outage", "opened_at": NOW, "version": 1}
                for i in range(1, 41)
            ]
            + [
                {"ref": f"PRB{i:07d}", "title": f"P {i}", "description": "", "status": "new",
                 "ci": f"ci-{i}", "service": "erp", "opened_at": NOW, "version": 1}
                for i in range(41, 2001)
            ],
        )  # fmt: skip
        ids = list(s.scalars(select(Ticket.id).where(Ticket.id % 3 == 0)))
        s.execute(
            insert(Link),
            [
                {"source_type": "ticket", "source_id": i, "target_type": "problem", "target_id": 1 + i % 40,
                 "created_at": NOW}
                for i in ids
            ]
            # and, as on a working desk, many more links of other kinds (articles, changes, tickets)
            + [
                {"source_type": "ticket", "source_id": i, "target_type": kind, "target_id": 1 + i % 50,
                 "created_at": NOW}
                for i in range(1, n + 1)
                for kind in ("article", "change", "ticket")
            ],
        )  # fmt: skip
    with db.session() as s:
        s.execute(text("ANALYZE"))


def _reads(db, run) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Each statement ``run(session)`` executes: its plan and the (table, index) pairs it reads by (index
    None: a scan of the table)."""
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
                        reads.append((found[2], found[3]))
                elif found := _PG_READ.search(line):
                    index = found[2]
                    if found[1] == "Bitmap Heap Scan":
                        inner = next(
                            _PG_BITMAP.search(x) for x in lines[number + 1 :] if _PG_BITMAP.search(x)
                        )
                        index = inner[1] if inner else None
                    reads.append((found[3], index))
            out.append((" / ".join(lines), reads))
        return out


# The clusters are counted along the live incidents' partial indexes (by CI; by service and category), the
# index alone; the tickets linked to problems are read by primary key from the links to problems.
CLUSTER_INDEXES = ("ix_tickets_incident_ci", "ix_tickets_incident_service")


def _unique_pair_index(db) -> str:
    """The name SQLite's plans give uq_links_pair (a table constraint: an automatic index)."""
    with db.read_session() as s:
        for _seq, name, *_ in s.connection().exec_driver_sql("PRAGMA index_list(links)"):
            columns = [r[2] for r in s.connection().exec_driver_sql(f"PRAGMA index_info({name})")]
            if columns == ["source_type", "source_id", "target_type", "target_id"]:
                return str(name)
    raise AssertionError("links has no index on its pair")


def test_clusters_are_counted_along_their_indexes_and_links_read_by_their_indexes(db, config, staff):
    """No statement reads the tickets table but by a cluster's partial index or by primary key (the tickets
    of the links to problems); the links are read by ix_links_target (the links to problems) or probed by
    their pair (is this incident linked?); PostgreSQL may hash a small links table once instead; open
    problems are looked up by their indexes."""
    _bulk(db)
    config = three(config)
    pair = _unique_pair_index(db) if db.backend == "sqlite" else "uq_links_pair"
    primary = None if db.backend == "sqlite" else "tickets_pkey"
    for run in (
        lambda s: cand.candidates(s, config, now=NOW),
        lambda s: cand.candidate_incident_refs(s, config, "ci:mx-01", now=NOW),
        lambda s: cand.candidate_incident_refs(s, config, "svc:email/outage", now=NOW),
    ):
        for plan, reads in _reads(db, run):
            tickets = [index for t, index in reads if t == "tickets"]
            links = [index for t, index in reads if t == "links"]
            problems = [index for t, index in reads if t == "problems"]
            if "Group Key: tickets.ci" in plan or "GROUP BY" in plan:
                # the tickets linked to problems, from the links to them, by primary key (PostgreSQL may
                # rather hash-join them with the window's incidents: read by an index of the window)
                if db.backend == "sqlite":
                    assert "SEARCH tickets USING INTEGER PRIMARY KEY" in plan and links == [
                        "ix_links_target"
                    ], plan
                else:
                    windows = (primary, *CLUSTER_INDEXES, "ix_tickets_opened", "ix_tickets_kind_opened")
                    assert tickets and all(i in windows for i in tickets), plan
            elif tickets:
                # the next service (one seek; the planner may take the index of every ticket's service, the
                # first live incident being a step or two away)
                seek = "service>?" in plan or "(service)::text > " in plan
                allowed = (*CLUSTER_INDEXES, "ix_tickets_service") if seek else CLUSTER_INDEXES
                assert all(index in allowed for index in tickets), plan
                # is this incident linked? a probe of the pair (PostgreSQL may hash the links to problems)
                assert all(i in (pair, None, "ix_links_target") for i in links), plan
                if None in links:  # PostgreSQL's hash of the links to problems: read once, not per ticket
                    assert db.backend == "postgresql" and "Hash Anti Join" in plan, plan
            else:
                assert problems and not links, plan
                assert all(i in ("ix_problems_ci", "ix_problems_service") for i in problems), plan
    with db.read_session() as s:  # and the plans were of a run that found something
        assert [c.key for c in cand.candidates(s, config, now=NOW)]


# --------------------------------------------------------------------------- problems.toml


def _edit(directory: Path, old: str, new: str) -> None:
    path = directory / "problems.toml"
    body = path.read_text()
    assert body.count(old) == 1, f"{old!r} should occur once"
    path.write_text(body.replace(old, new))


def test_the_shipped_file_loads_and_an_absent_one_means_the_defaults(conf_dir, monkeypatch):
    monkeypatch.delenv("ITSM_CONFIG_DIR", raising=False)
    shipped = load_config()
    assert shipped.problems == ProblemsConfig(5, 14, ("ci", "service_category"), 50)
    assert shipped.sources["problems.toml"] == shipped_config_dir() / "problems.toml"
    _edit(conf_dir, "window_days = 14", "window_days = 30")
    _edit(conf_dir, 'by = ["ci", "service_category"]', 'by = ["service_category"]')
    assert load_config(conf_dir).problems == ProblemsConfig(5, 30, ("service_category",), 50)
    (conf_dir / "problems.toml").write_text("")
    assert load_config(conf_dir).problems == ProblemsConfig()
    # an override folder without the file uses the shipped one; without a shipped one, the defaults
    (conf_dir / "problems.toml").unlink()
    assert load_config(conf_dir).sources["problems.toml"] == shipped_config_dir() / "problems.toml"
    monkeypatch.setattr(config_module, "shipped_config_dir", lambda: conf_dir)
    assert load_config().problems == ProblemsConfig()


@pytest.mark.parametrize(
    ("old", "new", "key", "rule"),
    [
        ("min_incidents = 5", "min_incidents = 1", "candidates.min_incidents", "between 2 and 10000"),
        ("min_incidents = 5", 'min_incidents = "5"', "candidates.min_incidents", "whole number"),
        ("window_days = 14", "window_days = 0", "candidates.window_days", "between 1 and 365"),
        ("limit = 50", "limit = 501", "candidates.limit", "between 1 and 500"),
        ('by = ["ci", "service_category"]', "by = []", "candidates.by", "one or more of"),
        ('by = ["ci", "service_category"]', 'by = "ci"', "candidates.by", "one or more of"),
        ('by = ["ci", "service_category"]', 'by = ["ci", "service"]', "candidates.by", "unknown clustering"),
        ('by = ["ci", "service_category"]', 'by = ["ci", "ci"]', "candidates.by", "twice"),
        ("window_days = 14", "window = 14", "candidates.window", "did you mean 'window_days'"),
        ("\n[candidates]\n", "\n[candidate]\n", "candidate", "unknown key"),
    ],
)
def test_a_bad_value_names_the_file_the_key_and_the_rule(conf_dir, old, new, key, rule):
    _edit(conf_dir, old, new)
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    assert Path(info.value.path) == conf_dir / "problems.toml"
    assert info.value.key == key and rule in info.value.rule, str(info.value)
