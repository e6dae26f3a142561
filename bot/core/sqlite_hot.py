"""The SQLite hot path of an update: its fixed statements on the DBAPI connection, without the ORM.

On SQLite a statement on the local file takes a few microseconds; what an update paid for was SQLAlchemy
around it: the ORM's select of the speaker (statement cache, execution context, result, the loader building
three instances) cost more than everything the statement does, and so did the session's commit with nothing
to flush. `bot.core.engine.Core` therefore runs, on SQLite, inside its one trip into the sync layer:

- `speaker`: one SELECT of account + person + active dialog on the DBAPI connection of the update's
  transaction, its columns turned into persistent instances of the session (`bot.core.pg_hot.Entity`:
  entity columns with this dialect's result processors — timestamps parsed from text and made aware UTC,
  JSON decoded, booleans from integers — registered in the session as the ORM's loader registers them), so
  an instance holds exactly what an ORM load would have given and the session tracks its changes as usual
  (a handler's change to the account is flushed by the ORM at the end).
- `save_dialog`, `mark_sent`: the active dialog's row and the outbox rows the runner confirmed sent, values
  bound with the dialect's bind processors (what SQLAlchemy would have sent).
- `begin` / `commit_and_close`: on the on-loop driver the update's transaction is the kept connection's own
  (BEGIN IMMEDIATE), which the session joins only when a handler runs a statement through it; with nothing
  to flush at the end, the connection commits it without the session's unit of work. With anything to flush
  the ORM flushes and commits as before. On aiosqlite the session begins and commits as before.

Statements go to the plain sqlite3 connection on the on-loop driver (`bot.store.sqlite_loop`; only
SQLITE_BUSY goes to the event loop, to wait there), and through SQLAlchemy's adapted cursor on aiosqlite
(its worker thread); both run inside `AsyncSession.run_sync`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.util.concurrency import await_

from bot.core.pg_hot import Entity
from bot.store.enums import OutboxStatus
from bot.store.models import Account, DialogState, Outbox, Person
from bot.store.sqlite_loop import LoopAdaptedConnection, is_busy, retry_busy

T = TypeVar("T")

#: sent keys per UPDATE (SQLite allows 32766 parameters; a short IN list keeps each statement cheap)
SENT_CHUNK = 200


def _inline(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) on the event-loop thread; on SQLITE_BUSY the greenlet waits in asyncio and retries."""
    try:
        return fn(*args)
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        return await_(retry_busy(fn, *args))


