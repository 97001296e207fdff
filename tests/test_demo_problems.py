"""The demo's problems, known errors and articles obey the engine's rules, checked over the stored rows.

One shared demo database (1,500 tickets, seed 3: the template other modules use too). Each problem's status
history is walked from its audit trail by the lifecycle's moves, each article's by its own; the instants and
texts each status needs are looked at row by row; the audit trail verifies and every chain the problem and
knowledge steps wrote to runs in time order; the reference counters follow on; and recent incidents are
left for the candidate problems to find.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

from sqlalchemy import func, select, text

from itsm_tui.models import AuditEvent, KnowledgeArticle, KnownError, Link, Problem, TicketEntry
from itsm_tui.services import articles, audit
from itsm_tui.services.problems import STATUSES, TRANSITIONS
from itsm_tui.services.problems.candidates import candidates

ANCHOR = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the conftest's demo anchor


def _statuses(session, entity_type: str) -> dict[int, list[tuple[str | None, str | None, str]]]:
    """(old, new, action) of each record's audited status changes, in chain order."""
    found: dict[int, list[tuple[str | None, str | None, str]]] = defaultdict(list)
    for entity_id, old, new, action in session.execute(
        select(AuditEvent.entity_id, AuditEvent.old_value, AuditEvent.new_value, AuditEvent.action)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.field == "status")
        .order_by(AuditEvent.entity_id, AuditEvent.seq)
    ).tuples():
        found[entity_id].append((old, new, action))
    return found


def _walk(history: list[tuple[str | None, str | None, str]], moves: dict[str, tuple[str, ...]]) -> str | None:
    """The status the history ends in, each move checked; it starts with the record's creation."""
    current = None
    for old, new, action in history:
        if current is None:
            assert old is None and action == "create", history
        else:
            assert old == current and new in moves[current], (current, old, new)
        current = new
    return current


def test_the_demo_problems_and_known_errors_obey_the_lifecycle(demo_copy, config):
    db, _ = demo_copy(1500, 3)
    with db.read_session() as s:
        problems = s.scalars(select(Problem).order_by(Problem.id)).all()
        walked = _statuses(s, "problem")
        assert {p.status for p in problems} == set(STATUSES)
        by_id = {p.id: p for p in problems}
        for p in problems:
            assert _walk(walked[p.id], TRANSITIONS) == p.status, p.ref
            assert p.opened_at <= ANCHOR
            if p.status in ("resolved", "closed"):
                assert p.resolved_at is not None and p.opened_at <= p.resolved_at, p.ref
            if p.status == "closed":
                assert (p.verification or "").strip() and p.closed_at >= p.resolved_at, p.ref
            if p.status in ("cancelled", "duplicate"):
                assert (p.status_reason or "").strip() and p.closed_at is not None, p.ref
                assert p.resolved_at is None
            if p.status == "duplicate":
                assert p.duplicate_of_id in by_id and p.duplicate_of_id != p.id
            if p.status in ("investigating", "known_error", "fix_in_progress", "resolved", "closed"):
                assert p.owner_id is not None, p.ref
            if p.status in ("fix_in_progress", "resolved", "closed"):
                assert (p.root_cause or "").strip() and (p.permanent_fix or "").strip(), p.ref
            if p.root_cause:
                assert p.root_cause_at is not None and p.five_whys and p.cause_categories, p.ref
        published = Counter()
        for ke in s.scalars(select(KnownError)):
            owner = by_id[ke.problem_id]
            assert (owner.root_cause or "").strip() and (owner.workaround or "").strip(), ke.ref
            assert (ke.cause or "").strip() and (ke.workaround or "").strip(), ke.ref  # as published
            assert ke.published_at >= owner.opened_at
            if ke.status == "published":
                published[owner.id] += 1
                assert owner.status in ("known_error", "fix_in_progress"), (ke.ref, owner.status)
            else:
                assert ke.status == "retired" and ke.retired_at is not None, ke.ref
        assert max(published.values()) == 1  # one known error in force per problem at most
        assert {p.id for p in problems if p.status == "known_error"} <= set(published)
        # known errors in use: incidents linked to one, each with the workaround quoted in a work note
        used = s.execute(
            select(Link.source_id, KnownError.workaround)
            .join(KnownError, KnownError.id == Link.target_id)
            .where(Link.source_type == "ticket", Link.target_type == "known_error")
        ).all()
        assert used
        for ticket_id, workaround in used:
            notes = s.scalars(
                select(TicketEntry.body).where(TicketEntry.ticket_id == ticket_id, TicketEntry.kind == "note")
            ).all()
            assert any(workaround in note for note in notes), ticket_id
        assert s.scalar(select(Link.id).where(Link.source_type == "problem", Link.target_type == "change"))
        # every incident linked to a problem had been opened by then
        late = s.execute(
            text(
                "SELECT count(*) FROM links l JOIN tickets t ON t.id = l.source_id "
                "WHERE l.source_type = 'ticket' AND l.target_type = 'problem' AND t.opened_at > l.created_at"
            )
        ).scalar()
        assert late == 0
        assert candidates(s, config, now=ANCHOR)


def test_the_demo_articles_obey_their_lifecycle(demo_copy):
    db, _ = demo_copy(1500, 3)
    with db.read_session() as s:
        rows = s.scalars(select(KnowledgeArticle).order_by(KnowledgeArticle.id)).all()
        walked = _statuses(s, "article")
        assert {a.status for a in rows} == set(articles.STATUSES)
        for a in rows:
            assert _walk(walked[a.id], articles.TRANSITIONS) == a.status, a.ref
            assert a.created_at <= a.updated_at <= ANCHOR
            if a.status in ("draft", "in_review"):
                assert a.published_at is None and a.retired_at is None, a.ref
            else:
                assert a.published_at is not None and a.reviewer_id not in (None, a.author_id), a.ref
                assert (a.retired_at is None) == (a.status == "published"), a.ref
        assert any(old == "in_review" and new == "draft" for h in walked.values() for old, new, _ in h)
        uses = Counter(
            s.scalars(
                select(Link.target_id).where(Link.source_type == "ticket", Link.target_type == "article")
            )
        )
        status = {a.id: a.status for a in rows}
        assert uses and {status[i] for i in uses} <= {"published", "retired"}


def test_the_trail_verifies_runs_in_time_order_and_the_counters_follow_on(demo_copy):
    db, actor = demo_copy(1500, 3)
    with db.read_session() as s:
        found = audit.verify(s, actor)
        assert found.ok, found.breaks[:3]
        # no record's chain goes back in time (the problem and knowledge steps appended to tickets and
        # changes only after their own last event)
        back = s.execute(
            text(
                "SELECT count(*) FROM (SELECT at, lag(at) OVER (PARTITION BY entity_type, entity_id "
                "ORDER BY seq) AS before FROM audit_events) AS chained WHERE before > at"
            )
        ).scalar()
        assert back == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.at > ANCHOR)) == 0
        counters = dict(s.execute(text("SELECT name, value FROM counters")).tuples().all())
        for prefix, table in (("PRB", "problems"), ("KE", "known_errors"), ("KB", "knowledge_articles")):
            count, highest = s.execute(text(f"SELECT count(*), max(ref) FROM {table}")).one()
            assert counters[prefix] == count and highest == f"{prefix}{count:07d}", prefix
