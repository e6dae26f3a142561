"""The PostgreSQL hot path of an update: a few statements straight on the asyncpg connection.

On PostgreSQL every statement is a round trip, and SQLAlchemy's machinery around one (execution context,
the asyncpg adapter, a greenlet switch) costs more Python time than asyncpg itself. An update therefore runs
its fixed statements on the pooled connection's asyncpg connection, each a prepared statement from
asyncpg's own statement cache, in four round trips around whatever the handler runs through the session:

1. ``BEGIN; SELECT pg_advisory_xact_lock(ns, key)`` — one simple-query message, no parameters (the key is an
   integer computed here). One user's updates take turns across worker processes on this lock, held to
   the end of the transaction. It is taken in its own statement on purpose: under READ COMMITTED a
   statement reads the snapshot taken when it started, so a statement that first waited for the lock and
   then read the dialog row would read it as it was *before* the update it waited for committed.
2. `open`: one statement that records the update id (dedup), counts the account's message budget only
   when the update is new, and reads account + person + active dialog (data-modifying CTEs).
3. `finish`: one statement that writes the active dialog's row, the update's outbox rows (unnest of
   arrays: one prepared statement whatever the number of rows) and marks the rows the runner confirmed as
   sent (also CTEs; left out when there is nothing to write).
4. ``COMMIT`` — through SQLAlchemy's session, which hands it to `PgTransaction`.

SQLAlchemy's asyncpg adapter normally sends its own BEGIN before the first statement; `begin()` installs a
`PgTransaction` in the adapter instead, so the session's statements (the handler's) run inside the same
transaction, and the session's commit / rollback end it.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session, class_mapper, make_transient_to_detached

from bot.store.enums import OutboxStatus
from bot.store.models import Account, DialogState, Outbox, Person, ProcessedUpdate, RateLimit

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


class PgTransaction:
    """Stands in for asyncpg's Transaction in SQLAlchemy's asyncpg adapter (`_transaction`): the BEGIN
    went out with the lock (`begin`), COMMIT / ROLLBACK are plain statements."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def start(self) -> None:  # pragma: no cover - begun by PgHotPath.begin
        raise RuntimeError("already begun")

    async def commit(self) -> None:
        await self._conn.execute("COMMIT")

    async def rollback(self) -> None:
        await self._conn.execute("ROLLBACK")


class _Entity:
    """Columns of one mapped class as selected by the open statement, and how a row becomes an instance of
    it in the session (persistent, its attribute history clean, as if the ORM had loaded it)."""

    def __init__(self, cls: type[Any], alias: str, quote: Any, dialect: Any) -> None:
        mapper = class_mapper(cls)
        self.new = mapper.class_manager.new_instance
        self.keys: list[str] = []
        cols: list[str] = []
        # What SQLAlchemy would do to a value read from asyncpg (the UTC timestamp type's conversion; JSON
        # arrives decoded by the dialect's codec), so an instance holds what an ORM load would have given.
        self.processors: list[tuple[int, Any]] = []
        for i, prop in enumerate(mapper.column_attrs):
            col = prop.columns[0]
            self.keys.append(prop.key)
            cols.append(f"{alias}.{quote(col.name)}")
            proc = col.type.dialect_impl(dialect).result_processor(dialect, None)
            if proc is not None:
                self.processors.append((i, proc))
        self.select = ", ".join(cols)
        pk = mapper.primary_key[0]
        self.pk = self.keys.index(mapper.get_property_by_column(pk).key)
        self.width = len(self.keys)

    def load(self, session: Session, row: Any, start: int) -> Any:
        if row[start + self.pk] is None:
            return None
        values = list(row[start : start + self.width])
        for i, proc in self.processors:
            values[i] = proc(values[i])
        # As the ORM's loader does: the instance's state without __init__, the columns straight into its
        # __dict__ (no attribute events: loaded values, not changes), then known to the session by its key.
        obj = self.new()
        obj.__dict__.update(zip(self.keys, values, strict=True))
        make_transient_to_detached(obj)  # history clean as though freshly loaded; the identity key from the id
        session.add(obj)
        return obj


