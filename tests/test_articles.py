"""Knowledge articles on SQLite and PostgreSQL: the lifecycle (each move allowed and refused), four eyes on
publication, who may do what (offered == allowed), stale saves, uses counted from the tickets' links, an
article written from a ticket, and the lists' views and filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from itsm_tui.models import AuditEvent, KnowledgeArticle, Link, Notification, Ticket
from itsm_tui.services import articles, tickets
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import InvalidTransition, NotFound, ServiceError, StaleEdit, ValidationError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def step(db, config, fn, actor, ref, *args, now=T0, **kw):
    """One service call in its own transaction; the article's (status, version) after it."""
    with db.session() as s:
        article = fn(s, config, actor, ref, *args, now=now, **kw)
        return article.status, article.version


def write(db, config, actor, now=T0, **kw) -> str:
    kw.setdefault("title", "Reset a forgotten VPN password")
    kw.setdefault("body", "Open the self-service portal and choose Reset.")
    with db.session() as s:
        return articles.create_article(s, config, actor, now=now, **kw).ref


def trail(db, ref) -> list[tuple[str, str | None, str | None, str | None, int | None]]:
    with db.read_session() as s:
        article = articles.get_article(s, ref)
        return [
            (e.action, e.field, e.old_value, e.new_value, e.actor_id)
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity_type == "article", AuditEvent.entity_id == article.id)
                .order_by(AuditEvent.id)
            )
        ]


def notices(db, actor) -> list[tuple[str, str, str]]:
    with db.read_session() as s:
        return [
            (n.kind, n.entity_type or "", n.message)
            for n in s.scalars(
                select(Notification).where(Notification.user_id == actor.id).order_by(Notification.id)
            )
        ]


