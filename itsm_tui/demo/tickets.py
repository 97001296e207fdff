"""The ticket factory: each ticket's history simulated in time order, chunk by chunk, in worker processes.

A ticket is logged, then lives through the moves people make at the desk (a first response, taking it,
work, waiting on the customer, a vendor or a change, a priority change, an escalation, a cancel, the
resolution, a reopen, a rating, a close) with the SLA job running beside it: whenever one of its warning or
due instants passes while that clock runs, the job flags it there and then, and may hand the ticket to
another group; ``auto_close_days`` after its resolution the job closes it. Every move is made by
:class:`~itsm_tui.demo.history.TicketHistory` as the services make it, so the rows (ticket, audit trail,
pauses, notes, rating) are those the console would have written. Nothing happens after the anchor.

A chunk's rows depend only on its job (first index, opening instants, references and a seed drawn from the
main generator) and on how many entries the chunks before it hold, never on which process made it, so the
data is the same for any number of workers. A worker lays its chunk out as the database takes it (the audit
trail chained and hashed; on PostgreSQL the COPY text itself), so the main process only streams it in.
"""

from __future__ import annotations

import itertools
import marshal
import math
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from itsm_tui.demo.clock import EpochClock, epoch_clocks
from itsm_tui.demo.history import ChunkRows, Desk, TicketHistory
from itsm_tui.demo.roster import Staff
from itsm_tui.demo.tables import (
    CANCEL_REASONS,
    DEPARTMENTS,
    ENTRY_COLUMNS,
    ESCALATION_REASONS,
    FIRST_NAMES,
    LAST_NAMES,
    PAUSE_COLUMNS,
    PENDING,
    PRIORITY_MIX,
    RATING_COLUMNS,
    REOPEN_REASONS,
    REQUESTS,
    RESOLUTION_MEDIAN_HOURS,
    RESOLUTION_TEXT,
    SERVICE_LOAD,
    SYMPTOMS,
    TICKET_COLUMNS,
)
from itsm_tui.demo.writer import Instants, Row, copy_text
from itsm_tui.services import audit
from itsm_tui.services.access import has_permission

if TYPE_CHECKING:
    from multiprocessing.pool import AsyncResult
    from multiprocessing.sharedctypes import SynchronizedArray
    from multiprocessing.synchronize import Condition

    from itsm_tui.config import DeskConfig

__all__ = ["Chunk", "ChunkRows", "Job", "TicketFactory", "made_chunks"]

Job = tuple[int, list[int], list[str], int]
"""A chunk to make: the index before its first ticket, its opening instants, its references, its seed."""

Table = tuple[str, tuple[str, ...], str | Sequence[Row], int]
"""One table's part of a chunk: its name, the columns, the rows (or their COPY text), how many."""


@dataclass
class Chunk:
    """A chunk laid out as the database takes it: each table's rows in the order they are inserted."""

    tables: list[Table]
    tickets: int
    open_count: int


_OPEN = ("new", "assigned", "in_progress", "pending")
_SCORE_WEIGHTS = list(itertools.accumulate((0.62, 0.26, 0.07, 0.03, 0.02)))  # ratings 5 to 1
_PENDING_WEIGHTS = list(itertools.accumulate(weight for _, weight, _ in PENDING))
_MINUTE, _HOUR, _DAY = 60, 3600, 86400


@dataclass(slots=True)
class _Plan:
    """What is in store for one ticket; the moves are chosen from it and from the ticket as it stands.

    Work is the time the ticket must spend in progress to be resolved (``done`` of it so far, counted from
    ``mark`` while in progress); pending spells and a person's escalation come at points of that work.
    The other plans are instants (a cancel, a priority change) or delays after the resolution.
    """

    respond_at: int
    first: str  # how the first response comes: take | start | reply
    work: float
    done: float = 0.0
    mark: int | None = None
    reply: bool = True  # the resolution is told in a reply, then resolved (else resolved with its note only)
    replied: bool = False  # that reply is written: the resolve follows
    spells: list[float] = field(default_factory=list)  # points of the work where it waits
    escalate_at: float | None = None
    cancel_at: int | None = None
    edit_at: int | None = None
    levels: tuple[str, str] | None = None
    resume_at: int = 0
    resume_to: str = "resume"
    reopen_after: int | None = None
    close_after: int | None = None
    rate_after: int | None = None


