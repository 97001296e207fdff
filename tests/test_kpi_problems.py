"""Problem-management and knowledge KPIs on both backends: a small data set written row by row at explicit
instants, every figure worked out by hand, and the keys of ``itsm report kpi --json``.

The period is October 2026, [2026-10-01 00:00, 2026-11-01 00:00) UTC; the fix window W is 30 days unless a
test says otherwise, so the fixes measured are the problems resolved in [2026-09-01, 2026-10-02).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from itsm_tui.cli import main
from itsm_tui.models import KnowledgeArticle, KnownError, Link, Problem, Ticket
from itsm_tui.services import kpi

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
PERIOD = kpi.custom_period(date(2026, 10, 1), date(2026, 10, 31), NOW)


def at(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


# Problems: (ref, opened, first root cause, resolved).
PROBLEMS = {
    "P1": (at(9, 10), at(9, 12), at(9, 15, 12)),  # fixed in the window: measured
    "P2": (at(10, 1), at(10, 1, 6), at(10, 1, 23)),  # opened at the start; root cause after 6 h; measured
    "P3": (at(10, 10, 8), at(10, 11, 2), at(10, 20)),  # root cause after 18 h; fixed too late to be measured
    "P4": (at(10, 31, 23, 59, 59), None, None),  # opened in the last second of the period
    "P5": (at(11, 1), at(11, 1, 1), None),  # opened at the end: outside
    "P6": (at(8, 1), at(9, 30, 23), at(9, 1)),  # root cause before the period; fixed at the window's start
    "P7": (at(8, 1), None, at(8, 31, 23)),  # fixed an hour before the window: not measured
    "P8": (at(9, 25), at(10, 31, 12), None),  # root cause after 36 d 12 h = 876 h
}
KNOWN_ERRORS = {"KE1": "P1", "KE2": "P3"}
# Tickets: (ref, kind, opened, links as (target type, target)).
TICKETS = [
    ("T1", "incident", at(8, 20), [("problem", "P1")]),
    ("T2", "incident", at(9, 15, 11, 59), [("problem", "P1"), ("known_error", "KE1")]),
    ("T3", "incident", at(9, 15, 12), [("known_error", "KE1"), ("article", "A3")]),
    ("T4", "incident", at(10, 15, 12), [("problem", "P1"), ("article", "A3")]),
    ("T5", "incident", at(8, 16, 11, 59), [("problem", "P1")]),
    ("R1", "request", at(9, 1), [("problem", "P1")]),
    ("T6", "incident", at(10, 5), [("problem", "P2"), ("article", "A2")]),
    ("T7", "incident", at(9, 20), [("problem", "P2")]),
    ("T8", "incident", at(9, 21), [("problem", "P2")]),
    ("T9", "incident", at(9, 22), [("problem", "P2")]),
    ("T10", "incident", at(8, 20), [("problem", "P7")]),
    ("T11", "incident", at(10, 12), [("problem", "P3")]),
    ("T12", "incident", at(10, 1), [("known_error", "KE2"), ("article", "A1")]),
    (
        "T13",
        "incident",
        at(10, 31, 23, 59),
        [("known_error", "KE1"), ("known_error", "KE2"), ("article", "A2")],
    ),
    ("T14", "incident", at(11, 1), [("known_error", "KE1")]),
    ("R2", "request", at(10, 10), [("known_error", "KE1")]),
    ("T15", "incident", at(9, 30, 23, 59), [("known_error", "KE2")]),
    ("T16", "incident", at(10, 20), [("article", "A1")]),
]
# When each ticket -> article link was made (the article uses); the other links at the ticket's opening.
ARTICLE_LINKED = {
    ("T16", "A1"): at(10, 20),
    ("T12", "A1"): at(10, 2),
    ("T13", "A2"): at(10, 31, 23),
    ("T6", "A2"): at(11, 1),  # outside
    ("T3", "A3"): at(9, 30, 23, 59),  # outside
    ("T4", "A3"): at(10, 1),
}
# Articles: (author, status, published).
ARTICLES = {
    "A1": ("net1", "published", at(10, 3)),
    "A2": ("net1", "published", at(10, 4)),
    "A5": ("net1", "published", at(10, 31, 23, 59)),
    "A3": ("agent2", "published", at(10, 1)),
    "A6": ("agent2", "retired", at(10, 15)),  # retired since, published in the period: counts
    "A7": ("agent1", "published", at(10, 16)),
    "A8": ("agent1", "published", at(10, 17)),
    "A9": ("app1", "published", at(10, 20)),
    "A10": ("eng1", "published", at(10, 21)),
    "A11": ("prm", "published", at(10, 22)),  # sixth: left out of the top five
    "A4": ("lead", "published", at(11, 1)),  # outside
    "A12": ("lead", "published", at(9, 30)),  # outside
    "A13": ("lead", "draft", None),
    "A14": (None, "published", at(10, 5)),  # no author: in no author's count
}


@pytest.fixture
def desk_data(db, staff) -> None:
    """The data set above, rows written directly with their instants."""
    with db.session() as s:
        problems = {}
        for ref, (opened, cause, resolved) in PROBLEMS.items():
            problems[ref] = Problem(
                ref=ref,
                title=f"Problem {ref}",
                status="resolved" if resolved else "investigating",
                opened_at=opened,
                root_cause_at=cause,
                resolved_at=resolved,
            )
        s.add_all(problems.values())
        s.flush()
        known = {
            ref: KnownError(
                ref=ref,
                problem_id=problems[problem].id,
                title=f"Known error {ref}",
                symptom="It breaks",
                published_at=at(9, 1),
            )
            for ref, problem in KNOWN_ERRORS.items()
        }
        articles = {
            ref: KnowledgeArticle(
                ref=ref,
                title=f"Article {ref}",
                body="How to",
                status=status,
                author_id=staff[author].id if author else None,
                published_at=published,
                updated_at=published or at(9, 1),
            )
            for ref, (author, status, published) in ARTICLES.items()
        }
        s.add_all([*known.values(), *articles.values()])
        tickets = {
            ref: Ticket(
                ref=ref,
                kind=kind,
                title=f"Ticket {ref}",
                requester="Anna",
                impact="medium",
                urgency="medium",
                priority=3,
                opened_at=opened,
                updated_at=opened,
            )
            for ref, kind, opened, _links in TICKETS
        }
        s.add_all(tickets.values())
        s.flush()
        targets = {"problem": problems, "known_error": known, "article": articles}
        for ref, _kind, opened, links in TICKETS:
            for target_type, target in links:
                s.add(
                    Link(
                        source_type="ticket",
                        source_id=tickets[ref].id,
                        target_type=target_type,
                        target_id=targets[target_type][target].id,
                        created_at=ARTICLE_LINKED.get((ref, target), opened),
                    )
                )
        # A problem -> article link in the period is no article use (uses are tickets' links).
        s.add(
            Link(
                source_type="problem",
                source_id=problems["P3"].id,
                target_type="article",
                target_id=articles["A5"].id,
                created_at=at(10, 10),
            )
        )


def test_every_problem_and_knowledge_figure_worked_out_by_hand(db, config, desk_data):
    with db.session() as s:
        figures = kpi.report(s, config, PERIOD, now=NOW).problems
        narrow = kpi.problem_kpis(s, PERIOD, fix_window_days=10)
        quiet = kpi.problem_kpis(s, kpi.custom_period(date(2026, 12, 1), date(2026, 12, 31), NOW))
    # Opened in [10-01, 11-01): P2 (at the start), P3, P4 (the last second); not P5 (at the end).
    assert figures.opened == 3
    # Resolved in the period: P2 (10-01 23:00), P3 (10-20); P1, P6, P7 were resolved before it.
    assert figures.resolved == 2
    # First root cause in the period: P2 6 h, P3 18 h (10-10 08:00 to 10-11 02:00), P8 876 h (09-25 00:00 to
    # 10-31 12:00 = 36 d 12 h); not P1 and P6 (before), nor P5 (at the end). Mean (6 + 18 + 876) / 3 = 300.
    assert figures.root_causes == 3
    assert figures.root_cause_hours == 300.0
    # Incidents opened in the period: T4, T6, T11, T12, T13, T16 = 6 (T14 at the end, T15 a minute before
    # the start, R2 a request). Linked to a known error: T12 (KE2) and T13 (KE1 and KE2, once) = 2 of 6.
    assert (figures.incidents_opened, figures.incidents_with_known_error) == (6, 2)
    assert figures.known_error_share_pct == 33.3
    # Fixes measured, resolved in [09-01, 10-02): P6 (09-01 00:00, at the start), P1, P2; not P7 (08-31).
    # P1, fixed 09-15 12:00: before [08-16 12:00, 09-15 12:00) T1 and T2 (linked twice, counted once);
    #   after [09-15 12:00, 10-15 12:00) T3 (through KE1); T4 (10-15 12:00), T5 (08-16 11:59), T13 and T14
    #   (through KE1, after 10-15) outside; R1 and R2 are requests.
    # P2, fixed 10-01 23:00: before [09-01 23:00, 10-01 23:00) T7, T8, T9;
    #   after [10-01 23:00, 10-31 23:00) T6.
    # P6: no incidents. P7 (T10) and P3 (T11) are not measured.
    # Before 2 + 3 = 5, after 1 + 1 = 2; with W = 30 already per 30 days; avoided 5 - 2 = 3.
    assert (figures.fix_window_days, figures.fixes_measured) == (30, 3)
    assert (figures.incidents_before_fix, figures.incidents_after_fix) == (5, 2)
    assert (figures.before_fix_per_30d, figures.after_fix_per_30d, figures.avoided_per_30d) == (5.0, 2.0, 3.0)
    # Article uses, ticket -> article links made in the period: T16-A1, T12-A1, T13-A2 (10-31 23:00),
    # T4-A3 (10-01 00:00) = 4; T6-A2 (11-01) and T3-A3 (09-30 23:59) outside; the problem's link is no use.
    # Distinct articles: A1, A2, A3 = 3.
    assert (figures.article_uses, figures.articles_used) == (4, 3)
    # Published in the period: net1 3 (A1, A2, A5), agent1 2 (A7, A8), agent2 2 (A3 at the start, A6 retired
    # since), app1 1, eng1 1, prm 1 (sixth by login: cut); lead's A4 (at the end) and A12 (before) outside,
    # A13 a draft, A14 has no author. Ties by login.
    assert [(a.login, a.published) for a in figures.top_authors] == [
        ("net1", 3),
        ("agent1", 2),
        ("agent2", 2),
        ("app1", 1),
        ("eng1", 1),
    ]
    # W = 10: measured are the problems fixed in [09-21, 10-22): P2 and P3 (P1 on 09-15 is not).
    # P2: before [09-21 23:00, 10-01 23:00) T9 only (T8 is at 09-21 00:00);
    #   after [10-01 23:00, 10-11 23:00) T6.
    # P3, fixed 10-20: before [10-10, 10-20) T11; after [10-20, 10-30) none.
    # Before 2, after 1; per 30 days x 30 / 10 = 3: 6, 3, avoided 3.
    assert (narrow.fix_window_days, narrow.fixes_measured) == (10, 2)
    assert (narrow.incidents_before_fix, narrow.incidents_after_fix) == (2, 1)
    assert (narrow.before_fix_per_30d, narrow.after_fix_per_30d, narrow.avoided_per_30d) == (6.0, 3.0, 3.0)
    # December 2026: nothing opened, analysed, resolved, linked or published; the fixes measured would be
    # those resolved in [11-01, 12-01): none.
    assert (quiet.opened, quiet.resolved, quiet.root_causes, quiet.fixes_measured) == (0, 0, 0, 0)
    assert quiet.root_cause_hours is None and quiet.known_error_share_pct is None
    assert quiet.before_fix_per_30d is None and quiet.avoided_per_30d is None
    assert (quiet.article_uses, quiet.articles_used, quiet.top_authors) == (0, 0, [])


def test_report_kpi_json_and_table_carry_the_problem_figures(db, db_url, desk_data, capsys, monkeypatch):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "analyst1")
    argv = ["report", "kpi", "--db", db_url, "--from", "2026-10-01", "--to", "2026-10-31"]
    assert main([*argv, "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)["problems"]
    assert set(got) == {
        "opened",
        "resolved",
        "root_causes",
        "root_cause_hours",
        "incidents_opened",
        "incidents_with_known_error",
        "known_error_share_pct",
        "fix_window_days",
        "fixes_measured",
        "incidents_before_fix",
        "incidents_after_fix",
        "before_fix_per_30d",
        "after_fix_per_30d",
        "avoided_per_30d",
        "article_uses",
        "articles_used",
        "top_authors",
    }
    assert got["known_error_share_pct"] == 33.3 and got["avoided_per_30d"] == 3.0
    assert got["top_authors"][0] == {"login": "net1", "published": 3}
    assert main(argv) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["Mean", "time", "to", "root", "cause", "(wall", "clock)", "300.0", "h"] in lines
    assert ["incidents", "avoided", "3.0", "/30", "d"] in lines
    assert ["published", "by", "net1", "3"] in lines
