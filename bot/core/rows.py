"""Rows a handler adds in passing, and the account's memo: written with the update, in as few statements as
each database allows (`Ctx.add_row`, `Ctx.remember`).

A villager's question is logged (one row whose id its reply's buttons carry) and its follow-up context kept
for the next question. Through the ORM or a statement of its own each would cost a round trip on
PostgreSQL (and SQLAlchemy's execution machinery around it). Instead:

- PostgreSQL (the asyncpg hot path, `bot.core.pg_hot`): the id comes from the table's own sequence, taken in
  blocks per process (hi-lo: one ``nextval`` per block; ids stay unique across worker processes), and the
  row is written by the update's finish statement, with the outbox rows. Should anything in the update run
  a statement through SQLAlchemy after the row was added (a case that refers to the question by its foreign
  key, a query that should see it), the rows added so far are written first (`pg_hot._RowsFirst`).
  The memo is written by the same finish statement.
- Elsewhere (SQLite; PostgreSQL on another driver): the row and the memo are written at once, on SQLite
  straight on the DBAPI cursor (no SQLAlchemy execution context), as the core's dedup insert is.

Either way the row and the memo are part of the update's transaction: written if and only if it commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Column, Table, insert, null, update
from sqlalchemy.orm import Session

from bot.store.models import Account


class RowLog:
    """A table whose rows handlers add in passing and whose new row's id they need at once (say, for a
    button), usually without reading the row back in the same update. Declared once, at import, by the
    feature that owns the table: ``QUESTIONS = RowLog(PolicyQuestion.__table__)``."""

    def __init__(self, table: Table) -> None:
        pks = list(table.primary_key.columns)
        if len(pks) != 1:
            raise ValueError(f"{table.name}: one integer primary key expected")
        self.table = table
        self.name = table.name
        self.pk: Column[Any] = pks[0]
        #: every column but the id, in the table's order: the order of `values`
        self.columns: list[Column[Any]] = [c for c in table.columns if c is not self.pk]
        self.keys = [c.key for c in self.columns]
        self._defaults: dict[str, Callable[[], Any]] = {}
        for c in self.columns:
            d = c.default
            if d is None:
                if c.nullable:
                    self._defaults[c.key] = _none
            elif d.is_scalar:
                self._defaults[c.key] = lambda v=d.arg: v  # type: ignore[attr-defined,misc]
            elif d.is_callable:
                self._defaults[c.key] = lambda f=d.arg: f(None)  # type: ignore[attr-defined,misc]
        self._sqlite: tuple[str, list[Any]] | None = None

    def values(self, given: Mapping[str, Any]) -> list[Any]:
        """One row's values in `columns` order, the columns' Python defaults for those not given (as the
        ORM would fill them)."""
        unknown = set(given) - set(self.keys)
        if unknown:
            raise TypeError(f"{self.name} has no column {sorted(unknown)}")
        out: list[Any] = []
        for key in self.keys:
            if key in given:
                out.append(given[key])
            elif key in self._defaults:
                out.append(self._defaults[key]())
            else:
                raise TypeError(f"{self.name}.{key} is required")
        return out

    def sqlite_insert(self, dialect: Any) -> tuple[str, list[Any]]:
        """The INSERT ... RETURNING id as SQLite runs it, and each column's bind processor (built once)."""
        if self._sqlite is None:
            compiled = insert(self.table).values(dict.fromkeys(self.keys)).returning(self.pk)
            stmt = compiled.compile(dialect=dialect)
            # Positional parameters in `columns` order: values are bound as they come.
            assert list(stmt.positiontup or []) == self.keys, stmt.positiontup
            procs = [c.type.dialect_impl(dialect).bind_processor(dialect) or _same for c in self.columns]
            self._sqlite = (stmt.string, procs)
        return self._sqlite

    def __repr__(self) -> str:
        return f"RowLog({self.name})"


def insert_now(session: Session, log: RowLog, values: Sequence[Any]) -> int:
    """Write one row now, in the session's transaction, and return its id (run through
    AsyncSession.run_sync). SQLite: straight on the DBAPI cursor."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        sql, procs = log.sqlite_insert(conn.dialect)
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(sql, [p(v) for p, v in zip(procs, values, strict=True)])
            return int(cur.fetchone()[0])  # type: ignore[index]  # RETURNING always yields the row
        finally:
            cur.close()
    stmt = insert(log.table).returning(log.pk)
    return int(conn.execute(stmt, dict(zip(log.keys, values, strict=True))).scalar_one())


_ACCOUNTS = cast(Table, Account.__table__)


def memo_json(memo: dict[str, Any] | None) -> str | None:
    """A memo as the column holds it: JSON text, or SQL NULL when empty (never the JSON ``null``)."""
    return None if memo is None else json.dumps(memo, ensure_ascii=False, separators=(",", ":"))


def write_memo_now(session: Session, account_id: int, memo: dict[str, Any] | None) -> None:
    """Write an account's memo now, in the session's transaction (run through AsyncSession.run_sync)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(f"UPDATE {_ACCOUNTS.name} SET memo = ? WHERE id = ?", (memo_json(memo), account_id))
        finally:
            cur.close()
        return
    conn.execute(
        update(_ACCOUNTS).where(_ACCOUNTS.c.id == account_id).values(memo=null() if memo is None else memo)
    )


def _none() -> None:
    return None


def _same(value: Any) -> Any:
    return value