def fetch(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Run one statement on the DBAPI connection of `conn` (in its transaction); its rows."""
    dbapi = conn.connection.dbapi_connection
    if isinstance(dbapi, LoopAdaptedConnection):
        raw = cast(sqlite3.Connection, dbapi.driver_connection)
        cur = _inline(raw.execute, sql, params)
        try:
            return cur.fetchall()
        finally:
            cur.close()
    cur = dbapi.cursor()  # type: ignore[union-attr]  # aiosqlite: SQLAlchemy's adapted cursor (its thread)
    try:
        cur.execute(sql, params)
        return list(cur.fetchall()) if cur.description else []
    finally:
        cur.close()


class SqliteHotPath:
    """The statements of `bot.core.engine.Core` on SQLite, as SQL text built once from the tables."""

    def __init__(self, dialect: Any, save_dialog: Any) -> None:
        q = dialect.identifier_preparer.quote
        self.account = Entity(Account, "a", q, dialect)
        self.person = Entity(Person, "p", q, dialect)
        self.dialog = Entity(DialogState, "d", q, dialect)
        acc, ppl, dia = (cast(Table, c.__table__) for c in (Account, Person, DialogState))
        # The ORM's speaker select (engine._HotStatements.speaker), written out: the same joins and filter.
        self.speaker = (
            f"SELECT {self.account.select}, {self.person.select}, {self.dialog.select} "
            f"FROM {q(acc.name)} AS a "
            f"LEFT OUTER JOIN {q(ppl.name)} AS p ON p.id = a.person_id "
            f"LEFT OUTER JOIN {q(dia.name)} AS d ON d.account_id = a.id AND d.active = 1 "
            "WHERE a.channel = ? AND a.external_id = ?"
        )
        # The dialog row's UPDATE is the prebuilt Core statement compiled once; its parameters in order, each
        # with the bind processor SQLAlchemy would apply (JSON serialised as its JSON type does, timestamps
        # checked aware and stored as UTC text, booleans as integers).
        compiled = save_dialog.compile(dialect=dialect)
        self.save_dialog_sql: str = compiled.string
        self._dialog_binds: list[tuple[str, Callable[[Any], Any]]] = []
        for name in compiled.positiontup:
            proc = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            self._dialog_binds.append(("id" if name == "row_id" else name, proc or _same))
        out = cast(Table, Outbox.__table__)
        self._sent_at = out.c.sent_at.type.dialect_impl(dialect).bind_processor(dialect) or _same
        self._outbox = q(out.name)
        self._sent_sql: dict[int, str] = {}

    def load_speaker(
        self, session: Session, conn: Connection, channel: str, external_id: str
    ) -> tuple[Account, Person | None, DialogState | None] | None:
        """The speaker's account, person and active dialog as persistent instances of `session`; None for
        someone unknown."""
        rows = fetch(conn, self.speaker, (channel, external_id))
        if not rows:
            return None
        row = rows[0]  # as the ORM's .first(): the first of the joined rows
        account = self.account.load(session, row, 0)
        person = self.person.load(session, row, self.account.width)
        dialog = self.dialog.load(session, row, self.account.width + self.person.width)
        return account, person, dialog

    def save_dialog(self, conn: Connection, dialog: DialogState) -> None:
        fetch(conn, self.save_dialog_sql, [bind(getattr(dialog, name)) for name, bind in self._dialog_binds])

    def mark_sent(self, conn: Connection, keys: list[str], now: datetime) -> None:
        """The outbox rows the runner sent (still pending) marked sent, as `_OutboxStatements.mark_sent`."""
        at = self._sent_at(now)
        for start in range(0, len(keys), SENT_CHUNK):
            chunk = keys[start : start + SENT_CHUNK]
            sql = self._sent_sql.get(len(chunk))
            if sql is None:
                marks = ", ".join("?" * len(chunk))
                sql = self._sent_sql[len(chunk)] = (
                    f"UPDATE {self._outbox} SET status = ?, sent_at = ?, last_error = ? "
                    f"WHERE dedup_key IN ({marks}) AND status = ?"
                )
            fetch(conn, sql, [OutboxStatus.SENT.value, at, "", *chunk, OutboxStatus.PENDING.value])

    @staticmethod
    def begin(session: Session) -> Connection:
        """Begin the update's transaction; its connection. A session bound to a connection (the one the core
        keeps on the loop driver) leaves the transaction to that connection, which the session joins only if
        a handler uses it: the session's own transaction (and its bookkeeping) is paid for only then.
        Otherwise (aiosqlite: a session on the engine) the session begins it. Called again at the end of the
        update: the same connection, in the same transaction (or a new one, should a handler have rolled
        the update's back, as the session's own would have begun)."""
        bind = session.bind
        if isinstance(bind, Connection):
            if not bind.in_transaction():
                bind.begin()  # BEGIN IMMEDIATE (bot.store.db's "begin" listener)
            return bind
        return session.connection()

    @staticmethod
    def commit_and_close(session: Session) -> None:
        """End the update: with nothing to flush in the session and the transaction the connection's own
        (`begin`), COMMIT on the connection (SQLAlchemy's Connection.commit: the DBAPI commit and the end of
        its transaction, none of the session's unit of work); otherwise the session's flush and commit (a
        session that joined the connection's transaction commits it). The session is closed either way: the
        instances detached, nothing left to roll back."""
        bind = session.bind
        if isinstance(bind, Connection) and session._is_clean():
            bind.commit()
        else:
            session.commit()
        session.close()


def _same(value: Any) -> Any:
    return value
