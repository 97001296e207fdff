"""The risk questionnaire on SQLite and PostgreSQL: scores worked out by hand from the points of
data/changes.toml, the desk's suggestions on hand-built changes (services, maintenance windows, recent
failures), answers kept and audited at assessment, an override of the score's risk only with notes, a
re-assessment before anyone decided, and the approval rule by risk (high: every one asked, low: one of
them); then ``itsm change assess --answer`` and ``itsm change risk``."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from plan_helpers import captured_statements
from sqlalchemy import insert, select, text

from itsm_tui.cli import main
from itsm_tui.models import AuditEvent, Change, ChangeTarget
from itsm_tui.services import changes
from itsm_tui.services import users as user_service
from itsm_tui.services.changes import risk
from itsm_tui.services.errors import ServiceError, ValidationError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
SAT_NIGHT = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)  # 23:00 in Berlin: inside the network's window below
WED_NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # outside it

# data/changes.toml: services one 0 / two or three 2 / more than three 4; backout yes 0 / no 2; window no 0
# / yes 2; failures no 0 / yes 2; users no 0 / some 1 / many 3. Medium from 3, high from 6.
LOW = {"services": "one", "backout": "yes", "window": "no", "failures": "no", "users": "some"}  # 1
MEDIUM = {"services": "two or three", "backout": "no", "window": "no", "failures": "no", "users": "no"}  # 4
HIGH = {"services": "one", "backout": "no", "window": "yes", "failures": "yes", "users": "no"}  # 6


@pytest.fixture
def cab(db, staff):
    """Three CAB members of the network's support group (NET-L2): the CAB every network change asks."""
    with db.session() as s:
        for login in ("cabnet1", "cabnet2", "cabnet3"):
            user_service.add_user(
                s, actor_login="admin1", login=login, roles=["cab_member"], groups=["NET-L2"]
            )
    with db.read_session() as s:
        return staff | {
            login: user_service.resolve_actor(s, login) for login in ("cabnet1", "cabnet2", "cabnet3")
        }


def raised(db, config, actor, targets=("network:core-sw-01",), start=SAT_NIGHT, submit=True, now=NOW):
    with db.session() as s:
        ref = changes.create_change(
            s,
            config,
            actor,
            change_type="normal",
            title="Replace core switch line card",
            targets=list(targets),
            start=start,
            end=start + timedelta(hours=2),
            implementation_plan="Swap the card.",
            backout_plan="Put the old card back.",
            implementer="net1",
            now=now,
        ).ref
        if submit:
            changes.submit(s, config, actor, ref, now=now)
    return ref


def act(db, config, fn, actor, ref, **kw):
    kw.setdefault("now", NOW)
    with db.session() as s:
        change = fn(s, config, actor, ref, **kw)
        return change.state


def stored(db, ref) -> Change:
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        s.expunge(change)
        return change


def audited(db, ref, name) -> list[tuple[str, str | None, str | None]]:
    with db.read_session() as s:
        change_id = changes.get_change(s, ref).id
        return [
            (e.action, e.old_value, e.new_value)
            for e in s.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.entity_type == "change",
                    AuditEvent.entity_id == change_id,
                    AuditEvent.field == name,
                )
                .order_by(AuditEvent.id)
            )
        ]


def suggested(db, config, ref) -> dict[str, str]:
    with db.read_session() as s:
        return risk.suggested_answers(s, config, changes.get_change(s, ref), NOW)


# --------------------------------------------------------------------------- scores


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"services": "one", "backout": "yes", "window": "no", "failures": "no", "users": "no"}, (0, "low")),
        (LOW, (1, "low")),
        ({**LOW, "backout": "no"}, (3, "medium")),  # 0 + 2 + 0 + 0 + 1: the medium bound
        (MEDIUM, (4, "medium")),
        ({**MEDIUM, "users": "some"}, (5, "medium")),
        (HIGH, (6, "high")),  # 0 + 2 + 2 + 2 + 0: the high bound
        (
            {
                "services": "more than three",
                "backout": "no",
                "window": "yes",
                "failures": "yes",
                "users": "many",
            },
            (13, "high"),
        ),
        (
            {"Services": " Two  or three ", "backout": "NO", "window": "no", "failures": "no", "users": "no"},
            (4, "medium"),
        ),
    ],
)
def test_a_score_is_the_sum_of_the_answers_points(config, answers, expected):
    assert risk.score(config, answers) == expected


