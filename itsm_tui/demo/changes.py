"""The demo's change calendar: maintenance windows, blackouts, and changes past and planned.

The changes come with their approvals and audit trail, under the desk's rules: nobody approves a change they
raised or implement (the approvers are those the CAB rule picks), each approval is given for the window the
change is planned in, and each change began inside its window. Two of them clash on one switch and one lies
inside the quarter-end freeze, so the conflict check and the calendar have something to show.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from itsm_tui.config import DeskConfig
from itsm_tui.demo.roster import Staff
from itsm_tui.demo.tables import FUTURE_DAYS, HISTORY_DAYS
from itsm_tui.demo.writer import AuditFields, Row, Writer
from itsm_tui.models import MaintenanceWindow
from itsm_tui.services import audit
from itsm_tui.services.access import has_permission
from itsm_tui.services.changes import (
    Candidate,
    barred_ids,
    choose_cab,
    choose_emergency,
    required_approvals,
)
from itsm_tui.services.changes.cab import meeting_for
from itsm_tui.services.changes.risk import answers_text, score


def write_changes(
    w: Writer, rng: random.Random, config: DeskConfig, staff: list[Staff], start_ts: float, end: datetime
) -> int:
    """Insert the windows, blackouts and changes of the history ending at ``end``; return how many changes."""
    end_ts = end.timestamp()
    windows = [
        ("Network weekly window", "network", "FREQ=WEEKLY;BYDAY=SA", "22:00", 360),
        ("VPN weekly window", "vpn", "FREQ=WEEKLY;BYDAY=SA", "22:00", 240),
        ("ERP Sunday window", "erp", "FREQ=WEEKLY;BYDAY=SU", "02:00", 240),
        ("Email mid-week window", "email", "FREQ=WEEKLY;BYDAY=WE", "21:00", 180),
        ("Identity monthly window", "identity", "FREQ=MONTHLY;BYDAY=1SA", "20:00", 480),
        ("Storage weekly window", "storage", "FREQ=WEEKLY;BYDAY=SU", "01:00", 300),
    ]
    valid_from = w.instant(start_ts - 365 * 86400)
    w.insert(
        "maintenance_windows",
        MaintenanceWindow.__table__.columns.keys(),
        [
            (i, n, s, "Europe/Berlin", r, t, d, valid_from, None, None, 1)
            for i, (n, s, r, t, d) in enumerate(windows, start=1)
        ],
    )
    year_end_start = datetime(end.year, 12, 18, tzinfo=UTC)
    if year_end_start + timedelta(days=18) < end:
        year_end_start = datetime(end.year + 1, 12, 18, tzinfo=UTC)
    quarter_close = (end + timedelta(days=10)).replace(hour=0, minute=0)
    blackouts = [
        (
            1,
            "Year-end change freeze",
            "Financial year-end close: no changes except emergencies.",
            None,
            w.instant(year_end_start.timestamp()),
            w.instant((year_end_start + timedelta(days=18)).timestamp()),
        ),
        (
            2,
            "Quarter-end finance close",
            "ERP frozen while finance closes the quarter.",
            "erp",
            w.instant(quarter_close.timestamp()),
            w.instant((quarter_close + timedelta(days=3)).timestamp()),
        ),
    ]
    w.insert("blackouts", ("id", "name", "reason", "service", "starts_at", "ends_at"), blackouts)

    implementers = [s for s in staff if "support_l2" in s.roles or "support_l3" in s.roles]
    manager = next(s for s in staff if "change_manager" in s.roles)
    # Who approves, as the desk's own rule picks them (services.changes.choose_cab / choose_emergency).
    cab = [Candidate(s.id, s.login, frozenset(s.groups)) for s in staff if "cab_member" in s.roles]
    managers = [Candidate(s.id, s.login) for s in staff if "change_manager" in s.roles]
    emergency_cab = [
        Candidate(s.id, s.login)
        for s in staff
        if s.login in config.changes.emergency_cab and has_permission(s.roles, "change.approve")
    ]
    support_groups = {code: service.support_group for code, service in config.services.items()}
    logins = {s.id: s.login for s in staff}
    changes: list[Row] = []
    targets: list[Row] = []
    approvals: list[Row] = []
    audits: list[AuditFields] = []
    titles = {
        "network": [
            "Replace core switch line card",
            "Upgrade firewall firmware",
            "Re-cable floor 3 access",
        ],
        "vpn": ["Rotate VPN certificates", "Upgrade VPN gateway OS"],
        "erp": ["Apply ERP quarterly patch", "Add ERP application server", "Tune ERP database indexes"],
        "email": ["Apply mail server security update", "Migrate shared mailboxes"],
        "identity": ["Extend AD schema", "Renew SSO signing certificate"],
        "storage": ["Expand NAS volume", "Replace backup tape library"],
        "workplace": ["Roll out laptop BIOS update"],
        "crm": ["Enable CRM single sign-on"],
    }
    target_id = approval_id = 0
    change_id = 0
    # The risk questionnaire's answers come from a stream of their own, so that the rest of the demo is the
    # same with or without it (derived from the demo's, without drawing from it).
    risk_rng = random.Random(str(rng.getstate()[1][:16]))  # not hash(): None's differs between runs

    def add_change(
        title: str,
        ctype: str,
        state: str,
        risk: str,
        start: float,
        hours: float,
        service: str,
        ci: str | None,
        implementer: Staff,
        outcome: str | None = None,
        template: str | None = None,
        override: str | None = None,
    ) -> int:
        nonlocal target_id, change_id, approval_id
        change_id += 1
        created = min(start - rng.uniform(3, 20) * 86400, end_ts - 3600)
        end_at = start + hours * 3600
        # Most changes are raised by their implementer, every third by the change manager; either way
        # the approvers are others (four eyes), deciding half an hour after it was raised, for the window
        # it is planned in.
        requester = implementer if change_id % 3 else manager
        # A normal change past submission was assessed with the questionnaire: its risk is the score's.
        answers: dict[str, str] | None = None
        risk_score: int | None = None
        if ctype == "normal" and state not in ("draft", "submitted") and config.changes.risk.questions:
            answers = {
                q.id: risk_rng.choice(q.answers).label for q in config.changes.risk.questions if q.answers
            }
            risk_score, risk = score(config, answers)
        decisions = _decisions(ctype, state, service, risk, barred_ids(requester.id, implementer.id))
        decided = [created + 1800 + 60 * index for index in range(len(decisions))]
        rejection = "Risk too high before the freeze."
        rejected = "; ".join(logins[u] + ": " + rejection for u, d in decisions if d == "rejected") or None
        actual = (
            (w.instant(start), w.instant(end_at))
            if state in ("implemented", "failed", "backed_out", "review", "closed")
            else (None, None)
        )
        changes.append(
            (
                change_id,
                f"CHG{change_id:07d}",
                title,
                f"{title} on {service}{f' ({ci})' if ci else ''}.",
                ctype,
                template,
                state,
                risk,
                w.instant(start),
                w.instant(end_at),
                actual[0],
                actual[1],
                "1. Announce start.\n2. Perform the change.\n3. Verify monitoring is green.",
                "Restore the previous version from the pre-change snapshot.",
                "Run the service smoke tests and confirm with the service owner.",
                implementer.id,
                requester.id,
                override,
                rejected,
                "Reviewed: lessons recorded." if state == "closed" and outcome != "implemented" else None,
                outcome,
                risk_score,
                json.dumps(answers, sort_keys=True) if answers is not None else None,  # risk_answers
                None,  # assessment_notes
                None,  # cancel_reason
                w.instant(created + 3600) if state != "draft" else None,  # submitted_at
                # A normal change is on the agenda of the first CAB meeting after its cut-off.
                w.instant(meeting_for(config, datetime.fromtimestamp(created + 3600, UTC)).timestamp())
                if ctype == "normal" and state != "draft"
                else None,  # cab_meeting
                w.instant(created),
                w.instant(max(created, min(end_at, end_ts - 60))),
                1,
            )
        )
        target_id += 1
        targets.append((target_id, change_id, service, ci))
        audits.append(
            ("change", change_id, requester.id, w.instant(created), "create", "state", None, "draft")
        )
        for (approver, decision), at in zip(decisions, decided, strict=True):
            approval_id += 1
            reason = rejection if decision == "rejected" else None
            if decision == "pending":
                approvals.append((approval_id, change_id, approver, decision, reason, None, None))
                continue
            when = w.instant(at)
            approvals.append((approval_id, change_id, approver, decision, reason, when, None))
            text = f"{decision} by {logins[approver]}" + (f": {reason}" if reason else "")
            action = "approve" if decision == "approved" else "reject"
            audits.append(("change", change_id, approver, when, action, "approval", None, text))
        if state != "draft":
            audits.append(
                (
                    "change",
                    change_id,
                    manager.id,
                    w.instant(created + 3600),
                    "transition",
                    "state",
                    "draft",
                    state,
                )
            )
        if answers is not None:
            for name, value in (
                ("risk_answers", answers_text(json.dumps(answers, sort_keys=True))),
                ("risk_score", str(risk_score)),
            ):
                audits.append(
                    ("change", change_id, manager.id, w.instant(created + 3600), "assess", name, None, value)
                )
        return change_id

    def _decisions(
        ctype: str, state: str, service: str, risk: str, never: dict[int, str]
    ) -> list[tuple[int, str]]:
        """(approver, decision) of a change in ``state``: a normal one's CAB as the rule (for its ``risk``)
        asks it, all pending while assessed, approved by as many as the rule needs once approved, rejected
        by as many as put it out of reach; an emergency one decided by its first possible approver."""
        if ctype == "standard" or state in ("draft", "submitted"):
            return []
        if ctype == "emergency":
            pool = choose_emergency(config.changes, managers, emergency_cab, never).asked
        else:
            pool = choose_cab(config.changes, support_groups, [service], cab, managers, never).asked
        if not pool:
            raise ValueError(f"the demo roster has nobody to approve a {ctype} change on {service}")
        if ctype == "emergency":
            return [(pool[0], "rejected" if state == "rejected" else "approved")]
        needed = required_approvals(config, len(pool), risk)
        if state == "assessed":
            return [(u, "pending") for u in pool]
        if state == "rejected":
            return [(u, "rejected" if i <= len(pool) - needed else "pending") for i, u in enumerate(pool)]
        return [(u, "approved" if i < needed else "pending") for i, u in enumerate(pool)]

    services = [s for s in titles if s in config.services]

    def add_random_change(
        service: str, ctype: str, state: str, start: float, hours: tuple[int, ...], outcome: str | None = None
    ) -> None:
        """A change of ``service`` on one of its CIs (if it has any), by a random implementer."""
        cis = config.services[service].cis
        ci = rng.choice(cis) if cis else None
        add_change(
            rng.choice(titles[service]),
            ctype,
            state,
            rng.choice(("low", "medium", "high")),
            start,
            rng.choice(hours),
            service,
            ci,
            rng.choice(implementers),
            outcome,
            template="std-patch" if ctype == "standard" else None,
        )

    # Past changes: mostly successful, some failed or backed out awaiting review.
    for _ in range(40):
        service = rng.choice(services)
        start = start_ts + rng.uniform(0, HISTORY_DAYS - 2) * 86400
        ctype = rng.choices(("standard", "normal", "emergency"), (0.45, 0.45, 0.1))[0]
        roll = rng.random()
        outcome = "implemented" if roll < 0.86 else ("failed" if roll < 0.93 else "backed_out")
        if outcome == "implemented" and ctype != "emergency":
            state = "closed"
        else:
            state = "review" if rng.random() < 0.5 else "closed"
        add_random_change(service, ctype, state, start, (1, 2, 4), outcome)
    # Future changes: in the pipeline.
    for _ in range(20):
        service = rng.choice(services)
        start = end_ts + rng.uniform(1, FUTURE_DAYS) * 86400
        start -= start % 1800
        ctype = rng.choices(("standard", "normal", "emergency"), (0.4, 0.55, 0.05))[0]
        state = (
            rng.choice(("draft", "submitted", "assessed", "approved", "scheduled"))
            if ctype == "normal"
            else "scheduled"
        )
        add_random_change(service, ctype, state, start, (1, 2, 3))
    # Two changes on one switch in overlapping windows, and one planned inside the quarter-end freeze.
    clash = (end + timedelta(days=5)).replace(hour=21, minute=0).timestamp()
    net = [s for s in implementers if "NET-L2" in s.groups] or implementers
    add_change(
        "Replace core switch line card",
        "normal",
        "submitted",
        "high",
        clash,
        4,
        "network",
        "core-sw-01",
        net[0],
    )
    add_change(
        "Upgrade core switch firmware",
        "normal",
        "assessed",
        "medium",
        clash + 3600,
        3,
        "network",
        "core-sw-01",
        net[-1],
    )
    add_change(
        "ERP kernel patch during quarter close",
        "normal",
        "submitted",
        "medium",
        quarter_close.timestamp() + 86400 + 20 * 3600,
        2,
        "erp",
        "erp-app-01",
        next((s for s in implementers if "APP-L2" in s.groups), implementers[0]),
    )
    w.insert(
        "changes",
        (
            "id",
            "ref",
            "title",
            "description",
            "change_type",
            "template",
            "state",
            "risk",
            "planned_start",
            "planned_end",
            "actual_start",
            "actual_end",
            "implementation_plan",
            "backout_plan",
            "test_plan",
            "implementer_id",
            "requested_by_id",
            "override_reason",
            "rejection_reason",
            "review_notes",
            "outcome",
            "risk_score",
            "risk_answers",
            "assessment_notes",
            "cancel_reason",
            "submitted_at",
            "cab_meeting",
            "created_at",
            "updated_at",
            "version",
        ),
        changes,
    )
    w.insert("change_targets", ("id", "change_id", "service", "ci"), targets)
    w.insert(
        "change_approvals",
        ("id", "change_id", "approver_id", "decision", "reason", "decided_at", "meeting"),
        approvals,
    )
    heads: dict[tuple[str, int], tuple[int, str]] = {}
    w.insert("audit_events", *audit.table_rows(audits, heads))
    w.insert("audit_heads", *audit.head_rows(heads))
    return change_id
