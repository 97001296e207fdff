"""The demo generator: people, the tickets (made by the factory), changes, notifications, then knowledge and
problems (through the services).

Everything is drawn in a fixed order from one random generator seeded by ``--seed``, and every instant is
relative to the anchor, so a seed and an anchor give the same database byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.demo.changes import write_changes
from itsm_tui.demo.problems import ProblemDesk, article_count, problem_count
from itsm_tui.demo.roster import Staff, roster
from itsm_tui.demo.store import reset_sequences
from itsm_tui.demo.tables import HISTORY_DAYS, HOUR_LOAD, WEEKDAY_LOAD
from itsm_tui.demo.tickets import Chunk, Job, TicketFactory, made_chunks
from itsm_tui.demo.writer import Row, Writer
from itsm_tui.models import Group
from itsm_tui.services.users import current_login


class Generator:
    """Writes the demo's records through one connection, ``count`` tickets made ``batch`` at a time."""

    def __init__(
        self,
        conn: Connection,
        config: DeskConfig,
        rng: random.Random,
        end: datetime,
        count: int,
        progress: Callable[[str], None],
        batch: int,
    ) -> None:
        self.conn, self.config, self.rng, self.count, self.progress = conn, config, rng, count, progress
        self.batch = batch
        self.writer = Writer(conn)
        self.end = end
        self.end_ts = int(end.timestamp())  # whole seconds: every demo instant is one
        self.start_ts = self.end_ts - HISTORY_DAYS * 86400
        self.os_login = current_login()
        self.open_count = 0
        self.groups = {row.code: row.id for row in conn.execute(select(Group.code, Group.id))}

    # ------------------------------------------------------------------ people

    def run(self) -> None:
        self._people()
        self.progress(f"generating {self.count} tickets ...")
        self._tickets()
        self._changes()
        self._notifications()

    def _people(self) -> None:
        w = self.writer
        created = w.instant(self.start_ts - 30 * 86400)
        self.staff: list[Staff] = []
        user_rows: list[Row] = []
        role_rows: list[Row] = []
        member_rows: list[Row] = []
        for index, (login, name, roles, groups, lead) in enumerate(roster(self.os_login), start=1):
            self.staff.append(Staff(index, login, name, roles, groups, lead))
            email = f"{login}@example.com"
            user_rows.append((index, login, name, email, "Europe/Berlin", True, created))
            role_rows += [(index, role) for role in roles]
            member_rows += [(index, self.groups[g], lead) for g in groups]
        w.insert("users", ("id", "login", "name", "email", "timezone", "active", "created_at"), user_rows)
        w.insert("role_memberships", ("user_id", "role"), role_rows)
        w.insert("group_memberships", ("user_id", "group_id", "is_lead"), member_rows)
        self.os_user = self.staff[0]

    # ------------------------------------------------------------------ tickets

    def _opening_instants(self) -> list[int]:
        rng = self.rng
        slots, weights = [], []
        hour = self.start_ts - self.start_ts % 3600
        while hour < self.end_ts:
            moment = datetime.fromtimestamp(hour, self.config.calendars["office"].zone)
            slots.append(hour)
            weights.append(WEEKDAY_LOAD[moment.weekday()] * HOUR_LOAD[moment.hour])
            hour += 3600
        picks = rng.choices(slots, weights=weights, k=self.count)
        instants = sorted(min(int(p + rng.random() * 3600), self.end_ts - 1) for p in picks)
        return [max(i, self.start_ts) for i in instants]

    def _tickets(self) -> None:
        """Tickets in time order; chunks are generated in a worker process while this one inserts."""
        rng = self.rng
        instants = self._opening_instants()
        kinds = ["incident" if rng.random() < 0.72 else "request" for _ in instants]
        factory = TicketFactory(
            self.config, self.staff, self.groups, self.start_ts, self.end_ts, self.writer.copies
        )
        counters = {"INC": 0, "REQ": 0}
        refs: list[str] = []
        for kind in kinds:
            prefix = "INC" if kind == "incident" else "REQ"
            counters[prefix] += 1
            refs.append(f"{prefix}{counters[prefix]:07d}")
        batch = self.batch
        chunks: list[Job] = [
            (first, instants[first : first + batch], refs[first : first + batch], rng.getrandbits(64))
            for first in range(0, len(instants), batch)
        ]
        done = 0
        for chunk in made_chunks(factory, chunks):
            self._flush_tickets(chunk)
            self.open_count += chunk.open_count
            done += chunk.tickets
            self.progress(f"  {done} tickets")
        self._set_counter("INC", counters["INC"])
        self._set_counter("REQ", counters["REQ"])

    def _flush_tickets(self, chunk: Chunk) -> None:
        """Insert a chunk as the factory laid it out, table by table."""
        for table, columns, data, count in chunk.tables:
            self.writer.load(table, columns, data, count)

    # ------------------------------------------------------------------ knowledge, problems, known errors

    def knowledge_and_problems(self) -> None:
        """The knowledge articles, problems, known errors and their links, made through the services by the
        steps people take (:mod:`.problems`) once everything else is loaded and indexed: in an ORM session in
        this connection's transaction, with the id sequences moved past the bulk rows first."""
        if self.conn.dialect.name != "sqlite":
            reset_sequences(self.conn)
        made_before = self._audit_rows()
        with Session(bind=self.conn) as session:
            desk = ProblemDesk(session, self.config, self.rng, self.start_ts, self.end_ts, self.count)
            self._knowledge(desk)
            self._problems(desk)
        counts = self.writer.counts
        for table in ("knowledge_articles", "problems", "known_errors"):
            counts[table] = self.conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() or 0
        counts["audit_events"] = counts.get("audit_events", 0) + self._audit_rows() - made_before

    def _knowledge(self, desk: ProblemDesk) -> None:
        self.progress("writing the knowledge articles ...")
        desk.knowledge(article_count(self.count))

    def _problems(self, desk: ProblemDesk) -> None:
        self.progress("working the problems ...")
        desk.problems(problem_count(self.count))

    def _audit_rows(self) -> int:
        return self.conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar() or 0

    # ------------------------------------------------------------------ changes, notifications, counters

    def _changes(self) -> None:
        changes = write_changes(self.writer, self.rng, self.config, self.staff, self.start_ts, self.end)
        self._set_counter("CHG", changes)

    def _notifications(self) -> None:
        """A few unread notifications for the demo login, so the inbox has something to show."""
        w = self.writer
        found = self.conn.execute(
            text(
                "SELECT id, ref, title FROM tickets WHERE is_open = :yes AND assignee_id = :me "
                "ORDER BY id DESC LIMIT 5"
            ),
            {"yes": True, "me": self.os_user.id},
        ).all()
        rows = list(reversed(found))  # oldest first, so ids follow creation time
        notes = [
            (
                index,
                self.os_user.id,
                "assigned",
                f"assigned:{row.id}:{index}",
                "ticket",
                row.id,
                f"{row.ref} assigned to you: {row.title}",
                w.instant(self.end_ts - (len(rows) - index + 1) * 600),
                None,
            )
            for index, row in enumerate(rows, start=1)
        ]
        w.insert(
            "notifications",
            (
                "id",
                "user_id",
                "kind",
                "event_key",
                "entity_type",
                "entity_id",
                "message",
                "created_at",
                "read_at",
            ),
            notes,
        )

    def _set_counter(self, name: str, value: int) -> None:
        self.conn.exec_driver_sql(f"DELETE FROM counters WHERE name = {self.writer.mark}", (name,))
        self.writer.insert("counters", ("name", "value"), [(name, value)])