def test_unknown_questions_unknown_answers_and_unanswered_ones_are_refused_naming_what_there_is(config):
    with pytest.raises(ValidationError) as unknown:
        risk.score(config, {**LOW, "budget": "big"})
    assert "no risk question 'budget'" in str(unknown.value)
    assert "services, backout, window, failures, users" in str(unknown.value)
    with pytest.raises(ValidationError) as bad:
        risk.score(config, {**LOW, "users": "lots"})
    assert bad.value.field == "users"
    assert "'no', 'some', 'many'" in str(bad.value) and "'lots'" in str(bad.value)
    missing = dict(LOW)
    del missing["backout"]
    with pytest.raises(ValidationError) as unanswered:
        risk.score(config, missing)
    assert unanswered.value.field == "backout" and "Has the back-out plan been tested?" in str(
        unanswered.value
    )


# --------------------------------------------------------------------------- suggestions


def test_the_number_of_services_is_suggested(db, config, cab):
    one = raised(db, config, cab["net1"], ("network:core-sw-01",), submit=False)
    two = raised(db, config, cab["net1"], ("network", "vpn"), submit=False)
    four = raised(db, config, cab["net1"], ("network", "vpn", "email", "erp"), submit=False)
    assert suggested(db, config, one)["services"] == "one"
    assert suggested(db, config, two)["services"] == "two or three"
    assert suggested(db, config, four)["services"] == "more than three"


def test_outside_a_maintenance_window_is_suggested(db, config, cab):
    with db.session() as s:
        changes.add_window(
            s,
            cab["chm"],
            name="Network weekly",
            service="network",
            rrule="FREQ=WEEKLY;BYDAY=SA",
            start_local="22:00",
            duration_minutes=360,
            timezone="Europe/Berlin",
            config=config,
            now=NOW - timedelta(days=30),
        )
    inside = raised(db, config, cab["net1"], start=SAT_NIGHT, submit=False)
    outside = raised(db, config, cab["net1"], start=WED_NOON, submit=False)
    no_windows = raised(db, config, cab["net1"], ("email",), start=WED_NOON, submit=False)
    assert suggested(db, config, inside)["window"] == "no"
    assert suggested(db, config, outside)["window"] == "yes"
    assert suggested(db, config, no_windows)["window"] == "no"  # a service without windows is not restricted


def failed_change(db, config, actor, ended: datetime, service="network", outcome="failed") -> str:
    """A change of ``service`` that ended ``outcome`` at ``ended`` (its facts set by hand)."""
    start = ended - timedelta(hours=2)
    ref = raised(db, config, actor, (service,), start=start, submit=False, now=start - timedelta(days=1))
    with db.session() as s:
        change = changes.get_change(s, ref)
        change.state, change.outcome = "review", outcome
        change.actual_start, change.actual_end = start, ended
    return ref


def test_a_recent_failure_of_the_same_service_is_suggested(db, config, cab):
    ref = raised(db, config, cab["net1"])
    failed_change(db, config, cab["net1"], NOW - timedelta(days=40))  # [impact] failed_days = 30: too old
    failed_change(db, config, cab["net1"], NOW - timedelta(days=10), service="email")  # another service
    assert suggested(db, config, ref)["failures"] == "no"
    recent = failed_change(db, config, cab["net1"], NOW - timedelta(days=10), outcome="backed_out")
    assert suggested(db, config, ref)["failures"] == "yes"
    with db.read_session() as s:
        shown = risk.questionnaire(s, config, changes.get_change(s, ref), NOW)
    failures = next(q for q in shown.questions if q.id == "failures")
    assert failures.why == f"{recent} backed out 10 days ago" and not failures.recorded
    # Not recorded: every suggested question is answered, the others are not, so there is no score yet.
    assert shown.answers() == {"services": "one", "window": "no", "failures": "yes"}
    assert shown.score is None and not shown.recorded


# --------------------------------------------------------------------------- assessment


def test_the_answers_are_scored_kept_and_audited_and_give_the_risk(db, config, cab):
    ref = raised(db, config, cab["net1"])
    assert (
        act(db, config, changes.assess, cab["chm"], ref, answers=MEDIUM, notes="Two services.") == "assessed"
    )
    change = stored(db, ref)
    assert (change.risk, change.risk_score, change.assessment_notes) == ("medium", 4, "Two services.")
    assert json.loads(change.risk_answers) == MEDIUM
    assert list(json.loads(change.risk_answers)) == sorted(MEDIUM)  # kept sorted
    assert audited(db, ref, "risk_answers") == [
        ("assess", None, "backout=no; failures=no; services=two or three; users=no; window=no")
    ]
    assert audited(db, ref, "risk_score") == [("assess", None, "4")]
    assert audited(db, ref, "assessment_notes") == [("assess", None, "Two services.")]
    with db.read_session() as s:
        shown = changes.view(s, config, changes.get_change(s, ref))
        again = risk.questionnaire(s, config, changes.get_change(s, ref), NOW)
    assert shown.risk_score == 4 and shown.assessment_notes == "Two services."
    assert shown.risk_answers[0] == ("How many services does the change affect?", "two or three", 2)
    assert ("Risk", "medium (score 4)") in shown.fields("planned", lambda a, b: "", str)
    assert again.recorded and again.score == 4 and all(q.recorded for q in again.questions)