class PgHotPath:
    """The statements of `bot.core.engine.Core` on PostgreSQL, as SQL text built once from the tables."""

    #: called with each statement the hot path sends (BEGIN / COMMIT / ROLLBACK left out): the bench and
    #: tests count them next to SQLAlchemy's, whose cursor events never see these
    trace: Callable[[str], None] | None = None

    def __init__(self, dialect: Any) -> None:
        q = dialect.identifier_preparer.quote
        self.account = _Entity(Account, "a", q, dialect)
        self.person = _Entity(Person, "p", q, dialect)
        self.dialog = _Entity(DialogState, "d", q, dialect)
        # The dialog row's values as SQLAlchemy would bind them (JSON serialised, timestamps checked aware UTC).
        dcols = cast(Table, DialogState.__table__).c
        self._dialog_binds = [
            (name, dcols[name].type.dialect_impl(dialect).bind_processor(dialect) or _same)
            for name in ("id", "nonce", "step", "data", "history", "active", "created_at", "updated_at")
        ]
        acc, ppl, dia = (cast(Table, c.__table__) for c in (Account, Person, DialogState))
        upd, rl, out = (cast(Table, c.__table__) for c in (ProcessedUpdate, RateLimit, Outbox))
        count = (
            f"INSERT INTO {q(rl.name)} ({q('key')}, window_start, {q('count')}, strikes) "
            f"SELECT $5::varchar, $6::timestamptz, 1, 0 FROM ins WHERE $7::boolean "
            f"ON CONFLICT ({q('key')}) DO UPDATE SET {q('count')} = CASE "
            f"WHEN {q(rl.name)}.window_start = excluded.window_start THEN {q(rl.name)}.{q('count')} + 1 ELSE 1 END, "
            f"window_start = excluded.window_start RETURNING {q('count')}"
        )
        speaker = (
            f"SELECT (SELECT fresh FROM ins) AS fresh, (SELECT {q('count')} FROM rl) AS n, "
            f"{self.account.select}, {self.person.select}, {self.dialog.select} "
            f"FROM (SELECT 1) AS one "
            f"LEFT JOIN {q(acc.name)} AS a ON a.channel = $8 AND a.external_id = $9 "
            f"LEFT JOIN {q(ppl.name)} AS p ON p.id = a.person_id "
            f"LEFT JOIN {q(dia.name)} AS d ON d.account_id = a.id AND d.active"
        )
        # $1..$4: channel, bot_id, update_id, at (unused without an update id); $5..$7: budget key, window,
        # count it; $8, $9: the speaker's channel and external id.
        self.open_dedup = (
            f"WITH ins AS (INSERT INTO {q(upd.name)} (channel, bot_id, update_id, {q('at')}) "
            f"VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1 AS fresh), "
            f"rl AS ({count}) {speaker}"
        )
        self.open_plain = (
            "WITH ins AS (SELECT 1 AS fresh WHERE $1::varchar IS NULL AND $2::varchar IS NULL "
            "AND $3::varchar IS NULL AND $4::timestamptz IS NULL), "
            f"rl AS ({count}) {speaker}"
        )
        # A group's budget (non-private chats only): key, window_start.
        self.count_message = (
            f"INSERT INTO {q(rl.name)} ({q('key')}, window_start, {q('count')}, strikes) VALUES ($1, $2, 1, 0) "
            f"ON CONFLICT ({q('key')}) DO UPDATE SET {q('count')} = CASE "
            f"WHEN {q(rl.name)}.window_start = excluded.window_start THEN {q(rl.name)}.{q('count')} + 1 ELSE 1 END, "
            f"window_start = excluded.window_start RETURNING {q('count')}"
        )
        pending, sent = OutboxStatus.PENDING.value, OutboxStatus.SENT.value
        self.finish = (
            # $1..$8: the dialog row (id NULL: none to write)
            f"WITH d AS (UPDATE {q(dia.name)} SET nonce = $2, step = $3, data = $4::json, history = $5::json, "
            f"active = $6, created_at = $7, updated_at = $8 WHERE id = $1 RETURNING 1), "
            # $9..$16: the update's outbox rows as arrays (the row's own handover time and creation time)
            f"o AS (INSERT INTO {q(out.name)} (dedup_key, account_id, channel, chat_id, {q('rule')}, payload, "
            f"status, not_before, attempts, last_error, created_at) "
            f"SELECT k, a, c, ch, r, p::json, '{pending}', nb, 1, '', at FROM unnest($9::varchar[], "
            f"$10::bigint[], $11::varchar[], $12::varchar[], $13::varchar[], $14::text[], $15::timestamptz[], "
            f"$16::timestamptz[]) AS u(k, a, c, ch, r, p, nb, at) "
            f"ON CONFLICT (dedup_key) DO NOTHING RETURNING 1), "
            # $17, $18: the keys the runner confirmed sent, and now
            f"s AS (UPDATE {q(out.name)} SET status = '{sent}', sent_at = $18, last_error = '' "
            f"WHERE dedup_key = ANY($17::varchar[]) AND status = '{pending}' RETURNING 1) "
            "SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM o), (SELECT count(*) FROM s)"
        )
        # An outbox payload (a serialised Reply) as the SQLite path writes it: Chinese kept as UTF-8.
        self._payload = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))

    # ------------------------------------------------------------------ round trips
    @staticmethod
    async def begin(adapted: Any, channel: str, external_id: str) -> Any:
        """BEGIN and take the user's lock in one message; the adapter then treats the transaction as its own.
        Returns the asyncpg connection."""
        conn = adapted.driver_connection
        isolation = adapted.isolation_level
        begin = "BEGIN" if isolation is None else f"BEGIN ISOLATION LEVEL {_ISOLATION[isolation]}"
        adapted._transaction = PgTransaction(conn)  # from here on, the session's rollback ends it
        lock = user_lock_sql(channel, external_id)
        if PgHotPath.trace is not None:
            PgHotPath.trace(lock)
        await conn.execute(f"{begin}; {lock}")
        return conn

    async def open(
        self, conn: Any, dedup: tuple[str, str, str, datetime] | None, budget: tuple[str, datetime] | None,
        channel: str, external_id: str,
    ) -> Any:
        """(fresh, this minute's count or None, account…, person…, dialog… columns) in one round trip."""
        key, window = budget if budget is not None else (None, None)
        if PgHotPath.trace is not None:
            PgHotPath.trace(self.open_plain if dedup is None else self.open_dedup)
        if dedup is None:
            return await conn.fetchrow(
                self.open_plain, None, None, None, None, key, window, budget is not None, channel, external_id
            )
        return await conn.fetchrow(self.open_dedup, *dedup, key, window, budget is not None, channel, external_id)

    def load(self, session: Session, row: Any) -> tuple[Account | None, Person | None, DialogState | None]:
        """The speaker's account, person and active dialog from the open row, as persistent instances."""
        at = 2
        account = self.account.load(session, row, at)
        at += self.account.width
        person = self.person.load(session, row, at)
        at += self.person.width
        dialog = self.dialog.load(session, row, at)
        return account, person, dialog

    async def count(self, conn: Any, key: str, window: datetime) -> int:
        if PgHotPath.trace is not None:
            PgHotPath.trace(self.count_message)
        return int(await conn.fetchval(self.count_message, key, window))

    async def write(
        self, conn: Any, dialog: DialogState | None, outbox: Sequence[tuple[Any, ...]], sent: list[str],
        now: datetime,
    ) -> None:
        """The end-of-update writes in one round trip (nothing is sent when there is nothing to write)."""
        if dialog is None and not outbox and not sent:
            return
        d: tuple[Any, ...] = (None,) * 8
        if dialog is not None:
            d = tuple(bind(getattr(dialog, name)) for name, bind in self._dialog_binds)
        cols: list[list[Any]] = [[], [], [], [], [], [], [], []]
        for key, account, channel, chat, rule, payload, nb, at in outbox:
            for col, v in zip(cols, (key, account, channel, chat, rule, self._payload(payload), nb, at), strict=True):
                col.append(v)
        if PgHotPath.trace is not None:
            PgHotPath.trace(self.finish)
        await conn.fetchrow(self.finish, *d, *cols, sent, now)


def _same(value: Any) -> Any:
    return value


_ISOLATION = {
    "READ COMMITTED": "READ COMMITTED",
    "REPEATABLE READ": "REPEATABLE READ",
    "SERIALIZABLE": "SERIALIZABLE",
    "READ UNCOMMITTED": "READ UNCOMMITTED",
}
