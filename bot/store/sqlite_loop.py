"""SQLite on the event-loop thread: an async SQLAlchemy dialect that calls `sqlite3` directly.

Why: a statement on a local SQLite file takes microseconds; handing each DBAPI call to aiosqlite's
worker thread (queue, thread wake-up, future, self-pipe to wake the loop) costs far more than the
statement itself — in `bench/core_bench.py` the hop was about three quarters of an update's CPU.
The bot's per-update transactions are a handful of indexed statements, so running them inline is both
faster and simpler.

What keeps the loop responsive:
- SQLite's C busy handler is off (`timeout=0`). When another connection holds the write lock (another
  process such as `bangfu scheduler`, or the scheduler's threaded engine in `bangfu run`), a statement
  fails with SQLITE_BUSY at once and is retried after an *asyncio* sleep, so the loop serves other users
  meanwhile instead of sleeping inside SQLite.
- Within one process, transactions queue for the single pooled connection in asyncio (pool_size=1).
- Heavy read queries (the scheduler's set-based computations, a county-wide export) belong on the
  threaded aiosqlite engine: `bot.store.db.create_engine(url)` without `on_loop`.

SQLAlchemy's own asyncio adapter classes drive a plain sqlite3 connection and cursor, as they drive
aiosqlite's; only the thread (and the per-call trips to the loop) is gone.
Use it through `bot.store.db.create_engine(url, on_loop=True)` or the URL `sqlite+bangfu:///path`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import pool
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection, AsyncAdapt_dbapi_cursor
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi, SQLiteDialect_aiosqlite
from sqlalchemy.engine import URL
from sqlalchemy.util.concurrency import await_

log = logging.getLogger(__name__)

#: how long a statement keeps retrying SQLITE_BUSY before giving up (what the threaded engine waits)
BUSY_DEADLINE = 30.0
_FIRST_WAIT = 0.001
_MAX_WAIT = 0.05

T = TypeVar("T")


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock; nothing was done."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc)


async def retry_busy(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args); on SQLITE_BUSY wait (1 ms doubling to 50 ms, in asyncio) and retry until BUSY_DEADLINE.

    A statement that fails with SQLITE_BUSY has had no effect, and inside an explicit transaction the
    transaction stays open, so retrying the same statement is what SQLite's documentation prescribes.
    """
    wait, deadline = _FIRST_WAIT, 0.0
    while True:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            now = time.monotonic()
            deadline = deadline or now + BUSY_DEADLINE
            if now >= deadline:
                raise
            await asyncio.sleep(wait)
            wait = min(wait * 2, _MAX_WAIT)


async def _nothing() -> None:
    return None


def _run(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) at once; only on SQLITE_BUSY does the greenlet go to the loop, to wait in asyncio.
    Otherwise one no-op await: SQLAlchemy's AsyncConnection.execute checks that the driver awaited."""
    try:
        result = fn(*args)
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        return await_(retry_busy(fn, *args))
    await_(_nothing())
    return result


class LoopAdaptedCursor(AsyncAdapt_dbapi_cursor):
    """SQLAlchemy's asyncio cursor adapter over a plain sqlite3 cursor, run synchronously.

    The stock adapter wraps every call in a coroutine, an asyncio.Lock and a greenlet round trip to the
    loop, and expects an aiosqlite cursor; here the sqlite3 cursor itself is the driver's cursor, each
    statement simply runs, and only SQLITE_BUSY goes to the loop (see `_run`).
    """

    __slots__ = ()
    _cursor: sqlite3.Cursor  # type: ignore[assignment]
    _awaitable_cursor_close = False  # sqlite3's close() runs at once, no trip to the loop

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor  # a sqlite3 cursor: nothing to enter

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        cur = self._cursor
        try:
            _run(cur.execute, operation, () if parameters is None else parameters)
            if cur.description:
                self._rows = collections.deque(cur.fetchall())
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return None

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        seq = seq_of_parameters if isinstance(seq_of_parameters, list | tuple) else list(seq_of_parameters)
        try:
            _run(self._cursor.executemany, operation, seq)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return None


