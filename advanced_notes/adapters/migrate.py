"""Run Alembic programmatically (the ``db`` CLI commands, the dev runner, tests).

The migrations live in the repository's top-level ``migrations/`` folder (DESIGN §2);
run them from a checkout (``pip install -e .``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic Config for ``migrations/`` bound to ``database_url``.

    Raises:
        FileNotFoundError: the package is not running from a checkout that has ``migrations/``.
    """
    ini = MIGRATIONS_DIR / "alembic.ini"
    if not ini.exists():
        raise FileNotFoundError(f"{ini} not found: run migrations from a repository checkout")
    config = Config(str(ini))
    # ConfigParser would treat "%" in a password as interpolation.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Upgrade the schema of ``database_url`` to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Downgrade the schema of ``database_url`` to ``revision`` (``base`` empties it)."""
    command.downgrade(alembic_config(database_url), revision)
