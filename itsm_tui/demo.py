"""Demonstration data: 90 days of a plausible service desk, deterministic for a seed and an anchor instant.

Tickets are generated in time order with weekday and hour-of-day seasonality and inserted in bulk
(driver-level executemany in batches, one transaction), so a million tickets take a few minutes at most.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.models import Base, Group, Ticket
from itsm_tui.services.errors import ServiceError
from itsm_tui.services.kpi import rebuild_days
from itsm_tui.services.sla import SpanClock, clock_for
from itsm_tui.services.users import current_login

HISTORY_DAYS = 90
FUTURE_DAYS = 45
BATCH = 20_000
EPOCH = datetime(1970, 1, 1)

WEEKDAY_LOAD = (1.25, 1.15, 1.1, 1.05, 0.9, 0.22, 0.18)
HOUR_LOAD = (
    0.08,
    0.05,
    0.04,
    0.04,
    0.05,
    0.1,
    0.3,
    0.8,
    1.6,
    2.0,
    1.9,
    1.6,
    1.1,
    1.5,
    1.7,
    1.5,
    1.2,
    0.8,
    0.5,
    0.35,
    0.25,
    0.2,
    0.15,
    0.1,
)
PRIORITY_MIX = {1: 0.015, 2: 0.075, 3: 0.34, 4: 0.42, 5: 0.15}
# median wall-clock hours from opening to resolution, by priority
RESOLUTION_MEDIAN_HOURS = {1: 3.0, 2: 7.0, 3: 26.0, 4: 60.0, 5: 110.0}
SERVICE_LOAD = {
    "email": 0.2,
    "workplace": 0.3,
    "network": 0.1,
    "vpn": 0.1,
    "erp": 0.1,
    "crm": 0.06,
    "identity": 0.1,
    "storage": 0.04,
}

FIRST_NAMES = (
    "Anna",
    "Ben",
    "Chloe",
    "David",
    "Elif",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Karin",
    "Luca",
    "Maya",
    "Niko",
    "Olga",
    "Paul",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wim",
    "Yara",
    "Zoe",
    "Amir",
    "Bianca",
    "Carlos",
    "Dana",
    "Emil",
    "Fatima",
)
LAST_NAMES = (
    "Schmidt",
    "Meyer",
    "Novak",
    "Rossi",
    "Dubois",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Silva",
    "Weber",
    "Fischer",
    "Moreau",
    "Horvat",
    "Berg",
    "Costa",
    "Nagy",
    "Lindqvist",
    "Keller",
    "Brandt",
    "Ortiz",
)
DEPARTMENTS = ("Finance", "Sales", "HR", "Logistics", "Marketing", "Legal", "Production", "Purchasing")

SYMPTOMS = {
    "email": [
        "Outlook does not sync the inbox",
        "Cannot send mail to external addresses",
        "Shared mailbox missing",
        "Calendar invitations arrive twice",
        "Mailbox full warning",
        "OWA shows error 500",
    ],
    "workplace": [
        "Printer on floor 3 jams",
        "Laptop does not boot",
        "Docking station not detecting monitors",
        "Phone headset crackles",
        "Laptop battery drains fast",
        "Keyboard keys stuck",
    ],
    "network": [
        "Wi-Fi drops in meeting rooms",
        "Slow network in building B",
        "Cannot reach file shares",
        "Switch port dead at desk 4.12",
        "Packet loss to data centre",
    ],
    "vpn": [
        "VPN disconnects every few minutes",
        "VPN login rejected",
        "VPN very slow from home",
        "VPN client update fails",
    ],
    "erp": [
        "ERP invoice posting fails",
        "ERP report times out",
        "Cannot release purchase order",
        "ERP session freezes on save",
        "Stock figures wrong in ERP",
    ],
    "crm": ["CRM dashboard empty", "Cannot export CRM contacts", "CRM login loop"],
    "identity": [
        "Account locked",
        "Password reset not working",
        "SSO asks for login repeatedly",
        "MFA token lost",
    ],
    "storage": ["Restore a deleted folder", "Share quota exceeded", "Backup job failed"],
}
REQUESTS = [
    "New laptop for new starter",
    "Access to shared drive",
    "Install Visio",
    "Add user to distribution list",
    "New mobile phone",
    "Change cost centre on account",
    "Second monitor",
    "Access to ERP module",
    "Information on VPN setup",
    "Create service account",
]
RESOLUTION_TEXT = {
    "fixed": "Root cause fixed and verified with the caller.",
    "workaround": "Applied the known workaround; caller can work again.",
    "configuration-change": "Corrected the configuration; confirmed working.",
    "user-education": "Walked the caller through the correct steps.",
    "replaced-hardware": "Replaced the faulty part; tested OK.",
    "duplicate": "Duplicate of an existing ticket.",
    "no-fault-found": "Could not reproduce; caller confirmed it works now.",
    "vendor-fix": "Vendor supplied a fix; applied and verified.",
    "fulfilled": "Request fulfilled and confirmed with the requester.",
}


@dataclass
class Staff:
    id: int
    login: str
    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    lead: bool = False


def _roster(os_login: str) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...], bool]]:
    """(login, name, roles, groups, lead) for about 30 people across every role."""
    people = [
        (os_login, "Demo Shift Lead (you)", ("shift_lead",), ("SD-L1",), True),
        ("mlopez", "Maria Lopez", ("shift_lead",), ("SD-L1",), False),
        ("itadmin", "Irene Admin", ("admin",), (), False),
    ]
    agents = [
        "akhan",
        "bschulz",
        "cdiaz",
        "dnguyen",
        "eolsen",
        "fmartin",
        "gweiss",
        "hpatel",
        "ijovanovic",
        "kmuller",
    ]
    for login in agents:
        people.append((login, _name_for(login), ("agent",), ("SD-L1",), False))
    for index, login in enumerate(["lnet", "mroute", "nswitch", "ofirewall"]):
        people.append(
            (
                login,
                _name_for(login),
                ("support_l2",) + (("cab_member",) if index == 0 else ()),
                ("NET-L2",),
                index == 0,
            )
        )
    for index, login in enumerate(["papps", "qerp", "rcrm", "smail", "tsap"]):
        people.append(
            (
                login,
                _name_for(login),
                ("support_l2",) + (("cab_member",) if index == 0 else ()),
                ("APP-L2",),
                index == 0,
            )
        )
    for index, login in enumerate(["uplatform", "vident", "wstore"]):
        people.append((login, _name_for(login), ("support_l3",), ("ENG-L3",), index == 0))
    people += [
        ("xproblem", "Xenia Problem", ("problem_manager",), ("ENG-L3",), False),
        ("ychange", "Yusuf Change", ("change_manager", "cab_member"), (), False),
        ("zcab", "Zora Cab", ("cab_member",), (), False),
        ("aprocess", "Arne Process", ("process_manager",), (), False),
        ("banalyst", "Bea Analyst", ("analyst",), (), False),
    ]
    seen, unique = set(), []
    for person in people:  # the OS login may coincide with a demo login
        if person[0] not in seen:
            seen.add(person[0])
            unique.append(person)
    return unique


def _name_for(login: str) -> str:
    rng = random.Random(login)
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


class _Writer:
    """Bulk inserts through the driver, in the transaction of one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self.counts: dict[str, int] = {}
        # SQLite stores instants as SQLAlchemy's text form; building it from cached day and time-of-day
        # strings is many times faster than formatting a datetime per value.
        self._days: dict[int, str] = {}
        self._times = [
            f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)
        ]

    def instant(self, seconds: float | None):
        """An epoch instant in the form the driver stores (naive UTC, SQLAlchemy's SQLite text format)."""
        if seconds is None:
            return None
        whole = int(seconds)
        if not self.sqlite:
            return EPOCH + timedelta(seconds=whole)
        day, rest = divmod(whole, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d ")
        return prefix + self._times[rest]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        rows = list(rows)
        if not rows:
            return
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([self.mark] * len(columns))})"
        self.conn.exec_driver_sql(sql, rows)
        self.counts[table] = self.counts.get(table, 0) + len(rows)


