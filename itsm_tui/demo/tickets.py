"""The ticket factory: the rows of each chunk of tickets, made in a worker process while the main one inserts.

A chunk's rows depend only on its job (first index, opening instants, references and a seed drawn from the
main generator), never on which process made it, so the data is the same for any number of chunks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from itsm_tui.demo.roster import Staff
from itsm_tui.demo.tables import (
    DEPARTMENTS,
    FIRST_NAMES,
    LAST_NAMES,
    PRIORITY_MIX,
    REQUESTS,
    RESOLUTION_MEDIAN_HOURS,
    RESOLUTION_TEXT,
    SERVICE_LOAD,
    SYMPTOMS,
)
from itsm_tui.demo.writer import AuditFields, Instants, Row
from itsm_tui.services.sla import SpanClock, clock_for

if TYPE_CHECKING:
    from multiprocessing.pool import AsyncResult

    from itsm_tui.config import DeskConfig

Job = tuple[int, list[float], list[str], int]
"""A chunk to make: the index before its first ticket, its opening instants, its references, its seed."""


@dataclass
class ChunkRows:
    """The rows of one chunk of tickets; the audit events as their fields, laid out by the audit service."""

    tickets: list[Row]
    audits: list[AuditFields]
    entries: list[Row]
    ratings: list[Row]
    open_count: int


class TicketFactory:
    """Makes the rows of a chunk of tickets; picklable, so chunks can be made in another process.

    Each chunk has its own random generator seeded by the main one, so the data depends only on the seed.
    """

    def __init__(
        self,
        config: DeskConfig,
        staff: list[Staff],
        members: dict[str, list[Staff]],
        groups: dict[str, int],
        start_ts: float,
        end_ts: float,
        sqlite: bool,
    ) -> None:
        self.config, self.staff, self.members, self.groups = config, staff, members, groups
        self.start_ts, self.end_ts, self.sqlite = start_ts, end_ts, sqlite
        self._ready = False

    def _prepare(self) -> None:
        config = self.config
        first = (datetime.fromtimestamp(self.start_ts, UTC) - timedelta(days=2)).date()
        last = (datetime.fromtimestamp(self.end_ts, UTC) + timedelta(days=400)).date()
        self.clocks = {name: SpanClock(clock_for(cal), first, last) for name, cal in config.calendars.items()}
        self.instants = Instants(self.sqlite)
        self.combos: dict[int, list[tuple[str, str]]] = {}
        for impact, row in config.priority_matrix.items():
            for urgency, priority in row.items():
                self.combos.setdefault(priority, []).append((impact, urgency))
        self.priorities = [p for p in PRIORITY_MIX if p in self.combos]
        self.priority_weights = [PRIORITY_MIX[p] for p in self.priorities]
        self.services = [s for s in SERVICE_LOAD if s in config.services]
        self.service_weights = [SERVICE_LOAD[s] for s in self.services]
        self.requesters = [
            f"{f} {last} ({d})" for f in FIRST_NAMES for last in LAST_NAMES[:8] for d in DEPARTMENTS[:2]
        ]
        self.codes = [c for c in config.resolution_codes if c not in ("fulfilled", "duplicate")]
        self._ready = True

    def __getstate__(self) -> dict[str, Any]:
        state = {
            k: v
            for k, v in self.__dict__.items()
            if k in ("config", "staff", "members", "groups", "start_ts", "end_ts", "sqlite")
        }
        state["_ready"] = False
        return state

    def chunk(self, job: Job) -> ChunkRows:
        if not self._ready:
            self._prepare()
        first, instants, refs, seed = job
        rng = random.Random(seed)
        config, w = self.config, self.instants
        auto_close = config.auto_close_days * 86400
        ratio = config.warning_ratio
        end_ts = self.end_ts
        out = ChunkRows([], [], [], [], 0)
        for offset, (opened, ref) in enumerate(zip(instants, refs, strict=True)):
            index = first + offset + 1
            kind = "incident" if ref.startswith("INC") else "request"
            if kind == "incident":
                priority = rng.choices(self.priorities, self.priority_weights)[0]
            else:
                priority = rng.choice((3, 4, 4, 5))
            if priority not in self.combos:
                priority = self.priorities[-1]
            impact, urgency = rng.choice(self.combos[priority])
            service = rng.choices(self.services, self.service_weights)[0]
            svc = config.services[service]
            ci = rng.choice(svc.cis) if svc.cis and rng.random() < 0.7 else None
            if kind == "incident":
                title = rng.choice(SYMPTOMS[service])
                category = rng.choice(config.categories["incident"])
            else:
                title = rng.choice(REQUESTS)
                category = rng.choice(config.categories["request"])
            requester = rng.choice(self.requesters)
            policy = config.policies[priority]
            clock = self.clocks[policy.calendar]
            response_target = policy.response_minutes * 60
            resolution_target = policy.resolution_minutes * 60

            # Who works it: most start at the service desk; some escalate to the service's support group.
            group = "SD-L1" if rng.random() < 0.88 else svc.support_group
            escalated = group == "SD-L1" and svc.support_group != "SD-L1" and rng.random() < 0.18
            final_group = svc.support_group if escalated else group
            assignee = rng.choice(self.members[final_group] or self.members["SD-L1"])
            creator = rng.choice(self.members["SD-L1"])

            # Durations: response within the target most of the time, resolution log-normal by priority.
            response_after = response_target * (
                rng.uniform(0.05, 0.9) if rng.random() >= 0.07 else rng.uniform(1.05, 2.5)
            )
            responded = clock.add(opened, response_after)
            median = RESOLUTION_MEDIAN_HOURS[priority] * 3600 * (1.6 if escalated else 1.0)
            resolve_wall = median * math.exp(rng.gauss(0, 0.8))
            resolved = opened + resolve_wall
            cancelled = rng.random() < 0.02
            paused_seconds = 0
            if rng.random() < 0.2:
                pause_from = opened + resolve_wall * 0.3
                paused_seconds = int(
                    clock.elapsed(pause_from, pause_from + resolve_wall * rng.uniform(0.05, 0.3))
                )
            reopened = rng.random() < 0.04

            resp_warn = clock.add(opened, response_target * ratio)
            resp_due = clock.add(opened, response_target)
            res_warn = clock.add(opened, resolution_target * ratio + paused_seconds)
            res_due = clock.add(opened, resolution_target + paused_seconds)

            status, is_open, pending_reason = "closed", False, None
            resolved_at = closed_at = cancelled_at = paused_at = None
            responded_at = responded if responded <= end_ts else None
            code = note = None
            if cancelled and opened + 3600 < end_ts:
                status, cancelled_at = "cancelled", min(opened + rng.uniform(600, 86400), end_ts - 1)
            elif resolved < end_ts:
                resolved_at = resolved
                code = "fulfilled" if kind == "request" else rng.choice(self.codes)
                note = RESOLUTION_TEXT.get(code, "Resolved.")
                if resolved + auto_close < end_ts:
                    closed_at = resolved + auto_close
                else:
                    status = "resolved"
            else:
                is_open = True
                out.open_count += 1
                roll = rng.random()
                if responded_at is None or roll < 0.12:
                    status = "new"
                elif roll < 0.3:
                    status = "assigned"
                elif roll < 0.78:
                    status = "in_progress"
                else:
                    status, pending_reason = (
                        "pending",
                        rng.choice(("customer", "customer", "vendor", "change")),
                    )
                    paused_at = max(opened, end_ts - rng.uniform(600, 3 * 86400), responded_at or opened)
            if status == "new":
                assignee_id = None
                responded_at = responded_at if rng.random() < 0.3 else None
                final_group, escalated = group, False
            else:
                assignee_id = assignee.id

            # SLA flags as a scan would have left them.
            if status == "cancelled":
                response_warned_at = response_breached_at = resolution_warned_at = resolution_breached_at = (
                    None
                )
            else:
                moment = paused_at or end_ts
                resp_end = responded_at if responded_at is not None else moment
                res_end = resolved_at if resolved_at is not None else moment
                response_warned_at = resp_warn if resp_end >= resp_warn else None
                response_breached_at = resp_due if resp_end >= resp_due else None
                resolution_warned_at = res_warn if res_end >= res_warn else None
                resolution_breached_at = res_due if res_end >= res_due else None

            updated = max(
                x
                for x in (opened, responded_at, resolved_at, closed_at, cancelled_at, paused_at)
                if x is not None
            )
            saves = self._audit(
                out.audits,
                index,
                opened,
                creator.id,
                group,
                final_group,
                escalated,
                assignee_id,
                responded_at,
                status,
                resolved_at,
                closed_at,
                cancelled_at,
                paused_at,
                reopened,
            )
            if escalated:
                out.entries.append(
                    (
                        index,
                        creator.id,
                        "note",
                        f"Escalated to {final_group}: needs {svc.name} specialists.",
                        w.instant(opened + 600),
                    )
                )
            if resolved_at is not None:
                out.entries.append(
                    (
                        index,
                        assignee_id or creator.id,
                        "reply",
                        f"Hello {requester.split(' ')[0]}, {note} Please reply if anything remains.",
                        w.instant(resolved_at),
                    )
                )
                if rng.random() < 0.3:
                    score = rng.choices((5, 4, 3, 2, 1), (0.62, 0.26, 0.07, 0.03, 0.02))[0]
                    out.ratings.append(
                        (
                            index,
                            score,
                            None,
                            w.instant(min(resolved_at + rng.uniform(600, 2 * 86400), end_ts)),
                            None,
                        )
                    )
            out.tickets.append(
                (
                    index,
                    ref,
                    kind,
                    title,
                    f"{requester} reports: {title.lower()}." + (f" Affected: {ci}." if ci else ""),
                    requester,
                    category,
                    service,
                    ci,
                    impact,
                    urgency,
                    priority,
                    status,
                    is_open,
                    pending_reason,
                    self.groups[final_group],
                    assignee_id,
                    creator.id,
                    code,
                    note,
                    w.instant(opened),
                    w.instant(updated),
                    w.instant(responded_at),
                    w.instant(resolved_at),
                    w.instant(closed_at),
                    w.instant(cancelled_at),
                    policy.calendar,
                    w.instant(paused_at),
                    paused_seconds,
                    w.instant(resp_warn),
                    w.instant(resp_due),
                    w.instant(res_warn),
                    w.instant(res_due),
                    w.instant(response_warned_at),
                    w.instant(response_breached_at),
                    w.instant(resolution_warned_at),
                    w.instant(resolution_breached_at),
                    int(clock.elapsed(opened, resolved_at)) if resolved_at is not None else None,
                    1 if reopened and resolved_at else 0,
                    1 if escalated else 0,
                    1 if escalated else 0,
                    saves,
                )
            )
        return out

    def _audit(
        self,
        rows: list[AuditFields],
        ticket_id: int,
        opened: float,
        creator_id: int,
        group: str,
        final_group: str,
        escalated: bool,
        assignee_id: int | None,
        responded_at: float | None,
        status: str,
        resolved_at: float | None,
        closed_at: float | None,
        cancelled_at: float | None,
        paused_at: float | None,
        reopened: bool,
    ) -> int:
        """Append the ticket's history; return how many saves it took (its version)."""
        instant = self.instants.instant
        count = len(rows)

        def add(at: float, actor: int | None, action: str, field: str, old: str | None, new: str) -> None:
            rows.append(("ticket", ticket_id, actor, instant(at), action, field, old, new))

        # Generated history is kept to the steps an agent looks for: creation, ownership, status.
        add(opened, creator_id, "create", "status", None, "new")
        state = "new"
        if escalated:
            add(opened + 600, creator_id, "escalate", "group", group, final_group)
        if assignee_id is not None:
            at = responded_at or opened + 60
            add(at, assignee_id, "assign", "assignee", None, self.staff[assignee_id - 1].login)
            if status == "assigned":
                add(at, assignee_id, "transition", "status", state, "assigned")
                state = "assigned"
            else:
                add(at + 60, assignee_id, "transition", "status", state, "in_progress")
                state = "in_progress"
        if paused_at is not None:
            add(paused_at, assignee_id, "transition", "status", state, "pending")
        actor = assignee_id or creator_id
        if resolved_at is not None:
            if reopened:
                first = opened + (resolved_at - opened) * 0.6
                add(first, actor, "transition", "status", state, "resolved")
                add(first + (resolved_at - first) * 0.3, actor, "reopen", "status", "resolved", "in_progress")
            add(resolved_at, actor, "resolve", "status", "in_progress", "resolved")
        if closed_at is not None:
            add(closed_at, None, "close", "status", "resolved", "closed")
        if cancelled_at is not None:
            add(cancelled_at, actor, "transition", "status", state, "cancelled")
        return len(rows) - count


def made_chunks(factory: TicketFactory, chunks: list[Job]) -> Iterator[ChunkRows]:
    """The chunks' rows in order; made one or two ahead in a worker process when there are several."""
    if len(chunks) <= 1:
        yield from map(factory.chunk, chunks)
        return
    import multiprocessing
    from collections import deque

    pool = multiprocessing.get_context("spawn").Pool(1, initializer=_init_worker, initargs=(factory,))
    try:
        pending: deque[AsyncResult[ChunkRows]] = deque()
        jobs = iter(chunks)
        for job in jobs:  # keep at most two chunks in flight, so memory stays flat
            pending.append(pool.apply_async(_worker_chunk, (job,)))
            if len(pending) >= 2:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    finally:
        pool.terminate()
        pool.join()


_WORKER_FACTORY: TicketFactory | None = None


def _init_worker(factory: TicketFactory) -> None:
    global _WORKER_FACTORY
    _WORKER_FACTORY = factory


def _worker_chunk(job: Job) -> ChunkRows:
    assert _WORKER_FACTORY is not None
    return _WORKER_FACTORY.chunk(job)
