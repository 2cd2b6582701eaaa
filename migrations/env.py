"""Alembic environment: the models' metadata, and the URL of the app's settings."""

from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from advanced_notes.adapters import models  # noqa: F401 - registers the tables on Base.metadata
from advanced_notes.adapters.db import Base
from advanced_notes.api.context import services_of

config = context.config
# Only configure logging when nobody has (the alembic command line, `flask db`): a
# process that already logs (tests, the dev runner, gunicorn) keeps its own setup.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    # Standalone `alembic -c migrations/alembic.ini ...`: same URL the app would use.
    from dotenv import load_dotenv

    from advanced_notes.app import create_app

    load_dotenv(override=False)
    return services_of(create_app()).db.url


def _configure(**kwargs: object) -> None:
    url = kwargs.pop("url", None)
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=str(url or "").startswith("sqlite"),
        **kwargs,
    )


def run_migrations_offline() -> None:
    url = _database_url()
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _database_url()
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection=connection, url=url)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
