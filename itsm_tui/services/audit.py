"""The audit trail: every mutation of every record writes who, when, which field, old and new value.

Callers write audit rows in the same session (and so the same transaction) as the change itself, and only
through this module, so that every row is written the same way (values as text, instants in ISO form).

The trail is tamper-evident. Each record's events form a hash chain: ``seq`` numbers them 1, 2, ... per
record, ``prev_hash`` is the previous link's hash, ``hash`` the SHA-256 of the row's :func:`canonical`
form (which includes ``prev_hash``), and ``audit_heads`` holds the newest link of every record. An edited
row no longer matches its hash, a removed one leaves a gap in ``seq``, removed newest rows leave the head
pointing past the end. :func:`verify` walks every chain (``itsm audit verify``); :func:`verify_record`
walks one (the ticket and change screens warn when it breaks).

Appending locks the record's head: on PostgreSQL the upsert that reads it (``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING``) holds its row lock until commit, so concurrent writers of one record take turns; on
SQLite a writer holds the database's write lock from ``BEGIN IMMEDIATE`` (``db.Database.session``). Heads
are taken in sorted order within a flush, so two writers of the same records cannot deadlock there; the
unique index on (entity_type, entity_id, seq) refuses a duplicate link whatever happens.

What the chain cannot prove: someone with full rights on the database can rewrite a record's chain end to
end, head included, and it verifies. ``itsm audit verify --json`` prints every head's hash so that an admin
can keep a copy elsewhere; ``--heads FILE`` compares against it later.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, column, event, func, insert, literal, or_, select, table, update
from sqlalchemy.orm import Session, UOWTransaction

from itsm_tui.db import conflict_insert
from itsm_tui.models import AuditEvent, AuditHead, Change, KnowledgeArticle, KnownError, Problem, Ticket, User
from itsm_tui.services.access import require
from itsm_tui.services.errors import NotFound, ValidationError

if TYPE_CHECKING:
    from itsm_tui.services.users import Actor

Key = tuple[str, int]
"""A record: its entity type and id."""

# --------------------------------------------------------------------------- the canonical form


def canonical_instant(value: datetime | str) -> str:
    """An instant in the one form the hash reads: UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Takes what the ORM holds (an aware datetime) as well as what the driver returns (SQLite: SQLAlchemy's
    text ``YYYY-MM-DD HH:MM:SS.ffffff``; PostgreSQL: a naive datetime), naive meaning UTC as stored, so
    the verifier reads raw rows and never depends on the ORM's handling of datetimes.
    """
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            return f"{value[:10]}T{value[11:]}Z"  # the stored text form: no parsing
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def canonical(
    entity_type: str,
    entity_id: int,
    seq: int,
    actor_id: int | None,
    at: str,
    action: str,
    field: str | None,
    old: str | None,
    new: str | None,
    prev_hash: str | None,
) -> str:
    """The text a link's hash is taken over (as UTF-8).

    Ten fields, in this order, joined by a newline: entity type, entity id, seq, actor id, instant (as
    :func:`canonical_instant` writes it), action, field, old value, new value, previous hash. Each is written
    as its length in characters, a colon and its text (numbers in decimal), or ``-`` when null, so that no
    two rows have the same form however their text reads. Ticket 42's first row, created by user 3, reads::

        6:ticket\\n2:42\\n1:1\\n1:3\\n27:2026-03-02T08:00:00.000000Z\\n6:create\\n6:status\\n-\\n3:new\\n-

    Written as one expression: the demo's bulk load makes millions of these.
    """
    ident, number, actor = str(entity_id), str(seq), "" if actor_id is None else str(actor_id)
    return (
        f"{len(entity_type)}:{entity_type}\n{len(ident)}:{ident}\n{len(number)}:{number}\n"
        f"{'-' if actor_id is None else f'{len(actor)}:{actor}'}\n{len(at)}:{at}\n{len(action)}:{action}\n"
        f"{'-' if field is None else f'{len(field)}:{field}'}\n"
        f"{'-' if old is None else f'{len(old)}:{old}'}\n"
        f"{'-' if new is None else f'{len(new)}:{new}'}\n"
        f"{'-' if prev_hash is None else f'{len(prev_hash)}:{prev_hash}'}"
    )


def link_hash(
    entity_type: str,
    entity_id: int,
    seq: int,
    actor_id: int | None,
    at: str,
    action: str,
    field: str | None,
    old: str | None,
    new: str | None,
    prev_hash: str | None,
) -> str:
    """The SHA-256 (hex) of a link's :func:`canonical` form; ``at`` already canonical."""
    text = canonical(entity_type, entity_id, seq, actor_id, at, action, field, old, new, prev_hash)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- writing


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