def test_the_lifecycle_with_review_four_eyes_and_the_author_told(db, config, staff):
    net1, eng1, lead, agent1 = staff["net1"], staff["eng1"], staff["lead"], staff["agent1"]
    ref = write(db, config, net1, service="VPN ", category="  Remote   access ")
    assert ref == "KB0000001"
    with db.read_session() as s:
        article = articles.get_article(s, "kb1")
        assert (article.status, article.service, article.category, article.version) == (
            "draft",
            "vpn",
            "Remote access",
            1,
        )
        assert (article.author_id, article.created_at, article.updated_at) == (net1.id, T0, T0)

    # A draft is neither published, sent back nor retired.
    for fn, args, wanted in (
        (articles.publish, (), "published"),
        (articles.send_back, ("no",), "draft"),
        (articles.retire, ("old",), "retired"),
    ):
        with pytest.raises(InvalidTransition) as refused, db.session() as s:
            fn(s, config, eng1, ref, *args, now=T0)
        assert (
            str(refused.value)
            == f"KB0000001 cannot go from draft to {wanted}; from draft it may go to: in_review"
        )

    assert step(db, config, articles.submit, net1, ref, now=at(1)) == ("in_review", 2)
    with pytest.raises(InvalidTransition, match="from in_review to in_review"), db.session() as s:
        articles.submit(s, config, net1, ref)
    # Four eyes: who wrote it never publishes it, though they may publish others'.
    with pytest.raises(PermissionDenied) as refused, db.session() as s:
        articles.publish(s, config, net1, ref)
    assert str(refused.value) == (
        "You wrote KB0000001: someone else must review and publish it "
        "(another support_l2, support_l3, problem_manager or shift_lead)."
    )
    with pytest.raises(PermissionDenied, match="You may not publish knowledge"), db.session() as s:
        articles.publish(s, config, agent1, ref)
    with pytest.raises(ValidationError, match="say why it goes back"), db.session() as s:
        articles.send_back(s, config, eng1, ref, "  ")

    assert step(db, config, articles.send_back, eng1, ref, "Name the portal's address", now=at(2)) == (
        "draft",
        3,
    )
    with db.session() as s:
        articles.update_article(
            s, config, net1, ref, {"body": "Open https://reset.example and choose Reset."}, now=at(3)
        )
        articles.submit(s, config, net1, ref, now=at(4))
    assert step(db, config, articles.publish, eng1, ref, now=at(5)) == ("published", 6)
    with db.read_session() as s:
        article = articles.get_article(s, ref)
        assert (article.reviewer_id, article.published_at, article.review_note) == (eng1.id, at(5), None)
    assert notices(db, net1) == [
        (
            "article",
            "article",
            "KB0000001 (Reset a forgotten VPN password) was sent back by eng1: Name the portal's address",
        ),
        ("article", "article", "KB0000001 (Reset a forgotten VPN password) was published by eng1"),
    ]

    # Published: never back to review, nor sent back; a publisher corrects it in place.
    with pytest.raises(InvalidTransition, match="from published it may go to: retired"), db.session() as s:
        articles.submit(s, config, net1, ref)
    with pytest.raises(InvalidTransition), db.session() as s:
        articles.send_back(s, config, eng1, ref, "again")
    with (
        pytest.raises(
            PermissionDenied, match="KB0000001 is published: only a publisher of knowledge edits it"
        ),
        db.session() as s,
    ):
        articles.update_article(s, config, agent1, ref, {"title": "Mine now"})
    assert step(
        db, config, articles.update_article, lead, ref, {"title": "Reset a VPN password"}, now=at(6)
    ) == (
        "published",
        7,
    )
    with db.read_session() as s:
        assert articles.get_article(s, ref).updated_at == at(6)

    with pytest.raises(PermissionDenied), db.session() as s:
        articles.retire(s, config, agent1, ref, "Replaced")
    with pytest.raises(ValidationError, match="say why it is retired"), db.session() as s:
        articles.retire(s, config, lead, ref, "")
    assert step(db, config, articles.retire, lead, ref, "Replaced by single sign-on", now=at(7)) == (
        "retired",
        8,
    )
    with db.read_session() as s:
        assert articles.get_article(s, ref).retired_at == at(7)
        detail = articles.article_detail(s, lead, ref)
    assert detail.retire_reason == "Replaced by single sign-on"
    assert all(offer.refusal for offer in detail.actions)  # retired: final
    with (
        pytest.raises(ServiceError, match="KB0000001 is retired: a retired article is no longer edited"),
        db.session() as s,
    ):
        articles.update_article(s, config, lead, ref, {"title": "Back"})

    stamp = T0.isoformat()
    assert trail(db, ref) == [
        ("create", "status", None, "draft", net1.id),
        ("create", "title", None, "Reset a forgotten VPN password", net1.id),
        ("create", "service", None, "vpn", net1.id),
        ("create", "category", None, "Remote access", net1.id),
        ("submit", "status", "draft", "in_review", net1.id),
        ("send_back", "status", "in_review", "draft", eng1.id),
        ("send_back", "review_note", None, "Name the portal's address", eng1.id),
        (
            "update",
            "body",
            "Open the self-service portal and choose Reset.",
            "Open https://reset.example and choose Reset.",
            net1.id,
        ),
        ("submit", "status", "draft", "in_review", net1.id),
        ("publish", "status", "in_review", "published", eng1.id),
        ("publish", "reviewer", None, "eng1", eng1.id),
        ("publish", "published_at", None, at(5).isoformat(), eng1.id),
        ("publish", "review_note", "Name the portal's address", None, eng1.id),
        ("update", "title", "Reset a forgotten VPN password", "Reset a VPN password", lead.id),
        ("retire", "status", "published", "retired", lead.id),
        ("retire", "retired_at", None, at(7).isoformat(), lead.id),
        ("retire", "reason", None, "Replaced by single sign-on", lead.id),
    ]
    assert stamp == "2026-03-02T09:00:00+00:00"
    assert detail.history[0].action == "retire" and detail.history[-1].by == "net1"
    assert detail.history_warning is None


