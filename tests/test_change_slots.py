"""The next free slot for a change, on SQLite and PostgreSQL: inside the maintenance windows of its services
(across a daylight-saving change), outside blackouts, free of conflicts with live changes on its CIs or
services and of its implementer; bounded by count and horizon; checked against a minute-by-minute walker.

Every expected slot is worked out by hand: Europe/Berlin is UTC+1 until 2026-03-29 02:00 local, UTC+2 after.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from itsm_tui.models import Blackout, Change, ChangeTarget, MaintenanceWindow
from itsm_tui.services import changes
from itsm_tui.services.changes import Slot, SlotQuery
from itsm_tui.services.errors import ServiceError, ValidationError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
TWO_HOURS = timedelta(hours=2)
SATURDAY = "Network Saturday night"


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def add_window(db, config, staff, service, start_local, minutes, name, rule="FREQ=WEEKLY;BYDAY=SA"):
    with db.session() as s:
        changes.add_window(
            s,
            staff["chm"],
            name=name,
            service=service,
            rrule=rule,
            start_local=start_local,
            duration_minutes=minutes,
            timezone="Europe/Berlin",
            config=config,
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            now=NOW,
        )


@pytest.fixture
def saturdays(db, config, staff):
    """network: a window every Saturday 22:00-04:00 Europe/Berlin (21:00-03:00 UTC in March)."""
    add_window(db, config, staff, "network", "22:00", 360, SATURDAY)
    return staff


def live_change(db, config, staff, targets, start, end, implementer="app1", submit=True, when=None):
    """A change raised by the change manager (and submitted: live), with its reference; ``when``: a year
    whose Saturday night 2 March 21:00-23:00 UTC it takes instead."""
    if when is not None:
        start, end = datetime(when, 3, 2, 21, tzinfo=UTC), datetime(when, 3, 2, 23, tzinfo=UTC)
    with db.session() as s:
        change = changes.create_change(
            s,
            config,
            staff["chm"],
            change_type="normal",
            title="Another change",
            targets=targets,
            start=start,
            end=end,
            implementation_plan="Do it.",
            backout_plan="Undo it.",
            implementer=implementer,
            now=NOW,
        )
        if submit:
            changes.submit(s, config, staff["chm"], change.ref, now=NOW)
        return change.ref


def find(db, config, targets=("network:core-sw-01",), implementer="net1", duration=TWO_HOURS, **kw):
    kw.setdefault("now", NOW)
    with db.read_session() as s:
        query = SlotQuery(targets=tuple(targets), implementer=implementer, duration=duration)
        return changes.find_slots(s, config, query, **kw)


def spans(slots: list[Slot]) -> list[tuple[datetime, datetime]]:
    return [(slot.start, slot.end) for slot in slots]


def test_the_first_slots_fill_the_saturday_windows_one_after_the_other(db, config, saturdays):
    slots = find(db, config)
    assert spans(slots) == [
        (utc(7, 21), utc(7, 23)),  # Sat 22:00-24:00 Berlin
        (utc(7, 23), utc(8, 1)),
        (utc(8, 1), utc(8, 3)),  # ends with the window, Sun 04:00 Berlin
        (utc(14, 21), utc(14, 23)),
        (utc(14, 23), utc(15, 1)),
    ]
    assert {slot.window for slot in slots} == {SATURDAY}
    # Candidates are the window's start and every 30 minutes after it: from 22:10 Berlin the first is 22:30.
    late = find(db, config, after=utc(7, 21, 10), count=2)
    assert spans(late) == [(utc(7, 21, 30), utc(7, 23, 30)), (utc(7, 23, 30), utc(8, 1, 30))]


def test_the_window_keeps_its_local_hours_across_the_spring_change(db, config, saturdays):
    # Sat 28 March 22:00 CET = 21:00 UTC until Sun 04:00 CEST = 02:00 UTC: five hours, room for two;
    # Sat 4 April 22:00 CEST = 20:00 UTC until 04:00 CEST = 02:00 UTC: room for three.
    slots = find(db, config, after=utc(28, 12))
    assert spans(slots) == [
        (utc(28, 21), utc(28, 23)),
        (utc(28, 23), utc(29, 1)),
        (utc(4, 20, month=4), utc(4, 22, month=4)),
        (utc(4, 22, month=4), utc(5, 0, month=4)),
        (utc(5, 0, month=4), utc(5, 2, month=4)),
    ]


def test_a_live_change_on_the_same_ci_pushes_the_slot_and_another_ci_does_not(db, config, saturdays):
    live_change(db, config, saturdays, ["network:core-sw-01"], utc(7, 21), utc(7, 22))  # 22:00-23:00 Berlin
    assert spans(find(db, config, count=2)) == [(utc(7, 22), utc(8, 0)), (utc(8, 0), utc(8, 2))]
    # On another CI of the service the overlap is only a warning: the slot stays free.
    assert spans(find(db, config, targets=["network:core-sw-02"], count=1)) == [(utc(7, 21), utc(7, 23))]
    # ... unless changes.toml counts different CIs of one service as a conflict.
    strict = dataclasses.replace(
        config, changes=dataclasses.replace(config.changes, same_service_severity="conflict")
    )
    assert spans(find(db, strict, targets=["network:core-sw-02"], count=1)) == [(utc(7, 22), utc(8, 0))]
    # A change of the whole service conflicts with any change on it.
    assert spans(find(db, config, targets=["network"], count=1)) == [(utc(7, 22), utc(8, 0))]


def test_only_live_changes_hold_their_slot(db, config, saturdays):
    live_change(db, config, saturdays, ["network:core-sw-01"], utc(7, 21), utc(7, 22), submit=False)
    assert spans(find(db, config, count=1)) == [(utc(7, 21), utc(7, 23))]  # a draft is tentative


def test_the_implementers_other_change_blocks_the_slot(db, config, saturdays):
    live_change(db, config, saturdays, ["vpn"], utc(7, 20, 30), utc(7, 22, 15), implementer="net1")
    # net1 is busy until 23:15 Berlin: the next start on the half hour is 23:30 Berlin.
    assert spans(find(db, config, count=1)) == [(utc(7, 22, 30), utc(8, 0, 30))]
    # Someone else implementing is free then.
    assert spans(find(db, config, implementer="app1", count=1)) == [(utc(7, 21), utc(7, 23))]


def test_a_blackout_skips_the_saturday_it_covers(db, config, saturdays):
    with db.session() as s:
        for name, service, start, end in (
            ("Weekend freeze", None, utc(7, 0), utc(8, 12)),
            ("ERP freeze", "erp", utc(14, 0), utc(15, 12)),  # another service's: no matter
        ):
            changes.add_blackout(
                s, saturdays["chm"], name=name, start=start, end=end, service=service, config=config, now=NOW
            )
    assert spans(find(db, config, count=2)) == [(utc(14, 21), utc(14, 23)), (utc(14, 23), utc(15, 1))]
    # An emergency change is not offered the freeze either (no override is proposed).
    with db.read_session() as s:
        query = SlotQuery(("network",), "net1", TWO_HOURS, change_type="emergency")
        assert spans(changes.find_slots(s, config, query, count=1, now=NOW)) == [(utc(14, 21), utc(14, 23))]


def test_two_services_need_both_windows(db, config, saturdays):
    # vpn: Sat 23:30-02:00 Berlin = 22:30-01:00 UTC; network's window holds it.
    add_window(db, config, saturdays, "vpn", "23:30", 150, "VPN late window")
    slots = find(db, config, targets=["network:core-sw-01", "vpn"], count=2)
    assert spans(slots) == [(utc(7, 22, 30), utc(8, 0, 30)), (utc(14, 22, 30), utc(15, 0, 30))]
    assert slots[0].window == f"{SATURDAY}, VPN late window"
    # A service without windows (crm) is free at any time: it does not narrow the search.
    assert spans(find(db, config, targets=["network:core-sw-01", "crm"], count=1)) == [
        (utc(7, 21), utc(7, 23))
    ]


def test_without_windows_every_step_from_after_is_a_candidate(db, config, staff):
    hour = timedelta(hours=1)
    slots = find(db, config, targets=["crm"], duration=hour, count=3, after=utc(2, 9, 10))
    assert spans(slots) == [
        (utc(2, 9, 30), utc(2, 10, 30)),
        (utc(2, 10, 30), utc(2, 11, 30)),
        (utc(2, 11, 30), utc(2, 12, 30)),
    ]
    assert slots[0].window is None
    live_change(db, config, staff, ["crm"], utc(2, 10), utc(2, 11))
    later = find(db, config, targets=["crm"], duration=hour, count=2, after=utc(2, 9, 10))
    assert spans(later) == [(utc(2, 11), utc(2, 12)), (utc(2, 12), utc(2, 13))]
    # Never before now: an instant in the past is replaced by now (09:00), a step itself.
    assert find(db, config, targets=["crm"], duration=hour, count=1, after=utc(1, 3))[0].start == utc(2, 9)


def test_the_horizon_bounds_the_search(db, config, saturdays):
    short = dataclasses.replace(config, changes=dataclasses.replace(config.changes, slot_horizon_days=7))
    assert len(find(db, short, count=20)) == 3  # one Saturday night within a week of Monday
    assert len(find(db, config, count=20)) == 20


def test_an_existing_change_leaves_itself_out(db, config, saturdays):
    ref = live_change(db, config, saturdays, ["network:core-sw-01"], utc(7, 21), utc(7, 23), "net1")
    with db.read_session() as s:
        slots = changes.slots_for(s, config, ref, count=2, now=NOW)
        assert spans(slots) == [(utc(7, 21), utc(7, 23)), (utc(7, 23), utc(8, 1))]
        # Its own length unless told otherwise.
        longer = changes.slots_for(s, config, ref, count=1, now=NOW, duration=timedelta(hours=6))
        assert spans(longer) == [(utc(7, 21), utc(8, 3))]
        too_long = changes.slots_for(s, config, ref, count=1, now=NOW, duration=timedelta(hours=7))
        assert too_long == []  # no window is long enough
    with db.session() as s:
        s.get(Change, changes.get_change(s, ref).id).state = "closed"
    with db.read_session() as s, pytest.raises(ServiceError, match="not yet begun"):
        changes.slots_for(s, config, ref, now=NOW)


def test_a_form_may_name_another_implementer_for_the_change(db, config, saturdays):
    ref = live_change(db, config, saturdays, ["network:core-sw-01"], utc(9, 11), utc(9, 13), "net1")
    live_change(db, config, saturdays, ["vpn"], utc(7, 20, 30), utc(7, 22, 15), implementer="net1")
    with db.read_session() as s:
        for implementer, first in ((None, utc(7, 22, 30)), ("app1", utc(7, 21)), ("", utc(7, 21))):
            query = SlotQuery(ref=ref, implementer=implementer)
            slots = changes.find_slots(s, config, query, count=1, now=NOW)
            assert spans(slots) == [(first, first + TWO_HOURS)], implementer  # None: its own, net1


def test_bad_requests_are_refused_in_one_line(db, config, staff):
    for kw, field in (
        ({"duration": timedelta(0)}, "duration"),
        ({"duration": timedelta(days=14, minutes=1)}, "duration"),
        ({"count": 0}, "count"),
        ({"count": 21}, "count"),
        ({"targets": ["nonsense"]}, "targets"),
        ({"implementer": "nobody"}, "implementer"),
    ):
        with pytest.raises(ValidationError) as refused:
            find(db, config, **kw)
        assert refused.value.field == field and "\n" not in str(refused.value), kw
    # From ten years ahead (3653 days after Monday 2 March 2026) at most: a later start is refused, not
    # overflowed.
    assert find(db, config, targets=["crm"], after=datetime(2036, 3, 2, 9, tzinfo=UTC), count=1)
    for far in (datetime(2036, 3, 2, 9, 1, tzinfo=UTC), datetime(9999, 12, 1, tzinfo=UTC)):
        with pytest.raises(ValidationError) as refused:
            find(db, config, after=far)
        assert (refused.value.field, str(refused.value)) == (
            "after",
            "look for slots from a date between now and 2036-03-02",
        )


# --------------------------------------------------------------------------- against a walker


LIVE = ("submitted", "assessed", "approved", "scheduled", "implementing")
CIS = {"network": ("core-sw-01", "core-sw-02"), "vpn": ("vpn-gw-01", "vpn-gw-02"), "crm": ()}
AFTER = datetime(2026, 5, 4, 6, 10, tzinfo=UTC)
HORIZON_DAYS = 3
STEP = 30


def random_targets(rng: random.Random) -> list[tuple[str, str | None]]:
    chosen = rng.sample(sorted(CIS), rng.choice((1, 1, 2)))
    return [(s, rng.choice(CIS[s]) if CIS[s] and rng.random() < 0.7 else None) for s in chosen]


def walk(setup: dict, targets, implementer_id, minutes: int, count: int, same_service: str) -> list:
    """The slots found minute by minute over the horizon, from the rules as the module's docstring says
    them, on the setup's plain data (every window is daily, in UTC)."""
    services = {s for s, _ in targets}
    day0 = AFTER.replace(hour=0, minute=0)
    occurrences = {
        service: [
            (day0 + timedelta(days=d, minutes=start), day0 + timedelta(days=d, minutes=start + length))
            for d in range(-1, HORIZON_DAYS + 2)
        ]
        for service, (start, length) in setup["windows"].items()
        if service in services
    }

    def covered(service, minute):
        return any(s <= minute < e for s, e in occurrences[service])

    def candidate(t):
        if not occurrences:
            return (t - datetime(1970, 1, 1, tzinfo=UTC)) % timedelta(minutes=STEP) == timedelta(0)
        return any(
            s <= t < e and (t - s) % timedelta(minutes=STEP) == timedelta(0)
            for spans in occurrences.values()
            for s, e in spans
        )

    def blocks(other, start, end):
        if not (other["start"] < end and other["end"] > start) or other["state"] not in LIVE:
            return False
        if other["implementer"] == implementer_id:
            return True
        for service in services & {s for s, _ in other["targets"]}:
            mine = {ci for s, ci in targets if s == service}
            theirs = {ci for s, ci in other["targets"] if s == service}
            if None in mine or None in theirs or mine & theirs or same_service == "conflict":
                return True
        return False

    found, t, last_end = [], AFTER, AFTER
    until = AFTER + timedelta(days=HORIZON_DAYS)
    while t < until and len(found) < count:
        end = t + timedelta(minutes=minutes)
        if (
            t >= last_end
            and candidate(t)
            and all(
                covered(service, t + timedelta(minutes=m)) for service in occurrences for m in range(minutes)
            )
            and not any(
                bs < end and be > t and (bsvc is None or bsvc in services)
                for bs, be, bsvc in setup["blackouts"]
            )
            and not any(blocks(other, t, end) for other in setup["changes"])
        ):
            found.append((t, end))
            last_end = end
        t += timedelta(minutes=1)
    return found


