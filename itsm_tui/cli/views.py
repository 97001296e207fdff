"""``itsm view``: the queue views of one's own (and those shared with one's groups): list, save, delete."""

from __future__ import annotations

import argparse
import json

from itsm_tui.cli.desk import Desk, Handler, with_desk
from itsm_tui.cli.output import plain, print_table


def _queue_keys() -> dict[str, str]:
    """The keys the console's queue has in force for this user (their key file applied): a view may not
    take one. Reading them loads the console's screens."""
    from itsm_tui.app import ItsmApp, binding_table
    from itsm_tui.keymap import load
    from itsm_tui.screens.queue import QueueScreen, QueueTable
    from itsm_tui.screens.views import queue_keys

    return queue_keys(load(binding_table), [QueueScreen, QueueTable, ItsmApp])


@with_desk
def cmd_view_list(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import views

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        found = views.list_views(session, actor)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": v.name,
                        "key": v.key,
                        "owner": v.owner_login,
                        "mine": v.mine(actor),
                        "shared_with": v.shared_group,
                        "view": v.base_view,
                        "filter": v.filter_text,
                        "sort": v.sort,
                        "descending": v.descending,
                        "created_at": v.created_at.isoformat(),
                        "updated_at": v.updated_at.isoformat(),
                    }
                    for v in found
                ],
                indent=2,
            )
        )
        return 0
    print_table(
        ["KEY", "NAME", "OWNER", "SHARED", "VIEW", "FILTER", "SORT"],
        [
            [
                v.key,
                plain(v.name),
                "me" if v.mine(actor) else plain(v.owner_login),
                v.shared_group or "-",
                v.base_view,
                plain(v.filter_text) or "-",
                v.sort + (" desc" if v.descending else ""),
            ]
            for v in found
        ],
    )
    return 0


@with_desk
def cmd_view_save(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import views

    reserved = _queue_keys()
    with desk.db.session() as session:
        view = views.save_view(
            session,
            desk.config,
            desk.actor(session),
            name=args.name,
            key=args.key,
            filter_text=args.filter,
            sort=args.sort,
            descending=args.desc,
            base_view=args.view,
            share_with=args.share,
            reserved=reserved,
        )
    shared = f", shared with {view.shared_group}" if view.shared_group else ""
    print(f"saved view {plain(view.name)!r} on key {view.key}{shared}")
    return 0


@with_desk
def cmd_view_delete(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import views

    with desk.db.session() as session:
        actor = desk.actor(session)
        view = views.find_view(session, actor, args.name)
        views.delete_view(session, actor, view.id)
    print(f"deleted view {plain(view.name)!r}")
    return 0


HANDLERS: dict[str, Handler] = {
    "view list": cmd_view_list,
    "view save": cmd_view_save,
    "view delete": cmd_view_delete,
}
