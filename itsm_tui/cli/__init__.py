"""The ``itsm`` command line: the console, demo data, migrations, users, tickets, SLA, reports and changes.

Every command takes ``--db``; errors go to stderr with exit code 2 and say what to do; each command runs
in one transaction, so a refused command writes nothing.

The parser (:mod:`.parser`) and :func:`main` (:mod:`.running`) stay light; each command's module (users,
tickets, sla, serve, reports, changes, database) is imported only when that command runs.
"""

from itsm_tui.cli.desk import EXIT_ERROR, CliError, Desk
from itsm_tui.cli.parser import build_parser
from itsm_tui.cli.running import main

__all__ = ["EXIT_ERROR", "CliError", "Desk", "build_parser", "main"]