def build_setup(db, staff, rng: random.Random, windowed: int) -> dict:
    windows = {
        service: (rng.choice((0, 130, 600, 1290, 1380)), rng.choice((180, 300, 480)))
        for service in rng.sample(["network", "vpn"], windowed)
    }
    implementers = [staff["net1"].id, staff["app1"].id, staff["eng1"].id]
    setup: dict = {"windows": windows, "blackouts": [], "changes": []}
    with db.session() as s:
        for service, (start, length) in windows.items():
            s.add(
                MaintenanceWindow(
                    name=f"{service} daily",
                    service=service,
                    timezone="UTC",
                    rrule="FREQ=DAILY",
                    start_local=f"{start // 60:02d}:{start % 60:02d}",
                    duration_minutes=length,
                    valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
        for number in range(rng.randint(0, 2)):
            start = AFTER + timedelta(minutes=rng.randrange(0, HORIZON_DAYS * 1440, 10))
            end = start + timedelta(minutes=rng.choice((90, 360, 900)))
            service = rng.choice((None, "network", "vpn", "erp"))
            s.add(Blackout(name=f"Freeze {number}", service=service, starts_at=start, ends_at=end))
            setup["blackouts"].append((start, end, service))
        for number in range(1, rng.randint(30, 60)):
            start = AFTER + timedelta(minutes=rng.randrange(-600, HORIZON_DAYS * 1440, 10))
            end = start + timedelta(minutes=rng.choice((30, 60, 120, 240)))
            targets = random_targets(rng)
            state = rng.choice((*LIVE, "draft", "closed"))
            implementer = rng.choice(implementers)
            s.execute(
                insert(Change),
                [
                    {
                        "id": number,
                        "ref": f"CHG{number:07d}",
                        "title": "Walker change",
                        "description": "",
                        "change_type": "normal",
                        "state": state,
                        "risk": "low",
                        "planned_start": start,
                        "planned_end": end,
                        "implementation_plan": "",
                        "backout_plan": "",
                        "test_plan": "",
                        "implementer_id": implementer,
                        "created_at": NOW,
                        "updated_at": NOW,
                        "version": 1,
                    }
                ],
            )
            s.execute(
                insert(ChangeTarget), [{"change_id": number, "service": sv, "ci": ci} for sv, ci in targets]
            )
            setup["changes"].append(
                {"start": start, "end": end, "targets": targets, "state": state, "implementer": implementer}
            )
    return setup


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_finder_agrees_with_a_minute_by_minute_walker(db, config, staff, seed):
    rng = random.Random(seed)
    setup = build_setup(db, staff, rng, 1 + seed % 2)
    ids = [staff["net1"].id, staff["app1"].id, staff["eng1"].id, None]
    for same_service in ("warning", "conflict"):
        settings = dataclasses.replace(
            config, changes=dataclasses.replace(config.changes, same_service_severity=same_service)
        )
        for _ in range(4):
            targets = random_targets(rng)
            implementer_id = rng.choice(ids)
            minutes = rng.choice((30, 60, 90, 150))
            with db.read_session() as s:
                slots = changes.free_slots(
                    s,
                    settings,
                    services=[sv for sv, _ in targets],
                    cis=[ci for _, ci in targets if ci],
                    implementer_id=implementer_id,
                    duration=timedelta(minutes=minutes),
                    after=AFTER,
                    count=6,
                    horizon_days=HORIZON_DAYS,
                )
            expected = walk(setup, targets, implementer_id, minutes, 6, same_service)
            assert spans(slots) == expected, (targets, implementer_id, minutes, same_service, setup)


# --------------------------------------------------------------------------- the command line


def test_the_command_line_prints_the_slots_in_the_zone_asked_for(db, db_url, config, saturdays, capsys):
    import json

    from itsm_tui.cli import main

    # 2030-03-02 is a Saturday: 22:00 CET = 21:00 UTC. The command line plans against the real clock.
    ref = live_change(db, config, saturdays, ["network:core-sw-01"], None, None, submit=False, when=2030)
    argv = ["change", "slots", ref, "--db", db_url, "--after", "2030-03-01T00:00Z", "--count", "2"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("itsm_tui.services.users.os_login", lambda: "agent1")
        assert main([*argv, "--timezone", "Europe/Berlin"]) == 0
        out, err = capsys.readouterr()
        assert out.splitlines() == [
            f"{ref}: the next free slots of 2 h 00 min for network:core-sw-01 (times in Europe/Berlin)",
            f"  2030-03-02 22:00 CET to 2030-03-03 00:00 CET  {SATURDAY}",
            f"  2030-03-03 00:00 CET to 2030-03-03 02:00 CET  {SATURDAY}",
        ]
        assert main([*argv, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data == {
            "change": ref,
            "duration_minutes": 120,
            "timezone": "UTC",  # agent1's own zone
            "slots": [
                {"start": "2030-03-02T21:00:00Z", "end": "2030-03-02T23:00:00Z", "window": SATURDAY},
                {"start": "2030-03-02T23:00:00Z", "end": "2030-03-03T01:00:00Z", "window": SATURDAY},
            ],
        }
        for bad, said in (
            (["--count", "0"], "count: ask for 1 to 20 slots, not 0"),
            (["--timezone", "Mars/Olympus"], "timezone: unknown time zone 'Mars/Olympus'"),
            (["--after", "9999-12-01T00:00:00Z"], "after: look for slots from a date between now and "),
        ):
            assert main([*argv, *bad]) == 2
            out, err = capsys.readouterr()
            assert out == "" and len(err.strip().splitlines()) == 1 and said in err, err
        assert main(["change", "slots", "CHG9999999", "--db", db_url]) == 2
        assert "no change 'CHG9999999'" in capsys.readouterr().err
