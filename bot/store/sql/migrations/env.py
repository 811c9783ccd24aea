"""Alembic's entry point: runs the revisions on the connection ``bot.store.sql.schema`` hands over.

Run by hand only to write a new revision (docs/operations.md, "Database"): then it opens
DATABASE_URL itself, e.g. ``DATABASE_URL=sqlite:///dev.db alembic -c
bot/store/sql/migrations/alembic.ini revision --autogenerate -m "what changes"``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from bot.store.sql.tables import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite rebuilds tables to alter them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.store.sql.database import normalize_database_url

    engine = create_async_engine(normalize_database_url(url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("vfbot's migrations run online only (`vfbot db upgrade`).")
_connection = context.config.attributes.get("connection")
if isinstance(_connection, Connection):
    _run(_connection)
else:
    asyncio.run(_run_standalone(os.environ.get("DATABASE_URL", "sqlite:///vfbot.db")))
