"""The PostgreSQL hot path of an update: two round trips straight on the asyncpg connection.

On PostgreSQL every statement is a round trip (on this kind of machine mostly the cost of the send that
wakes the server, ~100 µs of this process's CPU), and SQLAlchemy's machinery around one (execution context,
the asyncpg adapter, a greenlet switch) costs more Python time than asyncpg itself. An update therefore runs
its fixed statements on the pooled connection's asyncpg connection, each a prepared statement from asyncpg's
own statement cache, and an update whose handler runs nothing through the session costs two round trips,
each its own transaction (autocommit: no BEGIN, no COMMIT); a handler's plain read through the session adds
one round trip, still with no BEGIN or COMMIT:

1. `open`: ``SELECT ... FROM bangfu_open(...)``, a PL/pgSQL function (migration ``hot_0001``). Inside it:
   the user's *session-level* advisory lock (``pg_advisory_lock(USER_LOCK_NS, user_lock_key(...))``: one
   user's updates take turns across worker processes); then the transaction-level advisory lock
   ``(USER_LOCK_NS + 1, key)``, "the commit lock" (see "why it is correct"); then the update id checked
   (handled before: the lock let go, state 0), the message budgets counted (over one: the update id
   recorded, the lock let go, state 2);
   then a first-time account inserted (``ON CONFLICT DO NOTHING``; the lock makes a second first contact
   of the same user wait, and it finds the row); then account + person + active dialog returned, as
   columns `Entity.detached` reads (the columns named by the caller from the catalog, so the function need
   not change with the tables).
2. The handler. The update has no session until a handler uses `Ctx.session` (`PgUpdate.open_session`: an
   AsyncSession bound to a SQLAlchemy Connection over the update's own pooled connection, the speaker's rows
   put in it as persistent); the connection was checked out straight from the engine's pool
   (``engine.raw_connection()``: a session, its checkout through SQLAlchemy's Connection and its close
   cost ~4× the checkout, measured, for updates that mostly never use them). `Ctx.remember` and
   `Ctx.add_row` leave their writes to the finish statement without one. Through the session a handler
   runs as usual, except that its plain reads (`plain_read`: a SELECT that locks and changes nothing) run
   outside any transaction (`PgUpdate.reads_first`, set on the connection's adapter for the handler whether
   or not a session is made): each reads a snapshot of its own, as it would in the transaction under READ
   COMMITTED, without a BEGIN and a COMMIT around it. Its first other statement (a flush, SELECT ... FOR
   UPDATE, an advisory lock, a server-side cursor) makes SQLAlchemy's asyncpg adapter BEGIN before it
   (`guard_reads`), so the update's writes and the finish statement are one transaction. The adapter's own
   setting is back (`leave_reads`) before the finish statement and on every way the connection goes back
   to the pool (`PgUpdate.close`, `PgUpdate.release`). Rows added with `Ctx.add_row` before such a
   statement are written first, in that transaction (`_RowsFirst`, armed for the update's `Later` only while
   that update runs).
3. `finish`: one statement — the active dialog's row (updated; inserted when the update started the dialog,
   deleted when it finished or cancelled it: both only with a session, which `Core.start_dialog` uses), the
   speaker's account columns the update changed (`ACCOUNT_COLUMNS`: a new chat id, /lang's language and menu
   scope, with the memo; no session needed for them), the update's outbox rows (unnest of arrays: one
   prepared statement whatever the number of rows), the sent marks (`bangfu_sent`, migration ``hot_0002``: found
   by their dedup key whatever plan the session cached; called only with keys), what handlers left for it (`Later`:
   rows, the account's memo), the update id (a plain INSERT, recorded atomically with the outbox rows: a
   worker that recorded it meanwhile makes this statement fail and nothing of this update is kept), a CTE
   taking the commit lock (``pg_advisory_xact_lock``: held to the end of this transaction) and a CTE
   calling ``pg_advisory_unlock`` over that CTE's row (the data dependency makes the commit lock come
   first). Autocommit when no transaction was begun; else inside it, then COMMIT (straight on the connection
   when the session has nothing to flush, else the session's flush and commit). A session with something to
   flush but no transaction yet gets a BEGIN first, so its writes and this statement are one transaction
   (a session whose changes set values to what they were begins none); the speaker's rows changed beyond
   what this statement writes with no session made (the person row, an account column outside
   `ACCOUNT_COLUMNS`) make one at the end for that.

Why it is correct. Under READ COMMITTED each statement reads a snapshot taken when *it* starts, and within a
VOLATILE PL/pgSQL function each statement takes a fresh one: so the function's reads, which come after the lock
and the commit lock were granted, see what was committed by then (a single statement that waited for the lock
and read would read from before the wait: the dialog step the previous update replaced). The finish statement
lets the user's lock go *before* its transaction commits, but only after taking the commit lock, which is held
to the end of that transaction. The next update of the user gets the user's lock at once and then waits for the
commit lock until that transaction has ended; PostgreSQL marks a transaction committed (visible to new
snapshots) before it releases its locks, so the next update's following statements see all of it (and if it
rolled back, none of it). Advisory locks, unlike a row lock, write nothing: the open function of an update that
counts no budget and creates no account writes no WAL at all. A first contact's account row is committed by the
open function itself, before any later update could wait for it. Over the budget, the function holds the commit
lock until it commits, having let the user's lock go. Tested in tests/test_core_order.py (a COMMIT held back
after the lock was let go; without the open function's wait for the commit lock, the test fails).

The open function commits asynchronously (``synchronous_commit`` off for its own transaction: one WAL flush
per update, as before, not two): the finish statement commits synchronously after it, which flushes the WAL
up to its own commit record and so the open's too; a crash in between loses at most a count and a
first-time account of an update that was not recorded as handled (handled again when redelivered), or
the record of an update over the budget (counted again when redelivered).

A session-level lock survives a rollback and the connection's return to the pool, so every way out lets it
go: the finish statement; on a handler's exception or a failed finish, ROLLBACK then
``pg_advisory_unlock_all()`` (`PgUpdate.release`); when the update was cancelled or that fails, the
connection is closed (a closed session's locks end) and dropped from the pool. The connection carries a mark
(`HELD`, in the pool record's info) while it may hold the lock, and the pool refuses to take back a marked
connection: it is closed instead (`guard_pool`).

Session locks need one PostgreSQL session per pooled connection for its lifetime: the bot connects to
PostgreSQL directly or through a pooler in session mode (a pooler in transaction mode would run the open and
the finish statements on different server sessions; the finish statement logs an error when the lock it lets
go was not its session's).

A villager's question thus costs two round trips, plus one every `ID_BLOCK` questions per process for a
block of question ids (`PgHotPath.next_id`), and three per process for the catalog (`PgHotPath._describe`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Table, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, class_mapper
from sqlalchemy.orm.base import PassiveFlag, instance_state
from sqlalchemy.util import greenlet_spawn

from bot.core.rows import RowLog, memo_json
from bot.store.enums import OutboxStatus
from bot.store.models import Account, DialogState, Outbox, Person, ProcessedUpdate

logger = logging.getLogger(__name__)

#: advisory-lock class id of "one user's updates" (the two-key form: a key space apart from the
#: single-bigint locks elsewhere, e.g. the SMS sender's per-number lock)
USER_LOCK_NS = 0x42460001


def user_lock_key(channel: str, external_id: str) -> int:
    """A stable 32-bit key per chat account: the same in every worker process. Two accounts sharing a key
    only take turns with each other."""
    key = zlib.crc32(f"{channel}\x00{external_id}".encode())
    return key - (1 << 32) if key >= 1 << 31 else key  # int4


def user_lock_sql(channel: str, external_id: str) -> str:
    """The statement that takes the user's lock until the transaction ends (only integers in it)."""
    return f"SELECT pg_advisory_xact_lock({USER_LOCK_NS:d}, {user_lock_key(channel, external_id):d})"


