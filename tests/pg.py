"""The PostgreSQL the tests use, in one place: its URL, whether it is up, admin SQL, and the rule that
a run which requires PostgreSQL (CI sets BANGFU_TEST_REQUIRE_POSTGRES) fails instead of skipping."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("BANGFU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _reachable() -> bool:
    u = make_url(PG_URL)
    try:
        with socket.create_connection((u.host or "127.0.0.1", u.port or 5432), timeout=1):
            return True
    except OSError:
        return False


PG_AVAILABLE = _reachable()


def require_pg() -> None:
    """Skip a PostgreSQL test when the server is down, or fail when this run requires PostgreSQL."""
    if PG_AVAILABLE:
        return
    if os.environ.get("BANGFU_TEST_REQUIRE_POSTGRES"):
        pytest.fail(f"PostgreSQL required (BANGFU_TEST_REQUIRE_POSTGRES) but {PG_URL} is not reachable")
    pytest.skip("PostgreSQL not reachable")


def database_url(name: str) -> str:
    """PG_URL pointed at another database on the same server."""
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def pg_execute(sql: str, url: str = PG_URL, fetch: bool = False) -> list[Any]:
    """Run one SQL statement (CREATE DATABASE, TRUNCATE, a query) over a direct asyncpg connection."""
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres", database=u.database
    )
    try:
        if fetch:
            return list(await conn.fetch(sql))
        await conn.execute(sql)
        return []
    finally:
        await conn.close()


async def truncate_all(url: str) -> None:
    """Empty every table (ids restart), keeping the migrated schema: much faster than a new database."""
    rows = await pg_execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'",
        url,
        fetch=True,
    )
    if rows:
        names = ", ".join(f'"{r["tablename"]}"' for r in rows)
        await pg_execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE", url)


async def advisory_locks(url: str) -> int:
    """Advisory locks held in this database (other databases on the server are others' business)."""
    sql = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    rows = await pg_execute(sql, url, fetch=True)
    return int(rows[0][0])


class Trips:
    """Round trips to PostgreSQL: every request is one write on its socket (asyncpg sends a statement's
    messages with their Sync in one buffer and waits for the answer before the next; BEGIN and COMMIT
    included), as bench/core_bench.py counts them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        cls = asyncio.selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
        plain = cls.write

        def write(transport: Any, data: Any) -> None:
            self.n += 1
            plain(transport, data)

        monkeypatch.setattr(cls, "write", write)
