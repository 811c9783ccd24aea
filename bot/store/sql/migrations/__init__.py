"""Alembic migration scripts of the SQL store; run by ``bot.store.sql.schema``, never imported.

``versions/0001`` is the schema vfbot wrote at commit 61aa0d7 (the baseline); every later change
of ``bot.store.sql.tables`` is a new script here. Writing one: docs/operations.md, "Database".
"""

__all__: list[str] = []
