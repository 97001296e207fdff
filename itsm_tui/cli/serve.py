"""``itsm serve``: the console in a web browser, behind a login (see :mod:`itsm_tui.web`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from itsm_tui.cli.desk import CliError, Desk, Handler


def cmd_serve(args: argparse.Namespace) -> int:
    """Each browser session runs its own console process as the user running this command.

    Everything that would otherwise fail in every browser tab is checked once, here: the configuration,
    the database, and that this login is an active desk user (the consoles will be that user).
    """
    from itsm_tui import web
    from itsm_tui.services.users import UnknownUser

    public = web.PublicUrl.parse(args.public_url) if args.public_url else None
    desk = Desk(args)
    try:
        with desk.db.read_session() as session:
            actor = desk.actor(session)
    except UnknownUser as exc:
        # The same refusal (recorded as any), told in one line and as what it means here.
        told = " ".join(line.strip() for line in str(exc).splitlines())
        exc.args = (f"itsm serve runs every browser console as {exc.login}: {told}",)
        raise
    finally:
        desk.close()
    token_file = Path(args.token_file).expanduser().absolute() if args.token_file else None
    token, token_is_new = web.read_token_file(token_file) if token_file else (web.new_token(), False)
    server = web.DeskServer(
        # No --db: the URL (and its password) reaches the consoles in their environment, not in `ps`.
        shlex.join([sys.executable, "-m", "itsm_tui.cli"]),
        token=token,
        host=args.host,
        port=args.port,
        public_url=public,
        max_sessions=args.max_sessions,
        console_environment={"ITSM_DB_URL": desk.url},
        identity=f"{actor.login} ({', '.join(sorted(actor.roles))})",
        token_file=token_file,
        token_is_new=token_is_new,
    )
    try:
        server.serve()
    except BrokenPipeError:  # the announcement's reader went away (an OSError too): ends quietly, in main
        raise
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host} port {args.port}: {exc.strerror or exc}") from None
    return 0


HANDLERS: dict[str, Handler] = {"serve": cmd_serve}