def test_overriding_the_scores_risk_needs_notes(db, config, cab):
    ref = raised(db, config, cab["net1"])
    with pytest.raises(ValidationError) as refused:
        act(db, config, changes.assess, cab["chm"], ref, answers=LOW, risk="high")
    assert refused.value.field == "notes" and "score 1, which is low risk" in str(refused.value)
    change = stored(db, ref)
    assert change.state == "submitted" and change.risk_answers is None  # nothing written
    act(
        db, config, changes.assess, cab["chm"], ref, answers=LOW, risk="high", notes="Vendor firmware is new."
    )
    change = stored(db, ref)
    assert (change.risk, change.risk_score, change.assessment_notes) == ("high", 1, "Vendor firmware is new.")
    # The same level as the score's is no override: no notes needed.
    other = raised(db, config, cab["net1"], start=SAT_NIGHT + timedelta(days=7))
    act(db, config, changes.assess, cab["chm"], other, answers=LOW, risk="low")
    assert stored(db, other).risk == "low"


def test_without_answers_the_assessment_is_as_before(db, config, cab):
    ref = raised(db, config, cab["net1"])
    act(db, config, changes.assess, cab["chm"], ref, risk="high")
    change = stored(db, ref)
    assert (change.risk, change.risk_score, change.risk_answers) == ("high", None, None)


def test_high_risk_needs_every_one_asked_and_low_risk_one_of_them(db, config, cab):
    high = raised(db, config, cab["net1"])
    act(db, config, changes.assess, cab["chm"], high, answers=HIGH)
    assert stored(db, high).risk == "high"
    with db.read_session() as s:
        change = changes.get_change(s, high)
        assert changes.approval_progress(s, config, change).startswith("0 of 3 approvals")
        assert (
            changes.view(s, config, change).approval_rule == "every CAB member assigned to its services (3)"
        )
    assert act(db, config, changes.approve, cab["cabnet1"], high) == "assessed"  # 1 of 3
    assert act(db, config, changes.approve, cab["cabnet2"], high) == "assessed"  # 2 of 3
    assert act(db, config, changes.approve, cab["cabnet3"], high) == "approved"  # 3 of 3

    low = raised(db, config, cab["net1"], start=SAT_NIGHT + timedelta(days=7))
    act(db, config, changes.assess, cab["chm"], low, answers=LOW)
    with db.read_session() as s:
        change = changes.get_change(s, low)
        assert changes.approval_progress(s, config, change).startswith("0 of 1 approvals")
        assert changes.view(s, config, change).approval_rule.endswith("(1 of 3)")
    assert act(db, config, changes.approve, cab["cabnet2"], low) == "approved"  # 1 of 3 is enough

    # Low risk is rejected only once nobody is left who could approve: 3 rejections of 3.
    refused = raised(db, config, cab["net1"], start=SAT_NIGHT + timedelta(days=14))
    act(db, config, changes.assess, cab["chm"], refused, answers=LOW)
    assert act(db, config, changes.reject, cab["cabnet1"], refused, reason="No") == "assessed"
    assert act(db, config, changes.reject, cab["cabnet2"], refused, reason="No") == "assessed"
    assert act(db, config, changes.reject, cab["cabnet3"], refused, reason="No") == "rejected"


def test_a_medium_risk_change_follows_the_approval_section(db, config, cab):
    ref = raised(db, config, cab["net1"])
    act(db, config, changes.assess, cab["chm"], ref, answers=MEDIUM)
    assert act(db, config, changes.approve, cab["cabnet1"], ref) == "assessed"  # [approval] rule = "all"
    assert act(db, config, changes.approve, cab["cabnet2"], ref) == "assessed"
    assert act(db, config, changes.approve, cab["cabnet3"], ref) == "approved"


