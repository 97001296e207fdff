"""``itsm db grant-roles``: PostgreSQL's group roles, least privileges and a login role per person."""

from __future__ import annotations

import argparse

from itsm_tui.cli.desk import Desk, Handler, database_url


def cmd_db_grant_roles(args: argparse.Namespace) -> int:
    """Run by an admin of the desk connected as the schema's owner (or a superuser); prints what it did, or
    with ``--dry-run`` the SQL it would run."""
    from sqlalchemy.engine import make_url

    from itsm_tui.services import dbroles

    # Before connecting: opening an SQLite URL would create the file only to say this.
    dbroles.require_postgresql(make_url(database_url(args)).get_backend_name())
    desk = Desk(args)
    try:
        with desk.db.session() as session:
            report = dbroles.grant_roles(
                session,
                desk.actor(session),
                desk_role=args.desk_role or dbroles.DESK_ROLE,
                owner_role=args.owner_role,
                logins=args.login,
                all_users=args.all_users,
                dry_run=args.dry_run,
            )
    finally:
        desk.close()
    if args.dry_run:
        print(f"-- itsm db grant-roles on {report.database} (dry run: nothing was changed)")
        for step in report.steps:
            print(f"{step.sql};")
        if not report.steps:
            print("-- nothing to change")
    elif report.steps:
        for step in report.steps:
            print(step.says)
    else:
        print(
            f"nothing to change: {report.desk_role} and {report.owner_role} already hold exactly the desk's "
            f"privileges on {report.database}"
            + (f", and {', '.join(report.people)} their login roles" if report.people else "")
        )
    for note in report.notes:
        print(f"{'-- ' if args.dry_run else ''}note: {note}")
    return 0


HANDLERS: dict[str, Handler] = {"db grant-roles": cmd_db_grant_roles}