ROLES = ("agent1", "agent2", "net1", "prm", "lead", "analyst1", "chm", "admin1")
# (status, action) -> who may: the article is agent1's. Worked out from the rules: its author or any
# publisher (net1 L2, prm problem manager, lead shift lead) edits and submits a draft; publishers alone
# edit an article in review or published, send back and retire; publish: a publisher but not the author.
MAY = {
    ("draft", "edit"): {"agent1", "net1", "prm", "lead"},
    ("draft", "submit"): {"agent1", "net1", "prm", "lead"},
    ("in_review", "edit"): {"net1", "prm", "lead"},
    ("in_review", "publish"): {"net1", "prm", "lead"},
    ("in_review", "send_back"): {"net1", "prm", "lead"},
    ("published", "edit"): {"net1", "prm", "lead"},
    ("published", "retire"): {"net1", "prm", "lead"},
}


class _Undo(Exception):
    pass


def _try(db, config, actor, ref, action) -> bool:
    """Whether the step goes through (its transaction rolled back either way)."""
    calls = {
        "edit": lambda s: articles.update_article(s, config, actor, ref, {"title": "Edited"}, now=T0),
        "submit": lambda s: articles.submit(s, config, actor, ref, now=T0),
        "publish": lambda s: articles.publish(s, config, actor, ref, now=T0),
        "send_back": lambda s: articles.send_back(s, config, actor, ref, "More detail", now=T0),
        "retire": lambda s: articles.retire(s, config, actor, ref, "Obsolete", now=T0),
    }
    try:
        with db.session() as s:
            calls[action](s)
            raise _Undo
    except _Undo:
        return True
    except ServiceError:
        return False


def test_who_may_do_what_is_what_is_offered(db, config, staff):
    refs = {}
    for status in ("draft", "in_review", "published", "retired"):
        refs[status] = write(db, config, staff["agent1"], title=f"An article {status}")
    with db.session() as s:
        for status, ref in refs.items():
            s.execute(update(KnowledgeArticle).where(KnowledgeArticle.ref == ref).values(status=status))
    for status, ref in refs.items():
        with db.read_session() as s:
            article = articles.get_article(s, ref)
            offers = {login: articles.available_actions(staff[login], article) for login in ROLES}
        for login in ROLES:
            for offer in offers[login]:
                expected = login in MAY.get((status, offer.action), set())
                assert (offer.refusal is None) == expected, (status, offer.action, login, offer.refusal)
                assert _try(db, config, staff[login], ref, offer.action) == expected, (
                    status,
                    offer.action,
                    login,
                )
    with db.read_session() as s:
        offers = {
            o.action: o.refusal
            for o in articles.available_actions(staff["agent2"], articles.get_article(s, refs["draft"]))
        }
    assert offers["edit"] == (
        "KB0000001 is someone else's draft: only its author or a publisher of knowledge edits it "
        "(support_l2, support_l3, problem_manager or shift_lead; you have agent)."
    )

    # Writing: knowledge.write (agents, L2, L3, shift leads, problem managers); not the other roles.
    for login in ("agent2", "eng1", "lead", "prm"):
        assert articles.create_refusal(staff[login]) is None
    for login in ("analyst1", "cab1", "chm", "admin1"):
        assert articles.create_refusal(staff[login]) is not None
        with pytest.raises(PermissionDenied, match="You may not write knowledge articles"), db.session() as s:
            articles.create_article(s, config, staff[login], title="x", body="y")


