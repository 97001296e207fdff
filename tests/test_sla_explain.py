"""Explaining a ticket's SLA times, and previewing what a change would do to them (and what the SLA job then
does), worked out by hand; the command line; the ticket screen's `w` panel and the forms' preview (Pilot).

The instants below are worked out by hand in the comments, from data/sla.toml and data/calendars.toml: P1
and P2 on 24x7 (UTC), P3 on the office calendar (Europe/Berlin, Mon-Thu 08:00-18:00, Fri 08:00-17:00; in
March Berlin is UTC+1, so Monday's hours are 07:00-17:00Z), warnings at 75%.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pilot_helpers import screen_text, settle, shows, squash, wait_until
from sqlalchemy import update

from itsm_tui.app import ItsmApp
from itsm_tui.cli import main
from itsm_tui.config import load_config, shipped_config_dir
from itsm_tui.jobs import sla_scan
from itsm_tui.models import Ticket, User
from itsm_tui.screens.forms import ImpactUrgencyForm, TransitionForm
from itsm_tui.screens.sla_explain import SlaExplainScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import sla_explain, tickets
from itsm_tui.services.errors import InvalidTransition, NotFound
from itsm_tui.services.sla_explain import ProposedChange


def utc(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


MONDAY = 2  # 2026-03-02 is a Monday; 2026-03-07 a Saturday
SATURDAY = 7


@pytest.fixture(scope="module")
def escalating(tmp_path_factory) -> object:
    """The shipped configuration, with an sla.toml whose functional escalation sends a P1/P2 resolution
    breach in a level-1 group to ENG-L3 (as data/sla.toml's [[escalations]] tables do, with a group)."""
    folder: Path = tmp_path_factory.mktemp("escalating-config")
    shipped = (shipped_config_dir() / "sla.toml").read_text()
    policies = shipped.split("[[escalations]]", 1)[0]
    (folder / "sla.toml").write_text(
        policies
        + "[[escalations]]\n"
        + 'event = "breach"\ntarget = "resolution"\npriorities = [1, 2]\nfrom_level = 1\nto = "ENG-L3"\n'
    )
    return load_config(folder)


def create(db, config, actor, at: datetime, **fields) -> str:
    values = {"title": "VPN drops", "requester": "Rita", "impact": "medium", "urgency": "medium"} | fields
    with db.session() as s:
        return tickets.create_ticket(s, config, actor, now=at, **values).ref


def take(db, config, actor, ref: str, at: datetime) -> None:
    with db.session() as s:
        tickets.assign(s, config, actor, ref, now=at)


def move(db, config, actor, ref: str, to: str, at: datetime, **kwargs) -> None:
    with db.session() as s:
        tickets.transition(s, config, actor, ref, to, now=at, **kwargs)


def raise_to(db, config, actor, ref: str, at: datetime, impact: str, urgency: str) -> None:
    with db.session() as s:
        tickets.update_fields(s, config, actor, ref, impact=impact, urgency=urgency, now=at)


def explain(db, config, ref: str, now: datetime) -> sla_explain.Explanation:
    with db.read_session() as s:
        return sla_explain.explain(s, config, ref, now)


def preview(db, config, actor, ref: str, change: ProposedChange, now: datetime) -> sla_explain.Preview:
    with db.read_session() as s:
        return sla_explain.preview(s, config, actor, ref, change, now)


def stored(db, ref: str) -> Ticket:
    with db.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        s.expunge(ticket)
        return ticket


# --------------------------------------------------------------------------- the two examples


def p2_taken_late_then_pending(db, config, staff) -> str:
    """P2 (impact high, urgency medium: 24x7, response 30 min, resolution 480 min) opened Mon 08:00Z, taken
    09:30 (the response 60 min late), in progress 09:31, pending 09:32-12:30, resumed."""
    ref = create(db, config, staff["lead"], utc(MONDAY, 8), impact="high")
    take(db, config, staff["agent1"], ref, utc(MONDAY, 9, 30))
    move(db, config, staff["agent1"], ref, "in_progress", utc(MONDAY, 9, 31))
    move(db, config, staff["agent1"], ref, "pending", utc(MONDAY, 9, 32), reason="customer")
    move(db, config, staff["agent1"], ref, "in_progress", utc(MONDAY, 12, 30))
    return ref


def test_a_p2_taken_late_and_paused(db, config, staff):
    ref = p2_taken_late_then_pending(db, config, staff)
    shown = explain(db, config, ref, utc(MONDAY, 13))

    response = shown.target("response")
    # 30 min from 08:00 on 24x7: due 08:30, warning at 75% (22.5 min) 08:22:30. Taken at 09:30: the target
    # stopped then (responded), breached, and keeps those instants; the pause began after it stopped.
    assert (response.priority, response.calendar, response.always_open) == (2, "24x7", True)
    assert (response.start, response.target_minutes) == (utc(MONDAY, 8), 30)
    assert (response.running, response.stopped_by, response.stopped_at) == (
        False,
        "responded",
        utc(MONDAY, 9, 30),
    )
    assert (response.warn_at, response.due_at) == (utc(MONDAY, 8, 22, 30), utc(MONDAY, 8, 30))
    assert response.verdict == "breached"
    assert response.pauses == () and response.retargets == ()
    assert response.recomputed_due_at is None  # the rules give the stored instant

    resolution = shown.target("resolution")
    # 480 min from 08:00 = 16:00, plus the pause 09:32-12:30 = 2h58m = 10680 s (24x7: all of it counts):
    # due 18:58. Warning: 360 min = 14:00, plus 2h58m = 16:58.
    assert (resolution.start, resolution.target_minutes, resolution.running) == (utc(MONDAY, 8), 480, True)
    [pause] = resolution.pauses
    assert (pause.start, pause.end, pause.reason) == (utc(MONDAY, 9, 32), utc(MONDAY, 12, 30), "customer")
    assert (pause.business_seconds, pause.counted) == (10680.0, True)
    assert resolution.paused_seconds == 10680.0
    assert (resolution.warn_at, resolution.due_at) == (utc(MONDAY, 16, 58), utc(MONDAY, 18, 58))
    # At 13:00, before the warning: on track, 18:58 - 13:00 = 5h58m = 21480 s left.
    assert (resolution.verdict, resolution.seconds_left) == ("ok", 21480.0)
    assert resolution.recomputed_due_at is None and resolution.due_if_resumed_now is None


def p3_on_saturday_raised_to_p1(db, config, staff) -> str:
    """P3 (office calendar) opened Saturday 10:00Z, taken 10:05, in progress 10:10, pending 10:30-12:30Z,
    raised to P1 (impact and urgency high: 24x7, response 15 min, resolution 240 min) at 13:00Z by lead."""
    ref = create(db, config, staff["lead"], utc(SATURDAY, 10))
    take(db, config, staff["agent1"], ref, utc(SATURDAY, 10, 5))
    move(db, config, staff["agent1"], ref, "in_progress", utc(SATURDAY, 10, 10))
    move(db, config, staff["agent1"], ref, "pending", utc(SATURDAY, 10, 30), reason="vendor")
    move(db, config, staff["agent1"], ref, "in_progress", utc(SATURDAY, 12, 30))
    raise_to(db, config, staff["lead"], ref, utc(SATURDAY, 13), "high", "high")
    return ref


def test_a_p3_on_the_office_calendar_raised_to_p1_on_saturday(db, config, staff):
    ref = p3_on_saturday_raised_to_p1(db, config, staff)
    shown = explain(db, config, ref, utc(SATURDAY, 13, 30))
    assert shown.priority == 1

    resolution = shown.target("resolution")
    # Re-targeted from the opening on P1's 24x7 calendar: 240 min from 10:00 = 14:00, and the pause
    # 10:30-12:30 measured again on 24x7 is 2 h (on the office calendar, a Saturday, it was nothing):
    # due 16:00Z. Warning: 180 min = 13:00, plus 2 h = 15:00Z.
    assert (resolution.priority, resolution.calendar, resolution.target_minutes) == (1, "24x7", 240)
    assert resolution.start == utc(SATURDAY, 10)
    [pause] = resolution.pauses
    assert (pause.start, pause.end, pause.business_seconds, pause.counted) == (
        utc(SATURDAY, 10, 30),
        utc(SATURDAY, 12, 30),
        7200.0,
        True,
    )
    assert (resolution.warn_at, resolution.due_at) == (utc(SATURDAY, 15), utc(SATURDAY, 16))
    [change] = resolution.retargets
    assert (change.at, change.by, change.old_priority, change.new_priority, change.applied) == (
        utc(SATURDAY, 13),
        "lead",
        3,
        1,
        True,
    )
    assert resolution.verdict == "ok"  # 13:30 is before the 15:00 warning

    response = shown.target("response")
    # Responded at 10:05 on P3: it stopped then and keeps the P3 instants, measured on the office calendar
    # from Saturday 10:00: the first working time is Monday 08:00 Berlin = 07:00Z; 120 min: due Mon 09:00Z,
    # 90 min: warning Mon 08:30Z. The raise came after it stopped and moved nothing.
    assert (response.priority, response.calendar, response.calendar_timezone) == (
        3,
        "office",
        "Europe/Berlin",
    )
    assert (response.warn_at, response.due_at) == (utc(9, 8, 30), utc(9, 9))
    assert (response.stopped_by, response.verdict) == ("responded", "met")
    assert [(c.old_priority, c.new_priority, c.applied) for c in response.retargets] == [(3, 1, False)]
    assert response.pauses == ()  # the pause began after the response


def test_a_pause_under_way_says_what_it_has_lasted_and_where_the_due_would_go(db, config, staff):
    ref = create(db, config, staff["lead"], utc(MONDAY, 8), impact="high")  # P2, 24x7
    move(db, config, staff["agent1"], ref, "in_progress", utc(MONDAY, 8, 10))
    move(db, config, staff["agent1"], ref, "pending", utc(MONDAY, 9), reason="vendor")
    resolution = explain(db, config, ref, utc(MONDAY, 10, 30)).target("resolution")
    # Paused since 09:00: 1h30m so far at 10:30. The stored due is 16:00 (480 min, the pause not yet
    # counted); resumed at 10:30 it would be 16:00 + 1h30m = 17:30.
    [pause] = resolution.pauses
    assert (pause.under_way, pause.business_seconds, pause.counted) == (True, 5400.0, True)
    assert resolution.due_at == utc(MONDAY, 16)
    assert resolution.due_if_resumed_now == utc(MONDAY, 17, 30)


def test_an_unknown_ticket_is_not_found(db, config, staff):
    with db.read_session() as s, pytest.raises(NotFound):
        sla_explain.explain(s, config, "INC9999999", utc(MONDAY, 8))


# --------------------------------------------------------------------------- the preview


def worked_p3(db, config, staff) -> str:
    """P3 opened Mon 08:00Z (09:00 Berlin), taken by agent1 08:10, in progress 08:15."""
    ref = create(db, config, staff["lead"], utc(MONDAY, 8), service="vpn")
    take(db, config, staff["agent1"], ref, utc(MONDAY, 8, 10))
    move(db, config, staff["agent1"], ref, "in_progress", utc(MONDAY, 8, 15))
    return ref


def test_an_urgency_raise_that_breaches_at_once_names_the_escalation(db, escalating, staff):
    config = escalating
    ref = worked_p3(db, config, staff)
    now = utc(MONDAY, 17)
    seen = preview(db, config, staff["agent1"], ref, ProposedChange(urgency="high"), now)

    # Before: P3 on the office calendar from Mon 09:00 Berlin. Resolution 1440 min = 24 h: Mon 09-18 (9 h),
    # Tue 08-18 (10 h), Wed 08-13 (5 h): due Wed 13:00 Berlin = 12:00Z. Warning 18 h: Mon 9 h + Tue 08-17:
    # Tue 17:00 Berlin = 16:00Z. After: medium/high is P2 on 24x7: 480 min from 08:00Z = 16:00Z, warning
    # 360 min = 14:00Z; at 17:00Z it has breached.
    assert (seen.priority_before, seen.priority_after) == (3, 2)
    resolution = seen.target("resolution")
    assert (resolution.due_before, resolution.warn_before) == (utc(4, 12), utc(3, 16))
    assert (resolution.due_after, resolution.warn_after) == (utc(MONDAY, 16), utc(MONDAY, 14))
    assert (resolution.verdict_before, resolution.verdict_after) == ("ok", "breached")
    assert resolution.event_now == "breach" and resolution.calendar_after == "24x7"
    # The response (met at 08:10) keeps its P3 instants: 120 min from 09:00 Berlin = 10:00Z.
    response = seen.target("response")
    assert response.due_before == response.due_after == utc(MONDAY, 10)
    assert response.verdict_after == "met" and response.event_now is None

    # The SLA job flags the breach and, by the configured escalation, hands it to ENG-L3.
    assert [(s.target, s.event, s.escalate_to) for s in seen.job] == [("resolution", "breach", "ENG-L3")]
    assert seen.escalate_to == "ENG-L3"
    [line] = seen.warnings
    assert "breaches now" in line and "ENG-L3" in line and "you lose it" in line
    data = seen.as_json()
    assert data["targets"][1]["due_after"] == "2026-03-02T16:00:00Z" and data["warnings"] == [line]

    # Nothing was written; saving it and running the job does what the preview said.
    assert stored(db, ref).priority == 3
    raise_to(db, config, staff["agent1"], ref, now, "medium", "high")
    saved = stored(db, ref)
    assert (saved.resolution_due_at, saved.resolution_warn_at) == (utc(MONDAY, 16), utc(MONDAY, 14))
    result = sla_scan.scan(db, config, now + timedelta(seconds=1))
    assert (result.breaches, result.escalations) == (1, 1)
    after = stored(db, ref)
    with db.read_session() as s:
        group = tickets.view(s, tickets.get_ticket(s, ref)).group
    assert (group, after.assignee_id, after.status) == ("ENG-L3", None, "new")


def test_the_shipped_rule_escalates_to_the_service_group(db, config, staff):
    """data/sla.toml escalates a P1/P2 resolution breach to the support group of the ticket's service."""
    ref = worked_p3(db, config, staff)  # service vpn: supported by NET-L2
    seen = preview(db, config, staff["lead"], ref, ProposedChange(urgency="high"), utc(MONDAY, 17))
    assert seen.escalate_to == "NET-L2"
    assert "agent1 loses it" in seen.warnings[0]
    # Before the breach, the preview says where a breach would send it.
    early = preview(db, config, staff["lead"], ref, ProposedChange(urgency="high"), utc(MONDAY, 12))
    assert early.job == () and early.warnings == ()
    assert early.target("resolution").escalates_on_breach == "NET-L2"
    assert early.target("resolution").verdict_after == "ok"


def test_an_escalation_rule_chooses_as_the_job_does(escalating, config):
    target = sla_explain.escalation_target
    assert target(escalating, "breach", "resolution", 2, 1, "vpn", "SD-L1") == "ENG-L3"
    assert target(escalating, "breach", "resolution", 3, 1, "vpn", "SD-L1") is None  # not its priority
    assert target(escalating, "breach", "resolution", 2, 2, "vpn", "NET-L2") is None  # not from level 1
    assert target(escalating, "warning", "resolution", 2, 1, "vpn", "SD-L1") is None  # not its event
    assert target(config, "breach", "resolution", 1, 1, "email", "SD-L1") == "APP-L2"  # the service's group
    assert target(config, "breach", "resolution", 1, 1, None, "SD-L1") is None  # no service, no group
    assert target(config, "breach", "response", 1, 1, "workplace", "SD-L1") is None  # there already


def preview_then_save(
    db, config, actor, ref, change: ProposedChange, now: datetime, save
) -> sla_explain.Preview:
    """Preview ``change``, check nothing was written, make it with ``save``, and check the stored instants
    and verdicts are the previewed ones."""
    before = stored(db, ref)
    seen = preview(db, config, actor, ref, change, now)
    unchanged = stored(db, ref)
    assert (unchanged.version, unchanged.resolution_due_at) == (before.version, before.resolution_due_at)
    save()
    saved = stored(db, ref)
    from itsm_tui.services import sla

    for target in seen.targets:
        warn = saved.response_warn_at if target.target == "response" else saved.resolution_warn_at
        due = saved.response_due_at if target.target == "response" else saved.resolution_due_at
        assert (target.warn_after, target.due_after) == (warn, due), target.target
        assert target.verdict_after == sla.sla_state(saved, now, target.target), target.target
    return seen


def test_previews_of_pending_resuming_and_reopening_match_the_saves(db, config, staff):
    agent = staff["agent1"]
    ref = create(db, config, staff["lead"], utc(MONDAY, 8), impact="high")  # P2, 24x7: due 16:00
    move(db, config, agent, ref, "in_progress", utc(MONDAY, 8, 10))

    # To pending at 09:00: the clock stops; the instants stay until it resumes.
    going = ProposedChange(status="pending", pending_reason="vendor")
    seen = preview_then_save(
        db,
        config,
        agent,
        ref,
        going,
        utc(MONDAY, 9),
        lambda: move(db, config, agent, ref, "pending", utc(MONDAY, 9), reason="vendor"),
    )
    assert seen.target("resolution").paused_after and not seen.moves

    # Back at 11:00: 2 h paused on 24x7 move the due from 16:00 to 18:00, the warning from 14:00 to 16:00.
    back = ProposedChange(status="in_progress")
    seen = preview_then_save(
        db,
        config,
        agent,
        ref,
        back,
        utc(MONDAY, 11),
        lambda: move(db, config, agent, ref, "in_progress", utc(MONDAY, 11)),
    )
    resolution = seen.target("resolution")
    assert (resolution.due_before, resolution.due_after) == (utc(MONDAY, 16), utc(MONDAY, 18))
    assert resolution.warn_after == utc(MONDAY, 16) and seen.moves

    # Resolved at 12:00, reopened Tuesday 12:00 (without a restart, as data/sla.toml says): the resolved
    # pause (24 h on 24x7) moves the due to 18:00 + 24 h = Tue 18:00; 10 h used, so it is on track.
    move(db, config, agent, ref, "resolved", utc(MONDAY, 12), code="fixed", note="done")
    reopen = ProposedChange(status="in_progress")
    seen = preview_then_save(
        db,
        config,
        agent,
        ref,
        reopen,
        utc(3, 12),
        lambda: move(db, config, agent, ref, "in_progress", utc(3, 12), reason="still drops"),
    )
    resolution = seen.target("resolution")
    assert (resolution.verdict_before, resolution.verdict_after) == ("met", "ok")
    assert resolution.due_after == utc(3, 18) and resolution.running_after

    # The explanation lists both pauses with what each counted: 2 h pending and 24 h resolved.
    explained = explain(db, config, ref, utc(3, 12)).target("resolution")
    assert [(p.reason, p.business_seconds, p.counted) for p in explained.pauses] == [
        ("vendor", 7200.0, True),
        ("resolved", 86400.0, True),
    ]
    assert (explained.start_kind, explained.due_at, explained.verdict) == ("opened", utc(3, 18), "ok")


def test_a_move_the_lifecycle_does_not_allow_is_refused(db, config, staff):
    ref = create(db, config, staff["lead"], utc(MONDAY, 8))
    with pytest.raises(InvalidTransition):
        preview(db, config, staff["agent1"], ref, ProposedChange(status="pending"), utc(MONDAY, 9))


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def as_agent(monkeypatch, db):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "agent1")
    with db.session() as s:
        s.execute(update(User).where(User.login == "agent1").values(timezone="Europe/Berlin"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_explains_in_the_persons_zone(db, db_url, config, staff, capsys, as_agent):
    ref = p3_on_saturday_raised_to_p1(db, config, staff)
    code, out, err = run(
        capsys, "sla", "explain", ref.lower(), "--db", db_url, "--now", "2026-03-07T13:30:00Z"
    )
    assert code == 0, err
    text = squash(out)
    assert squash(f"{ref} P1 in_progress (times in Europe/Berlin") in text
    # Berlin is UTC+1 in March: the resolution due 16:00Z reads 17:00 CET, the pause 11:30-13:30 CET.
    assert squash("Resolution target: ok") in text
    assert squash("P1, measured on calendar 24x7 (always open)") in text
    assert (
        squash("2026-03-07 11:30 CET - 2026-03-07 13:30 CET vendor: 2h00m business time, moved the due")
        in text
    )
    assert squash("2026-03-07 14:00 CET by lead: P3 -> P1 (re-measured from the start)") in text
    assert squash("Due 2026-03-07 17:00 CET") in text
    assert squash("Response target: met (stopped: responded 2026-03-07 11:05 CET") in text
    assert squash("P3, measured on calendar office (Europe/Berlin working hours)") in text


def test_cli_json_gives_utc_instants(db, db_url, config, staff, capsys, as_agent):
    ref = p2_taken_late_then_pending(db, config, staff)
    code, out, err = run(
        capsys, "sla", "explain", ref, "--db", db_url, "--now", "2026-03-02T13:00:00Z", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    response, resolution = data["targets"]
    assert (response["target"], response["due_at"], response["verdict"]) == (
        "response",
        "2026-03-02T08:30:00Z",
        "breached",
    )
    assert resolution["due_at"] == "2026-03-02T18:58:00Z"
    assert resolution["pauses"] == [
        {
            "start": "2026-03-02T09:32:00Z",
            "end": "2026-03-02T12:30:00Z",
            "reason": "customer",
            "business_seconds": 10680.0,
            "counted": True,
        }
    ]
    assert data["now"] == "2026-03-02T13:00:00Z"


def test_cli_unknown_ticket_is_one_line_and_exit_2(db, db_url, staff, capsys, as_agent):
    code, out, err = run(capsys, "sla", "explain", "INC0000404\x1b[2J", "--db", db_url)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "\x1b" not in err and "INC0000404" in err


def test_cli_people_text_is_made_safe(db, db_url, config, staff, capsys, as_agent):
    ref = create(db, config, staff["lead"], utc(MONDAY, 8), title="Evil \x1b[31mred\x1b[0m\ntitle")
    code, out, _ = run(capsys, "sla", "explain", ref, "--db", db_url)
    assert code == 0 and "\x1b" not in out and "^[[31mred" in out


# --------------------------------------------------------------------------- the console

SIZE = (80, 24)


async def open_ticket(app, pilot, ref: str) -> TicketScreen:
    with app.db.read_session() as s:
        ticket_id = tickets.get_ticket(s, ref).id
    app.open_ticket(ticket_id)
    await wait_until(
        pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None, "the ticket"
    )
    await settle(pilot)
    return app.screen


@pytest.fixture
def desk(staff_sqlite):
    return staff_sqlite


async def test_w_shows_why_these_sla_times_and_escape_closes(desk, config):
    db, staff = desk
    ref = p3_on_saturday_raised_to_p1(db, config, staff)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False, clock=lambda: utc(SATURDAY, 13, 30))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_ticket(app, pilot, ref)
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, SlaExplainScreen), "the panel")
        panel = app.screen
        await wait_until(pilot, lambda: panel.explanation is not None, "the explanation")
        await settle(pilot)
        text = screen_text(app)
        assert "Why these SLA times" in text
        assert shows(app, "Resolution") and shows(app, "P1 on 24x7")
        assert shows(app, "10:30 - 12:30") and shows(app, "2h00m")  # the staff user's zone is UTC
        assert shows(app, "lead") and shows(app, "P3 -> P1")
        assert shows(app, "Due 03-07 16:00 2h30m left")
        # The response stopped on P3 (office) and kept its Monday instants; the raise came after.
        assert shows(app, "Response met P3 on office") and shows(app, "Due 03-09 09:00")
        assert shows(app, "after it stopped")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "the ticket again")


