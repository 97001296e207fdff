"""Problem management and knowledge in the demo, lived through the services.

Once the tickets and changes are loaded, the demo's knowledge articles, problems, known errors and their
links are made by the very steps people take: :mod:`itsm_tui.services.articles` (write, submit, send back,
publish with four eyes, correct, retire), :mod:`itsm_tui.services.problems` (raise with incidents,
investigate, record the analysis, publish the known error, link the change, work the fix, resolve, close
with the verification, reopen, cancel, mark a duplicate), :func:`itsm_tui.services.knowledge.apply_workaround`
and :func:`itsm_tui.services.tickets.link`. Each step is taken by someone whose roles allow it, at its own
instant (``now=``) inside the demo's history, and all the steps of a kind in time order, so the statuses,
instants, analyses, audit chains and reference counters are the engine's own, and every guard was passed.

A ticket or change is touched (linked, a workaround applied) only after the last event of its own history,
so that every audit chain stays in time order and a ticket's ``updated_at`` stays its last event. Open
problems are raised on some configuration items only, so that recent incidents on the others are left for
the candidate problems to find.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.constants import LEVELS
from itsm_tui.demo.tables import SYMPTOMS
from itsm_tui.models import AuditEvent, Change, ChangeTarget, Ticket, User
from itsm_tui.services import articles, knowledge, problems, tickets
from itsm_tui.services.access import has_permission
from itsm_tui.services.users import Actor, actor_from_user

MINUTE, HOUR, DAY = 60, 3600, 86400
SAMPLE = 3000  # tickets read to draw the linked incidents from, whatever the demo's size
ARTICLES = 24
CHUNK = 500  # ids per IN list

Step = Callable[[Session], object]

# Each analysis: root cause, whys, cause categories, workaround, permanent fix, verification ({ci}: the CI)
ANALYSES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str, str, str], ...] = (
    (
        "A connection pool leak on {ci} in the current release exhausts the pool under peak load.",
        (
            "Users get errors at peak times: requests to {ci} time out.",
            "{ci} has no free database connections left.",
            "Connections are not returned to the pool after a failed request.",
            "The error path of the current release skips closing the connection.",
            "The release was not load-tested with failing requests.",
        ),
        ("technology", "process"),
        "Restart the application service on {ci} once the pool passes 90 %; users retry after a minute.",
        "Deploy the vendor patch that closes connections on the error path, and add a failing-request load "
        "test to the release checklist.",
        "No incident on {ci} for two weeks since the patch; the pool stays below 40 % at peak.",
    ),
    (
        "The certificate on {ci} expired because its automated renewal job had been disabled.",
        (
            "Clients refuse to connect to {ci}.",
            "The server certificate of {ci} has expired.",
            "The renewal job did not run.",
            "It was disabled during a migration and never enabled again.",
        ),
        ("process",),
        "Import the temporary certificate from the vault on {ci}; tell users to restart the client.",
        "Enable the renewal job again, and monitor every certificate's expiry with a 30-day warning.",
        "The renewal ran on schedule and the expiry monitor reports every certificate valid for 60 days.",
    ),
    (
        "A firmware defect on {ci} drops the sessions after each failover.",
        (
            "Sessions drop several times a day.",
            "Each drop follows a failover of {ci}.",
            "Session state is not synchronised to the standby unit.",
            "The installed firmware has a known defect in the state sync.",
        ),
        ("technology", "supplier"),
        "Pin traffic to the primary unit of {ci} and suspend automatic failover during office hours.",
        "Upgrade the firmware of {ci} to the supplier's fixed release in the next maintenance window.",
        "Three planned failovers after the upgrade kept every session; no incident reported since.",
    ),
    (
        "The nightly batch on {ci} overlaps the backup window and locks the tables users need in the "
        "morning.",
        (
            "Morning work on {ci} freezes for up to an hour.",
            "The tables are locked.",
            "The nightly batch still runs when the office opens.",
            "It starts after the backup, which grew longer.",
            "Nobody watches the batch's run time.",
        ),
        ("process", "environment"),
        "Ask the operator to stop the batch on {ci} at 07:00 and restart it at lunch time.",
        "Move the batch before the backup, and alert when it runs past 06:00.",
        "The batch ended before 06:00 every day for two weeks; no morning freeze reported.",
    ),
    (
        "A configuration change on {ci} went out without the matching client profile.",
        (
            "Clients fail after the weekend.",
            "Their profile does not match the settings of {ci}.",
            "The settings of {ci} were changed on Saturday.",
            "The client profile was not part of the change.",
            "The change template has no step for client profiles.",
        ),
        ("process", "people"),
        "Push the updated client profile by hand from the management console; the user signs in again.",
        "Add the client profile to the change template and roll it out with every settings change.",
        "The last two settings changes came with their profile; no client failed since.",
    ),
    (
        "The supplier's update of {ci} shortened a default timeout that long requests need.",
        (
            "Long requests to {ci} fail.",
            "They are cut after 30 seconds.",
            "The timeout default changed from 120 to 30 seconds.",
            "The supplier's update changed it without notice.",
        ),
        ("supplier", "technology"),
        "Split the report into smaller date ranges; the help page shows how.",
        "Set the timeout of {ci} explicitly to 120 seconds and ask the supplier to list default changes in "
        "release notes.",
        "Long requests run to completion since the setting; the supplier confirmed the release-note change.",
    ),
)

CANCEL_REASONS = (
    "The incidents were unrelated after all: each had its own cause, fixed in the ticket.",
    "The service is being replaced next month; no fix is worth making.",
    "Raised by mistake for a one-off outage that the supplier has explained.",
)
SEND_BACK_NOTES = (
    "Add the screenshots of each step, and say which client versions this applies to.",
    "The second step is wrong for the new client: check it against the current version.",
)
RETIRE_REASONS = (
    "The service moved to the new platform; these steps no longer apply.",
    "Replaced by a newer article covering every client version.",
)

# The final status each problem is brought to, in turn ("reopened": resolved, then reopened to investigate).
STATUS_CYCLE = (
    "known_error",
    "investigating",
    "closed",
    "fix_in_progress",
    "new",
    "resolved",
    "known_error",
    "cancelled",
    "closed",
    "duplicate",
    "investigating",
    "reopened",
    "fix_in_progress",
    "resolved",
    "closed",
    "known_error",
)
ENDED = ("closed", "cancelled", "duplicate")

# Each step's time after the one before, in hours (at least, at most).
GAPS: dict[str, tuple[float, float]] = {
    "investigate": (2, 20),
    "link_more": (1, 8),
    "whys": (4, 48),
    "analyse": (24, 96),
    "publish": (2, 12),
    "fix_plan": (24, 72),
    "analyse_fix": (24, 96),
    "link_change": (1, 6),
    "start_fix": (1, 12),
    "resolve": (48, 192),
    "close": (96, 240),
    "reopen": (48, 144),
    "reanalyse": (4, 48),
    "cancel": (24, 120),
    "duplicate": (2, 30),
}


SMALL = 1000  # a demo of fewer tickets (a test's) holds each kind of problem and article once or so


def problem_count(tickets: int) -> int:
    """How many problems a demo of ``tickets`` tickets holds: 16 (every status twice) and up to 48; a small
    demo 12 (every status, a reopened one among them)."""
    if tickets < SMALL:
        return 12
    return max(len(STATUS_CYCLE), min(48, tickets // 400))


def article_count(tickets: int) -> int:
    """How many articles a demo holds: :data:`ARTICLES`, half of them in a small demo (every state)."""
    return ARTICLES // 2 if tickets < SMALL else ARTICLES


def _epoch(value: datetime | str) -> int:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Slot:
    """The reference of a record made by a step, known once that step is taken."""

    def __init__(self) -> None:
        self.ref = ""


def _resolved(value: object) -> object:
    if isinstance(value, Slot):
        return value.ref
    if isinstance(value, list):
        return [_resolved(item) for item in value]
    return value


def step(fn: Callable[..., Any], *args: object, made: Slot | None = None, **kwargs: object) -> Step:
    """``fn(session, *args, **kwargs)`` taken later, each :class:`Slot` among the arguments read then;
    ``made`` takes the reference of what it returns."""

    def take(session: Session) -> object:
        result = fn(session, *[_resolved(a) for a in args], **{k: _resolved(v) for k, v in kwargs.items()})
        if made is not None:
            made.ref = result.ref
        return result

    return take


@dataclass
class Record:
    """A ticket or a change as the plans need it; ``free``: the instant of its last audit event, after which
    alone it is touched."""

    id: int
    ref: str
    title: str
    kind: str
    ci: str | None
    service: str | None
    category: str | None
    opened: int
    is_open: bool
    status: str
    assignee_id: int | None
    free: int = 0
    problem: bool = False  # linked to a problem (or planned to be)


@dataclass
class Plan:
    """One problem's life: its steps and what the later plans need of it."""

    index: int
    target: str
    ci: str
    service: str
    title: str
    opened: int
    slot: Slot = field(default_factory=Slot)
    known_error: Slot = field(default_factory=Slot)
    published: int | None = None  # when its known error (in force at the end) was published
    steps: list[tuple[int, Step]] = field(default_factory=list)


