"""RACI routing: who is Responsible, Accountable, Consulted or Informed for an activity."""

from __future__ import annotations

from sqlalchemy import select

from itsm_tui.models import Group
from itsm_tui.services.users import raci_users


def test_raci_users_by_activity_and_letter(db, staff, config):
    with db.read_session() as s:
        assert raci_users(s, config, "sla_breach", "A") == ["lead"]
        assert raci_users(s, config, "change_approval", "R") == ["cab1"]
        responsible = raci_users(s, config, "resolve_incident", "R")
        assert {"agent1", "agent2", "net1", "app1", "eng1"} <= set(responsible)
        assert "analyst1" not in responsible
        net = s.scalar(select(Group.id).where(Group.code == "NET-L2"))
        # Scoped to a group: only its members; the shift lead is not in NET-L2, so every holder is returned.
        assert raci_users(s, config, "sla_warning", "R", group_ids=[net]) == ["net1"]
        assert raci_users(s, config, "sla_breach", "A", group_ids=[net]) == ["lead"]