TICKET_COLUMNS = (
    "id",
    "ref",
    "kind",
    "title",
    "description",
    "requester",
    "category",
    "service",
    "ci",
    "impact",
    "urgency",
    "priority",
    "status",
    "is_open",
    "pending_reason",
    "group_id",
    "assignee_id",
    "created_by_id",
    "resolution_code",
    "resolution_note",
    "opened_at",
    "updated_at",
    "responded_at",
    "resolved_at",
    "closed_at",
    "cancelled_at",
    "sla_calendar",
    "paused_at",
    "paused_seconds",
    "response_warn_at",
    "response_due_at",
    "resolution_warn_at",
    "resolution_due_at",
    "response_warned_at",
    "response_breached_at",
    "resolution_warned_at",
    "resolution_breached_at",
    "resolution_business_seconds",
    "reopen_count",
    "escalation_count",
    "reassignment_count",
    "version",
)
AUDIT_COLUMNS = ("entity_type", "entity_id", "actor_id", "at", "action", "field", "old_value", "new_value")
ENTRY_COLUMNS = ("ticket_id", "author_id", "kind", "body", "created_at")
RATING_COLUMNS = ("ticket_id", "score", "comment", "rated_at", "recorded_by_id")


def build_demo(
    db: Database,
    config: DeskConfig,
    *,
    tickets: int = 5000,
    seed: int = 1,
    anchor: datetime | date | None = None,
    force: bool = False,
    progress: Callable[[str], None] = lambda text: None,
) -> str:
    """Fill the database with demonstration data and return a one-line summary."""
    end = _anchor_instant(anchor)
    with db.engine.begin() as conn:
        existing, users = _record_counts(conn)
        if (existing or users) and not force:
            raise DemoRefused(
                f"the database already holds {existing} tickets and {users} users; "
                f"add --force to replace everything in it with demonstration data"
            )
    with db.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # bulk load: durability is only needed at the single commit
            conn.connection.dbapi_connection.execute("PRAGMA synchronous=OFF")
        try:
            with conn.begin():
                _wipe(conn)
                _restore_groups(conn, config)
                generator = _Generator(conn, config, random.Random(seed), end, tickets, progress)
                generator.run()
                progress("computing the KPI roll-up ...")
                with Session(bind=conn) as session:
                    rebuild_days(session, (end - timedelta(days=HISTORY_DAYS + 1)).date(), end.date())
                if not sqlite:
                    _reset_sequences(conn)
        finally:
            if sqlite:
                conn.connection.dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    if db.backend == "sqlite":
        with db.engine.connect() as conn:
            raw = conn.connection.dbapi_connection  # outside any transaction, as these need
            raw.execute("ANALYZE")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    c = generator.writer.counts
    return (
        f"demo data: {c.get('tickets', 0)} tickets ({generator.open_count} open), {c.get('users', 0)} users, "
        f"{c.get('problems', 0)} problems, {c.get('known_errors', 0)} known errors, "
        f"{c.get('knowledge_articles', 0)} articles, {c.get('changes', 0)} changes, "
        f"{c.get('audit_events', 0)} audit events; history to {end:%Y-%m-%d %H:%M} UTC; "
        f"console login: {generator.os_login}"
    )


