"""A console whose database goes away shows it, keeps running, and recovers when the database is back."""

from __future__ import annotations

import pytest
from pilot_helpers import settle, wait_until
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from itsm_tui.app import ItsmApp


def set_connections(url: str, allowed: bool) -> None:
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
    admin.dispose()


async def test_lost_database_shows_a_banner_and_recovers(db, config, staff):
    if db.backend != "postgresql":
        pytest.skip("an SQLite file cannot be taken away from an open connection")
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.connected
        set_connections(db.url, False)
        try:
            await wait_until(pilot, lambda: not app.connected, "the lost connection to show")
            assert not app.connected
            from itsm_tui.screens.common import StatusLine

            line = str(app.screen.query_one(StatusLine).render())
            assert "DATABASE UNREACHABLE" in line
            await pilot.press("4")  # still usable: keys do not crash it
            await settle(pilot)
            assert app.is_running
        finally:
            set_connections(db.url, True)
        await wait_until(pilot, lambda: app.connected, "the connection to come back")
        assert app.connected
