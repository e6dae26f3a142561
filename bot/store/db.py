"""Engine and session factory. SQLite (aiosqlite, WAL) by default; PostgreSQL (asyncpg) in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **kw: Any) -> AsyncEngine:
    """An async engine; for SQLite the file's folder is created and WAL + foreign keys switched on."""
    if is_sqlite(url):
        u = make_url(url)
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        if u.database and u.database != ":memory:":
            # SQLite has one writer anyway: one pooled connection makes waiting transactions queue in
            # order in the pool instead of sleeping in SQLite's busy handler (p99 under concurrency).
            kw.setdefault("pool_size", 1)
            kw.setdefault("max_overflow", 0)
            kw.setdefault("pool_timeout", 60)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kw)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # We issue BEGIN ourselves (below): the driver's implicit deferred BEGIN would let two
            # writers both read, then fail to upgrade to a write lock (SQLITE_BUSY) instead of waiting.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # One writer at a time, queued by busy_timeout: an update's read-modify-write is serialised.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 10)
    kw.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kw)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
