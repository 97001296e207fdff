"""The demo's people: about thirty staff across every role and group, the OS login among them as shift lead.

Names come from each login's own random generator, so they stay the same whatever the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from itsm_tui.demo.tables import FIRST_NAMES, LAST_NAMES

Person = tuple[str, str, tuple[str, ...], tuple[str, ...], bool]
"""(login, name, roles, groups, lead)"""


@dataclass
class Staff:
    """One demo user as the generator and the ticket factory need them (``id`` is the users row id)."""

    id: int
    login: str
    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    lead: bool = False


def roster(os_login: str) -> list[Person]:
    """(login, name, roles, groups, lead) for about 30 people across every role."""
    people: list[Person] = [
        (os_login, "Demo Shift Lead (you)", ("shift_lead",), ("SD-L1",), True),
        ("mlopez", "Maria Lopez", ("shift_lead",), ("SD-L1",), False),
        ("itadmin", "Irene Admin", ("admin",), (), False),
    ]
    agents = [
        "akhan",
        "bschulz",
        "cdiaz",
        "dnguyen",
        "eolsen",
        "fmartin",
        "gweiss",
        "hpatel",
        "ijovanovic",
        "kmuller",
    ]
    for login in agents:
        people.append((login, name_for(login), ("agent",), ("SD-L1",), False))
    for index, login in enumerate(["lnet", "mroute", "nswitch", "ofirewall"]):
        people.append(
            (
                login,
                name_for(login),
                ("support_l2",) + (("cab_member",) if index == 0 else ()),
                ("NET-L2",),
                index == 0,
            )
        )
    for index, login in enumerate(["papps", "qerp", "rcrm", "smail", "tsap"]):
        people.append(
            (
                login,
                name_for(login),
                ("support_l2",) + (("cab_member",) if index == 0 else ()),
                ("APP-L2",),
                index == 0,
            )
        )
    for index, login in enumerate(["uplatform", "vident", "wstore"]):
        people.append((login, name_for(login), ("support_l3",), ("ENG-L3",), index == 0))
    people += [
        ("xproblem", "Xenia Problem", ("problem_manager",), ("ENG-L3",), False),
        ("ychange", "Yusuf Change", ("change_manager", "cab_member"), (), False),
        # The deputy change manager: an emergency change the other raises still has someone to approve it.
        ("zdeputy", "Zora Deputy", ("change_manager", "cab_member"), (), False),
        ("aprocess", "Arne Process", ("process_manager",), (), False),
        ("banalyst", "Bea Analyst", ("analyst",), (), False),
    ]
    seen: set[str] = set()
    unique: list[Person] = []
    for person in people:  # the OS login may coincide with a demo login
        if person[0] not in seen:
            seen.add(person[0])
            unique.append(person)
    return unique


def name_for(login: str) -> str:
    rng = random.Random(login)
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