class TicketFactory:
    """Makes the rows of a chunk of tickets; picklable, so chunks can be made in another process.

    Each chunk has its own random generator seeded by the main one, so the data depends only on the seed.
    """

    def __init__(
        self,
        config: DeskConfig,
        staff: list[Staff],
        groups: dict[str, int],
        start_ts: int,
        end_ts: int,
        copy: bool,
    ) -> None:
        self.config, self.staff, self.groups = config, staff, groups
        self.start_ts, self.end_ts = start_ts, end_ts
        self.copy = copy  # lay chunks out as COPY text (PostgreSQL with psycopg 3), else as rows
        self._ready = False

    def _prepare(self) -> None:
        config = self.config
        first = (datetime.fromtimestamp(self.start_ts, UTC) - timedelta(days=2)).date()
        last = (datetime.fromtimestamp(self.end_ts, UTC) + timedelta(days=400)).date()
        self.clocks: dict[str, EpochClock] = epoch_clocks(config, first, last)
        self.instants = Instants(text=True)  # the form both databases read, plain for the serialiser
        self.desk = Desk(config, self.clocks, self.instants)
        self.combos: dict[int, list[tuple[str, str]]] = {}
        for impact, row in config.priority_matrix.items():
            for urgency, priority in row.items():
                self.combos.setdefault(priority, []).append((impact, urgency))
        self.priorities = [p for p in PRIORITY_MIX if p in self.combos]
        self.priority_weights = list(itertools.accumulate(PRIORITY_MIX[p] for p in self.priorities))
        self.services = [s for s in SERVICE_LOAD if s in config.services]
        self.service_weights = list(itertools.accumulate(SERVICE_LOAD[s] for s in self.services))
        self.requesters = [
            f"{f} {last} ({d})" for f in FIRST_NAMES for last in LAST_NAMES[:8] for d in DEPARTMENTS[:2]
        ]
        self.codes = [c for c in config.resolution_codes if c not in ("fulfilled", "duplicate")]
        # Who works a group's tickets: its members who may take and work tickets (shift leads of level 1).
        self.workers: dict[str, list[Staff]] = {
            code: [
                s
                for s in self.staff
                if code in s.groups
                and has_permission(s.roles, "ticket.take")
                and (group.level == 1 or "shift_lead" not in s.roles)
            ]
            for code, group in config.groups.items()
        }
        self.first_line = next(code for code, group in config.groups.items() if group.level == 1)
        self.creators = [s for s in self.workers[self.first_line] if has_permission(s.roles, "ticket.create")]
        reached = {self.first_line, *(service.support_group for service in config.services.values())}
        idle = sorted(code for code in reached if not self.workers.get(code))
        if idle or not self.creators:
            nobody = ", ".join(idle) or self.first_line
            raise ValueError(f"the demo roster has nobody to work the tickets of {nobody}")
        self._ready = True

    def __getstate__(self) -> dict[str, Any]:
        state = {
            k: v
            for k, v in self.__dict__.items()
            if k in ("config", "staff", "groups", "start_ts", "end_ts", "copy")
        }
        state["_ready"] = False
        return state

    # ------------------------------------------------------------------ a chunk

    def chunk(self, job: Job) -> ChunkRows:
        if not self._ready:
            self._prepare()
        first, instants, refs, seed = job
        rng = random.Random(seed)
        out = ChunkRows()
        for offset, (opened, ref) in enumerate(zip(instants, refs, strict=True)):
            self._ticket(rng, out, first + offset + 1, ref, opened)
        return out

    def laid_out(self, rows: ChunkRows, entries_before: int) -> Chunk:
        """The chunk's tables, its entries numbered on from the ``entries_before`` of the chunks before it,
        the audit events naming them, and the audit trail chained, with the head of each ticket's chain
        (each ticket's events are all in its chunk, so the heads of one chunk are all its tickets')."""
        events = rows.events
        for position, number in rows.entry_audits:
            event = events[position]
            events[position] = (*event[:7], str(entries_before + number))
        entries = [(entries_before + n, *row) for n, row in enumerate(rows.entries, start=1)]
        heads: dict[audit.Key, tuple[int, str]] = {}
        trail: Table
        if self.copy:
            trail = ("audit_events", *audit.table_copy(events, heads))
        else:
            columns, audit_rows = audit.table_rows(events, heads)
            trail = ("audit_events", columns, audit_rows, len(audit_rows))
        head_columns, head_rows = audit.head_rows(heads)
        lay = _copied if self.copy else _listed
        tables = [
            lay("tickets", TICKET_COLUMNS, rows.tickets),
            trail,
            lay("audit_heads", head_columns, head_rows),
            lay("ticket_pauses", PAUSE_COLUMNS, rows.pauses),
            lay("ticket_entries", ENTRY_COLUMNS, entries),
            lay("satisfaction_ratings", RATING_COLUMNS, rows.ratings),
        ]
        return Chunk(tables, len(rows.tickets), rows.open_count)

    def _ticket(self, rng: random.Random, out: ChunkRows, index: int, ref: str, opened: int) -> None:
        config, w = self.config, self.instants
        kind = "incident" if ref.startswith("INC") else "request"
        if kind == "incident":
            priority = rng.choices(self.priorities, cum_weights=self.priority_weights)[0]
        else:
            priority = rng.choice((3, 4, 4, 5))
        if priority not in self.combos:
            priority = self.priorities[-1]
        impact, urgency = rng.choice(self.combos[priority])
        service = rng.choices(self.services, cum_weights=self.service_weights)[0]
        svc = config.services[service]
        ci = rng.choice(svc.cis) if svc.cis and rng.random() < 0.7 else None
        if kind == "incident":
            title = rng.choice(SYMPTOMS[service])
            category = rng.choice(config.categories["incident"])
        else:
            title = rng.choice(REQUESTS)
            category = rng.choice(config.categories["request"])
        requester = rng.choice(self.requesters)
        group = self.first_line if rng.random() < 0.88 else svc.support_group
        creator = rng.choice(self.creators)

        history = TicketHistory(
            self.desk, out, index, priority=priority, impact=impact, urgency=urgency, service=service
        )
        history.create(opened, creator, group)
        plan = self._plan(rng, history, opened, kind)
        self._live(rng, history, plan, kind, requester)

        if history.is_open:
            out.open_count += 1
        out.pauses += history.pause_rows()
        h = history
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
                h.impact,
                h.urgency,
                h.priority,
                h.status,
                h.is_open,
                h.pending_reason,
                self.groups[h.group],
                self.groups[h.first_group],
                h.assignee.id if h.assignee is not None else None,
                creator.id,
                h.code,
                h.note,
                w.instant(h.opened),
                w.instant(h.updated),
                w.instant(h.responded),
                w.instant(h.resolved),
                w.instant(h.closed),
                w.instant(h.cancelled),
                h.sla_calendar,
                w.instant(h.paused_at),
                w.instant(h.resolution_started),
                w.instant(h.resp_warn),
                w.instant(h.resp_due),
                w.instant(h.res_warn),
                w.instant(h.res_due),
                w.instant(h.resp_warned),
                w.instant(h.resp_breached),
                w.instant(h.res_warned),
                w.instant(h.res_breached),
                h.business_seconds,
                h.reopen_count,
                h.escalation_count,
                h.reassignment_count,
                h.version,
            )
        )

    def _plan(self, rng: random.Random, h: TicketHistory, opened: int, kind: str) -> _Plan:
        """Draw what is in store: the first response, the work, waits, escalation, edits, the aftermath."""
        policy = self.config.policies[h.priority]
        clock = self.clocks[policy.calendar]
        # The first response within the target most of the time, late now and then.
        share = rng.uniform(0.05, 0.9) if rng.random() >= 0.07 else rng.uniform(1.05, 2.5)
        respond_at = clock.add_seconds(opened, max(60.0, round(policy.response_minutes * 60 * share)))
        roll = rng.random()
        first = "reply" if roll < 0.12 else "start" if roll < 0.5 else "take"
        # Resolution: log-normal around the priority's median wall-clock time from the opening.
        escalates = (
            h.group == self.first_line and h.service_group not in (None, h.group) and rng.random() < 0.18
        )
        median = RESOLUTION_MEDIAN_HOURS[h.priority] * _HOUR * (1.6 if escalates else 1.0)
        wall = median * math.exp(rng.gauss(0, 0.8))
        work = max(10 * _MINUTE, wall - (respond_at - opened))
        plan = _Plan(respond_at=respond_at, first=first, work=work, reply=rng.random() < 0.6)
        if rng.random() < (0.2 if h.priority <= 2 else 0.35):
            plan.spells.append(work * rng.uniform(0.15, 0.8))
            if rng.random() < 0.25:
                plan.spells.append(work * rng.uniform(0.82, 0.95))
        if escalates:
            plan.escalate_at = work * rng.uniform(0.1, 0.5)
        if rng.random() < 0.025:
            plan.cancel_at = opened + rng.randint(10 * _MINUTE, 2 * _DAY)
        if rng.random() < 0.06:
            step = -1 if rng.random() < 0.6 else 1  # more often raised than lowered
            to = h.priority + step
            if to in self.combos:
                plan.edit_at = opened + rng.randint(5 * _MINUTE, max(15 * _MINUTE, int(wall * 0.8)))
                plan.levels = rng.choice(self.combos[to])
        if rng.random() < 0.045:
            plan.reopen_after = rng.randint(_HOUR, 4 * _DAY)
        if rng.random() < 0.1:
            plan.close_after = rng.randint(_HOUR, 4 * _DAY + 12 * _HOUR)
        if rng.random() < 0.3:
            plan.rate_after = rng.randint(10 * _MINUTE, 2 * _DAY)
        return plan

    # ------------------------------------------------------------------ the life of a ticket

    def _live(self, rng: random.Random, h: TicketHistory, plan: _Plan, kind: str, requester: str) -> None:
        """Make the ticket's moves in time order until the anchor, the SLA job running beside them."""
        end = self.end_ts
        t = h.opened
        h.scan(t)
        move: tuple[int, str] | None = None
        while True:
            if move is None:
                move = self._next(rng, h, plan, t)
            horizon = end if move is None or move[0] > end else move[0]
            flag = h.next_flag()
            if flag is not None and flag <= horizon:
                at = max(flag, t)
                self._work_until(h, plan, at)
                moved = h.scan(at)
                t = at
                if moved:
                    self._escalated(plan, at)
                    move = None
                elif move is not None and move[0] <= at:
                    move = (at + 1, move[1])  # the job ran first in that second; the move comes after
                continue
            if move is None or move[0] > end:
                break
            at, name = move
            self._work_until(h, plan, at)
            self._make(rng, h, plan, at, name, kind, requester)
            plan.mark = at if h.status == "in_progress" else None
            t = at
            if h.scan(at):  # the move put an instant in the past (a priority raised, a reopen)
                self._escalated(plan, at)
            move = None

    @staticmethod
    def _work_until(h: TicketHistory, plan: _Plan, at: int) -> None:
        if h.status == "in_progress" and plan.mark is not None:
            plan.done += at - plan.mark
            plan.mark = at

    @staticmethod
    def _escalated(plan: _Plan, at: int) -> None:
        """Another group has it now: more work there, and the resolution reply is theirs to write."""
        plan.mark = None
        plan.work = plan.done + max(30 * _MINUTE, (plan.work - plan.done) * 1.5)
        plan.replied = False
        plan.escalate_at = None

    def _next(self, rng: random.Random, h: TicketHistory, plan: _Plan, t: int) -> tuple[int, str] | None:
        """The ticket's next move from where it stands at ``t``, and when (strictly after ``t``)."""
        status = h.status
        moves: list[tuple[int, str]] = []
        if status in _OPEN:
            if plan.cancel_at is not None:
                moves.append((plan.cancel_at, "cancel"))
            if plan.edit_at is not None:
                moves.append((plan.edit_at, "edit"))
        if status == "new":
            if h.responded is None:
                moves.append((plan.respond_at, "respond"))
            elif h.priority <= 2:
                moves.append((t + rng.randint(2 * _MINUTE, 30 * _MINUTE), "pick_up"))
            else:
                moves.append((t + int(2 * _HOUR * math.exp(rng.gauss(0, 0.7))), "pick_up"))
        elif status == "assigned":  # taken, then started: at once for a major one, else when its turn comes
            if h.priority <= 2:
                moves.append((t + rng.randint(_MINUTE, 10 * _MINUTE), "start"))
            else:
                moves.append((t + int(2 * _HOUR * math.exp(rng.gauss(0, 1.0))), "start"))
        elif status == "in_progress":
            left = plan.work - plan.done
            if plan.replied:
                moves.append((t + rng.randint(20, 10 * _MINUTE), "resolve"))
            elif plan.reply:
                moves.append((t + math.ceil(left), "resolution_reply"))
            else:
                moves.append((t + math.ceil(left), "resolve"))
            spells = [s for s in plan.spells if s > plan.done]
            if spells:
                moves.append((t + math.ceil(spells[0] - plan.done), "pend"))
            if plan.escalate_at is not None:
                if h.desk.levels.get(h.group) == 1 and h.service_group not in (None, h.group):
                    moves.append((t + math.ceil(max(0.0, plan.escalate_at - plan.done)), "escalate"))
                else:
                    plan.escalate_at = None
        elif status == "pending":
            moves.append((plan.resume_at, plan.resume_to))
        elif status in ("resolved", "closed") and h.resolved is not None:
            if status == "resolved":
                plan.cancel_at = plan.edit_at = None  # what was to come while it was open no longer does
                if plan.reopen_after is not None:
                    moves.append((h.resolved + plan.reopen_after, "reopen"))
                if plan.close_after is not None:
                    moves.append((h.resolved + plan.close_after, "close"))
                due = h.close_due()
                if due is not None:
                    moves.append((due, "auto_close"))
            if plan.rate_after is not None:
                moves.append((h.resolved + plan.rate_after, "rate"))
        if not moves:
            return None
        at, name = min(moves)
        return max(at, t + 1), name

    def _worker(self, rng: random.Random, h: TicketHistory) -> Staff:
        """Whoever acts on the ticket: its assignee, else someone of its group."""
        if h.assignee is not None:
            return h.assignee
        return rng.choice(self.workers[h.group])

    def _make(
        self, rng: random.Random, h: TicketHistory, plan: _Plan, at: int, name: str, kind: str, requester: str
    ) -> None:
        """Make one move at ``at``."""
        if name == "cancel":
            plan.cancel_at = None
            h.change_status(at, self._worker(rng, h), "cancelled", reason=rng.choice(CANCEL_REASONS))
        elif name == "edit":
            plan.edit_at = None
            if plan.levels is not None:
                h.edit_levels(at, self._worker(rng, h), *plan.levels)
        elif name == "respond":
            actor = self._worker(rng, h)
            if plan.first == "reply":
                greeting = requester.split(" ")[0]
                h.reply(at, actor, f"Hello {greeting}, we have your ticket and are looking into it.")
            elif plan.first == "start":
                h.change_status(at, actor, "in_progress")
            else:
                h.take(at, actor)
        elif name == "pick_up":
            actor = self._worker(rng, h)
            if rng.random() < 0.4:
                h.change_status(at, actor, "in_progress")
            else:
                h.take(at, actor)
        elif name == "start":
            h.change_status(at, self._worker(rng, h), "in_progress")
        elif name == "pend":
            self._pend(rng, h, plan, at)
        elif name == "resume":
            h.change_status(at, self._worker(rng, h), "in_progress")
        elif name == "escalate":
            plan.escalate_at = None
            target = h.service_group or h.group
            h.escalate(at, self._worker(rng, h), target, rng.choice(ESCALATION_REASONS))
            self._escalated(plan, at)
        elif name == "resolution_reply":
            code = self._code(rng, kind)
            text = RESOLUTION_TEXT.get(code, "Resolved.")
            greeting = requester.split(" ")[0]
            h.reply(at, self._worker(rng, h), f"Hello {greeting}, {text} Please reply if anything remains.")
            plan.replied = True
        elif name in ("resolve", "resolve_pending"):
            code = self._code(rng, kind)
            h.change_status(
                at, self._worker(rng, h), "resolved", code=code, note=RESOLUTION_TEXT.get(code, "Resolved.")
            )
        elif name == "reopen":
            plan.reopen_after = None
            h.change_status(at, self._worker(rng, h), "in_progress", reason=rng.choice(REOPEN_REASONS))
            plan.work = plan.done + max(10 * _MINUTE, plan.work * rng.uniform(0.1, 0.5))
            plan.replied = False
            plan.spells = []
        elif name == "close":
            plan.close_after = None
            h.change_status(at, self._worker(rng, h), "closed")
        elif name == "auto_close":
            h.auto_close(at)
        elif name == "rate":
            plan.rate_after = None
            score = rng.choices((5, 4, 3, 2, 1), cum_weights=_SCORE_WEIGHTS)[0]
            h.rate(at, self._worker(rng, h), score)
        else:
            raise ValueError(f"unknown move {name!r}")

    def _pend(self, rng: random.Random, h: TicketHistory, plan: _Plan, at: int) -> None:
        """Wait on the customer, a vendor or a change; then resume, or resolve from there."""
        reason, _, hours = rng.choices(PENDING, cum_weights=_PENDING_WEIGHTS)[0]
        spell = hours * _HOUR * math.exp(rng.gauss(0, 0.7)) * (0.25 if h.priority <= 2 else 1.0)
        plan.spells = [s for s in plan.spells if s > plan.done]
        plan.resume_at = at + max(5 * _MINUTE, int(spell))
        plan.resume_to = "resolve_pending" if rng.random() < 0.15 else "resume"
        h.change_status(at, self._worker(rng, h), "pending", reason=reason)

    def _code(self, rng: random.Random, kind: str) -> str:
        return "fulfilled" if kind == "request" else rng.choice(self.codes)


