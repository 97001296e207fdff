"""``itsm audit verify``: walk every record's audit chain and say where it breaks.

Exit 0 when every chain verifies (and, with ``--heads``, none moved away from the saved copy), 1 when
something is broken (each break printed), 2 for bad input (an unknown record, an unreadable heads file).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.cli.output import plain

if TYPE_CHECKING:
    from itsm_tui.services.audit import Break, Head, Key, Verification

EXIT_BROKEN = 1

_HEX = frozenset("0123456789abcdef")


def read_heads(path: str) -> dict[Key, tuple[int, str]]:
    """The heads of a file written by ``itsm audit verify --json`` (its ``heads`` list), by record."""
    hint = "give a file written by `itsm audit verify --json`"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read the heads file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"the heads file {path} is not JSON ({exc}); {hint}") from None
    items = data.get("heads") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise CliError(f"the heads file {path} has no list of heads; {hint}")
    saved: dict[Key, tuple[int, str]] = {}
    for number, item in enumerate(items, start=1):
        try:
            entity_type, entity_id = item["entity_type"], item["entity_id"]
            seq, digest = item["seq"], item["hash"]
        except (TypeError, KeyError):
            raise CliError(
                f"head {number} of {path} lacks entity_type, entity_id, seq or hash; {hint}"
            ) from None
        if not (
            isinstance(entity_type, str)
            and isinstance(entity_id, int)
            and isinstance(seq, int)
            and seq > 0
            and isinstance(digest, str)
            and len(digest) == 64
            and set(digest) <= _HEX
        ):
            raise CliError(f"head {number} of {path} is not a head (type, id, seq >= 1, sha256 hex); {hint}")
        saved[(entity_type, entity_id)] = (seq, digest)
    return saved


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}{'' if number == 1 else 's'}"


def _summary(result: Verification) -> str:
    checked = f"checked {_count(result.rows, 'audit row')} of {_count(result.records, 'record')}"
    if result.ok:
        return f"{checked}: every chain verifies"
    broken = len(result.breaks)
    return f"{checked}: {broken:,} record{'s do' if broken != 1 else ' does'} not verify"


def _print_text(result: Verification, moved: list[Break] | None, heads_file: str | None, note: str) -> None:
    for found in result.breaks:
        print(plain(found.describe()))
    print(_summary(result))
    if moved is not None:
        for found in moved:
            print(plain(found.describe()))
        changed = f"{len(moved):,} moved away from it" if moved else "every saved head is still in its chain"
        print(f"compared with the heads saved in {plain(heads_file or '')}: {changed}")
    print(f"note: {note}")


def _print_json(
    result: Verification, moved: list[Break] | None, heads_file: str | None, note: str, heads: Iterable[Head]
) -> None:
    """The report as one JSON object, the heads (possibly millions) written as they are read."""
    data: dict[str, object] = {
        "verified": result.ok and not moved,
        "records": result.records,
        "rows": result.rows,
        "breaks": [found.as_json() for found in result.breaks],
        "heads_compared": None
        if moved is None
        else {"file": heads_file, "changed": [found.as_json() for found in moved]},
        "cannot_prove": note,
    }
    out = sys.stdout
    out.write(json.dumps(data, indent=2)[:-2] + ',\n  "heads": [')
    separator = "\n    "
    for head in heads:
        out.write(separator + json.dumps(head.as_json()))
        separator = ",\n    "
    out.write("\n  ]\n}\n")


@with_desk
def cmd_audit_verify(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import audit

    saved = read_heads(args.heads) if args.heads else None
    with desk.db.read_session() as session:
        actor = desk.actor(session)
        entity = audit.find_entity(session, *args.entity) if args.entity else None
        result = audit.verify(session, actor, entity)
        moved = audit.compare_heads(session, actor, saved, entity) if saved is not None else None
        if args.json:
            _print_json(result, moved, args.heads, audit.CANNOT_PROVE, audit.heads(session, actor, entity))
        else:
            _print_text(result, moved, args.heads, audit.CANNOT_PROVE)
    return 0 if result.ok and not moved else EXIT_BROKEN


HANDLERS: dict[str, Handler] = {"audit verify": cmd_audit_verify}
