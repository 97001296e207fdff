"""Alembic environment: migrations run against the URL the command line resolved."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from itsm_tui.db import make_engine
from itsm_tui.models import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    """The URL :func:`itsm_tui.db.alembic_config` put in the configuration."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url in the Alembic configuration (see itsm_tui.db.alembic_config)")
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
