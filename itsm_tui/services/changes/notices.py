"""Telling people about the conflicts of their changes, the approvers about an emergency change to decide, and
the change managers about one nobody can approve: each once per person, whether told by a step of the
lifecycle or by the reminder job."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change
from itsm_tui.services import notifications
from itsm_tui.services.conflicts import Conflict


def notify_conflicts(
    session: Session, found: Iterable[Conflict], now: datetime, *, exclude: int | None = None
) -> int:
    """Tell who raised and who implements each change of a conflict, and the change managers of the
    serious ones, once per conflict (a moved change makes a new conflict)."""
    worth_telling = [c for c in found if c.severity != "overridden"]
    if not worth_telling:
        return 0
    ids = sorted({i for c in worth_telling for i in c.change_ids if i is not None})
    people = {
        r.id: (r.requested_by_id, r.implementer_id)
        for r in session.execute(
            select(Change.id, Change.requested_by_id, Change.implementer_id).where(Change.id.in_(ids))
        )
    }
    managers = notifications.users_with_roles(session, ["change_manager"])
    sent = 0
    for conflict in worth_telling:
        recipients = {u for i in conflict.change_ids if i in people for u in people[i] if u}
        if conflict.severity in ("blocked", "conflict"):
            recipients |= set(managers)
        subject = next((i for i in conflict.change_ids if i is not None), None)
        sent += notifications.notify(
            session,
            recipients,
            kind="change_conflict",
            event_key=f"change_conflict:{conflict.key}",
            entity=("change", subject) if subject else None,
            message=conflict.message,
            now=now,
            exclude=exclude,
        )
    return sent


def notify_emergency_approval(
    session: Session,
    managers: Iterable[int],
    change_id: int,
    ref: str,
    title: str,
    requested_by_id: int | None,
    now: datetime,
    *,
    exclude: int | None = None,
    round_key: str | None = None,
) -> int:
    """Ask the approvers of an emergency change (of ``managers``: never who raised or implements it) to
    decide it; ``round_key`` tells a new request (after a move) from the first one."""
    implementer_id = session.scalar(select(Change.implementer_id).where(Change.id == change_id))
    return notifications.notify(
        session,
        [m for m in managers if m not in (requested_by_id, implementer_id)],
        kind="change_approval",
        event_key=f"change_approval:{change_id}" + (f":{round_key}" if round_key else ""),
        entity=("change", change_id),
        message=f"Emergency change {ref} awaits your approval: {title}",
        now=now,
        exclude=exclude,
    )


def notify_unapprovable(
    session: Session, config: DeskConfig, change: Change, notice: str, now: datetime, *, exclude: int | None
) -> int:
    """Tell the change managers and who the RACI matrix makes accountable for or informs of emergency
    changes (the shift leads, as shipped) that nobody can approve ``change``, once."""
    roles = {"change_manager"}
    for letter in ("A", "I"):
        with contextlib.suppress(KeyError):  # a matrix without the activity: the change managers alone
            roles |= set(config.raci_roles("emergency_change", letter))
    return notifications.notify(
        session,
        notifications.users_with_roles(session, sorted(roles)),
        kind="change_approval",
        event_key=f"change_unapprovable:{change.id}",
        entity=("change", change.id),
        message=f"{change.ref}: {notice}",
        now=now,
        exclude=exclude,
    )
