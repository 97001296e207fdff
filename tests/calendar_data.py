"""A fixed change calendar for console tests and snapshots: March 2026 (the month Europe changes to summer
time), two network changes that clash on one switch, a standard change, an emergency change with a blackout
override, a change outside its maintenance window and a closed one; the clock stands at FIXED."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from itsm_tui.services import changes
from itsm_tui.services import users as user_service

FIXED = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)  # a Friday
SATURDAY = datetime(2026, 3, 21, tzinfo=UTC)


def build_calendar(db, config, staff) -> dict[str, str]:
    """Windows, a blackout and six changes in several states; returns their references by name.

    cab1 joins NET-L2, so it is the one CAB member asked about network changes (and, as the only CAB member,
    about the rest).
    """
    early = FIXED - timedelta(days=15)
    with db.session() as s:
        user_service.change_roles(s, actor_login="admin1", login="cab1", add_groups=["NET-L2"])
        changes.add_window(
            s,
            staff["chm"],
            name="Network weekly window",
            service="network",
            rrule="FREQ=WEEKLY;BYDAY=SA",
            start_local="22:00",
            duration_minutes=360,
            timezone="Europe/Berlin",
            config=config,
            valid_from=datetime(2025, 1, 1, tzinfo=UTC),
            now=early,
        )
        changes.add_window(
            s,
            staff["chm"],
            name="Email mid-week window",
            service="email",
            rrule="FREQ=WEEKLY;BYDAY=WE",
            start_local="21:00",
            duration_minutes=180,
            timezone="Europe/Berlin",
            config=config,
            valid_from=datetime(2025, 1, 1, tzinfo=UTC),
            now=early,
        )
        changes.add_blackout(
            s,
            staff["chm"],
            name="Quarter close",
            service="erp",
            reason="Finance closes the quarter",
            start=datetime(2026, 3, 30, tzinfo=UTC),
            end=datetime(2026, 4, 2, tzinfo=UTC),
            config=config,
            now=early,
        )
    refs: dict[str, str] = {}

    def make(name, actor, **values) -> str:
        if values["change_type"] != "standard":
            values.setdefault("implementation_plan", "Follow the runbook.")
            values.setdefault("backout_plan", "Roll back to the snapshot.")
        with db.session() as s:
            refs[name] = changes.create_change(s, config, staff[actor], now=early, **values).ref
        return refs[name]

    def step(fn, actor, name, at=early, **kw):
        with db.session() as s:
            fn(s, config, staff[actor], refs[name], now=at, **kw)

    make(
        "switch",
        "net1",
        change_type="normal",
        title="Replace core switch line card",
        targets=["network:core-sw-01"],
        start=SATURDAY + timedelta(hours=21, minutes=30),
        end=SATURDAY + timedelta(hours=24, minutes=30),
        implementer="net1",
        risk="high",
    )
    step(changes.submit, "net1", "switch")
    step(changes.assess, "chm", "switch")
    make(
        "firmware",
        "lead",
        change_type="normal",
        title="Upgrade core switch firmware",
        targets=["core-sw-01"],
        start=SATURDAY + timedelta(hours=22, minutes=30),
        end=SATURDAY + timedelta(hours=25, minutes=30),
        implementer="eng1",
    )
    step(changes.submit, "lead", "firmware")
    make(
        "patch",
        "net1",
        change_type="standard",
        template="std-patch",
        targets=["vpn"],
        start=datetime(2026, 3, 24, 20, tzinfo=UTC),
        implementer="net1",
    )
    step(changes.submit, "net1", "patch")
    step(changes.schedule, "net1", "patch")
    make(
        "erp",
        "app1",
        change_type="emergency",
        title="Fix failing ERP database disk",
        targets=["erp:erp-db-01"],
        start=datetime(2026, 3, 31, 8, tzinfo=UTC),
        end=datetime(2026, 3, 31, 9, tzinfo=UTC),
        implementer="app1",
        risk="high",
    )
    step(changes.submit, "chm", "erp", override_reason="Disk failing; the close needs the ERP")
    make(
        "mail",
        "app1",
        change_type="normal",
        title="Migrate shared mailboxes",
        targets=["email"],
        start=datetime(2026, 3, 26, 10, tzinfo=UTC),
        end=datetime(2026, 3, 26, 11, tzinfo=UTC),
        implementer="app1",
    )
    step(changes.submit, "app1", "mail")
    make(
        "printers",
        "lead",
        change_type="normal",
        title="Replace floor 2 print server",
        targets=["workplace"],
        start=datetime(2026, 3, 10, 9, tzinfo=UTC),
        end=datetime(2026, 3, 10, 10, tzinfo=UTC),
        implementer="net1",
    )
    step(changes.submit, "lead", "printers")
    step(changes.assess, "chm", "printers")
    step(changes.approve, "cab1", "printers")
    step(changes.schedule, "chm", "printers")
    step(changes.start_implementation, "net1", "printers", at=datetime(2026, 3, 10, 9, tzinfo=UTC))
    step(
        changes.complete,
        "net1",
        "printers",
        at=datetime(2026, 3, 10, 9, 40, tzinfo=UTC),
        outcome="implemented",
    )
    step(changes.close, "chm", "printers", at=datetime(2026, 3, 11, 9, tzinfo=UTC))
    return refs
