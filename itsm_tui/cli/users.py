"""``itsm user``: adding users and granting or withdrawing their roles and groups."""

from __future__ import annotations

import argparse
import json

from itsm_tui.cli.desk import CliError, Desk, Handler, with_desk
from itsm_tui.cli.output import plain, print_table


@with_desk
def cmd_user_add(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import users

    with desk.db.session() as session:
        user = users.add_user(
            session,
            actor_login=users.current_login(),
            login=args.login,
            roles=args.role,
            groups=args.group,
            name=args.name,
            email=args.email,
            timezone=args.timezone,
        )
        roles = ", ".join(user.role_names)
    print(f"added {args.login} ({roles})")
    return 0


@with_desk
def cmd_user_list(desk: Desk, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from itsm_tui.services import users

    with desk.db.read_session() as session:
        rows = users.list_users(session)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    print_table(
        ["LOGIN", "NAME", "ROLES", "GROUPS"],
        [
            [
                plain(r.login),
                plain(r.name),
                ",".join(r.roles),
                ",".join(plain(g) + ("*" if g in r.lead_of else "") for g in r.groups),
            ]
            for r in rows
        ],
    )
    if rows:
        print("(* = group lead)")
    return 0


@with_desk
def cmd_user_role(desk: Desk, args: argparse.Namespace) -> int:
    from itsm_tui.services import users

    if not (args.add or args.remove or args.add_group or args.remove_group or args.lead_of):
        raise CliError(
            "say what to change: --add ROLE, --remove ROLE, --add-group, --remove-group or --lead-of"
        )
    with desk.db.session() as session:
        user = users.change_roles(
            session,
            actor_login=users.current_login(),
            login=args.login,
            add=args.add,
            remove=args.remove,
            add_groups=args.add_group,
            remove_groups=args.remove_group,
            lead_of=args.lead_of,
        )
        summary = f"{user.login}: roles {', '.join(user.role_names)}; groups " + (
            ", ".join(sorted(plain(m.group.code) for m in user.groups)) or "none"
        )
    print(summary)
    return 0


HANDLERS: dict[str, Handler] = {
    "user add": cmd_user_add,
    "user list": cmd_user_list,
    "user role": cmd_user_role,
}
