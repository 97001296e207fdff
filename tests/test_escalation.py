"""Hierarchical escalation: the shift lead is told, with a note and an audit event; the command palette."""

from __future__ import annotations

from sqlalchemy import func, select

from itsm_tui.models import AuditEvent, Notification, TicketEntry, User
from itsm_tui.services import tickets


def test_the_shift_lead_is_told(db, config, staff):
    with db.session() as s:
        ref = tickets.create_ticket(s, config, staff["agent1"], title="Payroll run stuck", requester="HR").ref
        told = tickets.escalate_to_lead(s, config, staff["agent1"], ref, reason="needs a vendor call tonight")
    assert told == 1
    with db.read_session() as s:
        who = s.execute(
            select(User.login, Notification.kind, Notification.message).join(
                User, User.id == Notification.user_id
            )
        ).all()
        ticket = tickets.get_ticket(s, ref)
        notes = s.scalars(select(TicketEntry.body).where(TicketEntry.ticket_id == ticket.id)).all()
        audit = s.scalars(
            select(AuditEvent.new_value).where(
                AuditEvent.entity_id == ticket.id, AuditEvent.field == "hierarchical"
            )
        ).all()
    assert [(w.login, w.kind) for w in who] == [("lead", "escalated")]
    assert "needs a vendor call tonight" in who[0].message
    assert notes == ["Escalated to the shift lead: needs a vendor call tonight"]
    assert audit == ["needs a vendor call tonight"]


async def test_palette_lists_the_screen_actions(staff_sqlite, config):
    from itsm_tui.app import ItsmApp

    db, staff = staff_sqlite
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"breaching")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert app.screen.query_state.view == "breaching"


def test_the_agent_who_loses_a_ticket_to_the_sla_job_is_told(db, config, staff):
    from datetime import UTC, datetime, timedelta

    from itsm_tui.jobs import sla_scan

    opened = datetime(2026, 3, 2, 8, tzinfo=UTC)
    with db.session() as s:
        ref = tickets.create_ticket(
            s,
            config,
            staff["agent1"],
            title="WAN down",
            requester="HR",
            impact="high",
            urgency="medium",
            service="network",
            now=opened,
        ).ref  # P2 in SD-L1: resolution due 16:00; a breach moves it to the service's group (sla.toml)
        tickets.assign(s, config, staff["agent1"], ref, now=opened + timedelta(minutes=5))
    result = sla_scan.scan(db, config, opened + timedelta(hours=8, minutes=1))
    assert result.escalations == 1
    with db.read_session() as s:
        told = (
            s.execute(
                select(Notification.message)
                .join(User, User.id == Notification.user_id)
                .where(User.login == "agent1", Notification.kind == "escalated")
            )
            .scalars()
            .all()
        )
    assert len(told) == 1
    assert told[0].startswith(f"{ref} (P2) is no longer yours: escalated to NET-L2")
    # Escalating it oneself tells nobody the ticket was taken from them.
    with db.session() as s:
        mine = tickets.create_ticket(s, config, staff["agent1"], title="VPN", requester="HR", now=opened).ref
        tickets.assign(s, config, staff["agent1"], mine, now=opened)
        tickets.escalate(s, config, staff["agent1"], mine, group="NET-L2", reason="needs the network team")
    with db.read_session() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Notification)
                .join(User, User.id == Notification.user_id)
                .where(User.login == "agent1", Notification.message.contains(mine))
            )
            == 0
        )
