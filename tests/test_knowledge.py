"""KEDB and knowledge search, and applying a known error's workaround in one step (a note and a link)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from itsm_tui.models import AuditEvent, KnowledgeArticle, KnownError, Link, TicketEntry
from itsm_tui.services import knowledge, tickets
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import NotFound, ValidationError

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def kb(db):
    """Three known errors and three articles."""
    with db.session() as s:
        s.add_all(
            [
                KnownError(
                    ref="KE0000001",
                    title="VPN client drops every hour",
                    symptom="The VPN tunnel disconnects after exactly 60 minutes",
                    workaround="Set the rekey interval to 8h in the client profile",
                    published_at=T0,
                ),
                KnownError(
                    ref="KE0000002",
                    title="Printer jams on duplex",
                    symptom="Floor 3 printer jams when printing both sides",
                    workaround="Print single-sided; use tray 2",
                    published_at=T0 + timedelta(days=1),
                ),
                KnownError(
                    ref="KE0000003",
                    title="Quota of 100% reported",
                    symptom="Mailbox shows 100% full although it is empty",
                    workaround=None,
                    published_at=T0,
                ),
                KnowledgeArticle(
                    ref="KB0000001",
                    title="How to reinstall the VPN client",
                    body="Uninstall, reboot, then install the VPN client from the portal. " * 5,
                    status="published",
                    published_at=T0,
                    updated_at=T0,
                ),
                KnowledgeArticle(
                    ref="KB0000002",
                    title="Mail rules",
                    body="Rules move mail; a vpn is not needed for webmail_access.",
                    status="published",
                    published_at=T0,
                    updated_at=T0 + timedelta(days=2),
                ),
                KnowledgeArticle(
                    ref="KB0000003",
                    title="Printer drivers",
                    body="Install the floor printer driver from the portal.",
                    status="published",
                    published_at=T0,
                    updated_at=T0,
                ),
            ]
        )
    return db


def refs(hits) -> list[str]:
    return [hit.ref for hit in hits]


def test_search_matches_every_word_case_insensitively_known_errors_first(kb) -> None:
    with kb.read_session() as s:
        hits = knowledge.search(s, "vpn")
        assert refs(hits) == ["KE0000001", "KB0000001", "KB0000002"]
        assert [h.kind for h in hits] == ["known_error", "article", "article"]
        assert hits[0].workaround == "Set the rekey interval to 8h in the client profile"
        assert hits[1].workaround is None
        assert refs(knowledge.search(s, "VPN Client")) == ["KE0000001", "KB0000001"]
        assert refs(knowledge.search(s, ["printer", "PORTAL"])) == ["KB0000003"]
        # The workaround is searched too.
        assert refs(knowledge.search(s, "rekey")) == ["KE0000001"]
        assert knowledge.search(s, "vpn nothing-like-this") == []


def test_search_treats_like_wildcards_literally(kb) -> None:
    with kb.read_session() as s:
        assert refs(knowledge.search(s, "100%")) == ["KE0000003"]
        assert refs(knowledge.search(s, "%")) == ["KE0000003"]  # only the one holding a percent sign
        assert refs(knowledge.search(s, "webmail_access")) == ["KB0000002"]
        assert knowledge.search(s, "webmail_acces_") == []


def test_search_is_bounded(kb) -> None:
    with kb.read_session() as s:
        assert knowledge.search(s, "") == []
        assert knowledge.search(s, "   ") == []
        assert len(knowledge.search(s, "the", limit=2)) == 2
        many = " ".join(f"w{i}" for i in range(30))
        assert knowledge.split_words(many) == [f"w{i}" for i in range(knowledge.WORDS_MAX)]
        assert knowledge.split_words("x" * 500) == ["x" * knowledge.WORD_MAX]


def test_snippet_is_one_line_around_the_word(kb) -> None:
    with kb.read_session() as s:
        (hit,) = [h for h in knowledge.search(s, "portal reboot") if h.ref == "KB0000001"]
    assert "\n" not in hit.snippet
    assert len(hit.snippet) <= knowledge.SNIPPET + 6
    assert "reboot" in hit.snippet.lower()


def open_ticket(db, config, staff) -> str:
    with db.session() as s:
        ref = tickets.create_ticket(
            s, config, staff["agent1"], title="VPN drops", requester="Rita", now=T0
        ).ref
        tickets.assign(s, config, staff["agent1"], ref, now=T0)
    return ref


def test_apply_workaround_adds_a_note_and_a_link_with_audit(kb, config, staff) -> None:
    ref = open_ticket(kb, config, staff)
    at = T0 + timedelta(minutes=5)
    with kb.session() as s:
        applied = knowledge.apply_workaround(s, config, staff["agent1"], ref, "ke0000001", now=at)
    assert applied.linked and applied.known_error_ref == "KE0000001" and applied.ticket_ref == ref
    with kb.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        notes = s.scalars(select(TicketEntry).where(TicketEntry.ticket_id == ticket.id)).all()
        assert [(n.kind, n.author_id) for n in notes] == [("note", staff["agent1"].id)]
        assert "KE0000001" in notes[0].body
        assert "Set the rekey interval to 8h in the client profile" in notes[0].body
        assert tickets.links_of(s, ticket) == ["KE0000001"]
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.entity_id == ticket.id, AuditEvent.at == at)
        ).all()
        assert sorted((e.action, e.field, e.new_value) for e in events) == [
            ("link", "link", "KE0000001"),
            ("note", "entry", str(notes[0].id)),
        ]


def test_applying_again_adds_the_note_but_not_a_second_link(kb, config, staff) -> None:
    ref = open_ticket(kb, config, staff)
    for _ in range(2):
        with kb.session() as s:
            applied = knowledge.apply_workaround(s, config, staff["agent1"], ref, "KE0000001", now=T0)
    assert not applied.linked
    with kb.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        assert len(s.scalars(select(Link).where(Link.source_id == ticket.id)).all()) == 1
        assert len(s.scalars(select(TicketEntry).where(TicketEntry.ticket_id == ticket.id)).all()) == 2


def test_refusals_write_nothing(kb, config, staff) -> None:
    ref = open_ticket(kb, config, staff)
    cases = [
        (staff["analyst1"], "KE0000001", PermissionDenied, "agent"),
        (staff["net1"], "KE0000001", PermissionDenied, "shift_lead"),  # another group's ticket
        (staff["agent1"], "KE0000003", ValidationError, "no workaround"),
        (staff["agent1"], "KE0000099", NotFound, "KE0000099"),
    ]
    for actor, ke, error, words in cases:
        with pytest.raises(error, match=words), kb.session() as s:
            knowledge.apply_workaround(s, config, actor, ref, ke, now=T0)
    with kb.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        assert s.scalars(select(TicketEntry).where(TicketEntry.ticket_id == ticket.id)).all() == []
        assert tickets.links_of(s, ticket) == []


def test_search_ranks_the_tickets_ci_then_its_service_and_offers_only_what_is_in_force(db) -> None:
    with db.session() as s:
        s.add_all(
            [
                KnownError(
                    ref="KE0000011",
                    title="Toner smears",
                    symptom="smear",
                    service="email",
                    published_at=T0 + timedelta(days=2),
                ),
                KnownError(
                    ref="KE0000012",
                    title="Toner smears",
                    symptom="smear",
                    service="workplace",
                    published_at=T0,
                ),
                KnownError(
                    ref="KE0000013",
                    title="Toner smears",
                    symptom="smear",
                    service="workplace",
                    ci="print-srv-01",
                    published_at=T0,
                ),
                KnownError(
                    ref="KE0000014", title="Toner smears", symptom="old", status="retired", published_at=T0
                ),
                KnowledgeArticle(
                    ref="KB0000011", title="Toner", body="smears", status="draft", updated_at=T0
                ),
                KnowledgeArticle(
                    ref="KB0000012", title="Toner", body="smears", status="published", updated_at=T0
                ),
            ]
        )
    with db.read_session() as s:
        # same CI first, then same service, then the rest; the retired KE and the draft are not offered
        hits = knowledge.search(s, "toner", service="workplace", ci="PRINT-SRV-01")
        assert refs(hits) == ["KE0000013", "KE0000012", "KE0000011", "KB0000012"]
        assert refs(knowledge.search(s, "toner")) == ["KE0000011", "KE0000013", "KE0000012", "KB0000012"]


def test_an_open_incident_is_shown_the_known_errors_of_its_ci_and_of_its_service_with_its_words(
    db, config, staff
) -> None:
    with db.session() as s:
        s.add_all(
            [
                KnownError(
                    ref="KE0000021",
                    title="Paper jam in tray 2",
                    symptom="jams",
                    ci="print-srv-01",
                    service="workplace",
                    published_at=T0,
                ),
                KnownError(
                    ref="KE0000022",
                    title="Duplex printing jams paper",
                    symptom="Floor printers jam",
                    service="workplace",
                    published_at=T0 + timedelta(days=1),
                ),
                KnownError(
                    ref="KE0000023",
                    title="Laptop dock flickers",
                    symptom="screen",
                    service="workplace",
                    published_at=T0,
                ),
                KnownError(
                    ref="KE0000024",
                    title="Printer jams",
                    symptom="jams",
                    ci="print-srv-01",
                    status="retired",
                    published_at=T0,
                ),
            ]
        )
        ticket = tickets.create_ticket(
            s,
            config,
            staff["agent1"],
            title="Printer jams on every duplex page",
            requester="Ann",
            kind="incident",
            service="workplace",
            ci="print-srv-01",
            now=T0,
        )
        ticket_id = ticket.id
    with db.read_session() as s:
        found = knowledge.matching_known_errors(s, ticket_id)
    # The ticket's words of 4+ letters: printer, jams, every, duplex, page. KE0000021 (same CI): paper, tray,
    # jams -> jams. KE0000022 (same service): duplex, printing, jams, paper, floor, printers -> duplex, jams.
    # KE0000023 (same service) shares none; KE0000024 is retired.
    assert [(m.ref, m.reason) for m in found] == [
        ("KE0000021", "same CI print-srv-01, words: jams"),
        ("KE0000022", "same service workplace, words: duplex, jams"),
    ]
    with db.read_session() as s:  # the KEDB form of the ticket: its own matches first, whatever the words
        hits = knowledge.search_for_ticket(s, ticket_id, "vanished")
        assert [h.ref for h in hits] == ["KE0000021", "KE0000022"]
        assert hits[0].snippet.startswith("(same CI print-srv-01, words: jams) jams")
        assert [h.ref for h in knowledge.search_for_ticket(s, ticket_id, "dock")] == [
            "KE0000021",
            "KE0000022",
            "KE0000023",
        ]
    with db.session() as s:
        tickets.link(s, staff["agent1"], "INC0000001", "KE0000021", now=T0)
    with db.read_session() as s:
        assert [m.ref for m in knowledge.matching_known_errors(s, ticket_id)] == ["KE0000022"]
