"""Moving a test's archive to a given schema revision with Alembic, as ``atlas migrate`` would."""

from __future__ import annotations

from sqlalchemy import Engine

from archive.engine import MIGRATIONS


def migrate_to(engine: Engine, revision: str, *, down: bool = False) -> None:
    """Upgrade (or, with ``down``, downgrade) the archive behind ``engine`` to ``revision``."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
