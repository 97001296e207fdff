"""The demo's people: about thirty staff across every role and group, the OS login among them as shift lead.

Every display name is a person's name (never a role or a remark such as "you"): the OS account's own full
name where it has one, else one from each login's own random generator, so they stay the same whatever the
seed.
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
        (os_login, account_name(os_login), ("shift_lead",), ("SD-L1",), True),
        ("mlopez", "Maria Lopez", ("shift_lead",), ("SD-L1",), False),
        ("itadmin", name_for("itadmin"), ("admin",), (), False),
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
        ("xproblem", name_for("xproblem"), ("problem_manager",), ("ENG-L3",), False),
        ("ychange", name_for("ychange"), ("change_manager", "cab_member"), (), False),
        # The deputy change manager: an emergency change the other raises still has someone to approve it.
        ("zdeputy", name_for("zdeputy"), ("change_manager", "cab_member"), (), False),
        ("aprocess", name_for("aprocess"), ("process_manager",), (), False),
        ("banalyst", name_for("banalyst"), ("analyst",), (), False),
    ]
    seen: set[str] = set()
    names: set[str] = set()
    unique: list[Person] = []
    for login, name, roles, groups, lead in people:  # the OS login may coincide with a demo login
        if login in seen:
            continue
        seen.add(login)
        tries = 0
        while name in names:  # two people never share a name: a generated one is drawn again
            tries += 1
            name = name_for(f"{login}#{tries}")
        names.add(name)
        unique.append((login, name, roles, groups, lead))
    return unique


def name_for(login: str) -> str:
    rng = random.Random(login)
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def account_name(login: str) -> str:
    """The full name the password database gives the account, if it reads as a person's (at least two
    words: "root" or "Demo user" of a service account do not), else a generated one."""
    import pwd

    try:
        full = pwd.getpwnam(login).pw_gecos.split(",")[0].strip()
    except (KeyError, OSError):
        full = ""
    words = full.split()
    if len(words) >= 2 and all(word[:1].isupper() and word.replace("-", "").isalpha() for word in words):
        return full
    return name_for(login)