def test_inputs_and_a_stale_save_are_refused(db, config, staff):
    agent1, net1 = staff["agent1"], staff["net1"]
    for kw, field in (
        ({"title": "  "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"service": "telepathy"}, "service"),
        ({"category": "c" * 41}, "category"),
    ):
        with pytest.raises(ValidationError) as refused, db.session() as s:
            articles.create_article(s, config, agent1, **{"title": "Fine", "body": "", **kw})
        assert refused.value.field == field
    ref = write(db, config, agent1, body="")
    assert ref == "KB0000001"  # the refused ones allocated no reference
    with pytest.raises(ServiceError, match="has no text yet"), db.session() as s:
        articles.submit(s, config, agent1, ref)
    with pytest.raises(ValidationError, match="no article field 'status'"), db.session() as s:
        articles.update_article(s, config, agent1, ref, {"status": "published"})
    with pytest.raises(NotFound, match="no knowledge article 'KB99'"), db.session() as s:
        articles.get_article(s, "KB99")

    with db.session() as s:  # nothing changed: nothing written
        assert (
            articles.update_article(
                s, config, agent1, ref, {"title": "Reset a forgotten VPN password"}
            ).version
            == 1
        )
    assert step(
        db,
        config,
        articles.update_article,
        net1,
        ref,
        {"body": "Call the desk.", "service": ""},
        expected_version=1,
        now=at(1),
    ) == ("draft", 2)
    before = trail(db, ref)
    with pytest.raises(StaleEdit) as refused, db.session() as s:
        articles.update_article(s, config, agent1, ref, {"body": "Mine"}, expected_version=1)
    assert str(refused.value).startswith("KB0000001 was changed by Net1 (net1) at 2026-03-02 09:01:00 UTC")
    with pytest.raises(StaleEdit), db.session() as s:
        articles.submit(s, config, agent1, ref, expected_version=1)
    assert trail(db, ref) == before
    with db.read_session() as s:
        assert articles.get_article(s, ref).body == "Call the desk."


def test_an_article_from_a_ticket_and_its_uses(db, config, staff):
    agent1, net1 = staff["agent1"], staff["net1"]
    with db.session() as s:
        first = tickets.create_ticket(
            s,
            config,
            agent1,
            title="Outlook asks for the password again and again",
            requester="Pat",
            description="Since this morning Outlook prompts every few minutes.",
            service="email",
            category="software",
            now=T0,
        ).ref
        other = tickets.create_ticket(s, config, agent1, title="Same again", requester="Kim", now=T0).ref
        s.execute(
            update(Ticket)
            .where(Ticket.ref == first)
            .values(
                status="resolved",
                resolution_code="workaround",
                resolution_note="Removed the credential.",
            )
        )
    # An article is written from a resolution: not from a ticket still being worked.
    early = f"{other} is new; an article is written from its resolution"
    with pytest.raises(ValidationError, match=early), db.session() as s:
        articles.create_article(s, config, agent1, from_ticket=other, title="Too early")
    with db.read_session() as s:
        prefill = articles.prefill_from_ticket(s, config, first.lower())
    assert prefill == articles.Prefill(
        first,
        "Outlook asks for the password again and again",
        "Since this morning Outlook prompts every few minutes.\n\n"
        "Resolution (workaround):\nRemoved the credential.",
        "email",
        "software",
    )
    with db.session() as s:
        article = articles.create_article(s, config, agent1, from_ticket=first, category="Mail", now=at(1))
        ref, article_id = article.ref, article.id
        assert (article.title, article.body, article.service, article.category) == (
            prefill.title,
            prefill.body,
            "email",
            "Mail",
        )
        ticket = tickets.get_ticket(s, first)
        assert article.source_ticket_id == ticket.id
        assert s.execute(
            select(Link.source_type, Link.source_id, Link.target_type, Link.target_id)
        ).all() == [("ticket", ticket.id, "article", article_id)]
        tickets.link(s, net1, other, ref, now=at(2))
    assert ("create", "source_ticket", None, first, agent1.id) in trail(db, ref)
    with db.read_session() as s:
        detail = articles.article_detail(s, agent1, ref)
        listed = articles.list_articles(s, agent1, view="drafts").rows
        assert articles.uses(s, [article_id, 999]) == {article_id: 2, 999: 0}
        statement = articles.uses_select([article_id]).compile(
            s.get_bind(), compile_kwargs={"literal_binds": True}
        )
        if db.backend == "sqlite":
            plan = " ".join(
                str(r[-1]) for r in s.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")
            )
        else:
            s.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(r[0] for r in s.connection().exec_driver_sql(f"EXPLAIN {statement}"))
    assert "ix_links_target" in plan, plan
    assert (detail.uses, detail.source_ticket, detail.author, detail.status_label) == (
        2,
        first,
        "agent1",
        "draft",
    )
    assert [(r.ref, r.kind, r.outgoing) for r in detail.linked] == [
        (first, "ticket", False),
        (other, "ticket", False),
    ]
    assert [(r.ref, r.uses, r.author) for r in listed] == [(ref, 2, "agent1")]
    with pytest.raises(NotFound), db.session() as s:
        articles.create_article(s, config, agent1, from_ticket="INC0000999")
    # An explicit title wins; the ticket's description and resolution remain the text.
    with db.session() as s:
        again = articles.create_article(s, config, net1, title="Password prompts", from_ticket=first)
        assert (again.title, again.body) == ("Password prompts", prefill.body)