_order = itertools.count()  # the order record() added events in, which their chain follows


def record(
    session: Session,
    *,
    entity_type: str,
    entity_id: int,
    actor_id: int | None,
    at: datetime,
    action: str,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
) -> AuditEvent:
    """Add one audit event to the session; it is chained when the session flushes."""
    event_row = AuditEvent(
        entity_type=entity_type,
        entity_id=entity_id,
        actor_id=actor_id,
        at=at,
        action=action,
        field=field,
        old_value=_text(old),
        new_value=_text(new),
    )
    event_row._audit_order = next(_order)  # type: ignore[attr-defined]
    session.add(event_row)
    return event_row


@dataclass(frozen=True)
class Entry:
    """One audit event to write with :func:`record_many` (the fields of :func:`record`)."""

    entity_type: str
    entity_id: int
    actor_id: int | None
    at: datetime
    action: str
    field: str | None = None
    old: Any = None
    new: Any = None


Content = tuple[str, int, int | None, datetime | str, str, str | None, str | None, str | None]
"""A link's content as it is stored: entity type, entity id, actor id, at, action, field, old, new."""

_HEAD_BATCH = 1000  # heads per upsert: well inside SQLite's limit on bound values


def _take_heads(session: Session, keys: Iterable[Key]) -> dict[Key, tuple[int, str | None]]:
    """The newest link (seq, hash) of each record, its head locked until commit; seq 0 for a new record.

    One upsert per batch that changes nothing but makes the row exist and returns it: on PostgreSQL its
    row lock makes a second writer of the record wait here until the first commits (and then read the
    newer head). Keys are taken in sorted order, so writers of the same records queue in the same order.
    """
    heads: dict[Key, tuple[int, str | None]] = {}
    ordered = sorted(set(keys))
    for first in range(0, len(ordered), _HEAD_BATCH):
        batch = ordered[first : first + _HEAD_BATCH]
        upsert = conflict_insert(session, AuditHead).values(
            [{"entity_type": t, "entity_id": i, "seq": 0, "hash": ""} for t, i in batch]
        )
        taken = upsert.on_conflict_do_update(
            index_elements=["entity_type", "entity_id"], set_={"seq": AuditHead.seq}
        ).returning(AuditHead.entity_type, AuditHead.entity_id, AuditHead.seq, AuditHead.hash)
        for entity_type, entity_id, seq, head_hash in session.execute(taken):
            heads[(entity_type, entity_id)] = (seq, head_hash or None)
    return heads


def _chain(session: Session, contents: Sequence[Content]) -> list[tuple[int, str | None, str]]:
    """The (seq, prev_hash, hash) of each new link, in the order given (each record's in that order), and
    the records' heads moved on to their newest link."""
    heads = _take_heads(session, ((c[0], c[1]) for c in contents))
    links: list[tuple[int, str | None, str]] = []
    for entity_type, entity_id, actor_id, at, action, field, old, new in contents:
        key = (entity_type, entity_id)
        seq, prev = heads[key]
        seq += 1
        digest = link_hash(
            entity_type, entity_id, seq, actor_id, canonical_instant(at), action, field, old, new, prev
        )
        heads[key] = (seq, digest)
        links.append((seq, prev, digest))
    session.execute(
        update(AuditHead),
        [{"entity_type": t, "entity_id": i, "seq": seq, "hash": h} for (t, i), (seq, h) in heads.items()],
    )
    return links


