"""``itsm kb``: knowledge articles: write, list, show, update, submit, publish, send back, retire."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.cli.output import local, plain, print_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.services.articles import ArticleDetail
    from itsm_tui.services.users import Actor


# --------------------------------------------------------------------------- the text of an article


def edit_text(text: str) -> str:
    """``text`` as the user left it in ``$VISUAL`` / ``$EDITOR`` (else ``vi``), through a private temporary
    file (0600, removed afterwards)."""
    command = (os.environ.get("VISUAL") or "").strip() or (os.environ.get("EDITOR") or "").strip() or "vi"
    try:
        words = shlex.split(command) or ["vi"]
    except ValueError as exc:
        raise CliError(f"the editor command {command!r} cannot be read ({exc}); set $EDITOR") from None
    handle, name = tempfile.mkstemp(prefix="itsm-kb-", suffix=".md")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            done = subprocess.run([*words, name], check=False)
        except OSError as exc:
            raise CliError(
                f"the editor {words[0]!r} could not be started ({exc.strerror or exc}); set $EDITOR"
            ) from None
        if done.returncode != 0:
            raise CliError(
                f"the editor {words[0]!r} ended with exit status {done.returncode}; nothing was saved"
            )
        try:
            return Path(name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CliError("the edited text is not UTF-8; nothing was saved") from None
    finally:
        Path(name).unlink(missing_ok=True)


def _given_body(args: argparse.Namespace) -> str | None:
    """The text of ``--body`` or ``--body-file`` (``-``: standard input), None when neither is given."""
    if args.body is not None and args.body_file is not None:
        raise CliError("give either --body or --body-file, not both")
    if args.body_file is None:
        return args.body
    if args.body_file == "-":
        try:
            return sys.stdin.read()
        except UnicodeDecodeError:
            raise CliError("the text on standard input is not UTF-8") from None
    try:
        return Path(args.body_file).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{args.body_file} is not UTF-8 text") from None
    except OSError as exc:
        raise CliError(f"cannot read {args.body_file}: {exc.strerror or exc}") from None


def _at_a_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------- printing


def _print_article(detail: ArticleDetail, tz: str) -> None:
    print(f"{detail.ref}  {detail.status_label}  v{detail.version}  used by {detail.uses} ticket(s)")
    print(f"  {plain(detail.title)}")
    author = f"{detail.author} ({detail.author_name})" if detail.author else "-"
    rows = [
        ("Service", detail.service or "-"),
        ("Category", detail.category or "-"),
        ("Author", author),
        ("Published by", detail.reviewer or "-"),
        ("From ticket", detail.source_ticket or "-"),
        ("Created", local(detail.created_at, tz)),
        ("Updated", local(detail.updated_at, tz)),
    ]
    if detail.published_at:
        rows.append(("Published", local(detail.published_at, tz)))
    if detail.retired_at:
        rows.append(("Retired", local(detail.retired_at, tz)))
    if detail.retire_reason:
        rows.append(("Why retired", detail.retire_reason))
    if detail.review_note:
        rows.append(("Review note", detail.review_note))
    if detail.linked:
        rows.append(("Linked", ", ".join(f"{r.ref} {r.kind_word}" for r in detail.linked)))
    for label, value in rows:
        print(f"  {label + ':':<14}{plain(value)}")
    print(f"\n{plain(detail.body) if detail.body else '(no text yet)'}")
    print("\nActions:")
    for offer in detail.actions:
        said = "yes" if offer.refusal is None else f"no: {plain(offer.refusal)}"
        print(f"  {offer.action:<10} {said}")
    if detail.history:
        print("\nHistory (newest first):")
        for item in detail.history[:30]:
            value = f"{item.old or ''} -> {item.new or ''}" if item.old else (item.new or "")
            line = " ".join(value.split())
            change = f"{item.field}: {line[:80]}" if item.field else line[:80]
            print(f"  {local(item.at, tz)}  {plain(item.by):<10} {item.action:<10} {plain(change)}")


def _result(session: Session, actor: Actor, ref: str) -> Callable[[argparse.Namespace], int]:
    """What to print of a written article, read in its transaction and printed (by calling it) once that has
    committed: output cut short by a reader that went away must not undo the write."""
    from itsm_tui.services import articles

    detail = articles.article_detail(session, actor, ref)

    def show(args: argparse.Namespace) -> int:
        if getattr(args, "json", False):
            print(json.dumps(detail.as_json(), indent=2))
        else:
            print(f"{detail.ref} {detail.status_label} v{detail.version}: {plain(detail.title)}")
        return 0

    return show


# --------------------------------------------------------------------------- commands


@with_desk
def cmd_kb_list(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import articles
    from itsm_tui.services.errors import ValidationError

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        listed = articles.list_articles(
            session, actor, view=args.view, text=" ".join(args.words), limit=args.limit
        )
    if listed.error is not None:
        raise ValidationError("filter", listed.error)
    if args.json:
        print(json.dumps([row.as_json() for row in listed.rows], indent=2))
        return 0
    print_table(
        ["REF", "STATUS", "SERVICE", "CATEGORY", "AUTHOR", "UPDATED", "USES", "TITLE"],
        [
            [
                row.ref,
                articles.STATUS_LABELS.get(row.status, row.status),
                row.service or "-",
                plain(row.category or "-"),
                plain(row.author or "-"),
                local(row.updated_at, actor.timezone),
                str(row.uses),
                plain(row.title)[:50],
            ]
            for row in listed.rows
        ],
    )
    return 0


@with_desk
def cmd_kb_show(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import articles

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        detail = articles.article_detail(session, actor, args.ref)
    if args.json:
        print(json.dumps(detail.as_json(), indent=2))
        return 0
    if detail.history_warning:
        print(detail.history_warning)
    _print_article(detail, actor.timezone)
    return 0


@with_desk
def cmd_kb_create(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import articles

    body = _given_body(args)
    if body is None and _at_a_terminal():
        start = ""
        with desk.db.read_session() as session:
            articles.guard_create(desk.actor(session))  # refused before anyone writes a text
            if args.from_ticket:
                start = articles.prefill_from_ticket(session, desk.config, args.from_ticket).body
        body = edit_text(start)
    with desk.db.session() as session:
        actor = desk.actor(session)
        article = articles.create_article(
            session,
            desk.config,
            actor,
            title=args.title,
            body=body,
            service=args.service,
            category=args.category,
            from_ticket=args.from_ticket,
        )
        result = _result(session, actor, article.ref)
    return result(args)


@with_desk
def cmd_kb_update(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import articles

    body = _given_body(args)
    changes: dict[str, object] = {
        name: value
        for name, value in (("title", args.title), ("service", args.service), ("category", args.category))
        if value is not None
    }
    expected = args.expected_version
    if body is None and not changes:
        if not _at_a_terminal():
            raise CliError("nothing to change: give --title, --body, --body-file, --service or --category")
        with desk.db.read_session() as session:
            actor = desk.actor(session)
            article = articles.get_article(session, args.ref)
            articles.enforce(actor, article, "edit")  # refused before anyone writes a text
            start, version = article.body, article.version
        if expected is None:
            expected = version  # the text edited is the one saved over, or the save is refused
        body = edit_text(start)
    if body is not None:
        changes["body"] = body
    with desk.db.session() as session:
        actor = desk.actor(session)
        ref = articles.get_article(session, args.ref).ref
        articles.update_article(session, desk.config, actor, ref, changes, expected_version=expected)
        result = _result(session, actor, ref)
    return result(args)


def _kb_step(fn_name: str, *inputs: str) -> Handler:
    """A handler that runs one lifecycle step on ``args.ref`` in one transaction and prints the result."""

    @with_desk
    def run(desk: Desk, args: argparse.Namespace) -> int:
        from itsm_tui.services import articles

        fn = getattr(articles, fn_name)
        with desk.db.session() as session:
            actor = desk.actor(session)
            ref = articles.get_article(session, args.ref).ref
            values = [getattr(args, name) for name in inputs]
            fn(session, desk.config, actor, ref, *values, expected_version=args.expected_version)
            result = _result(session, actor, ref)
        return result(args)

    return run


HANDLERS: dict[str, Handler] = {
    "kb list": cmd_kb_list,
    "kb show": cmd_kb_show,
    "kb create": cmd_kb_create,
    "kb update": cmd_kb_update,
    "kb submit": _kb_step("submit"),
    "kb publish": _kb_step("publish"),
    "kb send-back": _kb_step("send_back", "note"),
    "kb retire": _kb_step("retire", "reason"),
}