def test_the_assessment_may_change_until_someone_decides(db, config, cab):
    ref = raised(db, config, cab["net1"])
    act(db, config, changes.assess, cab["chm"], ref, answers=HIGH)
    with db.read_session() as s:
        assert changes.view(s, config, changes.get_change(s, ref), cab["chm"]).actions["assess"] is None
    act(db, config, changes.assess, cab["chm"], ref, answers=LOW, notes="Back-out tested after all.")
    change = stored(db, ref)
    assert (change.state, change.risk, change.risk_score) == ("assessed", "low", 1)
    assert len(change.approvals) == 3  # the CAB asked stays
    assert audited(db, ref, "risk")[1:] == [("assess", "medium", "high"), ("assess", "high", "low")]
    assert audited(db, ref, "risk_answers")[-1] == (
        "assess",
        "backout=no; failures=yes; services=one; users=no; window=yes",
        "backout=yes; failures=no; services=one; users=some; window=no",
    )
    act(db, config, changes.approve, cab["cabnet1"], ref)  # low: one approval decides it
    assert stored(db, ref).state == "approved"

    other = raised(db, config, cab["net1"], start=SAT_NIGHT + timedelta(days=7))
    act(db, config, changes.assess, cab["chm"], other, answers=HIGH)
    act(db, config, changes.approve, cab["cabnet1"], other)
    with pytest.raises(ServiceError, match="being decided \\(cabnet1 approved\\)"):
        act(db, config, changes.assess, cab["chm"], other, answers=LOW)
    with db.read_session() as s:
        reason = changes.view(s, config, changes.get_change(s, other), cab["chm"]).actions["assess"]
    assert reason is not None and "can no longer change" in reason


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def as_login(monkeypatch):
    def use(login: str) -> None:
        monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: login)

    return use


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_assess_with_answers_and_the_questionnaire_from_the_command_line(
    db, db_url, config, cab, capsys, as_login
):
    start = datetime.now(UTC).replace(hour=21, minute=0, second=0, microsecond=0) + timedelta(days=9)
    ref = raised(db, config, cab["net1"], start=start, now=datetime.now(UTC))
    as_login("chm")
    code, out, err = run(capsys, "change", "risk", ref, "--db", db_url, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["score"] is None and not data["recorded"]
    assert [q["id"] for q in data["questions"]] == ["services", "backout", "window", "failures", "users"]
    assert data["questions"][0]["answer"] == "one" and not data["questions"][0]["recorded"]

    code, out, err = run(capsys, "change", "assess", ref, "--db", db_url, "--answer", "users=lots")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert "'no', 'some', 'many'" in err and "'lots'" in err
    code, out, err = run(capsys, "change", "assess", ref, "--db", db_url, "--answer", "budget")
    assert (code, out) == (2, "") and "QUESTION=ANSWER" in err and "services, backout" in err
    assert stored(db, ref).state == "submitted"

    answers = [f"--answer={key}={value}" for key, value in HIGH.items()]
    code, out, err = run(capsys, "change", "assess", ref, "--db", db_url, *answers, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["state"], data["risk"], data["risk_score"]) == ("assessed", "high", 6)
    assert data["risk_answers"][1] == {
        "question": "Has the back-out plan been tested?",
        "answer": "no",
        "points": 2,
    }

    code, out, err = run(capsys, "change", "risk", ref, "--db", db_url)
    assert code == 0, err
    assert f"{ref}  assessed  high risk" in out and "(answers recorded)" in out
    assert "answer: yes (+2)" in out and "Score 6: high risk (medium from 3, high from 6)" in out
    code, out, err = run(capsys, "change", "show", ref, "--db", db_url)
    assert code == 0, err
    assert "Risk:         high (score 6)" in out and "Has the back-out plan been tested? no (+2)" in out


# --------------------------------------------------------------------------- the plan


def _closed(number: int, outcome: str) -> dict:
    """A closed change ``number`` of 5-hour steps before NOW, two hours long."""
    end = NOW - timedelta(hours=number * 5 - 2)
    return {
        "ref": f"CHG{number:07d}",
        "title": "x",
        "change_type": "normal",
        "state": "closed",
        "risk": "low",
        "planned_start": end - timedelta(hours=2),
        "planned_end": end,
        "outcome": outcome,
        "created_at": NOW,
        "updated_at": NOW,
        "version": 1,
    }


def test_recent_failures_are_read_along_the_target_index(staff_sqlite, config):
    """3,000 changes over 600 days on five services: the failures are found as the Impact list finds them,
    through the targets' service index to the changes by primary key, never by reading every change."""
    db, _ = staff_sqlite
    rng = random.Random(3)
    with db.session() as s:
        s.execute(insert(Change), [_closed(i, rng.choice(["failed", "implemented"])) for i in range(1, 3001)])
        services = ["email", "network", "erp", "vpn", "crm"]
        s.execute(
            insert(ChangeTarget),
            [{"change_id": i, "service": rng.choice(services), "ci": None} for i in range(1, 3001)],
        )
        s.execute(text("ANALYZE"))
    with db.read_session() as s, captured_statements(db, "coalesce") as captured:
        found = risk.recent_failures(s, config, s.get(Change, 5), NOW)
        assert len(found) == risk.FAILURES_SHOWN  # bounded
        (sql, params), *others = captured
        assert not others
        plan = [str(r[-1]) for r in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
    assert any("SEARCH changes USING INTEGER PRIMARY KEY" in line for line in plan), plan
    assert any("ix_change_targets_service" in line for line in plan), plan
    assert not any(line.startswith(("SCAN changes", "SCAN change_targets")) for line in plan), plan