@event.listens_for(Session, "before_flush")
def _chain_pending(session: Session, flush_context: UOWTransaction, instances: object) -> None:
    """Number and hash the audit events about to be inserted, per record in the order they were added."""
    pending = [obj for obj in session.new if isinstance(obj, AuditEvent) and obj.hash is None]
    if not pending:
        return
    # record()'s order; an event added to the session by hand comes first (the sort is stable).
    pending.sort(key=lambda obj: getattr(obj, "_audit_order", -1))
    contents = [
        (e.entity_type, e.entity_id, e.actor_id, e.at, e.action, e.field, e.old_value, e.new_value)
        for e in pending
    ]
    for obj, (seq, prev, digest) in zip(pending, _chain(session, contents), strict=True):
        obj.seq, obj.prev_hash, obj.hash = seq, prev, digest


def record_many(session: Session, entries: Iterable[Entry]) -> int:
    """Write many audit events in one statement (a job auditing a batch of rows); returns how many.

    Unlike :func:`record` the rows go to the database at once rather than waiting in the session, so a
    batch of hundreds costs a few round trips and no objects. They are chained after whatever the session
    still held (flushed first).
    """
    contents: list[Content] = [
        (e.entity_type, e.entity_id, e.actor_id, e.at, e.action, e.field, _text(e.old), _text(e.new))
        for e in entries
    ]
    if not contents:
        return 0
    session.flush()
    rows = [
        {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "actor_id": actor_id,
            "at": at,
            "action": action,
            "field": field,
            "old_value": old,
            "new_value": new,
            "seq": seq,
            "prev_hash": prev,
            "hash": digest,
        }
        for (entity_type, entity_id, actor_id, at, action, field, old, new), (seq, prev, digest) in zip(
            contents, _chain(session, contents), strict=True
        )
    ]
    session.execute(insert(AuditEvent), rows)
    return len(rows)


def set_field(
    session: Session,
    record_obj: Any,
    entity_type: str,
    field: str,
    value: Any,
    actor_id: int | None,
    at: datetime,
    action: str = "update",
    names: Callable[[Any, Any], tuple[str | None, str | None]] | None = None,
) -> bool:
    """Set ``record_obj.field`` to ``value`` and audit it; nothing happens when the value is unchanged.

    With ``names``, the field holds another row's id and is audited by that row's name: as the field less its
    ``_id``, with the names ``names`` gives for the old and the new id (asked once the field is set).
    """
    old = getattr(record_obj, field)
    if old == value:
        return False
    setattr(record_obj, field, value)
    if names is None:
        record_for(session, entity_type, record_obj, actor_id, at, action, field, value, old)
    else:
        old_name, new_name = names(old, value)
        record_for(
            session,
            entity_type,
            record_obj,
            actor_id,
            at,
            action,
            field.removesuffix("_id"),
            new_name,
            old_name,
        )
    return True


def record_for(
    session: Session,
    entity_type: str,
    record_obj: Any,
    actor_id: int | None,
    at: datetime,
    action: str,
    field: str | None,
    new: Any,
    old: Any = None,
) -> AuditEvent:
    """:func:`record` one event of ``record_obj`` (a row with an ``id``), its fields given in their order."""
    return record(
        session,
        entity_type=entity_type,
        entity_id=record_obj.id,
        actor_id=actor_id,
        at=at,
        action=action,
        field=field,
        old=old,
        new=new,
    )


TABLE_COLUMNS = (
    "entity_type",
    "entity_id",
    "actor_id",
    "at",
    "action",
    "field",
    "old_value",
    "new_value",
    "seq",
    "prev_hash",
    "hash",
)
HEAD_COLUMNS = ("entity_type", "entity_id", "seq", "hash")