#: the speaker's account columns an update may change that the finish statement writes (with the memo),
#: in the order of its bits 2, 4, 8
ACCOUNT_COLUMNS = ("language", "commands_scope", "chat_id")


#: question ids (any `RowLog`'s) taken from the table's sequence at a time, per process
ID_BLOCK = 32


#: the pool record's info key (`ConnectionPoolEntry.info`) set while the connection may hold a user's lock:
#: a connection given back to the pool with it set is closed (`guard_pool`), never handed out again
HELD = "bangfu.user_lock"


def guard_pool(pool: Any) -> None:
    """A connection must never go back to the pool holding a user's session lock (every later update of that
    user, on any worker, would wait forever): the pool's reset of a connection still marked `HELD` fails, and
    SQLAlchemy then closes the connection (closing a session ends its locks). The update's own error path
    (`PgUpdate.release`) lets the lock go first; this is the guard behind it. Installed once per pool."""
    if not event.contains(pool, "reset", _refuse_held):
        event.listen(pool, "reset", _refuse_held)


def _refuse_held(_dbapi_conn: Any, record: Any, _state: Any = None) -> None:
    if record is not None and record.info.pop(HELD, False):
        raise RuntimeError("a connection still holding a user's advisory lock was given back: closed instead")


#: what no plain read contains (upper-cased): a SELECT with one of these locks or changes something that
#: must last to the update's commit, so it runs in the update's transaction
_NOT_READS = ("FOR UPDATE", "FOR SHARE", "FOR NO KEY", "FOR KEY SHARE", "ADVISORY", "NEXTVAL", "SETVAL", "SET_CONFIG")


def plain_read(sql: str) -> bool:
    """Whether a statement only reads (a SELECT that locks nothing and changes nothing): it may run outside
    the update's transaction, in a snapshot of its own as it would inside it (READ COMMITTED)."""
    return sql[:6].upper() == "SELECT" and not any(w in sql.upper() for w in _NOT_READS)


def guard_reads(engine: Any) -> None:
    """Reads first, outside the transaction (`PgUpdate.reads_first`): the first statement through SQLAlchemy
    that is not a plain read (a flush's INSERT, a SELECT ... FOR UPDATE, an advisory lock) ends that mode,
    so SQLAlchemy's asyncpg adapter BEGINs before it as usual. Installed once per engine."""
    if not event.contains(engine, "before_cursor_execute", _writes_begin):
        event.listen(engine, "before_cursor_execute", _writes_begin)


def _writes_begin(_conn: Any, cursor: Any, statement: str, _params: Any, context: Any, *_: Any) -> None:
    adapted = getattr(cursor, "_adapt_connection", None)
    if adapted is not None and adapted.isolation_level == _READS and (
        not plain_read(statement)
        # a server-side cursor (stream_results) lives in a transaction
        or (context is not None and context.execution_options.get("stream_results"))
    ):
        leave_reads(adapted)


#: the adapter's isolation level while an update's reads run outside a transaction: its "autocommit", so it
#: sends no BEGIN (its own setting, never "autocommit" on the bot's engine, is put back by `leave_reads`)
_READS = "autocommit"


