"""``itsm serve``: the console in a web browser."""

from __future__ import annotations

import argparse
import sys

from itsm_tui.cli.desk import Handler


def cmd_serve(args: argparse.Namespace) -> int:
    """Each browser tab runs its own console process, as the user running this command."""
    import shlex

    from textual_serve.server import Server

    from itsm_tui.config import load_config, resolve_database_url
    from itsm_tui.db import open_database

    load_config()  # a bad configuration stops here, not in every browser tab
    url = resolve_database_url(args.db)
    open_database(url).dispose()  # so is a database that cannot be used
    command = shlex.join([sys.executable, "-m", "itsm_tui.cli", "--db", url])
    print(f"serving the console on http://{args.host}:{args.port} (Ctrl+C stops)", flush=True)
    Server(command, host=args.host, port=args.port, title="itsm").serve()
    return 0


HANDLERS: dict[str, Handler] = {"serve": cmd_serve}