async def test_a_long_explanation_scrolls_with_the_keyboard(desk, config):
    db, staff = desk
    ref = create(db, config, staff["lead"], utc(MONDAY, 8), impact="high")  # P2, 24x7
    move(db, config, staff["agent1"], ref, "in_progress", utc(MONDAY, 8, 1))
    for hour in range(9, 15):  # six pauses of 30 min each: 09:00-09:30, ..., 14:00-14:30
        move(db, config, staff["agent1"], ref, "pending", utc(MONDAY, hour), reason="customer")
        move(db, config, staff["agent1"], ref, "in_progress", utc(MONDAY, hour, 30))
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False, clock=lambda: utc(MONDAY, 15))
    async with app.run_test(size=SIZE) as pilot:
        await open_ticket(app, pilot, ref)
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, SlaExplainScreen), "the panel")
        panel = app.screen
        await wait_until(pilot, lambda: panel.explanation is not None, "the explanation")
        await settle(pilot)
        # 480 min from 08:00 plus six half hours = 16:00 + 3 h = 19:00: below the fold at 80x24.
        assert panel.query_one("#why-body").has_focus
        assert not shows(app, "Due 03-02 19:00")
        await pilot.press("end")
        await settle(pilot)
        assert shows(app, "Due 03-02 19:00") and shows(app, "14:00 - 14:30 customer: 30m, moved the due")