class ProblemDesk:
    """Plans the demo's knowledge and problem steps and takes them, in an ORM session on the demo's
    connection (the caller's transaction)."""

    def __init__(
        self,
        session: Session,
        config: DeskConfig,
        rng: random.Random,
        start_ts: int,
        end_ts: int,
        tickets_made: int,
    ) -> None:
        self.session, self.config, self.rng = session, config, rng
        self.start_ts, self.end_ts = start_ts, end_ts
        self.tickets_made = tickets_made
        users = session.scalars(select(User).order_by(User.id)).all()
        self.actors: dict[int, Actor] = {u.id: actor_from_user(u) for u in users}
        everyone = list(self.actors.values())
        self.managers = [a for a in everyone if a.has_role("problem_manager")]
        self.analysts = [a for a in everyone if a.has_role("support_l2", "support_l3")]
        support = ("agent", "support_l2", "support_l3", "shift_lead")  # those who work on tickets
        self.writers = [
            a for a in everyone if has_permission(a.roles, "knowledge.write") and a.has_role(*support)
        ]
        self.publishers = [a for a in everyone if has_permission(a.roles, "knowledge.publish")]
        self.agents = [a for a in everyone if a.has_role("agent")]
        self.leads = [a for a in everyone if a.has_role("shift_lead")]
        self.service_of = {ci: code for code, service in config.services.items() for ci in service.cis}
        self.tickets = self._sample()
        self.changes = self._changes()

    # ------------------------------------------------------------------ what the database holds

    def _sample(self) -> list[Record]:
        """Up to about :data:`SAMPLE` tickets (every n-th), none cancelled, with the instant of each one's
        last audit event."""
        every = max(1, -(-self.tickets_made // SAMPLE))
        rows = self.session.execute(
            select(
                Ticket.id,
                Ticket.ref,
                Ticket.title,
                Ticket.kind,
                Ticket.ci,
                Ticket.service,
                Ticket.category,
                Ticket.opened_at,
                Ticket.is_open,
                Ticket.status,
                Ticket.assignee_id,
            )
            .where(Ticket.status != "cancelled", Ticket.id % every == 0)
            .order_by(Ticket.id)
        ).all()
        records = [
            Record(
                r.id,
                r.ref,
                r.title,
                r.kind,
                r.ci,
                r.service,
                r.category,
                _epoch(r.opened_at),
                bool(r.is_open),
                r.status,
                r.assignee_id,
            )
            for r in rows
        ]
        self._last_events("ticket", {r.id: r for r in records})
        return records

    def _last_events(self, entity_type: str, records: dict[int, Record]) -> None:
        ids = sorted(records)
        for first in range(0, len(ids), CHUNK):
            for entity_id, at in self.session.execute(
                select(AuditEvent.entity_id, func.max(AuditEvent.at))
                .where(
                    AuditEvent.entity_type == entity_type,
                    AuditEvent.entity_id.in_(ids[first : first + CHUNK]),
                )
                .group_by(AuditEvent.entity_id)
            ).tuples():
                records[entity_id].free = _epoch(at)

    def _changes(self) -> list[Record]:
        """The changes, each with its first target's service and CI."""
        found: dict[int, Record] = {}
        for change_id, ref, title, state, created, service, ci in self.session.execute(
            select(
                Change.id,
                Change.ref,
                Change.title,
                Change.state,
                Change.created_at,
                ChangeTarget.service,
                ChangeTarget.ci,
            )
            .join(ChangeTarget, ChangeTarget.change_id == Change.id)
            .order_by(Change.id, ChangeTarget.id)
        ).tuples():
            if change_id not in found:
                found[change_id] = Record(
                    change_id, ref, title, "change", ci, service, None, _epoch(created), True, state, None
                )
        self._last_events("change", found)
        return list(found.values())

    def _run(self, steps: list[tuple[int, int, Step]]) -> None:
        """Take the steps in time order (ties in the order they were planned)."""
        for _, _, take in sorted(steps, key=lambda item: (item[0], item[1])):
            take(self.session)
        self.session.flush()

    # ------------------------------------------------------------------ knowledge

    def knowledge(self, count: int = ARTICLES) -> None:
        """``count`` articles in every state (draft, some sent back; in review; published, some
        corrected; retired), the published and retired ones used by tickets linking to them."""
        rng, config = self.rng, self.config
        steps: list[tuple[int, int, Step]] = []

        def add(at: int, take: Step) -> None:
            steps.append((at, len(steps), take))

        services = sorted(SYMPTOMS)
        closed = [t for t in self.tickets if t.status == "closed"]
        states = ("published",) * 4 + (
            "retired",
            "in_review",
            "published",
            "draft",
            "sent_back",
            "published",
            "published",
            "retired",
        )
        for index in range(count):
            service = services[index % len(services)]
            symptom = rng.choice(SYMPTOMS[service])
            state = states[index % len(states)]
            author = rng.choice(self.writers)
            reviewer = rng.choice([a for a in self.publishers if a.id != author.id])
            if state in ("in_review", "draft", "sent_back"):
                created = self.end_ts - int(rng.uniform(5, 20) * DAY)
            else:
                created = self.start_ts + int(rng.uniform(-25, 30) * DAY)
            source = None
            if index % 10 == 2:  # written from a closed ticket of its service
                fitting = [t for t in closed if t.service == service and t.free < self.start_ts + 40 * DAY]
                if fitting:
                    source = rng.choice(fitting)
                    created = max(created, source.free + int(rng.uniform(1, 48) * HOUR))
                    source.free = created
            title = f"How to: {symptom.lower()}"
            body = (
                f"Steps agents follow when a caller reports: {symptom}.\n1. Confirm the user and device."
                f"\n2. Check the service status page.\n3. Apply the documented fix or escalate."
            )
            slot = Slot()
            add(
                created,
                step(
                    articles.create_article,
                    config,
                    author,
                    title=title,
                    body=body,
                    service=service,
                    from_ticket=source.ref if source else None,
                    now=_at(created),
                    made=slot,
                ),
            )
            at = created + int(rng.uniform(2, 48) * HOUR)
            if state == "draft":
                if index % 2:
                    more = {"body": body + "\n4. Escalate to the service's second line if it persists."}
                    add(at, step(articles.update_article, config, author, slot, more, now=_at(at)))
                continue
            add(at, step(articles.submit, config, author, slot, now=_at(at)))
            if state == "sent_back" or index % 20 == 3:
                at += int(rng.uniform(1, 24) * HOUR)
                note = SEND_BACK_NOTES[index % len(SEND_BACK_NOTES)]
                add(at, step(articles.send_back, config, reviewer, slot, note, now=_at(at)))
                if state == "sent_back":
                    continue
                at += int(rng.uniform(2, 48) * HOUR)
                better = {"body": body + "\n4. If it happens again, note the client version in the ticket."}
                add(at, step(articles.update_article, config, author, slot, better, now=_at(at)))
                at += int(rng.uniform(1, 6) * HOUR)
                add(at, step(articles.submit, config, author, slot, now=_at(at)))
            if state == "in_review":
                continue
            at += int(rng.uniform(2, 72) * HOUR)
            published = at
            add(at, step(articles.publish, config, reviewer, slot, now=_at(at)))
            until = self.end_ts - HOUR
            if state == "retired":
                until = min(until, published + int(rng.uniform(20, 50) * DAY))
                reason = RETIRE_REASONS[index % len(RETIRE_REASONS)]
                add(until, step(articles.retire, config, reviewer, slot, reason, now=_at(until)))
            elif index % 5 == 1:
                at = published + int(rng.uniform(5, 30) * DAY)
                if at < until:
                    fix = {"title": f"{title} (every client)"}
                    add(at, step(articles.update_article, config, reviewer, slot, fix, now=_at(at)))
            for ticket, at in self._uses(service, published, until, rng.choice((0, 1, 1, 2, 3, 5)), source):
                actor = self.actors.get(ticket.assignee_id or 0) or rng.choice(self.agents)
                add(at, step(tickets.link, actor, ticket.ref, slot, now=_at(at)))
        self._run(steps)

    def _uses(
        self, service: str, after: int, before: int, count: int, source: Record | None
    ) -> list[tuple[Record, int]]:
        """Up to ``count`` tickets of the service (not the one it was written from: that one links to it
        already) linking to an article between ``after`` and ``before``."""
        fitting = [
            t for t in self.tickets if t.service == service and t.free < before - HOUR and t is not source
        ]
        chosen: list[tuple[Record, int]] = []
        for ticket in self.rng.sample(fitting, min(count, len(fitting))):
            at = max(ticket.free, after) + int(self.rng.uniform(1, 72) * HOUR)
            if at < before:
                ticket.free = at
                chosen.append((ticket, at))
        return chosen

    # ------------------------------------------------------------------ problems

    def problems(self, count: int) -> None:
        """``count`` problems brought to the statuses of :data:`STATUS_CYCLE` in turn (duplicates planned
        last: each names a problem raised before it), their known errors' workarounds applied to open
        incidents; every step taken in time order."""
        rng = self.rng
        cis = sorted(self.service_of)
        rng.shuffle(cis)
        covered = cis[: max(1, len(cis) * 3 // 5)]  # the rest have no open problem: candidates stay
        self.incidents: dict[str, list[Record]] = {ci: [] for ci in cis}
        for ticket in self.tickets:
            if ticket.kind == "incident" and ticket.ci in self.incidents:
                self.incidents[ticket.ci].append(ticket)
        targets = [STATUS_CYCLE[i % len(STATUS_CYCLE)] for i in range(count)]
        targets = [t for t in targets if t != "duplicate"] + [t for t in targets if t == "duplicate"]
        plans: list[Plan] = []
        for index, target in enumerate(targets):
            plans.append(self._plan(index, target, covered if target not in ENDED else cis, plans))
        for plan in plans:
            if plan.published is not None:
                self._workarounds(plan)
        self._run(
            [
                (at, plan.index * 1000 + order, take)
                for plan in plans
                for order, (at, take) in enumerate(plan.steps)
            ]
        )

    def _eligible(self, ci: str, after: int, before: int) -> list[Record]:
        """Incidents on ``ci`` opened from ``after`` and free before ``before``, no problem's yet."""
        return [
            t
            for t in self.incidents.get(ci, ())
            if not t.problem and after <= t.opened < before - HOUR and t.free < before - MINUTE
        ]

    def _take(self, found: list[Record], count: int, at: int) -> list[str]:
        chosen = found[-count:] if count else []
        for ticket in chosen:
            ticket.problem, ticket.free = True, at
        return [t.ref for t in chosen]

    def _path(self, target: str) -> list[str]:
        rng = self.rng
        if target == "new":
            return []
        if target == "investigating":
            return ["investigate", "link_more", "whys"]
        if target == "known_error":
            return ["investigate", "analyse", "publish", "link_more"]
        if target == "cancelled":
            return (["investigate"] if rng.random() < 0.6 else []) + ["cancel"]
        if target == "duplicate":
            return ["duplicate"]
        if rng.random() < 0.75:
            path = ["investigate", "analyse", "publish", "link_more", "fix_plan"]
        else:
            path = ["investigate", "link_more", "analyse_fix"]
        path += ["link_change", "start_fix"]
        if target == "fix_in_progress":
            return path
        path.append("resolve")
        if target == "closed":
            path.append("close")
        elif target == "reopened":
            path += ["reopen", "reanalyse"]
        return path

    def _plan(self, index: int, target: str, pool: list[str], plans: list[Plan]) -> Plan:
        rng, config = self.rng, self.config
        path = self._path(target)
        gaps = [int(rng.uniform(*GAPS[name]) * HOUR) for name in path]
        span = sum(gaps)
        original: Plan | None = None
        if target == "duplicate":
            high = self.end_ts - span - 2 * HOUR
            originals = [
                p for p in plans if p.target not in ("cancelled", "duplicate") and p.opened + DAY < high
            ]
            if not originals:  # nothing raised early enough to duplicate: it is cancelled instead
                return self._plan(index, "cancelled", pool, plans)
            original = originals[rng.randrange(len(originals))]
            low = original.opened + DAY
        elif target in ENDED:
            low, high = self.start_ts + 7 * DAY, self.end_ts - span - DAY
        else:
            high = self.end_ts - span - 2 * HOUR
            low = max(self.start_ts + 7 * DAY, high - 21 * DAY)
        opened = int(rng.uniform(low, max(low, high)))
        if original is not None:
            ci = original.ci
        else:
            busy = [ci for ci in pool if len(self._eligible(ci, opened - 21 * DAY, opened)) >= 2]
            ci = rng.choice(busy or pool)
        service = self.service_of[ci]
        found = self._eligible(ci, opened - 21 * DAY, opened)
        refs = self._take(found, rng.randint(2, 4) if target != "duplicate" else 1, opened)
        linked = [t for t in self.incidents[ci] if t.ref in refs]
        kinds = Counter(t.category for t in linked if t.category)
        category = kinds.most_common(1)[0][0] if kinds else None
        if original is not None:
            title = original.title
        else:
            said = linked[-1].title if linked else rng.choice(SYMPTOMS[service])
            title = f"Recurring on {ci}: {said}"
        plan = Plan(index, target, ci, service, title, opened)
        manager = self.managers[index % len(self.managers)]
        group = config.services[service].support_group
        owners = [a for a in self.analysts if group in a.group_codes] or self.analysts
        owner = rng.choice(owners)
        # Raised by its owner, or by a shift lead leaving it to whoever investigates (and so takes it):
        # whoever links the incidents works on tickets.
        raised_by_lead = target not in ("duplicate",) and rng.random() < 0.3
        maker = rng.choice(self.leads) if raised_by_lead and self.leads else owner
        impact, urgency = rng.choice(LEVELS), rng.choice(LEVELS)
        said_cause, said_whys, said_categories, said_workaround, said_fix, said_verification = ANALYSES[
            rng.randrange(len(ANALYSES))
        ]
        cause, workaround = said_cause.format(ci=ci), said_workaround.format(ci=ci)
        fix, verification = said_fix.format(ci=ci), said_verification.format(ci=ci)
        whys = [why.format(ci=ci) for why in said_whys]
        categories = list(said_categories)
        plan.steps.append(
            (
                opened,
                step(
                    problems.create_problem,
                    config,
                    maker,
                    title=title,
                    description=f"{len(refs) or 'Several'} incidents on {ci} report the same: {title}.",
                    service=service,
                    ci=ci,
                    category=category,
                    impact=impact,
                    urgency=urgency,
                    owner=None if maker is not owner else owner.login,
                    incidents=refs,
                    now=_at(opened),
                    made=plan.slot,
                ),
            )
        )
        at = opened
        ref = plan.slot
        for name, gap in zip(path, gaps, strict=True):
            at += gap
            now = _at(at)
            if name == "investigate":
                take = step(problems.start_investigation, config, owner, ref, now=now)
            elif name == "link_more":
                more = self._take(self._eligible(ci, opened - 21 * DAY, at), rng.randint(1, 2), at)
                if not more:
                    continue
                take = step(problems.link_incidents, config, owner, ref, more, now=now)
            elif name == "whys":
                partial = {"five_whys": whys[:2], "cause_categories": categories[:1]}
                take = step(problems.update_problem, config, owner, ref, partial, now=now)
            elif name in ("analyse", "analyse_fix"):
                found_out: dict[str, object] = {
                    "root_cause": cause,
                    "five_whys": whys,
                    "cause_categories": categories,
                }
                if name == "analyse":
                    found_out["workaround"] = workaround
                else:
                    found_out["permanent_fix"] = fix
                take = step(problems.update_problem, config, owner, ref, found_out, now=now)
            elif name == "publish":
                take = step(problems.publish_known_error, config, owner, ref, now=now, made=plan.known_error)
                plan.published = at
            elif name == "fix_plan":
                take = step(problems.update_problem, config, owner, ref, {"permanent_fix": fix}, now=now)
            elif name == "link_change":
                change = self._change_for(ci, service, at)
                if change is None:
                    continue
                take = step(problems.link_change, config, owner, ref, change.ref, now=now)
            elif name == "start_fix":
                take = step(problems.start_fix, config, owner, ref, now=now)
            elif name == "resolve":
                take = step(problems.resolve, config, manager, ref, now=now)
                plan.published = None  # its known error is retired
            elif name == "close":
                take = step(problems.close, config, manager, ref, verification=verification, now=now)
            elif name == "reopen":
                reason = f"Incidents on {ci} came back after the fix: the cause was not the one found."
                take = step(problems.reopen, config, manager, ref, reason=reason, now=now)
            elif name == "reanalyse":
                again = {"root_cause": f"{cause} A second cause is being looked at: the fix did not hold."}
                take = step(problems.update_problem, config, owner, ref, again, now=now)
            elif name == "cancel":
                reason = CANCEL_REASONS[index % len(CANCEL_REASONS)]
                take = step(problems.cancel, config, manager, ref, reason=reason, now=now)
                plan.published = None
            else:  # duplicate
                assert original is not None
                reason = f"The same incidents on {ci} as the problem it duplicates: they are worked there."
                take = step(
                    problems.mark_duplicate, config, manager, ref, of=original.slot, reason=reason, now=now
                )
            plan.steps.append((at, take))
        return plan

    def _change_for(self, ci: str, service: str, at: int) -> Record | None:
        """A change on the CI (else the service) whose history ends before ``at``, to carry the fix."""
        for fits in (lambda c: c.ci == ci, lambda c: c.service == service):
            found = [c for c in self.changes if fits(c) and c.free < at - MINUTE and c.opened < at]
            if found:
                change = found[self.rng.randrange(len(found))]
                change.free = at
                return change
        return None

    def _workarounds(self, plan: Plan) -> None:
        """The known error in force applied to open incidents on its CI by their assignees, who then link them
        to the problem."""
        assert plan.published is not None

        def workable(t: Record) -> bool:
            return (
                t.kind == "incident"
                and t.is_open
                and not t.problem
                and t.status in ("assigned", "in_progress", "pending")
                and t.assignee_id in self.actors
                and t.free < self.end_ts - 3 * HOUR
            )

        open_ones = [t for t in self.incidents[plan.ci] if workable(t)]
        if not open_ones:  # none on its CI: the same symptom on another of the service's
            open_ones = [t for t in self.tickets if t.service == plan.service and workable(t)]
        count = min(len(open_ones), self.rng.randint(1, 3))
        for ticket in self.rng.sample(open_ones, count):
            since = max(ticket.free, plan.published)
            room = min(self.end_ts - 5 * MINUTE - since, 2 * DAY)
            if room < 10 * MINUTE:
                continue
            at = since + int(self.rng.uniform(0.05, 0.9) * room)
            actor = self.actors[ticket.assignee_id or 0]
            ticket.problem, ticket.free = True, at + MINUTE
            plan.steps.append(
                (
                    at,
                    step(
                        knowledge.apply_workaround,
                        self.config,
                        actor,
                        ticket.ref,
                        plan.known_error,
                        now=_at(at),
                    ),
                )
            )
            plan.steps.append(
                (
                    at + MINUTE,
                    step(
                        problems.link_incidents,
                        self.config,
                        actor,
                        plan.slot,
                        [ticket.ref],
                        now=_at(at + MINUTE),
                    ),
                )
            )
