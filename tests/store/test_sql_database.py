"""Database lifecycle, URL normalisation, units of work and datetime handling on both engines."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from bot.store import RequestState
from bot.store.sql import Database, normalize_database_url
from tests.store.conftest import NOW
from tests.store.helpers import add_request


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("POSTGRESQL://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///var/vfbot.db", "sqlite+aiosqlite:///var/vfbot.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_normalize_database_url(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u:secret@h/db", "postgresql+psycopg2://u@h/db", "x.db"])
def test_normalize_database_url_rejects_other_schemes(url: str) -> None:
    with pytest.raises(ValueError) as info:
        normalize_database_url(url)
    assert "secret" not in str(info.value)


def test_schema_is_validated() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        Database("sqlite:///x.db", schema="s")
    with pytest.raises(ValueError, match="identifier"):
        Database("postgresql://u@h/db", schema='x"; DROP TABLE y; --')


def test_uow_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        Database("sqlite:///x.db").uow()


async def test_ping_and_idempotent_start_stop(db: Database) -> None:
    await db.start()  # second start is a no-op
    assert await db.ping() is True
    await db.stop()
    assert await db.ping() is False
    await db.stop()


async def test_start_fails_cleanly_when_unreachable() -> None:
    # A port that was free a moment ago: connecting is refused, no fixed port is assumed.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    database = Database(f"postgresql://postgres@127.0.0.1:{port}/test")
    with pytest.raises(OSError):
        await database.start()
    assert await database.ping() is False
    with pytest.raises(RuntimeError):
        database.uow()


async def test_leaving_without_commit_rolls_back(db: Database) -> None:
    async with db.uow() as uow:
        await uow.requests.add_or_get(
            key="cli:gone",
            requester="U1",
            source="cli",
            project_name="p",
            payload={},
            plan=None,
            state=RequestState.PENDING_APPROVAL,
            now=NOW,
        )
        await uow.audit.add(at=NOW, actor="U1", action="submit", target="x", result="ok")
    async with db.uow() as uow:
        assert await uow.requests.get_by_key("cli:gone") is None
        assert await uow.audit.list_recent() == []


async def test_explicit_rollback_then_commit(db: Database) -> None:
    async with db.uow() as uow:
        await uow.audit.add(at=NOW, actor="a", action="x", target="t", result="ok")
        await uow.rollback()
        await uow.audit.add(at=NOW, actor="b", action="x", target="t", result="ok")
        await uow.commit()
    async with db.uow() as uow:
        assert [a.actor for a in await uow.audit.list_recent()] == ["b"]


async def test_exception_in_block_rolls_back(db: Database) -> None:
    with pytest.raises(KeyError):
        async with db.uow() as uow:
            await uow.audit.add(at=NOW, actor="a", action="x", target="t", result="ok")
            raise KeyError("boom")
    async with db.uow() as uow:
        assert await uow.audit.list_recent() == []


async def test_aware_datetimes_round_trip(db: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2025, 6, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    record = await add_request(db, now=local, expires_at=local + timedelta(hours=1))
    async with db.uow() as uow:
        loaded = await uow.requests.get(record.id)
    assert loaded is not None
    for value in (loaded.created_at, loaded.updated_at, loaded.expires_at):
        assert value is not None
        assert value.tzinfo is UTC
    assert loaded.created_at == local
    assert loaded.created_at.hour == 12
    assert loaded.expires_at == local + timedelta(hours=1)


async def test_naive_datetime_is_rejected(db: Database) -> None:
    async with db.uow() as uow:
        with pytest.raises(StatementError) as info:
            await uow.audit.add(
                at=datetime(2025, 1, 1), actor="a", action="x", target="t", result="ok"
            )
    assert isinstance(info.value.orig, ValueError)