def leave_reads(adapted: Any) -> None:
    """The adapter back to its own setting: its next statement (or `PgUpdate.begin`) BEGINs."""
    if adapted.isolation_level == _READS and adapted._isolation_setting != _READS:
        adapted.isolation_level = adapted._isolation_setting


class PgUpdate:
    """One update's hold on its pooled connection: the pool's connection (checked out straight from the engine,
    no SQLAlchemy Connection or session), its asyncpg adapter and connection, what the finish statement needs
    to record the update and let the user's lock go, the update's `Later`, and the update's session once a
    handler asks for one (`open_session`; most updates never do)."""

    __slots__ = (
        "_engine",
        "_sessions",
        "adapted",
        "conn",
        "dedup",
        "fairy",
        "info",
        "key",
        "later",
        "loaded",
        "raw",
        "session",
    )

    def __init__(
        self, fairy: Any, hot: PgHotPath, key: int, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self.fairy: Any = fairy  # the pool's connection (None once given back)
        self.adapted = fairy.dbapi_connection  # SQLAlchemy's asyncpg adapter
        self.raw = self.adapted.driver_connection  # the asyncpg connection
        self.info: dict[str, Any] = fairy.info  # the pool record's: `HELD` lives there
        self.key = key
        self.dedup: tuple[str, str, str, datetime] | None = None
        self.later = Later(hot, self.raw, self.adapted)
        #: the speaker's rows the open statement loaded (detached until the session exists, then in it)
        self.loaded: tuple[Any, ...] = ()
        self.conn: AsyncConnection | None = None  # the session's Connection over `fairy` (with the session)
        self.session: AsyncSession | None = None
        self._engine = engine
        self._sessions = sessions

    def open_session(self) -> AsyncSession:
        """The update's session, made on first use (`Ctx.session`): bound to this update's connection (a
        SQLAlchemy Connection over the same pooled connection, so its statements run in the update's
        transaction, under the user's lock), with the speaker's rows loaded by the open statement put in it
        as persistent, changes made to them so far included (the flush writes them)."""
        session = self.session
        if session is None:
            if self.fairy is None:
                raise RuntimeError("the update is over: no session for it")
            sync = Connection(self._engine.sync_engine, connection=self.fairy)
            self.conn = AsyncConnection(self._engine, sync)
            session = self.session = self._sessions(bind=self.conn)
            attach(session.sync_session, self.loaded)
        return session

    async def close(self, commit: bool = False) -> None:
        """The update's end: the session (if any) committed when `commit`, then closed — rolling back whatever it
        left uncommitted — and the connection given back to the pool (the pool's guard closes it should it still
        be marked `HELD`), in one greenlet. The adapter's own isolation setting is back first (`leave_reads`):
        never a connection in the pool left reading outside transactions. Idempotent; a commit that fails leaves
        it all to the next call."""
        leave_reads(self.adapted)
        session, conn = self.session, self.conn
        if session is not None and conn is not None:
            await greenlet_spawn(_end, session.sync_session, conn.sync_connection, commit)
            self.session = self.conn = self.fairy = None
            return
        fairy, self.fairy = self.fairy, None
        if fairy is not None and fairy.dbapi_connection is not None:
            if self.adapted._transaction is None:
                fairy.close()  # no IO to do: no greenlet
            else:  # pragma: no cover - every path ends its transaction first; the pool's rollback needs IO
                await greenlet_spawn(fairy.close)

    @property
    def held(self) -> bool:
        return bool(self.info.get(HELD))

    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection (the session's statements began one)."""
        return self.adapted._transaction is not None

    def reads_first(self) -> None:
        """Until the handler's first statement that is not a plain read (`plain_read`), SQLAlchemy's statements
        run outside a transaction: no BEGIN, no COMMIT, two round trips fewer for a handler that only reads.
        Its writes still go in one transaction with the finish statement (`guard_reads` BEGINs before the first
        of them; a flush left for the end is begun by `begin`). Set on the adapter whether or not the update
        makes a session (`open_session`). The connection's own setting is back with `leave_reads`: at the
        finish, and on every way the connection goes back (`close`, `release`; the update's end calls it
        first, before anything it awaits)."""
        a = self.adapted
        if a._transaction is None and a.isolation_level == a._isolation_setting != _READS:
            a.isolation_level = _READS

    def leave_reads(self) -> None:
        leave_reads(self.adapted)

    async def begin(self) -> None:
        """BEGIN the transaction the session's commit ends, as the adapter would before its first statement."""
        leave_reads(self.adapted)
        if self.adapted._transaction is None:
            await self.adapted._start_transaction()

    async def commit(self) -> None:
        """COMMIT straight on the connection (no SQLAlchemy commit machinery), then tell the adapter the
        transaction is over (as its own commit does), so the session's close and the pool's reset send
        nothing more."""
        tx = self.adapted._transaction
        if tx is not None:
            await self.adapted._call_and_discard(tx.commit)

    async def release(self, error: BaseException | None) -> None:
        """After a failed or cancelled update that may still hold the user's lock: roll back, let every lock
        of this session go, in that order. When that cannot be done (the update was cancelled in the middle of
        a statement, the connection broke, or anything fails here) the connection is closed instead: the
        server ends a closed session's locks. Either way the connection never goes back to the pool holding
        the lock (and the pool's guard would close it if it did). The adapter's own isolation setting is back
        first (`leave_reads`), for the rollback and whatever uses the connection next."""
        leave_reads(self.adapted)
        self.later.close()
        try:
            if isinstance(error, asyncio.CancelledError) or self.raw.is_closed():
                raise ConnectionAbortedError("the connection is in an unknown state")
            tx = self.adapted._transaction
            if tx is not None:
                await self.adapted._call_and_discard(tx.rollback)
            await self.raw.execute("SELECT pg_advisory_unlock_all()")
            self.info.pop(HELD, None)
        except BaseException:
            self.raw.terminate()  # at once: no cancel request, no waiting for the server
            self.adapted._transaction = None
            self.info.pop(HELD, None)
            try:  # the pool forgets the connection
                if self.conn is not None:
                    await self.conn.invalidate()
                elif self.fairy is not None and self.fairy.dbapi_connection is not None:
                    self.fairy.invalidate()  # terminated already: no IO (and so no greenlet) needed
            except Exception:  # pragma: no cover - terminated already; the pool replaces it anyway
                logger.warning("invalidating a terminated connection failed", exc_info=True)


def _end(session: Session, conn: Connection | None, commit: bool) -> None:
    if commit:
        session.commit()
    session.close()
    if conn is not None:
        conn.close()  # gives the pooled connection back (nothing, if it was invalidated)


class Later:
    """What handlers left for the update's finish statement on PostgreSQL: rows added with `Ctx.add_row`
    (ids already allocated) and the account's memo changed with `Ctx.remember` (`Ctx.later`: no session needed). `live` while its update runs: a statement of a later update never writes these."""

    __slots__ = ("adapted", "armed", "conn", "hot", "live", "memo", "rows")

    def __init__(self, hot: PgHotPath, conn: Any, adapted: Any) -> None:
        self.hot = hot
        self.conn = conn
        self.adapted = adapted
        self.rows: dict[RowLog, list[list[Any]]] = {}
        self.memo: tuple[int, dict[str, Any] | None] | None = None  # (account id, memo) to write
        self.armed: _RowsFirst | None = None
        self.live = True

    async def add(self, log: RowLog, values: list[Any]) -> int:
        """Keep a row for the finish statement; its id now, from this process's block."""
        row_id = await self.hot.next_id(self.conn, log)
        self.rows.setdefault(log, []).append([row_id, *values])
        if self.armed is None and self.live:
            self.armed = _RowsFirst(self.adapted, self)
        return row_id

    def taken(self) -> None:
        """The rows were written: nothing for a later statement to write first."""
        if self.armed is not None:
            self.armed.disarm()
            self.armed = None

    def close(self) -> None:
        """The update is over (done or failed): whatever is left here is never written."""
        self.live = False
        self.taken()


class _RowsFirst:
    """Stands in for the statement mutex of SQLAlchemy's asyncpg adapter (`_execute_mutex`, entered by every
    statement SQLAlchemy runs on the connection) while an update has rows waiting for its finish statement
    (`Later.add`): the first such statement begins the update's transaction (the adapter would, right after
    the mutex) and writes them before it runs — a case referring to a question by its foreign key, a query
    that should see the row — and the real mutex is back from then on.

    Why not an engine event (before_cursor_execute): chosen when the engine had none, SQLAlchemy then
    dispatching events around every statement of every update (~8 µs each, measured). `guard_reads` now
    listens there, so that dispatch is paid anyway; whether this would be cheaper there was not measured (it
    would have to write the rows from a sync event). The update removes it when it ends (`Later.close`); should one be left behind anyway, it writes nothing once its update is over."""

    __slots__ = ("_adapted", "_later", "_lock")

    def __init__(self, adapted: Any, later: Later) -> None:
        lock = adapted._execute_mutex
        self._lock: Any = lock._lock if isinstance(lock, _RowsFirst) else lock
        self._adapted = adapted
        self._later = later
        adapted._execute_mutex = self

    def disarm(self) -> None:
        if self._adapted._execute_mutex is self:
            self._adapted._execute_mutex = self._lock

    async def __aenter__(self) -> None:
        self.disarm()
        await self._lock.acquire()
        later = self._later
        if later.armed is self:
            later.armed = None
        try:
            if later.live and later.rows:
                leave_reads(self._adapted)  # the rows and what follows: in the update's transaction
                if self._adapted._transaction is None:
                    await self._adapted._start_transaction()
                rows, later.rows = later.rows, {}
                await later.hot.write(later.conn, None, (), [], None, rows=rows)
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class Entity:
    """Columns of one mapped class as selected by the open statement, and how a row becomes an instance of
    it (detached, then persistent in the update's session if one is made: `attach`), its attribute history clean, as if
    the ORM had loaded it."""

    def __init__(self, cls: type[Any], alias: str, quote: Any, dialect: Any) -> None:
        mapper = class_mapper(cls)
        if mapper.class_manager.dispatch.load or mapper.class_manager.dispatch.refresh:
            raise RuntimeError(f"{cls.__name__} has ORM load events: the hot paths' loader does not fire them")
        if len(mapper.primary_key) != 1:
            raise RuntimeError(f"{cls.__name__}: one primary key column expected")
        self.cls = mapper.class_
        self.new = mapper.class_manager.new_instance
        self.keys: list[str] = []
        self.names: list[str] = []  # the columns' names, in `keys` order
        cols: list[str] = []
        # What SQLAlchemy would do to a value read from asyncpg (the UTC timestamp type's conversion; JSON
        # arrives decoded by the dialect's codec), so an instance holds what an ORM load would have given.
        self.processors: list[tuple[int, Any]] = []
        for i, prop in enumerate(mapper.column_attrs):
            col = prop.columns[0]
            self.keys.append(prop.key)
            cols.append(f"{alias}.{quote(col.name)}")
            self.names.append(col.name)
            proc = col.type.dialect_impl(dialect).result_processor(dialect, None)
            if proc is not None:
                self.processors.append((i, proc))
        self.select = ", ".join(cols)
        pk = mapper.primary_key[0]
        self.pk = self.keys.index(mapper.get_property_by_column(pk).key)
        self.width = len(self.keys)

    def load(self, session: Session, row: Any, start: int) -> Any:
        """The instance of the row's columns from `start`, persistent in `session`; None when the row has none."""
        obj = self.detached(row, start)
        if obj is None:
            return None
        state = instance_state(obj)
        key = state.key
        assert key is not None
        identity_map = session.identity_map
        if key in identity_map:  # as Session.add would: one instance per row in a session
            raise InvalidRequestError(f"{self.cls.__name__} {key[1]} is already in this session")
        state.session_id = session.hash_key
        identity_map._add_unpresent(state, key)
        return obj

    def detached(self, row: Any, start: int) -> Any:
        """The instance of the row's columns from `start`, detached (as if loaded by a session since closed:
        its identity key set, its history clean, attribute changes tracked); None when the row has none.
        `attach` puts it in a session."""
        if row[start + self.pk] is None:
            return None
        values = list(row[start : start + self.width])
        for i, proc in self.processors:
            values[i] = proc(values[i])
        # As the ORM's loader does (sqlalchemy.orm.loading `_instance`): the instance's state without
        # __init__, the columns straight into its __dict__ (no attribute events: loaded values, not changes,
        # so its history is clean), its identity key set (and, in `load`, its session set and the state put in
        # the identity map). make_transient_to_detached + Session.add (save-update cascade, attach events)
        # cost ~35 µs more per instance.
        obj = self.new()
        obj.__dict__.update(zip(self.keys, values, strict=True))
        state = instance_state(obj)
        state.key, state.identity_token = (self.cls, (values[self.pk],), None), None
        return obj


def attach(session: Session, objs: Sequence[Any]) -> None:
    """Put instances `Entity.load` made into `session` as persistent, with the changes made to them since (the
    flush writes them) — as Session.add of a detached instance would, without its cascade and attach events
    (make_transient_to_detached + Session.add cost ~35 µs more per instance, measured)."""
    identity_map = session.identity_map
    for obj in objs:
        if obj is None:
            continue
        state = instance_state(obj)
        if state.session_id is not None:
            raise InvalidRequestError(f"{type(obj).__name__} {state.key} is already in a session")
        state.session_id = session.hash_key
        identity_map.add(state)  # raises should another instance of the row be there; tracks it if modified
        if state.modified:
            state._strong_obj = obj  # as the session holds a changed instance until its flush


def changed(obj: Any) -> bool:
    """Whether an instance has attribute changes to write (`Session.is_modified`, which needs no session)."""
    state = instance_state(obj)
    if not state.modified:
        return False
    dict_ = state.dict
    for attr in state.manager.attributes:
        impl = attr.impl
        if not hasattr(impl, "get_history"):
            continue
        added, _, deleted = impl.get_history(state, dict_, passive=PassiveFlag.NO_CHANGE)
        if added or deleted:
            return True
    return False


class PgHotPath:
    """The statements of `bot.core.engine.Core` on PostgreSQL, as SQL text built once from the tables."""

    #: called with each statement the hot path sends (BEGIN / COMMIT / ROLLBACK left out): the bench and
    #: tests count them next to SQLAlchemy's, whose cursor events never see these
    trace: Callable[[str], None] | None = None

    def __init__(self, dialect: Any) -> None:
        q = dialect.identifier_preparer.quote
        self.account = Entity(Account, "a", q, dialect)
        self.person = Entity(Person, "p", q, dialect)
        self.dialog = Entity(DialogState, "d", q, dialect)
        # The dialog row's values as SQLAlchemy would bind them (JSON serialised, timestamps checked aware UTC).
        dcols = cast(Table, DialogState.__table__).c
        self._dialog_binds = [
            (name, dcols[name].type.dialect_impl(dialect).bind_processor(dialect) or _same)
            for name in ("id", "nonce", "step", "data", "history", "active", "created_at", "updated_at")
        ]
        acc, ppl, dia = (cast(Table, c.__table__) for c in (Account, Person, DialogState))
        upd, out = (cast(Table, c.__table__) for c in (ProcessedUpdate, Outbox))
        self._tables = [(acc.name, "a", self.account), (ppl.name, "p", self.person), (dia.name, "d", self.dialog)]
        #: the open statement (`open`): built from the catalog on the first update (`_describe`)
        self.open_sql: str | None = None
        self._dialect = dialect
        self._quote = q
        # Ids for rows added in passing (`Later.add`): blocks from the table's own sequence, per process.
        self.allocate = "SELECT nextval(pg_get_serial_sequence($1, $2)) FROM generate_series(1, $3)"
        self._ids: dict[str, deque[int]] = {}
        self._refill: dict[str, asyncio.Lock] = {}
        pending = OutboxStatus.PENDING.value
        dialog_cte = (
            # $1..$8: the dialog row (id NULL: none to write)
            f"WITH d AS (UPDATE {q(dia.name)} SET nonce = $2, step = $3, data = $4::json, history = $5::json, "
            f"active = $6, created_at = $7, updated_at = $8 WHERE id = $1 RETURNING 1), "
        )
        outbox_into = (
            f"o AS (INSERT INTO {q(out.name)} (dedup_key, account_id, channel, chat_id, {q('rule')}, payload, "
            f"status, not_before, attempts, last_error, created_at) "
        )
        rest = (
            f"ON CONFLICT (dedup_key) DO NOTHING RETURNING 1), "
            # $17, $18: the keys the runner confirmed sent, and now: marked by `bangfu_sent` (migration hot_0002,
            # whose plan finds them by key whatever this session's plan cache holds), not called without keys
            f"s AS (SELECT bangfu_sent($17::varchar[], $18::timestamptz) AS n WHERE cardinality($17::varchar[]) > 0), "
            # $19..$24: the speaker's account when its row changed (NULL: not), its memo, which columns are
            # written (bits: 1 memo, 2 language, 4 commands_scope, 8 chat_id) and the other three's values
            f"m AS (UPDATE {q(acc.name)} SET memo = CASE WHEN $21::integer & 1 = 0 THEN memo ELSE $20::json END, "
            f"language = CASE WHEN $21::integer & 2 = 0 THEN language ELSE $22::varchar END, "
            f"commands_scope = CASE WHEN $21::integer & 4 = 0 THEN commands_scope ELSE $23::varchar END, "
            f"chat_id = CASE WHEN $21::integer & 8 = 0 THEN chat_id ELSE $24::varchar END "
            f"WHERE id = $19 RETURNING 1)"
        )
        self.finish = (
            dialog_cte + outbox_into
            # $9..$16: the update's outbox rows as arrays (the row's own handover time and creation time)
            + f"SELECT k, a, c, ch, r, p::json, '{pending}', nb, 1, '', at FROM unnest($9::varchar[], "
            f"$10::bigint[], $11::varchar[], $12::varchar[], $13::varchar[], $14::text[], $15::timestamptz[], "
            f"$16::timestamptz[]) AS u(k, a, c, ch, r, p, nb, at) " + rest
        )
        # The usual update has one message: its row as one parameter per column (see `_finish_for`).
        # The dialog row's other two forms (`write`'s `dialog_as`): "new", a row the update started (inserted;
        # $1 is its account, the dialog's name the parameter after the base statement's); "gone", a row the
        # update finished or cancelled (deleted; the other values only typed, so the statement stays one).
        self._dialog_ctes = {
            "new": (
                f"WITH d AS (INSERT INTO {q(dia.name)} (account_id, dialog, nonce, step, data, history, active, "
                f"created_at, updated_at) VALUES ($1, $25, $2, $3, $4::json, $5::json, $6, $7, $8) RETURNING 1), "
            ),
            "gone": (
                f"WITH d AS (DELETE FROM {q(dia.name)} WHERE id = $1 RETURNING $2::varchar, $3::varchar, "
                f"$4::text, $5::text, $6::boolean, $7::timestamptz, $8::timestamptz), "
            ),
        }
        self._dialog_cte = dialog_cte
        self.finish_one = (
            dialog_cte + outbox_into
            + f"VALUES ($9::varchar, $10::bigint, $11::varchar, $12::varchar, $13::varchar, $14::text::json, "
            f"'{pending}', $15::timestamptz, 1, '', $16::timestamptz) " + rest
        )
        self._finish_end = " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM o), (SELECT sum(n) FROM s)"
        # The update's end (`write` with `final`): its id recorded (a plain INSERT: an update recorded meanwhile
        # fails the statement, nothing of it written), the transaction-level lock (USER_LOCK_NS + 1, key)
        # taken, to the end of this transaction, and then — its row is the unlock's input, so it comes first —
        # the user's lock let go.
        self._final = (
            f", pu AS (INSERT INTO {q(upd.name)} (channel, bot_id, update_id, {q('at')}) "
            "SELECT ${0}::varchar, ${1}::varchar, ${2}::varchar, ${3}::timestamptz WHERE ${2}::varchar IS NOT NULL "
            "RETURNING 1), "
            "xl AS (SELECT pg_advisory_xact_lock(${4}::integer + 1, ${5}::integer) AS x), "
            "ul AS (SELECT pg_advisory_unlock(${4}::integer, ${5}::integer) AS ok FROM xl)"
        )
        self._final_end = ", (SELECT count(*) FROM pu), (SELECT bool_and(ok) FROM ul)"
        # The finish statement per (one outbox row?, row logs with rows in the update: each a CTE of its own).
        self._finish_by: dict[tuple[bool, tuple[tuple[RowLog, bool], ...], bool, str], str] = {}
        self._row_binds: dict[RowLog, list[Any]] = {}
        # An outbox payload (a serialised Reply) as the SQLite path writes it: Chinese kept as UTF-8.
        self._payload = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))

    # ------------------------------------------------------------------ round trips
    async def start(
        self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], channel: str, external_id: str
    ) -> PgUpdate:
        """The update's connection, checked out straight from the engine's pool (its checkout and check-in
        events run as for any other user of the pool; no SQLAlchemy Connection, no session: `PgUpdate.open_
        session` makes them if a handler needs them), and its `PgUpdate`."""
        fairy = await engine.raw_connection()
        return PgUpdate(fairy, self, user_lock_key(channel, external_id), engine, sessions)

    async def _describe(self, conn: Any) -> str:
        """The open statement: `bangfu_open` with its columns named (the tables' columns in the database's
        order, as the catalog has them: one query, on the first update of the process), selecting them in
        the order `Entity.load` reads."""
        q = self._quote
        defs = ["o_state integer", "o_n integer", "o_gn integer"]
        picks = ["t.o_state", "t.o_n", "t.o_gn"]
        for table, prefix, entity in self._tables:
            cols = await conn.fetch(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                q(table),
            )
            defs += [f"{q(f'{prefix}_{name}')} {sql_type}" for name, sql_type in cols]
            have = {name for name, _ in cols}
            missing = [n for n in entity.names if n not in have]
            if missing:
                raise RuntimeError(f"{table} has no column {missing}: the database is not migrated")
            picks += [f"t.{q(f'{prefix}_{name}')}" for name in entity.names]
        args = ", ".join(f"${i}" for i in range(1, 15))
        return f"SELECT {', '.join(picks)} FROM bangfu_open({args}) AS t({', '.join(defs)})"

    async def open(
        self, upd: PgUpdate, channel: str, external_id: str, chat_id: str, name: str, now: datetime,
        dedup: tuple[str, str] | None, budget: tuple[str, datetime, int] | None, group: tuple[str, int] | None,
    ) -> Any:
        """One round trip (`bangfu_open`, see the module's docstring): the user's lock, the update id checked
        (`dedup`: bot id, update id), the message budgets counted (`budget`: the account's key, the minute,
        the budget; `group`: the group's key and budget), a first-time account created, and (state, count,
        group count, account…, person…, dialog… columns). The lock is marked `HELD` on the connection before
        the call (should the call fail or be cancelled, the update's end lets it go) and unmarked when the
        function did not keep it."""
        sql = self.open_sql
        if sql is None:
            sql = self.open_sql = await self._describe(upd.raw)
        bot_id, update_id = dedup if dedup is not None else (None, None)
        key, window, limit = budget if budget is not None else (None, None, None)
        group_key, group_limit = group if group is not None else (None, None)
        if PgHotPath.trace is not None:
            PgHotPath.trace(sql)
        upd.info[HELD] = True
        row = await upd.raw.fetchrow(
            sql, USER_LOCK_NS, upd.key, channel, external_id, chat_id, name, now, bot_id, update_id,
            key, window if key is not None else now, limit, group_key, group_limit,
        )
        if row[0] != 1:
            upd.info.pop(HELD, None)  # the function let the lock go
        elif update_id is not None:
            upd.dedup = (channel, cast(str, bot_id), update_id, now)
        return row

    def load(self, row: Any) -> tuple[Account | None, Person | None, DialogState | None]:
        """The speaker's account, person and active dialog from the open row, detached (`Entity.load`)."""
        at = 3
        account = self.account.detached(row, at)
        at += self.account.width
        person = self.person.detached(row, at)
        at += self.person.width
        dialog = self.dialog.detached(row, at)
        return account, person, dialog

    async def next_id(self, conn: Any, log: RowLog) -> int:
        """A new id for a row of `log`: from this process's block, taking a block of `ID_BLOCK` from the
        table's sequence when it is used up (hi-lo; one round trip per block). Ids are unique across
        processes (each block is the sequence's); within one process they are handed out in increasing
        order. A block outlives transactions (nextval is never rolled back): an update that fails only
        leaves a gap, as a failed INSERT would. (A sequence reset under a running process — tests'
        TRUNCATE ... RESTART IDENTITY — would make its block stale: a core is built per test.)"""
        ids = self._ids.get(log.name)
        if ids is None:
            ids = self._ids[log.name] = deque()
        if not ids:
            # One refill at a time per table: an update that finds the block used up while another refills
            # it waits for that block (ids from the sequence come in increasing order, and so go out).
            refill = self._refill.setdefault(log.name, asyncio.Lock())
            async with refill:
                if not ids:
                    if PgHotPath.trace is not None:
                        PgHotPath.trace(self.allocate)
                    rows = await conn.fetch(self.allocate, self._quote(log.name), log.pk.name, ID_BLOCK)
                    ids.extend(sorted(r[0] for r in rows))
        return ids.popleft()

    def _finish_for(self, one: bool, logs: tuple[tuple[RowLog, bool], ...], final: bool, dialog_as: str = "") -> str:
        """The finish statement for one outbox row or any other number (`one`), with an INSERT CTE per row
        log with rows (`Later.rows`) after the base statement's 24 parameters, and when `final` the update's
        end after those (its id, the commit lock, the user's lock let go: 6 parameters). A single row
        goes as one parameter per column (the usual case: one reply, one question; asyncpg encodes a
        one-element array for several times a scalar's cost), several as one array per column, unnested (one
        prepared statement whatever their number). JSON travels as text, cast back."""
        sql = self._finish_by.get((one, logs, final, dialog_as))
        if sql is None:
            q = self._quote
            n = 26 if dialog_as == "new" else 25
            ctes: list[str] = []
            for i, (log, single) in enumerate(logs):
                cols = [log.pk, *log.columns]
                names = ", ".join(q(c.name) for c in cols)
                params, picks = [], []
                for j, col in enumerate(cols):
                    as_json = isinstance(col.type, JSON)
                    sql_type = "text" if as_json else col.type.compile(dialect=self._dialect)
                    cast_back = "::json" if as_json else ""
                    params.append(f"${n}::{sql_type}{cast_back}" if single else f"${n}::{sql_type}[]")
                    picks.append(f"c{j}{cast_back}")
                    n += 1
                if single:
                    ctes.append(
                        f", r{i} AS (INSERT INTO {q(log.name)} ({names}) VALUES ({', '.join(params)}) RETURNING 1)"
                    )
                else:
                    aliases = ", ".join(f"c{j}" for j in range(len(cols)))
                    ctes.append(
                        f", r{i} AS (INSERT INTO {q(log.name)} ({names}) SELECT {', '.join(picks)} "
                        f"FROM unnest({', '.join(params)}) AS u({aliases}) RETURNING 1)"
                    )
            base = self.finish_one if one else self.finish
            if dialog_as:
                base = self._dialog_ctes[dialog_as] + base.removeprefix(self._dialog_cte)
            if final:
                ctes.append(self._final.format(*range(n, n + 6)))
                end = self._finish_end + self._final_end
            else:
                end = self._finish_end
            sql = self._finish_by[(one, logs, final, dialog_as)] = base + "".join(ctes) + end
        return sql

    @staticmethod
    def _account_write(
        memo: tuple[int, dict[str, Any] | None] | None, account: tuple[int, dict[str, Any]] | None
    ) -> tuple[Any, ...]:
        """Parameters $19..$24 of the finish statement: the account's row id (None: nothing to write), its
        memo, the bits of the columns written and the values of `ACCOUNT_COLUMNS`."""
        row_id, memo_value, bits, values = None, None, 0, [None, None, None]
        if memo is not None:
            row_id, memo_value, bits = memo[0], memo_json(memo[1]), 1
        if account is not None:
            assert row_id is None or row_id == account[0], "the memo and the columns of one account"
            row_id = account[0]
            for i, col in enumerate(ACCOUNT_COLUMNS):
                if col in account[1]:
                    values[i] = account[1][col]
                    bits |= 2 << i
        return (row_id, memo_value, bits, *values)

    def _binds(self, log: RowLog) -> list[Any]:
        binds = self._row_binds.get(log)
        if binds is None:
            d = self._dialect
            binds = self._row_binds[log] = [
                c.type.dialect_impl(d).bind_processor(d) or _same for c in (log.pk, *log.columns)
            ]
        return binds

    async def write(
        self, conn: Any, dialog: DialogState | None, outbox: Sequence[tuple[Any, ...]], sent: list[str],
        now: datetime | None, later: Later | None = None, rows: dict[RowLog, list[list[Any]]] | None = None,
        final: PgUpdate | None = None, dialog_as: str = "", speaker: tuple[int, dict[str, Any]] | None = None,
    ) -> None:
        """The end-of-update writes in one round trip: the dialog row, outbox rows, sent marks, and what
        `later` holds (its rows, or `rows` given, and the memo); with `final` (the update's end: always sent)
        also the update's id and the user's lock let go, else nothing is sent when there is nothing to write.
        `later` is emptied: written once. The dialog row is updated by its id, or with `dialog_as` "new"
        inserted (a row the update started, not in the database yet) or "gone" deleted (finished, cancelled).
        `speaker`: the speaker's account id and its changed columns among `ACCOUNT_COLUMNS`, written with
        the memo."""
        memo = None
        if later is not None:
            rows, later.rows = later.rows, {}
            memo, later.memo = later.memo, None
            later.taken()
        if final is None and dialog is None and not outbox and not sent and memo is None and not rows and not speaker:
            return
        d: tuple[Any, ...] = (None,) * 8
        name: tuple[Any, ...] = ()
        if dialog is None:
            dialog_as = ""
        elif dialog_as == "gone":
            d = (dialog.id, None, None, None, None, None, None, None)
        else:
            d = tuple(bind(getattr(dialog, name)) for name, bind in self._dialog_binds)
            if dialog_as == "new":
                d, name = (dialog.account_id, *d[1:]), (dialog.dialog,)
        one = len(outbox) == 1
        cols: list[Any]
        if one:  # as scalars (`finish_one`)
            key, account, channel, chat, rule, payload, nb, at = outbox[0]
            cols = [key, account, channel, chat, rule, self._payload(payload), nb, at]
        else:
            cols = [[], [], [], [], [], [], [], []]
            for key, account, channel, chat, rule, payload, nb, at in outbox:
                for col, v in zip(cols, (key, account, channel, chat, rule, self._payload(payload), nb, at), strict=True):
                    col.append(v)
        m = self._account_write(memo, speaker)
        logs: list[tuple[RowLog, bool]] = []
        extra: list[Any] = []
        for log, log_rows in (rows or {}).items():
            binds = self._binds(log)
            if len(log_rows) == 1:
                logs.append((log, True))
                extra += [bind(v) for bind, v in zip(binds, log_rows[0], strict=True)]
                continue
            logs.append((log, False))
            arrays: list[list[Any]] = [[] for _ in binds]
            for row in log_rows:
                for arr, bind, v in zip(arrays, binds, row, strict=True):
                    arr.append(bind(v))
            extra += arrays
        if final is not None:
            extra += final.dedup or (None, None, None, None)
            extra += (USER_LOCK_NS, final.key)
        sql = self._finish_for(one, tuple(logs), final is not None, dialog_as)
        if PgHotPath.trace is not None:
            PgHotPath.trace(sql)
        row = await conn.fetchrow(sql, *d, *cols, sent, now, *m, *name, *extra)
        if final is not None and row[-1] is not True:
            # The lock was not this session's: something between the bot and PostgreSQL (a pooler in
            # transaction mode) does not keep one server session per connection. Then the lock, taken on
            # another server session, is never let go.
            logger.error("the user's lock was not held by this connection's PostgreSQL session")


def _same(value: Any) -> Any:
    return value