def _record_counts(conn: Connection) -> tuple[int, int]:
    tickets = conn.execute(select(func.count()).select_from(Ticket)).scalar() or 0
    users = conn.exec_driver_sql("SELECT count(*) FROM users").scalar() or 0
    return tickets, users


def is_empty(db: Database) -> bool:
    """Whether the database holds no tickets and no users."""
    with db.engine.connect() as conn:
        return _record_counts(conn) == (0, 0)


class DemoRefused(ServiceError):
    """The database has data and --force was not given."""


def _anchor_instant(anchor: datetime | date | None) -> datetime:
    if anchor is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    if isinstance(anchor, datetime):
        return anchor.astimezone(UTC)
    return datetime(anchor.year, anchor.month, anchor.day, 12, tzinfo=UTC)


def _wipe(conn: Connection) -> None:
    for table in reversed(Base.metadata.sorted_tables):
        if table.name != "groups":
            conn.execute(table.delete())


def _restore_groups(conn: Connection, config: DeskConfig) -> None:
    existing = {row.code for row in conn.execute(select(Group.code))}
    for code, group in config.groups.items():
        if code not in existing:
            conn.execute(Group.__table__.insert().values(code=code, name=group.name, level=group.level))


def _reset_sequences(conn: Connection) -> None:
    for table in Base.metadata.sorted_tables:
        if "id" in table.c and table.c.id.autoincrement is not False and table.c.id.primary_key:
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
            )


