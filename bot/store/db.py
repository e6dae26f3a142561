"""Engine and session factory. SQLite (aiosqlite, WAL) by default; PostgreSQL (asyncpg) in production."""

from __future__ import annotations

import time
import weakref
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.fsperm import private_sqlite

_CHECKPOINTERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def wal_checkpointer(engine: AsyncEngine) -> Any:
    """The background WAL checkpointer of an on-loop SQLite engine (None for other engines)."""
    return _CHECKPOINTERS.get(engine.sync_engine)


_JIT_OFF: weakref.WeakSet[Any] = weakref.WeakSet()  # sync engines whose connections start with jit = off


def jit_off(engine: Any) -> bool:
    """Whether the engine's PostgreSQL connections start with the JIT off (`create_engine` on asyncpg)."""
    return getattr(engine, "sync_engine", engine) in _JIT_OFF


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, on_loop: bool = False, **kw: Any) -> AsyncEngine:
    """An async engine; for SQLite the file's folder is created and WAL + foreign keys switched on.

    `on_loop=True` runs a SQLite file's statements on the event-loop thread (`bot.store.sqlite_loop`):
    several times cheaper per statement, for short transactions like the bot's one-per-update. Without
    it (the default, for the scheduler's and exports' heavier queries) aiosqlite's worker thread runs them.

    Statement parameters are left out of error messages (`hide_parameters`): they carry notes, names and
    phone numbers, and errors are logged.
    """
    kw.setdefault("hide_parameters", True)
    if is_sqlite(url):
        u = make_url(url)
        if on_loop and u.database and u.database != ":memory:":
            from bot.store import sqlite_loop  # noqa: F401 - registers the sqlite+bangfu dialect

            u = u.set(drivername="sqlite+bangfu")
            url = u.render_as_string(hide_password=False)
        if u.database and u.database != ":memory:":
            # Owner-only (0600, folder 0700 when we create it) whatever the umask; -wal/-shm follow.
            private_sqlite(u.database)
            # SQLite has one writer anyway: one pooled connection makes waiting transactions queue in
            # order in the pool instead of sleeping in SQLite's busy handler (p99 under concurrency).
            kw.setdefault("pool_size", 1)
            # On the loop dialect the core keeps one connection for its updates (Core._update_connection);
            # anything else in the process (a report's own session, the outbox parking a message) borrows
            # one more and contends for the write lock through the asyncio busy wait.
            kw.setdefault("max_overflow", 4 if on_loop else 0)
            kw.setdefault("pool_timeout", 60)
        if u.drivername == "sqlite+bangfu":
            # Every transaction on it ends in an explicit COMMIT or ROLLBACK (the Session's or the
            # Connection's own), so the pool's extra rollback on each check-in only costs time.
            kw.setdefault("pool_reset_on_return", None)
        # The loop dialect has no C busy handler (it waits with asyncio.sleep); the threaded one waits 30 s.
        connect_args = {} if u.drivername == "sqlite+bangfu" else {"timeout": 30}
        engine = create_async_engine(url, connect_args=connect_args, **kw)
        busy_ms = 0 if u.drivername == "sqlite+bangfu" else 30000

        on_loop_file = u.drivername == "sqlite+bangfu" and bool(u.database) and u.database != ":memory:"
        checkpointer = None
        open_connections = [0]  # the engine's open connections: the checkpointer stops with the last
        if on_loop_file:
            from bot.store.sqlite_loop import WalCheckpointer

            checkpointer = WalCheckpointer(str(u.database))
            _CHECKPOINTERS[engine.sync_engine] = checkpointer

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # We issue BEGIN ourselves (below): the driver's implicit deferred BEGIN would let two
            # writers both read, then fail to upgrade to a write lock (SQLITE_BUSY) instead of waiting.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.execute("PRAGMA journal_size_limit=67108864")  # a reset WAL is truncated back to 64 MiB
            if checkpointer is not None:
                # Checkpoints (page copies + fsync) run in a thread, never inside a COMMIT on the loop.
                cur.execute("PRAGMA wal_autocheckpoint=0")
                open_connections[0] += 1
                checkpointer.start()
            cur.close()

        if checkpointer is not None:
            cp = checkpointer

            @event.listens_for(engine.sync_engine.pool, "close")
            def _stop_checkpoints(_dbapi_conn: Any, _record: Any) -> None:
                # The last connection of this engine closed (it was disposed): no more writes from here.
                open_connections[0] -= 1
                if open_connections[0] <= 0:
                    cp.stop()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # One writer at a time (queued by the busy wait): an update's read-modify-write is serialised.
            # Straight on the DBAPI cursor: this runs once per update, and SQLAlchemy's statement
            # machinery costs more than the BEGIN itself.
            cur = conn.connection.dbapi_connection.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except Exception as e:
                raise exc.OperationalError("BEGIN IMMEDIATE", None, e) from e
            finally:
                cur.close()

        return engine
    # A fixed pool, no overflow: an overflow connection is closed when it is given back, so under a steady
    # load above the pool size every update beyond it paid a new connection (TCP, SSL negotiation, auth,
    # asyncpg's type introspection, its statements prepared again) — measured with bench/e2e_bench.py's
    # --profile: ~100 connections opened and closed in a 15 s round. Updates beyond the pool wait for a
    # connection in order instead (an update holds one for a few milliseconds and never asks for a second).
    # A bot process passes its own size (`build_core`: Settings.pool_size, its updates in flight + 3); 20
    # is for the other processes (the scheduler alone, the web dashboard, the CLI).
    kw.setdefault("pool_size", 20)
    kw.setdefault("max_overflow", 0)
    ping_idle = kw.pop("ping_idle_s", PING_IDLE_S)
    kw.setdefault("pool_pre_ping", False)
    jit_off = False
    if make_url(url).drivername == "postgresql+asyncpg":
        # PostgreSQL's JIT spends longer compiling the reports' one-shot queries (/overdue, /week, the
        # scheduler's lists) than running them, and nothing here is long enough to gain from it: off for
        # the connection (in its startup message) instead of a SET LOCAL round trip per transaction that
        # runs one (bot/scheduler/due.py). A caller's own server_settings.jit wins.
        pg_args: dict[str, Any] = dict(kw.get("connect_args") or {})
        server: dict[str, str] = dict(pg_args.get("server_settings") or {})
        server.setdefault("jit", "off")
        jit_off = server["jit"] == "off"
        pg_args["server_settings"] = server
        kw["connect_args"] = pg_args
    engine = create_async_engine(url, **kw)
    if jit_off:
        _JIT_OFF.add(engine.sync_engine)
    if not kw["pool_pre_ping"]:
        _ping_when_idle(engine, ping_idle)
    return engine


#: a pooled PostgreSQL connection unused this long is pinged before it is handed out again
PING_IDLE_S = 30.0


def _ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Instead of SQLAlchemy's pre-ping on every check-out (three round trips with asyncpg: BEGIN, a ping,
    ROLLBACK — more than an update's own statements): a connection whose socket is closed (the server
    restarted, a proxy hung up) is replaced, and one idle for `idle_s` is pinged first. A connection in use
    moments ago is not asked again."""

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_conn, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise exc.DisconnectionError("connection closed")
        last = record.info.get("bangfu_checkin")
        if last is not None and time.monotonic() - last > idle_s:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except Exception as e:
                raise exc.DisconnectionError("ping failed") from e

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["bangfu_checkin"] = time.monotonic()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