def _copied(table: str, columns: tuple[str, ...], rows: Sequence[Row]) -> Table:
    return table, columns, copy_text(rows), len(rows)


def _listed(table: str, columns: tuple[str, ...], rows: Sequence[Row]) -> Table:
    return table, columns, rows, len(rows)


def made_chunks(factory: TicketFactory, chunks: list[Job], workers: int | None = None) -> Iterator[Chunk]:
    """The chunks laid out, in order; with several chunks, made ahead in worker processes while the caller
    inserts.

    A worker makes a chunk's rows, tells the others how many entries it holds, waits for the entry counts of
    the chunks before it (made at the same time by the other workers, or by itself earlier) and lays the
    chunk out with its entries numbered on from theirs. Chunks go to the workers in order, so the chunks
    before one being made are all made or being made: nobody waits on a chunk that waits in turn.
    The worker writes the chunk to a file of a private folder and hands back its name: a chunk is tens of
    megabytes, which through the pool's pipe would keep the worker waiting on the busy caller to read it.
    At most ``workers + 1`` chunks are in flight, so memory stays flat. The caller mostly streams what the
    workers made, so by default there are as many workers as processors, at most two.
    """
    if len(chunks) <= 1:
        yield from (factory.laid_out(factory.chunk(job), 0) for job in chunks)
        return
    import multiprocessing
    import tempfile
    from collections import deque

    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")
    counts = context.Array("q", [-1] * len(chunks), lock=False)  # entries of each chunk, -1 until made
    made = context.Condition()
    with tempfile.TemporaryDirectory(prefix="itsm-demo-") as folder:
        pool = context.Pool(workers, initializer=_init_worker, initargs=(factory, folder, counts, made))
        try:
            pending: deque[AsyncResult[str]] = deque()
            for number, job in enumerate(chunks):
                pending.append(pool.apply_async(_worker_chunk, (number, job)))
                if len(pending) > workers:
                    yield _read_chunk(pending.popleft().get())
            while pending:
                yield _read_chunk(pending.popleft().get())
        finally:
            pool.terminate()
            pool.join()


def _read_chunk(path: str) -> Chunk:
    with open(path, "rb") as file:
        data = file.read()  # whole: loading from the file itself would read it in small pieces
    os.unlink(path)
    tables, tickets, open_count = marshal.loads(data)
    return Chunk(tables, tickets, open_count)


_WORKER: tuple[TicketFactory, str, SynchronizedArray[int], Condition] | None = None


def _init_worker(
    factory: TicketFactory, folder: str, counts: SynchronizedArray[int], made: Condition
) -> None:
    global _WORKER
    _WORKER = factory, folder, counts, made


def _worker_chunk(number: int, job: Job) -> str:
    assert _WORKER is not None
    factory, folder, counts, made = _WORKER
    rows = factory.chunk(job)
    with made:
        counts[number] = len(rows.entries)
        made.notify_all()
        made.wait_for(lambda: all(counts[n] >= 0 for n in range(number)))
        before = sum(counts[:number])
    chunk = factory.laid_out(rows, before)
    path = os.path.join(folder, f"chunk-{number}")
    with open(path, "wb") as file:  # plain values (text, numbers, tuples, lists), which marshal does fastest
        file.write(marshal.dumps((chunk.tables, chunk.tickets, chunk.open_count)))
    return path