class _Generator:
    def __init__(
        self,
        conn: Connection,
        config: DeskConfig,
        rng: random.Random,
        end: datetime,
        count: int,
        progress: Callable[[str], None],
    ) -> None:
        self.conn, self.config, self.rng, self.count, self.progress = conn, config, rng, count, progress
        self.writer = _Writer(conn)
        self.end = end
        self.end_ts = end.timestamp()
        self.start_ts = (end - timedelta(days=HISTORY_DAYS)).timestamp()
        self.os_login = current_login()
        self.open_count = 0
        self.groups = {row.code: row.id for row in conn.execute(select(Group.code, Group.id))}
        first, last = (end - timedelta(days=HISTORY_DAYS + 2)).date(), (end + timedelta(days=400)).date()
        self.clocks = {name: SpanClock(clock_for(cal), first, last) for name, cal in config.calendars.items()}

    # ------------------------------------------------------------------ people

    def run(self) -> None:
        self._people()
        self._knowledge()
        self.progress(f"generating {self.count} tickets ...")
        self._tickets()
        self._problems()
        self._changes()
        self._notifications()

    def _people(self) -> None:
        w = self.writer
        created = w.instant(self.start_ts - 30 * 86400)
        self.staff: list[Staff] = []
        user_rows, role_rows, member_rows = [], [], []
        for index, (login, name, roles, groups, lead) in enumerate(_roster(self.os_login), start=1):
            self.staff.append(Staff(index, login, name, roles, groups, lead))
            email = f"{login}@example.com"
            user_rows.append((index, login, name, email, "Europe/Berlin", True, created))
            role_rows += [(index, role) for role in roles]
            member_rows += [(index, self.groups[g], lead) for g in groups]
        w.insert("users", ("id", "login", "name", "email", "timezone", "active", "created_at"), user_rows)
        w.insert("role_memberships", ("user_id", "role"), role_rows)
        w.insert("group_memberships", ("user_id", "group_id", "is_lead"), member_rows)
        self.members = {
            code: [s for s in self.staff if code in s.groups and "shift_lead" not in s.roles]
            for code in self.groups
        }
        self.members["SD-L1"] = [s for s in self.staff if "SD-L1" in s.groups]
        self.os_user = self.staff[0]

    def _knowledge(self) -> None:
        w, rng = self.writer, self.rng
        rows = []
        services = list(SYMPTOMS)
        for index in range(1, 41):
            service = services[index % len(services)]
            symptom = rng.choice(SYMPTOMS[service])
            published = self.start_ts - rng.uniform(10, 400) * 86400
            rows.append(
                (
                    index,
                    f"KB{index:07d}",
                    f"How to: {symptom.lower()}",
                    f"Steps agents follow when a caller reports: {symptom}.\n1. Confirm the user and device."
                    f"\n2. Check the service status page.\n3. Apply the documented fix or escalate.",
                    service,
                    None,
                    rng.choice(self.staff).id,
                    w.instant(published),
                    w.instant(published),
                )
            )
        w.insert(
            "knowledge_articles",
            ("id", "ref", "title", "body", "service", "category", "author_id", "published_at", "updated_at"),
            rows,
        )
        self._set_counter("KB", len(rows))

    # ------------------------------------------------------------------ tickets

    def _opening_instants(self) -> list[float]:
        rng = self.rng
        slots, weights = [], []
        hour = self.start_ts - self.start_ts % 3600
        while hour < self.end_ts:
            moment = datetime.fromtimestamp(hour, self.config.calendars["office"].zone)
            slots.append(hour)
            weights.append(WEEKDAY_LOAD[moment.weekday()] * HOUR_LOAD[moment.hour])
            hour += 3600
        picks = rng.choices(slots, weights=weights, k=self.count)
        instants = sorted(min(p + rng.random() * 3600, self.end_ts - 1) for p in picks)
        return [max(i, self.start_ts) for i in instants]

    def _tickets(self) -> None:
        """Tickets in time order; chunks are generated in a worker process while this one inserts."""
        rng = self.rng
        instants = self._opening_instants()
        kinds = ["incident" if rng.random() < 0.72 else "request" for _ in instants]
        factory = _TicketFactory(
            self.config, self.staff, self.members, self.groups, self.start_ts, self.end_ts, self.writer.sqlite
        )
        counters = {"INC": 0, "REQ": 0}
        refs = []
        for kind in kinds:
            prefix = "INC" if kind == "incident" else "REQ"
            counters[prefix] += 1
            refs.append(f"{prefix}{counters[prefix]:07d}")
        chunks = [
            (first, instants[first : first + BATCH], refs[first : first + BATCH], rng.getrandbits(64))
            for first in range(0, len(instants), BATCH)
        ]
        done = 0
        for rows in _made_chunks(factory, chunks):
            self._flush_tickets(rows)
            self.open_count += rows.open_count
            done += len(rows.tickets)
            self.progress(f"  {done} tickets")
        self._set_counter("INC", counters["INC"])
        self._set_counter("REQ", counters["REQ"])

    def _flush_tickets(self, rows: _ChunkRows) -> None:
        w = self.writer
        w.insert("tickets", TICKET_COLUMNS, rows.tickets)
        w.insert("audit_events", AUDIT_COLUMNS, rows.audits)
        w.insert("ticket_entries", ENTRY_COLUMNS, rows.entries)
        w.insert("satisfaction_ratings", RATING_COLUMNS, rows.ratings)

    # ------------------------------------------------------------------ problems, known errors

    def _problems(self) -> None:
        rng, w = self.rng, self.writer
        count = max(8, min(300, self.count // 400))
        problems, known, links = [], [], []
        l2 = [s for s in self.staff if "support_l2" in s.roles or "support_l3" in s.roles]
        link_id = 0
        incident_ids = self._sample_incident_ids(count * 4)
        for index in range(1, count + 1):
            service = rng.choice(list(SYMPTOMS))
            symptom = rng.choice(SYMPTOMS[service])
            opened = self.start_ts + rng.uniform(0, HISTORY_DAYS - 5) * 86400
            status = rng.choice(("investigating", "known_error", "known_error", "resolved", "new"))
            owner = rng.choice(l2)
            culprit = rng.choice(self.config.services[service].cis or ("the service",))
            cause = f"Recurring fault behind '{symptom}' traced to {culprit}."
            problems.append(
                (
                    index,
                    f"PRB{index:07d}",
                    f"Recurring: {symptom}",
                    f"Several incidents report: {symptom}.",
                    status,
                    cause if status != "new" else None,
                    service,
                    self.groups[self.config.services[service].support_group],
                    owner.id,
                    w.instant(opened),
                    w.instant(opened + 20 * 86400) if status == "resolved" else None,
                    1,
                )
            )
            if status in ("known_error", "resolved"):
                ke = len(known) + 1
                known.append(
                    (
                        ke,
                        f"KE{ke:07d}",
                        index,
                        f"Known error: {symptom}",
                        symptom,
                        cause,
                        f"Workaround: restart the affected client and clear its cache; for {service} "
                        f"route the user to the secondary node.",
                        "Permanent fix planned via change."
                        if status == "known_error"
                        else "Fixed by change.",
                        service,
                        w.instant(opened + 3 * 86400),
                    )
                )
            for _ in range(rng.randint(1, 4)):
                if incident_ids:
                    link_id += 1
                    links.append(
                        (
                            link_id,
                            "ticket",
                            incident_ids.pop(),
                            "problem",
                            index,
                            owner.id,
                            w.instant(opened + 86400),
                        )
                    )
        w.insert(
            "problems",
            (
                "id",
                "ref",
                "title",
                "description",
                "status",
                "root_cause",
                "service",
                "group_id",
                "owner_id",
                "opened_at",
                "resolved_at",
                "version",
            ),
            problems,
        )
        w.insert(
            "known_errors",
            (
                "id",
                "ref",
                "problem_id",
                "title",
                "symptom",
                "cause",
                "workaround",
                "permanent_fix",
                "service",
                "published_at",
            ),
            known,
        )
        w.insert(
            "links",
            ("id", "source_type", "source_id", "target_type", "target_id", "created_by_id", "created_at"),
            links,
        )
        self.link_id = link_id
        self._set_counter("PRB", len(problems))
        self._set_counter("KE", len(known))

    def _sample_incident_ids(self, k: int) -> list[int]:
        rows = (
            self.conn.execute(
                text("SELECT id FROM tickets WHERE kind = 'incident' AND id % 97 = 3 ORDER BY id LIMIT :k"),
                {"k": k},
            )
            .scalars()
            .all()
        )
        return list(rows)

    # ------------------------------------------------------------------ changes, windows, blackouts

    def _changes(self) -> None:
        rng, w, end = self.rng, self.writer, self.end
        windows = [
            ("Network weekly window", "network", "FREQ=WEEKLY;BYDAY=SA", "22:00", 360),
            ("VPN weekly window", "vpn", "FREQ=WEEKLY;BYDAY=SA", "22:00", 240),
            ("ERP Sunday window", "erp", "FREQ=WEEKLY;BYDAY=SU", "02:00", 240),
            ("Email mid-week window", "email", "FREQ=WEEKLY;BYDAY=WE", "21:00", 180),
            ("Identity monthly window", "identity", "FREQ=MONTHLY;BYDAY=1SA", "20:00", 480),
            ("Storage weekly window", "storage", "FREQ=WEEKLY;BYDAY=SU", "01:00", 300),
        ]
        valid_from = w.instant(self.start_ts - 365 * 86400)
        w.insert(
            "maintenance_windows",
            (
                "id",
                "name",
                "service",
                "timezone",
                "rrule",
                "start_local",
                "duration_minutes",
                "valid_from",
                "valid_until",
            ),
            [
                (i, n, s, "Europe/Berlin", r, t, d, valid_from, None)
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

        implementers = [s for s in self.staff if "support_l2" in s.roles or "support_l3" in s.roles]
        cab = [s for s in self.staff if "cab_member" in s.roles]
        manager = next(s for s in self.staff if "change_manager" in s.roles)
        changes, targets, approvals, audits = [], [], [], []
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

        def add_change(
            title,
            ctype,
            state,
            risk,
            start,
            hours,
            service,
            ci,
            implementer,
            outcome=None,
            template=None,
            override=None,
        ):
            nonlocal target_id, change_id, approval_id
            change_id += 1
            created = min(start - rng.uniform(3, 20) * 86400, self.end_ts - 3600)
            end_at = start + hours * 3600
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
                    manager.id,
                    override,
                    None,
                    "Reviewed: lessons recorded." if state == "closed" and outcome != "implemented" else None,
                    outcome,
                    w.instant(created),
                    w.instant(max(created, min(end_at, self.end_ts - 60))),
                    1,
                )
            )
            target_id += 1
            targets.append((target_id, change_id, service, ci))
            if ctype == "normal" and state not in ("draft", "submitted"):
                for member in cab[:3]:
                    approval_id += 1
                    decision = (
                        "rejected"
                        if state == "rejected"
                        else ("pending" if state == "assessed" else "approved")
                    )
                    approvals.append(
                        (
                            approval_id,
                            change_id,
                            member.id,
                            decision,
                            "Risk too high before the freeze." if decision == "rejected" else None,
                            w.instant(created + 86400) if decision != "pending" else None,
                        )
                    )
            audits.append(
                ("change", change_id, manager.id, w.instant(created), "create", "state", None, "draft")
            )
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
            return change_id

        services = [s for s in titles if s in self.config.services]
        # Past changes: mostly successful, some failed or backed out awaiting review.
        for _ in range(40):
            service = rng.choice(services)
            start = self.start_ts + rng.uniform(0, HISTORY_DAYS - 2) * 86400
            ctype = rng.choices(("standard", "normal", "emergency"), (0.45, 0.45, 0.1))[0]
            roll = rng.random()
            outcome = "implemented" if roll < 0.86 else ("failed" if roll < 0.93 else "backed_out")
            if outcome == "implemented" and ctype != "emergency":
                state = "closed"
            else:
                state = "review" if rng.random() < 0.5 else "closed"
            ci = rng.choice(self.config.services[service].cis) if self.config.services[service].cis else None
            add_change(
                rng.choice(titles[service]),
                ctype,
                state,
                rng.choice(("low", "medium", "high")),
                start,
                rng.choice((1, 2, 4)),
                service,
                ci,
                rng.choice(implementers),
                outcome,
                template="std-patch" if ctype == "standard" else None,
            )
        # Future changes: in the pipeline.
        for _ in range(20):
            service = rng.choice(services)
            start = self.end_ts + rng.uniform(1, FUTURE_DAYS) * 86400
            start -= start % 1800
            ctype = rng.choices(("standard", "normal", "emergency"), (0.4, 0.55, 0.05))[0]
            state = (
                rng.choice(("draft", "submitted", "assessed", "approved", "scheduled"))
                if ctype == "normal"
                else "scheduled"
            )
            ci = rng.choice(self.config.services[service].cis) if self.config.services[service].cis else None
            add_change(
                rng.choice(titles[service]),
                ctype,
                state,
                rng.choice(("low", "medium", "high")),
                start,
                rng.choice((1, 2, 3)),
                service,
                ci,
                rng.choice(implementers),
                template="std-patch" if ctype == "standard" else None,
            )
        # Two changes on one switch in overlapping windows, and one planned inside the quarter-end freeze.
        clash = (self.end + timedelta(days=5)).replace(hour=21, minute=0).timestamp()
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
                "created_at",
                "updated_at",
                "version",
            ),
            changes,
        )
        w.insert("change_targets", ("id", "change_id", "service", "ci"), targets)
        w.insert(
            "change_approvals",
            ("id", "change_id", "approver_id", "decision", "reason", "decided_at"),
            approvals,
        )
        w.insert("audit_events", AUDIT_COLUMNS, audits)
        self._set_counter("CHG", change_id)

    def _notifications(self) -> None:
        """A few unread notifications for the demo login, so the inbox has something to show."""
        w = self.writer
        rows = self.conn.execute(
            text(
                "SELECT id, ref, title FROM tickets WHERE is_open = :yes AND assignee_id = :me "
                "ORDER BY id DESC LIMIT 5"
            ),
            {"yes": True, "me": self.os_user.id},
        ).all()
        rows = list(reversed(rows))  # oldest first, so ids follow creation time
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


