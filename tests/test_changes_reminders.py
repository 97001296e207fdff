"""The change reminder job: awaiting your approval, conflict detected, starting within the lead time and
overdue post-implementation reviews, each sent once per person however often (and in however many
processes) the job runs; and the job sits next to the SLA job in the scheduler."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from itsm_tui.db import Database
from itsm_tui.jobs.change_reminders import remind
from itsm_tui.models import Notification, User
from itsm_tui.scheduler import REMINDER_JOB_ID, make_scheduler
from itsm_tui.services import changes

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
SAT = datetime(2026, 3, 7, 22, tzinfo=UTC)


def raise_change(db, config, staff, start, hours=2, who="net1", implementer="net1", **kw) -> str:
    with db.session() as s:
        ref = changes.create_change(
            s,
            config,
            staff[who],
            change_type=kw.pop("change_type", "normal"),
            title=kw.pop("title", "Work"),
            targets=kw.pop("targets", ["network:core-sw-01"]),
            start=start,
            end=start + timedelta(hours=hours),
            implementation_plan="Do.",
            backout_plan="Undo.",
            implementer=implementer,
            now=NOW,
        ).ref
    return ref


def step(db, config, staff, fn, who, ref, at=NOW, **kw):
    with db.session() as s:
        return fn(s, config, staff[who], ref, now=at, **kw).state


def inbox(db, kind) -> list[tuple[str, str]]:
    with db.read_session() as s:
        return sorted(
            s.execute(
                select(User.login, Notification.message)
                .join(User, User.id == Notification.user_id)
                .where(Notification.kind == kind)
            ).tuples()
        )


def forget(db) -> None:
    with db.session() as s:
        s.execute(delete(Notification))


def test_awaiting_approval_is_sent_once_and_caught_up_after_a_loss(db, config, staff):
    ref = raise_change(db, config, staff, SAT)
    step(db, config, staff, changes.submit, "net1", ref)
    step(db, config, staff, changes.assess, "chm", ref)
    assert [login for login, _ in inbox(db, "change_approval") if login == "cab1"] == ["cab1"]
    assert remind(db, config, NOW).approvals == 0  # already told at assessment
    forget(db)  # e.g. the console that assessed it lost the row: the job sends it again, once
    assert remind(db, config, NOW).approvals == 1
    assert remind(db, config, NOW).approvals == 0
    assert inbox(db, "change_approval") == [("cab1", f"{ref} awaits your approval: Work")]


def test_an_emergency_change_waits_on_the_change_managers(db, config, staff):
    ref = raise_change(db, config, staff, NOW + timedelta(hours=2), change_type="emergency")
    step(db, config, staff, changes.submit, "net1", ref)
    forget(db)
    assert remind(db, config, NOW).approvals == 1
    assert inbox(db, "change_approval") == [("chm", f"Emergency change {ref} awaits your approval: Work")]


def test_a_conflict_is_reported_once_to_everyone_concerned(db, config, staff):
    first = raise_change(db, config, staff, SAT)
    second = raise_change(db, config, staff, SAT + timedelta(hours=1), who="lead", implementer="eng1")
    for ref, who in ((first, "net1"), (second, "lead")):
        step(db, config, staff, changes.submit, who, ref)
    forget(db)
    result = remind(db, config, NOW)
    assert result.conflicts == 4
    told = inbox(db, "change_conflict")
    assert [login for login, _ in told] == ["chm", "eng1", "lead", "net1"]
    assert told[0][1] == (
        f"{first} and {second} both change CI core-sw-01 (network) during "
        "2026-03-07 23:00 to 2026-03-08 00:00 UTC"
    )
    assert remind(db, config, NOW).conflicts == 0
    # Moving one so they still meet is a new conflict, reported again.
    step(db, config, staff, changes.reschedule, "lead", second, start=SAT + timedelta(minutes=30), end=None)
    assert len(inbox(db, "change_conflict")) == 8


def test_starting_soon_within_the_lead_time_once_per_planned_start(db, config, staff):
    soon = raise_change(db, config, staff, NOW + timedelta(hours=20), targets=["vpn"])
    later = raise_change(
        db, config, staff, NOW + timedelta(hours=30), targets=["crm"], who="app1", implementer="app1"
    )
    for ref, who in ((soon, "net1"), (later, "app1")):
        step(db, config, staff, changes.submit, who, ref)
        step(db, config, staff, changes.assess, "chm", ref)
        step(db, config, staff, changes.approve, "cab1", ref)
        step(db, config, staff, changes.schedule, "chm", ref)
    result = remind(db, config, NOW)
    assert result.starting == 1  # net1 raised and implements it: one person
    assert inbox(db, "change_starting") == [
        ("net1", f"{soon} starts in 20 h (2026-03-03 05:00 UTC): Work"),
    ]
    assert remind(db, config, NOW + timedelta(hours=1)).starting == 0
    assert remind(db, config, NOW + timedelta(hours=7)).starting == 1  # now the crm change is due
    step(db, config, staff, changes.reschedule, "chm", soon, start=NOW + timedelta(hours=22), end=None)
    assert remind(db, config, NOW + timedelta(hours=7)).starting == 0  # moved: back to the CAB, not due
    step(db, config, staff, changes.approve, "cab1", soon)
    step(db, config, staff, changes.schedule, "chm", soon)
    assert remind(db, config, NOW + timedelta(hours=7)).starting == 1  # a new start, a new reminder


def test_an_overdue_post_implementation_review_is_reported(db, config, staff):
    def failed(start) -> str:
        ref = raise_change(db, config, staff, start, targets=["vpn"])
        step(db, config, staff, changes.submit, "net1", ref)
        step(db, config, staff, changes.assess, "chm", ref)
        step(db, config, staff, changes.approve, "cab1", ref)
        step(db, config, staff, changes.schedule, "chm", ref)
        step(db, config, staff, changes.start_implementation, "net1", ref, at=start)
        step(
            db,
            config,
            staff,
            changes.complete,
            "net1",
            ref,
            at=start + timedelta(hours=1),
            outcome="failed",
            note="Gateway did not come back",
        )
        return ref

    old = failed(datetime(2026, 3, 3, 22, tzinfo=UTC))
    recent = failed(datetime(2026, 3, 7, 22, tzinfo=UTC))
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)  # 6.5 days after the first ended, 2.5 after the second
    assert remind(db, config, at).reviews == 2
    assert inbox(db, "change_review") == [
        ("chm", f"Post-implementation review of {old} (failed) is overdue: Work"),
        ("net1", f"Post-implementation review of {old} (failed) is overdue: Work"),
    ]
    step(
        db, config, staff, changes.start_review, "chm", recent, at=at, notes="Firmware bug; vendor case open"
    )
    assert remind(db, config, at + timedelta(days=5)).reviews == 0  # old: told; recent: reviewed


def test_concurrent_jobs_send_each_reminder_once(db, db_url, config, staff):
    first = raise_change(db, config, staff, SAT)
    second = raise_change(db, config, staff, SAT + timedelta(hours=1), who="lead", implementer="eng1")
    for ref, who in ((first, "net1"), (second, "lead")):
        step(db, config, staff, changes.submit, who, ref)
    forget(db)
    results, errors = [], []

    def run() -> None:
        other = Database.connect(db_url)
        try:
            results.append(remind(other, config, NOW).notifications)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            other.dispose()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with db.read_session() as s:
        total = len(s.scalars(select(Notification.id)).all())
    assert total == 4 and sum(results) == total  # every reminder written by exactly one of the four
    assert remind(db, config, NOW).notifications == 0


async def test_the_reminder_job_runs_beside_the_sla_job(db, config):
    scheduler = make_scheduler(db, config)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job(REMINDER_JOB_ID)
        assert job.max_instances == 1 and job.coalesce is True
        assert job.trigger.interval == timedelta(seconds=config.changes.interval_seconds)
    finally:
        scheduler.shutdown(wait=False)
