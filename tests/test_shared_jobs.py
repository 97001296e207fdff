"""What the scheduled jobs share with each other and with the lifecycle: how a run reports, and the emergency
change's call for approval."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from itsm_tui.jobs import change_reminders, sla_scan
from itsm_tui.models import Notification
from itsm_tui.scheduler import JOB_ID, REMINDER_JOB_ID, make_scheduler
from itsm_tui.services import changes

NOW = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)


async def test_each_job_reports_its_result_or_its_failure_and_the_schedule_goes_on(db, config, monkeypatch):
    results: list[object] = []
    errors: list[Exception] = []
    scheduler = make_scheduler(db, config, results.append, errors.append, on_reminders=results.append)
    scheduler.start(paused=True)
    try:
        scan, remind = scheduler.get_job(JOB_ID).func, scheduler.get_job(REMINDER_JOB_ID).func
        monkeypatch.setattr(sla_scan, "scan", lambda db, config: "scanned")
        monkeypatch.setattr(change_reminders, "remind", lambda db, config: "reminded")
        await scan()
        await remind()
        assert results == ["scanned", "reminded"] and errors == []

        def fail(db, config):
            raise RuntimeError("the database is gone")

        monkeypatch.setattr(sla_scan, "scan", fail)
        monkeypatch.setattr(change_reminders, "remind", fail)
        await scan()  # never raises: a lost database must not stop the schedule
        await remind()
        assert results == ["scanned", "reminded"]
        assert [str(e) for e in errors] == ["the database is gone"] * 2
    finally:
        scheduler.shutdown(wait=False)


def test_an_emergency_change_asks_the_change_managers_but_not_who_raised_it(db, staff):
    chm, lead, agent = staff["chm"], staff["lead"], staff["agent1"]
    with db.session() as session:
        managers = [chm.id, lead.id]
        told = changes.notify_emergency_approval(session, managers, 42, "CHG0000042", "Fix", chm.id, NOW)
        again = changes.notify_emergency_approval(session, managers, 42, "CHG0000042", "Fix", chm.id, NOW)
        other = changes.notify_emergency_approval(
            session, [agent.id], 43, "CHG0000043", "Patch", None, NOW, exclude=agent.id
        )
    assert (told, again, other) == (1, 0, 0)  # once per person: the reminder job repeats it harmlessly
    with db.read_session() as session:
        rows = session.execute(
            select(Notification.user_id, Notification.kind, Notification.event_key, Notification.message)
        ).all()
    assert [tuple(r) for r in rows] == [
        (
            lead.id,
            "change_approval",
            "change_approval:42",
            "Emergency change CHG0000042 awaits your approval: Fix",
        )
    ]