def test_w_has_a_binding_with_an_id_so_help_footer_and_palette_list_it():
    keys = {b.key: b for b in TicketScreen.BINDINGS}
    assert (keys["w"].action, keys["w"].id, keys["w"].description) == ("why", "ticket.why", "Why SLA times")


def test_the_preview_runs_the_job_in_the_jobs_order():
    assert sla_explain.JOB_ORDER == sla_scan.SCAN_ORDER


async def test_the_impact_form_previews_a_breach_and_the_escalation(desk, escalating):
    db, staff = desk
    config = escalating
    ref = worked_p3(db, config, staff)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False, clock=lambda: utc(MONDAY, 17))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_ticket(app, pilot, ref)
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, ImpactUrgencyForm), "the form")
        form = app.screen
        await wait_until(pilot, lambda: form.sla_previewed is not None, "the first preview")
        assert shows(app, "SLA times unchanged")
        form.field("urgency").value = "high"
        await wait_until(
            pilot,
            lambda: form.sla_previewed is not None and form.sla_previewed.priority_after == 2,
            "the preview of P2",
        )
        await settle(pilot)
        assert shows(app, "breached") and shows(app, "03-02 16:00")
        assert shows(app, "breaches now") and shows(app, "ENG-L3") and shows(app, "you lose it")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket again")
    assert stored(db, ref).priority == 2


async def test_the_status_form_previews_resuming_from_pending(desk, config):
    db, staff = desk
    ref = create(db, config, staff["lead"], utc(MONDAY, 8), impact="high")  # P2, 24x7: due 16:00
    move(db, config, staff["agent1"], ref, "in_progress", utc(MONDAY, 8, 10))
    move(db, config, staff["agent1"], ref, "pending", utc(MONDAY, 9), reason="vendor")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False, clock=lambda: utc(MONDAY, 11))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_ticket(app, pilot, ref)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, TransitionForm), "the form")
        form = app.screen
        await wait_until(pilot, lambda: form.sla_previewed is not None, "the preview")
        # Resumed at 11:00 after 2 h paused: the due moves from 16:00 to 18:00.
        assert form.sla_previewed.change.status == "in_progress"
        assert shows(app, "due 03-02 18:00") and shows(app, "was 03-02 16:00")