class LoopAdaptedConnection(AsyncAdapt_dbapi_connection):
    """What SQLAlchemy's pool holds: its stock asyncio adapter around a plain sqlite3 connection (the
    driver connection), with sqlite3's connection-level API."""

    __slots__ = ()
    _connection: sqlite3.Connection  # type: ignore[assignment]
    _cursor_cls = LoopAdaptedCursor

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value  # type: ignore[assignment]

    def create_function(self, *args: Any, **kw: Any) -> None:
        self._connection.create_function(*args, **kw)

    def rollback(self) -> None:
        try:
            self._connection.rollback()
        except Exception as error:
            self._handle_exception(error)

    def commit(self) -> None:
        try:
            _run(self._connection.commit)
        except Exception as error:
            self._handle_exception(error)

    def close(self) -> None:
        self._connection.close()


class LoopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI "module" of the dialect: sqlite3's exceptions and constants, LoopAdaptedConnections."""

    def __init__(self) -> None:
        super().__init__(sqlite3, sqlite3)

    def connect(self, *args: Any, **kw: Any) -> LoopAdaptedConnection:  # type: ignore[override]
        kw.pop("async_creator_fn", None)
        return LoopAdaptedConnection(self, sqlite3.connect(*args, **kw))


class SQLiteDialect_loop(SQLiteDialect_aiosqlite):
    """The aiosqlite dialect with the worker thread taken out: `sqlite+bangfu:///path`."""

    driver = "bangfu"
    supports_statement_cache = True
    supports_server_side_cursors = False
    has_terminate = False

    @classmethod
    def import_dbapi(cls) -> LoopDBAPI:
        return LoopDBAPI()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.has_terminate = False

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool if cls._is_url_file_db(url) else pool.StaticPool

    def create_connect_args(self, url: URL) -> Any:
        args, kw = super().create_connect_args(url)
        kw["timeout"] = 0  # no C busy handler: BUSY comes back at once and is retried with an asyncio sleep
        return args, kw

    def retrieve_dbapi_version(self, dbapi: Any) -> Any:
        from sqlalchemy import util

        return util.parse_version_string(sqlite3.sqlite_version)


registry.register("sqlite.bangfu", __name__, "SQLiteDialect_loop")



class WalCheckpointer:
    """Checkpoints a SQLite file's WAL from a background thread.

    With statements on the event loop, SQLite's automatic checkpoint would run inside a COMMIT on the loop:
    copying up to a thousand pages back into the database file and fsyncing it, a stall of tens of
    milliseconds for every user at once, every few hundred updates. The loop's connection therefore turns
    automatic checkpoints off and this thread checkpoints on its own connection every `interval` seconds:
    first PASSIVE (copies what it can while writers go on; never waits), then, once the WAL holds more than
    `restart_frames`, RESTART, which holds new writers back only for the short rest and lets the next
    writer start the WAL file over (a busy writer would otherwise never let it reset, and it would grow
    without end). A writer held back waits in asyncio (see retry_busy), so the loop itself never stops.
    """

    def __init__(self, path: str, interval: float = 1.0, restart_frames: int = 1000) -> None:
        self.path = path
        self.interval = interval
        self.restart_frames = restart_frames  # SQLite's own auto-checkpoint threshold (about 4 MiB)
        self.checkpoints = 0  # completed checkpoint calls (for tests and logs)
        self.frames = 0  # WAL frames copied back into the database file so far
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def checkpoint(self, con: sqlite3.Connection) -> None:
        _busy, frames, done = con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= self.restart_frames:
            busy, frames, done = con.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            if busy:
                log.debug("WAL restart of %s postponed: a reader or writer held on", self.path)
        self.checkpoints += 1
        self.frames += max(int(done), 0)

    def _run(self) -> None:
        con: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.interval):
                try:
                    # This thread may wait for the lock (up to 1 s); the loop never does.
                    con = con or sqlite3.connect(self.path, timeout=1.0, isolation_level=None)
                    self.checkpoint(con)
                except sqlite3.Error:
                    log.warning("WAL checkpoint of %s failed; retrying in %ss", self.path, self.interval,
                                exc_info=True)
            if con is not None:  # a last one on the way out, so a clean shutdown leaves a small WAL
                with contextlib.suppress(sqlite3.Error):
                    self.checkpoint(con)
        finally:
            if con is not None:
                con.close()


__all__ = [
    "BUSY_DEADLINE",
    "LoopAdaptedConnection",
    "SQLiteDialect_loop",
    "WalCheckpointer",
    "is_busy",
    "retry_busy",
]