def table_rows(
    events: Iterable[tuple[str, int, int | None, datetime | str, str, str | None, Any, Any]],
    heads: dict[Key, tuple[int, str]] | None = None,
) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    """The audit table's columns and the row it stores for each event, for bulk loads through the driver.

    Each event holds the fields of :func:`record` in its order (entity type, entity id, actor id, at,
    action, field, old, new); old and new become text as :func:`record` stores them, and ``at`` is kept as
    given, already in the form the driver stores. The rows are chained: each record's events, in the order
    given, follow its entry in ``heads`` (seq, hash of its newest link; none: a record without events yet),
    which is moved on to the newest, so that the caller writes the heads too (:func:`head_rows`) and can
    chain later events onto them. No ORM object is made and nothing is locked (the bulk load is the
    database's only writer), so millions of events stay cheap.
    """
    if heads is None:
        heads = {}
    return TABLE_COLUMNS, list(_chained(events, heads))


def _chained(
    events: Iterable[tuple[str, int, int | None, datetime | str, str, str | None, str | None, str | None]],
    heads: dict[Key, tuple[int, str]],
) -> Iterator[
    tuple[str, int, int | None, datetime | str, str, str | None, str | None, str | None, int, str | None, str]
]:
    """The bulk loads' chain, in one place: each event with its values as text, its seq, the hash of the
    link before it and its own, ``heads`` moved on as it goes."""
    instants: dict[datetime | str, str] = {}  # a history writes several rows at each instant
    for entity_type, entity_id, actor_id, at, action, field, old, new in events:
        key = (entity_type, entity_id)
        seq, prev = heads.get(key, (0, None))
        seq += 1
        instant = instants.get(at)
        if instant is None:
            instant = instants[at] = canonical_instant(at)
        old_text = old if old is None or type(old) is str else _text(old)
        new_text = new if new is None or type(new) is str else _text(new)
        digest = link_hash(
            entity_type, entity_id, seq, actor_id, instant, action, field, old_text, new_text, prev
        )
        heads[key] = (seq, digest)
        yield entity_type, entity_id, actor_id, at, action, field, old_text, new_text, seq, prev, digest


_NULL = "\\N"  # COPY's null
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(value: str) -> str:
    """A text value as PostgreSQL's COPY text format reads it (backslash, tab, newline, return escaped)."""
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_COPY_ESCAPES)


def table_copy(
    events: Iterable[tuple[str, int, int | None, datetime | str, str, str | None, str | None, str | None]],
    heads: dict[Key, tuple[int, str]],
) -> tuple[tuple[str, ...], str, int]:
    """:func:`table_rows` for a PostgreSQL COPY: the columns, the rows as COPY text, how many.

    The same chain and the same values (chained by the same :func:`_chained`), for events whose ``at`` is the
    stored text form of :func:`canonical_instant`; entity types, actions and fields are identifiers
    (nothing to escape).
    """
    lines = [
        f"{entity_type}\t{entity_id}\t{_NULL if actor_id is None else actor_id}\t{at}\t{action}\t"
        f"{_NULL if field is None else field}\t{_NULL if old is None else copy_field(old)}\t"
        f"{_NULL if new is None else copy_field(new)}\t{seq}\t{_NULL if prev is None else prev}\t"
        f"{digest}\n"
        for entity_type, entity_id, actor_id, at, action, field, old, new, seq, prev, digest in _chained(
            events, heads
        )
    ]
    return TABLE_COLUMNS, "".join(lines), len(lines)


def head_rows(heads: Mapping[Key, tuple[int, str]]) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    """The heads table's columns and rows for the heads :func:`table_rows` moved on (bulk loads)."""
    return HEAD_COLUMNS, [(t, i, seq, digest) for (t, i), (seq, digest) in heads.items()]


# --------------------------------------------------------------------------- reading


def shown_value(value: str | None, zone: tzinfo | None = None, labelled: bool = False) -> str:
    """An audited value as a person reads it: '-' for none; with ``zone``, a stored instant (kept in UTC)
    as the time in that zone, to the minute (``labelled``: with the zone's abbreviation)."""
    if value is None or value == "":
        return "-"
    if zone is not None and len(value) >= 16 and value[4:5] == "-" and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z" if labelled else "%Y-%m-%d %H:%M")
    return value


