"""What the change screen and `itsm change show` both list; the words the queue's filter refuses with."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from itsm_tui.services import conflicts, queue
from itsm_tui.services.changes import ChangeView

START = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)
END = datetime(2026, 3, 8, 1, 0, tzinfo=UTC)


def a_view(**fields: object) -> ChangeView:
    view = ChangeView(
        id=1,
        ref="CHG0000001",
        title="Replace core switch line card",
        description="",
        change_type="normal",
        template=None,
        state="submitted",
        risk="medium",
        planned_start=START,
        planned_end=END,
        actual_start=None,
        actual_end=None,
        targets=("network:core-sw-01",),
        services=("network",),
        implementer=None,
        requested_by="net1",
        implementation_plan="",
        backout_plan="",
        test_plan="",
        override_reason=None,
        rejection_reason=None,
        review_notes=None,
        outcome=None,
        created_at=START,
        updated_at=START,
        version=1,
        approvals=[],
        approval_rule="every CAB member assigned to its services",
        review_required=False,
        conflicts=[],
        history=[],
    )
    return dataclasses.replace(view, **fields)


def window(start: datetime | None, end: datetime | None) -> str:
    return f"{start:%H:%M}-{end:%H:%M}" if start and end else "?"


def test_the_fields_of_a_change_in_their_order_and_only_those_it_has():
    rows = a_view().fields("planned as written", window, lambda text: f"<{text}>")
    assert rows == [
        ("Planned", "planned as written"),
        ("Targets", "network:core-sw-01"),
        ("Implementer", "-"),
        ("Requested by", "net1"),
        ("Approval", "every CAB member assigned to its services"),
    ]


def test_every_field_of_a_finished_change_and_typed_text_made_safe_by_the_caller():
    view = a_view(
        targets=(),
        implementer="net1",
        template="std-patch",
        actual_start=START,
        actual_end=END,
        outcome="failed",
        review_required=True,
        override_reason="outage",
        rejection_reason="too risky",
        review_notes="learnt",
    )
    rows = view.fields("planned", window, lambda text: f"<{text}>")
    assert rows == [
        ("Planned", "planned"),
        ("Targets", "-"),
        ("Implementer", "net1"),
        ("Requested by", "net1"),
        ("Approval", "every CAB member assigned to its services"),
        ("Template", "std-patch"),
        ("Actual", "22:00-01:00"),
        ("Outcome", "failed (review required)"),
        ("Override", "<outage>"),
        ("Rejected", "<too risky>"),
        ("Review", "<learnt>"),
    ]


def test_the_plans_are_those_written_in_their_order():
    assert a_view().plans() == []
    view = a_view(description="Why", backout_plan="Put the old card back", test_plan="Ping")
    assert view.plans() == [
        ("Description", "Why"),
        ("Back-out plan", "Put the old card back"),
        ("Test plan", "Ping"),
    ]


def test_every_severity_has_its_mark():
    assert set(conflicts.SEVERITY_LABEL) == set(conflicts.SEVERITY_ORDER)
    assert conflicts.SEVERITY_LABEL["blocked"] == "BLOCKED"


def test_filter_values_are_taken_in_any_case_and_the_first_wrong_one_is_named():
    flt = queue.parse_filter("status:Pending,NEW sla:Breached")
    assert flt.statuses == ("pending", "new") and flt.sla == ("breached",)
    with pytest.raises(queue.FilterError) as status:
        queue.parse_filter("status:new,Waiting,gone")
    assert str(status.value).startswith("status: 'waiting' is not a status; use new, ")
    with pytest.raises(queue.FilterError) as sla:
        queue.parse_filter("sla:soon")
    assert str(sla.value) == f"sla: takes {', '.join(queue.SLA_TOKENS)}, not 'soon'"
