"""Hierarchical escalation: the shift lead is told, with a note and an audit event; the command palette."""

from __future__ import annotations

from sqlalchemy import select

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