def last_change(session: Session, entity_type: str, entity_id: int) -> tuple[str, datetime] | None:
    """Who made the newest audited change to a record, and when."""
    row = session.execute(
        select(User.login, User.name, AuditEvent.at)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    who = f"{row.name} ({row.login})" if row.login else "the system"
    return who, row.at


def history(session: Session, entity_type: str, entity_id: int, limit: int = 200) -> list[AuditEvent]:
    """The newest audit events of a record, newest first (bounded)."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- verifying

# The tables as plain columns: the verifier reads the values as the driver returns them (the instant as
# SQLite's text or PostgreSQL's naive datetime), never through the ORM's types.
_EVENTS = table(
    "audit_events",
    *(column(name) for name in ("entity_type", "entity_id", "seq", "actor_id", "at", "action", "field")),
    *(column(name) for name in ("old_value", "new_value", "prev_hash", "hash")),
)
_HEADS = table("audit_heads", column("entity_type"), column("entity_id"), column("seq"), column("hash"))

STREAM_ROWS = 2000  # rows fetched at a time from the server while walking


@dataclass(frozen=True)
class Break:
    """The first link of a record's chain that does not verify, and what is wrong with it."""

    entity_type: str
    entity_id: int
    seq: int  # the link in question
    # altered | missing | duplicate | rewritten | truncated | unanchored | headless (the walk);
    # removed | backwards | rewritten (against a saved copy of the heads)
    kind: str
    message: str  # e.g. "audit #7 was altered"
    ref: str | None = None  # the record's name (INC0000042, CHG0000003, a login), once looked up

    @property
    def name(self) -> str:
        return self.ref or f"{self.entity_type} {self.entity_id}"

    def describe(self) -> str:
        """The break as one line naming the record: "INC0000042 audit #7 was altered"."""
        return f"{self.name} {self.message}"

    def as_json(self) -> dict[str, object]:
        return {
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "ref": self.name,
            "seq": self.seq,
            "kind": self.kind,
            "message": self.describe(),
        }


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: how much it checked and the first break of each record that breaks."""

    records: int
    rows: int
    breaks: list[Break]

    @property
    def ok(self) -> bool:
        return not self.breaks


@dataclass(frozen=True)
class Head:
    """A record's newest link, as ``itsm audit verify --json`` prints it for keeping elsewhere."""

    entity_type: str
    entity_id: int
    ref: str
    seq: int
    hash: str

    def as_json(self) -> dict[str, object]:
        return {
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "ref": self.ref,
            "seq": self.seq,
            "hash": self.hash,
        }


CANNOT_PROVE = (
    "A chain rewritten end to end by someone with full rights on the database still verifies: keep a copy "
    "of the heads elsewhere (itsm audit verify --json > heads.json) and compare later (--heads heads.json)."
)


def warning(found: Break) -> str:
    """The line a record's screen and its ``show`` command print when its history does not verify."""
    return f"history does not verify: {found.message} \N{EM DASH} run itsm audit verify"


def _links(first: int, last: int) -> str:
    return f"#{first}" if first == last else f"#{first}-#{last}"


def _first_break(
    entity_type: str, entity_id: int, links: Iterable[Sequence[Any]], head: tuple[int, str] | None
) -> tuple[Break | None, int]:
    """The first break of one record's chain, and how many links were read.

    ``links``: the record's rows in seq order, each (seq, actor id, at, action, field, old, new, prev_hash,
    hash) as the driver returns them; ``head``: its head (seq, hash), None when it has none.
    """

    def broken(seq: int, kind: str, message: str) -> Break:
        return Break(entity_type, entity_id, seq, kind, message)

    found: Break | None = None
    count, last_seq, last_hash = 0, 0, None
    for seq, actor_id, at, action, field, old, new, prev_hash, stored in links:
        count += 1
        if found is not None:
            continue  # read on to count the record's rows
        if seq <= last_seq:  # only where the unique index on the chain was dropped
            found = broken(seq, "duplicate", f"audit #{seq} appears twice")
            continue
        if seq != last_seq + 1:
            many = seq - last_seq > 2
            found = broken(
                last_seq + 1,
                "missing",
                f"audit {_links(last_seq + 1, seq - 1)} {'are' if many else 'is'} missing",
            )
            continue
        try:
            instant = canonical_instant(at)
        except (TypeError, ValueError):
            instant = None
        if instant is None or stored != link_hash(
            entity_type, entity_id, seq, actor_id, instant, action, field, old, new, prev_hash
        ):
            found = broken(seq, "altered", f"audit #{seq} was altered")
        elif prev_hash != last_hash:
            found = (
                broken(seq - 1, "rewritten", f"audit #{seq - 1} was replaced (#{seq} follows another)")
                if seq > 1
                else broken(1, "rewritten", "audit #1 was replaced (it follows a link that is not there)")
            )
        last_seq, last_hash = seq, stored
    if found is not None or count == 0:
        return found, count
    if head is None:
        return broken(last_seq, "headless", "has no head: its newest rows cannot be proven"), count
    head_seq, head_hash = head
    if head_seq > last_seq:
        missing = head_seq - last_seq
        rows = "row is" if missing == 1 else f"{missing} rows are"
        return broken(
            last_seq + 1, "truncated", f"the newest {rows} missing (audit {_links(last_seq + 1, head_seq)})"
        ), count
    if head_seq < last_seq:
        verb = "is" if last_seq == head_seq + 1 else "are"
        return broken(
            head_seq + 1,
            "unanchored",
            f"audit {_links(head_seq + 1, last_seq)} {verb} not in the trail (past the record's head)",
        ), count
    if head_hash != last_hash:
        return broken(
            last_seq, "rewritten", f"audit #{last_seq} was replaced (the head names another)"
        ), count
    return None, count


def _headless_break(entity_type: str, entity_id: int, head_seq: int) -> Break:
    """A head whose record has no audit rows left."""
    rows = "its only row is" if head_seq == 1 else f"all {head_seq} rows are"
    return Break(entity_type, entity_id, 1, "truncated", f"{rows} missing (audit {_links(1, head_seq)})")


def _walk_query(entity: Key | None = None) -> Select[Any]:
    e, h = _EVENTS.c, _HEADS.c
    stmt = (
        select(
            e.entity_type,
            e.entity_id,
            e.seq,
            e.actor_id,
            e.at,
            e.action,
            e.field,
            e.old_value,
            e.new_value,
            e.prev_hash,
            e.hash,
            h.seq,
            h.hash,
        )
        .select_from(
            _EVENTS.outerjoin(_HEADS, and_(h.entity_type == e.entity_type, h.entity_id == e.entity_id))
        )
        .order_by(e.entity_type, e.entity_id, e.seq)
    )
    if entity is not None:
        stmt = stmt.where(e.entity_type == entity[0], e.entity_id == entity[1])
    return stmt.execution_options(yield_per=STREAM_ROWS)


def _orphan_heads_query(entity: Key | None = None) -> Select[Any]:
    """Heads (past the placeholder of seq 0) whose record has no audit rows at all."""
    e, h = _EVENTS.c, _HEADS.c
    stmt = (
        select(h.entity_type, h.entity_id, h.seq)
        .where(
            h.seq > 0,
            ~select(literal(1)).where(e.entity_type == h.entity_type, e.entity_id == h.entity_id).exists(),
        )
        .order_by(h.entity_type, h.entity_id)
    )
    if entity is not None:
        stmt = stmt.where(h.entity_type == entity[0], h.entity_id == entity[1])
    return stmt


def _walk(session: Session, entity: Key | None = None) -> tuple[int, int, list[Break]]:
    """(records, rows, breaks) of every chain (or one), in one statement so that it reads one snapshot:
    each row comes with its record's head, so a writer appending meanwhile cannot make the two disagree."""
    records = rows = 0
    breaks: list[Break] = []
    stream = session.execute(_walk_query(entity)).tuples()
    for (entity_type, entity_id), group in itertools.groupby(stream, key=lambda r: (r[0], r[1])):
        first = next(group)
        head = None if first[11] is None else (first[11], first[12])
        found, count = _first_break(
            entity_type, entity_id, (r[2:11] for r in itertools.chain((first,), group)), head
        )
        records += 1
        rows += count
        if found is not None:
            breaks.append(found)
    for entity_type, entity_id, head_seq in session.execute(_orphan_heads_query(entity)).tuples():
        records += 1
        breaks.append(_headless_break(entity_type, entity_id, head_seq))
    breaks.sort(key=lambda b: (b.entity_type, b.entity_id))
    return records, rows, breaks


def verify_record(session: Session, entity_type: str, entity_id: int) -> Break | None:
    """The first break of one record's chain, or None when it verifies (as a record with no trail does).

    One indexed range scan over the record's rows, streamed, so a record with a long history costs its
    length in hashing, never its length in memory.
    """
    return next(iter(_walk(session, (entity_type, entity_id))[2]), None)


def history_warning(session: Session, entity_type: str, entity_id: int) -> str | None:
    """The :func:`warning` a record's page shows when its chain does not verify, else None."""
    found = verify_record(session, entity_type, entity_id)
    return None if found is None else warning(found)


_NAMED: dict[str, tuple[Any, Any]] = {
    "ticket": (Ticket.id, Ticket.ref),
    "change": (Change.id, Change.ref),
    "problem": (Problem.id, Problem.ref),
    "known_error": (KnownError.id, KnownError.ref),
    "article": (KnowledgeArticle.id, KnowledgeArticle.ref),
    "user": (User.id, User.login),
}
_NAME_BATCH = 500


def names(session: Session, keys: Iterable[Key]) -> dict[Key, str]:
    """The names of records (ticket and change references, user logins; others as "window 3")."""
    wanted: dict[str, set[int]] = {}
    for entity_type, entity_id in keys:
        wanted.setdefault(entity_type, set()).add(entity_id)
    found: dict[Key, str] = {}
    for entity_type, ids in wanted.items():
        columns = _NAMED.get(entity_type)
        ordered = sorted(ids)
        if columns is not None:
            id_column, name_column = columns
            for first in range(0, len(ordered), _NAME_BATCH):
                batch = ordered[first : first + _NAME_BATCH]
                for entity_id, name in session.execute(
                    select(id_column, name_column).where(id_column.in_(batch))
                ).tuples():
                    found[(entity_type, entity_id)] = name
        for entity_id in ordered:
            found.setdefault((entity_type, entity_id), f"{entity_type} {entity_id}")
    return found


def _named(session: Session, breaks: list[Break]) -> list[Break]:
    known = names(session, ((b.entity_type, b.entity_id) for b in breaks))
    return [replace(b, ref=known[(b.entity_type, b.entity_id)]) for b in breaks]


def find_entity(session: Session, entity_type: str, ref: str) -> Key:
    """A record by type and name: a ticket or change reference, a user's login, another record's id."""
    entity_type = entity_type.strip().lower()
    text = ref.strip()
    columns = _NAMED.get(entity_type)
    if columns is not None:
        id_column, name_column = columns
        wanted = text if entity_type == "user" else text.upper()
        entity_id = session.scalar(select(id_column).where(name_column == wanted))
        if entity_id is None:
            raise NotFound(f"no {entity_type} {ref!r}; give a {_NAME_HINT[entity_type]}")
        return entity_type, entity_id
    if (
        session.scalar(select(AuditHead.entity_id).where(AuditHead.entity_type == entity_type).limit(1))
        is None
    ):
        known = ", ".join(sorted({*_NAMED, *_audited_types(session)}))
        raise ValidationError("entity", f"no audit trail of a {entity_type!r}; the types are: {known}")
    if not text.isdigit():
        raise ValidationError("entity", f"a {entity_type} is named by its id (a number), not {ref!r}")
    return entity_type, int(text)


def _audited_types(session: Session, most: int = 20) -> list[str]:
    """The entity types with an audit trail, one index seek each (not a scan of every head)."""
    found: list[str] = []
    while len(found) < most:
        after = select(func.min(AuditHead.entity_type))
        if found:
            after = after.where(AuditHead.entity_type > found[-1])
        kind = session.scalar(after)
        if kind is None:
            break
        found.append(kind)
    return found


_NAME_HINT = {
    "ticket": "reference such as INC0000042 (itsm ticket list)",
    "change": "reference such as CHG0000003 (itsm change list)",
    "problem": "reference such as PRB0000004 (itsm problem list)",
    "known_error": "reference such as KE0000002 (itsm problem show)",
    "article": "reference such as KB0000001 (itsm kb list)",
    "user": "login (itsm user list)",
}


def verify(session: Session, actor: Actor, entity: Key | None = None) -> Verification:
    """Walk every record's chain (or ``entity``'s) in index order, streamed, and report the first break of
    each record that breaks, by name. Reading reports' right (``report.read``) is enough."""
    require(actor.roles, "report.read")
    records, rows, breaks = _walk(session, entity)
    return Verification(records, rows, _named(session, breaks))


def heads(session: Session, actor: Actor, entity: Key | None = None) -> Iterator[Head]:
    """Every record's head (or ``entity``'s) with its name, streamed in key order: the copy to keep."""
    require(actor.roles, "report.read")
    h = _HEADS.c
    stmt = (
        select(h.entity_type, h.entity_id, h.seq, h.hash, Ticket.ref, Change.ref, User.login)
        .select_from(_HEADS)
        .outerjoin(Ticket, and_(h.entity_type == "ticket", Ticket.id == h.entity_id))
        .outerjoin(Change, and_(h.entity_type == "change", Change.id == h.entity_id))
        .outerjoin(User, and_(h.entity_type == "user", User.id == h.entity_id))
        .where(h.seq > 0)
        .order_by(h.entity_type, h.entity_id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    if entity is not None:
        stmt = stmt.where(h.entity_type == entity[0], h.entity_id == entity[1])
    for entity_type, entity_id, seq, digest, ticket, change, login in session.execute(stmt).tuples():
        yield Head(
            entity_type, entity_id, ticket or change or login or f"{entity_type} {entity_id}", seq, digest
        )


_COMPARE_BATCH = 200  # saved heads looked up per statement (an OR of index lookups)


def compare_heads(
    session: Session, actor: Actor, saved: Mapping[Key, tuple[int, str]], entity: Key | None = None
) -> list[Break]:
    """Where the trail moved away from a saved copy of the heads: a record whose head went back or is
    gone, or whose link at the saved head's seq no longer has the saved hash (the chain was rewritten).

    A record added since the copy, or one that only grew on from the saved head, is fine.
    """
    require(actor.roles, "report.read")
    e, h = _EVENTS.c, _HEADS.c
    keys = sorted(k for k in saved if entity is None or k == entity)
    breaks: list[Break] = []
    for first in range(0, len(keys), _COMPARE_BATCH):
        batch = keys[first : first + _COMPARE_BATCH]
        current = {
            (t, i): seq
            for t, i, seq in session.execute(
                select(h.entity_type, h.entity_id, h.seq).where(
                    or_(*(and_(h.entity_type == t, h.entity_id == i) for t, i in batch))
                )
            ).tuples()
        }
        links = {
            (t, i): digest
            for t, i, digest in session.execute(
                select(e.entity_type, e.entity_id, e.hash).where(
                    or_(
                        *(
                            and_(e.entity_type == t, e.entity_id == i, e.seq == saved[(t, i)][0])
                            for t, i in batch
                        )
                    )
                )
            ).tuples()
        }
        for key in batch:
            seq, digest = saved[key]
            now = current.get(key)
            if now is None:
                message = f"is gone since the saved copy (its head was at #{seq})"
                breaks.append(Break(*key, seq, "removed", message))
            elif now < seq:
                message = f"went backwards: its head is at #{now}, the saved copy's at #{seq}"
                breaks.append(Break(*key, now + 1, "backwards", message))
            elif links.get(key) != digest:
                message = f"was rewritten: audit #{seq} is not the one of the saved copy"
                breaks.append(Break(*key, seq, "rewritten", message))
    return _named(session, breaks)