def test_lists_by_view_and_filter(db, config, staff):
    agent1, agent2, net1 = staff["agent1"], staff["agent2"], staff["net1"]
    a = write(
        db,
        config,
        agent1,
        title="Printer offline",
        body="Restart the spooler",
        service="workplace",
        category="Printing",
        now=at(1),
    )
    b = write(db, config, agent1, title="VPN drops", body="Rekey every 8h", service="vpn", now=at(2))
    c = write(
        db,
        config,
        agent2,
        title="Mail quota",
        body="Archive old mail",
        service="email",
        category="printing",
        now=at(3),
    )
    d = write(
        db, config, net1, title="Switch reboot", body="Use the console port", service="network", now=at(4)
    )
    step(db, config, articles.submit, agent1, b, now=at(5))  # b: in review
    step(db, config, articles.submit, agent2, c, now=at(6))
    step(db, config, articles.publish, net1, c, now=at(7))  # c: published
    step(db, config, articles.submit, net1, d, now=at(8))
    step(db, config, articles.publish, staff["eng1"], d, now=at(9))
    step(db, config, articles.retire, staff["eng1"], d, "Hardware gone", now=at(10))  # d: retired

    def refs(actor, view, text=""):
        with db.read_session() as s:
            listed = articles.list_articles(s, actor, view=view, text=text)
        assert listed.error is None, listed.error
        return [row.ref for row in listed.rows]

    assert refs(agent1, "published") == [c]
    assert refs(agent1, "drafts") == [b, a]  # newest first: b was submitted after a was written
    assert refs(agent2, "drafts") == []  # c is published: no longer a draft of agent2's
    assert refs(net1, "drafts") == [b]  # a publisher: what awaits review
    assert refs(agent2, "review") == [b]
    assert refs(agent1, "retired") == [d]
    assert refs(agent1, "all") == [d, c, b, a]
    assert refs(agent1, "all", "svc:vpn,workplace") == [b, a]
    assert refs(agent1, "all", "cat:PRINTING") == [c, a]
    assert refs(agent1, "all", "status:review") == [b]
    assert refs(agent1, "all", "author:me status:draft,in-review") == [b, a]
    assert refs(agent1, "all", "author:agent2") == [c]
    assert refs(agent1, "all", "author:nobody") == []
    assert refs(agent1, "all", "SPOOLER") == [a]
    assert refs(agent1, "all", "old mail") == [c]
    assert refs(agent1, "all", "50%") == []
    assert refs(agent1, "all", "kb0000002") == [b]
    with db.read_session() as s:
        assert articles.list_articles(s, agent1, view="all", limit=2).rows[1].ref == c
        refused = articles.list_articles(s, agent1, view="all", text="status:lost")
        assert (refused.rows, refused.error) == (
            (),
            "no article status 'lost'; the statuses are draft, in_review, published, retired",
        )
        assert (
            articles.list_articles(s, agent1, view="all", text="svc:").error
            == "'svc:' names no value: write e.g. svc:something"
        )
        with pytest.raises(ValidationError, match="no article view 'mine'"):
            articles.list_articles(s, agent1, view="mine")
        row = articles.list_articles(s, agent1, view="published").rows[0]
    assert (row.title, row.status, row.service, row.category, row.author, row.updated_at, row.uses) == (
        "Mail quota",
        "published",
        "email",
        "printing",
        "agent2",
        at(7),
        0,
    )