# --------------------------------------------------------------------------- ticket factory (worker side)


@dataclass
class _ChunkRows:
    tickets: list[tuple]
    audits: list[tuple]
    entries: list[tuple]
    ratings: list[tuple]
    open_count: int


class _TicketFactory:
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
        self.writer = _Writer.__new__(_Writer)
        self.writer.sqlite = self.sqlite
        self.writer._days = {}
        self.writer._times = [
            f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)
        ]
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

    def __getstate__(self) -> dict:
        state = {
            k: v
            for k, v in self.__dict__.items()
            if k in ("config", "staff", "members", "groups", "start_ts", "end_ts", "sqlite")
        }
        state["_ready"] = False
        return state

    def chunk(self, job: tuple[int, list[float], list[str], int]) -> _ChunkRows:
        if not self._ready:
            self._prepare()
        first, instants, refs, seed = job
        rng = random.Random(seed)
        config, w = self.config, self.writer
        auto_close = config.auto_close_days * 86400
        ratio = config.warning_ratio
        end_ts = self.end_ts
        out = _ChunkRows([], [], [], [], 0)
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
        rows,
        ticket_id,
        opened,
        creator_id,
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
    ) -> int:
        """Append the ticket's history; return how many saves it took (its version)."""
        instant = self.writer.instant
        count = len(rows)

        def add(at, actor, action, field, old, new):
            rows.append(
                (
                    "ticket",
                    ticket_id,
                    actor,
                    instant(at),
                    action,
                    field,
                    None if old is None else str(old),
                    None if new is None else str(new),
                )
            )

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


def _made_chunks(factory: _TicketFactory, chunks: list) -> Iterator[_ChunkRows]:
    """The chunks' rows in order; made one or two ahead in a worker process when there are several."""
    if len(chunks) <= 1:
        yield from map(factory.chunk, chunks)
        return
    import multiprocessing
    from collections import deque

    pool = multiprocessing.get_context("spawn").Pool(1, initializer=_init_worker, initargs=(factory,))
    try:
        pending: deque = deque()
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


_WORKER_FACTORY: _TicketFactory | None = None


def _init_worker(factory: _TicketFactory) -> None:
    global _WORKER_FACTORY
    _WORKER_FACTORY = factory


def _worker_chunk(job: tuple[int, list[float], list[str], int]) -> _ChunkRows:
    assert _WORKER_FACTORY is not None
    return _WORKER_FACTORY.chunk(job)
