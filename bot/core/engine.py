"""The core: one update in, actions out, inside one database transaction."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import uuid
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bot.clock import Clock
from bot.core import limits
from bot.core.callbacks import prefix_of
from bot.core.context import Ctx
from bot.core.dialog import (
    BACK,
    CANCEL,
    DIALOG_BUTTON,
    RESUME_DRAFT,
    Dialog,
    Finish,
    Goto,
    Replace,
    Retry,
    State,
    new_nonce,
)
from bot.core.normalize import normalize_incoming
from bot.core.pg_hot import (
    ACCOUNT_COLUMNS,
    HELD,
    PgHotPath,
    PgUpdate,
    changed,
    guard_pool,
    guard_reads,
    user_lock_sql,
)
from bot.core.router import Route, Router
from bot.core.services import Services
from bot.core.sqlite_hot import SqliteHotPath, fetch
from bot.core.types import (
    Button,
    FileSource,
    Incoming,
    InlineKeyboard,
    RemoveKeyboard,
    Reply,
    Result,
    SetCommands,
)
from bot.i18n import Catalogs, Translator, normalize_language
from bot.settings import Settings
from bot.store.db import is_sqlite
from bot.store.enums import OutboxStatus, Role
from bot.store.models import Account, DialogState, Outbox, Person, ProcessedUpdate, RateLimit
from bot.store.outbox_sql import sent_by_keys

log = logging.getLogger(__name__)

Menu = Callable[[Role, Translator], list[tuple[str, str]]]  # (command, description) pairs for a role

ENGINE_PREFIXES = (DIALOG_BUTTON.prefix, RESUME_DRAFT.prefix)  # button prefixes no router may claim

# The cores built on each engine, so closing an app gives back every core's kept connection first
# (held strongly until then: a core dropped early must still return its connection to the pool).
_CORES: weakref.WeakKeyDictionary[Any, list[Core]] = weakref.WeakKeyDictionary()


async def close_cores(engine: AsyncEngine) -> None:
    """Give back the connections kept by every core on this engine (before the engine is disposed)."""
    for core in _CORES.pop(engine.sync_engine, []):
        await core.aclose()


class Core:
    """The transport-neutral bot. Runners call `handle()`; everything else is injected."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        sessions: async_sessionmaker[AsyncSession],
        catalogs: Catalogs,
        routers: Sequence[Router],
        dialogs: Sequence[Dialog],
        services: Services,
        menu: Menu | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sessions = sessions
        self.catalogs = catalogs
        self.routers = list(routers)
        self.dialogs = {d.name: d for d in dialogs}
        self.services = services
        self.menu = menu  # the command menu per role and language (SetCommands); None: no menus
        self.files: FileSource | None = None  # set by the runner (Telegram getFile)
        # Bytes of files in updates being handled, fetched before the update's transaction opens so a slow
        # download never holds a database lock; taken (and dropped) by file_source.download().
        self._prefetched: dict[str, bytes] = {}
        self._lock_accounts = not is_sqlite(str(sessions.kw["bind"].url))
        self._stmts = _HotStatements(sessions.kw["bind"].dialect, postgres=self._lock_accounts)
        self._db: AsyncEngine = sessions.kw["bind"]  # the database engine (SQLAlchemy)
        # PostgreSQL on asyncpg: the update's own statements go straight to the asyncpg connection.
        self._pg: PgHotPath | None = (
            PgHotPath(self._db.dialect)
            if self._db.dialect.name == "postgresql" and self._db.dialect.driver == "asyncpg"
            else None
        )
        if self._pg is not None:  # never a connection back in the pool with a user's lock held
            guard_pool(self._db.sync_engine.pool)
            guard_reads(self._db.sync_engine)  # a handler's reads outside the transaction, its writes in it
        # SQLite (either driver): the update's own statements go straight to the DBAPI connection.
        self._sqlite: SqliteHotPath | None = (
            SqliteHotPath(self._db.dialect, self._stmts.save_dialog) if self._db.dialect.name == "sqlite" else None
        )
        on_loop = self._db.dialect.driver == "bangfu"
        self._update_lock: asyncio.Lock | None = asyncio.Lock() if on_loop else None
        self._update_conn: AsyncConnection | None = None
        self._budget: limits.RedisBudget | None = (
            limits.RedisBudget.from_url(settings.redis_url)
            if settings.redis_url and (settings.messages_per_minute > 0 or settings.messages_per_minute_per_group > 0)
            else None
        )
        if on_loop or self._budget is not None:  # something to give back when the app closes
            _CORES.setdefault(self._db.sync_engine, []).append(self)
        # Transactional outbox (set by the Telegram runners): the update's messages are written to the outbox
        # in its own transaction, handed over to the sender this many seconds later unless the runner
        # confirms it sent them. None: messages are only returned (console, tests of the core).
        self.outbox_handover_s: float | None = None
        self._outbox_payload: Callable[[Reply], dict[str, Any]] | None = None
        self._outbox_stmts = _OutboxStatements(self._db.dialect)
        self._sent_keys: list[str] = []  # outbox rows the runner sent, marked with the next commit
        self._routes = routing_table(self.routers)

    # ------------------------------------------------------------------ public
    @property
    def file_source(self) -> FileSource | None:
        """Where dialogs fetch a user's file bytes: the prefetched copy, else the runner's source."""
        return None if self.files is None else _PrefetchedSource(self)

    async def _prefetch(self, inc: Incoming) -> None:
        if self.files is None:
            return
        for ref in inc.files:
            if ref.kind == "voice" or ref.file_id in self._prefetched:  # voice: never read, not fetched
                continue
            try:
                self._prefetched[ref.file_id] = await self.files.download(ref.file_id)
            except Exception:  # the dialog retries the download itself and keeps the file id if it fails
                log.warning("prefetch of %s failed", ref.file_id, exc_info=True)

    async def handle(self, inc: Incoming) -> Result:
        """Handle one update: dedup, resolve the speaker, dispatch, commit once; never raises."""
        inc = normalize_incoming(inc)  # hostile text made harmless before anything looks at it
        counted = group_counted = False
        if self._budget is not None:  # the message budgets in Redis, before any database work
            window = limits.minute_window(self.clock.now())
            if self.settings.messages_per_minute > 0:
                n = await self._budget.count(limits.message_key(inc.channel, inc.user.id), window)
                if n is not None:
                    counted = True
                    over = limits.verdict(n, self.settings.messages_per_minute)
                    if over is not None:
                        return self._too_fast(inc, over)
            if inc.chat_type != "private" and self.settings.messages_per_minute_per_group > 0:
                n = await self._budget.count(limits.group_key(inc.channel, inc.chat_id), window)
                if n is not None:
                    group_counted = True
                    over = limits.verdict(n, self.settings.messages_per_minute_per_group)
                    if over is not None:
                        return self._too_fast(inc, "group_" + over)
        if inc.files:
            await self._prefetch(inc)
        if self._update_lock is None:
            # PostgreSQL on asyncpg: no session unless a handler asks for one (`PgUpdate.open_session`).
            return await self._handle(inc, None if self._pg is not None else self.sessions(), (counted, group_counted))
        # Loop SQLite: updates take turns on one connection the core keeps (a pool check-out and a new
        # Connection per update cost ~5% of an update); SQLite has one writer at a time anyway.
        async with self._update_lock:
            conn = self._update_conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self._update_conn = await self._db.connect()
            elif conn.in_transaction():
                await conn.rollback()  # never join what a failed update may have left behind
            # The update's transaction is the connection's own, begun by `_open_sqlite` (BEGIN IMMEDIATE) and
            # ended by `_finish_sqlite`; the session joins it when a handler uses it ("control_fully": its
            # commit, rollback and close end it as they would their own). An update that needs no statement
            # of the session's never pays for the session's transaction.
            session = AsyncSession(
                bind=conn, expire_on_commit=False, autoflush=True, join_transaction_mode="control_fully"
            )
            try:
                return await self._handle(inc, session, (counted, group_counted))
            finally:
                if conn.in_transaction():  # a failed update: its write lock goes now, not with the next update
                    await conn.rollback()

    @property
    def update_connection(self) -> AsyncConnection | None:
        """The connection this core keeps for its updates on loop SQLite (None elsewhere, or not yet)."""
        return self._update_conn

    async def aclose(self) -> None:
        """Give back the connection the core keeps for its updates (App.close does this)."""
        conn, self._update_conn = self._update_conn, None
        if conn is not None and not conn.closed:
            await conn.close()
        budget, self._budget = self._budget, None
        if budget is not None:
            await budget.aclose()

    async def _handle(
        self, inc: Incoming, session: AsyncSession | None, counted: tuple[bool, bool] = (False, False)
    ) -> Result:
        """One update in its transaction. `session` None: PostgreSQL's hot path, whose update makes its session
        only when a handler asks for one (`Ctx.session`)."""
        closed = False
        upd: PgUpdate | None = None  # PostgreSQL: this update's connection and lock
        failure: BaseException | None = None
        try:
            if session is None:
                assert self._pg is not None
                upd = await self._pg.start(self._db, self.sessions, inc.channel, inc.user.id)
                opened = await self._open_pg(upd, inc, counted)
            elif self._sqlite is not None:
                opened = await session.run_sync(self._open_sqlite, inc, counted)
            else:
                opened = await session.run_sync(self._open, inc, counted)
            if opened is None:
                return Result()
            if isinstance(opened, str):  # over a message budget: the count is kept, nothing else done
                if session is not None:  # (PostgreSQL's open function committed it)
                    await session.run_sync(
                        _commit_and_close if self._sqlite is None else self._sqlite.commit_and_close
                    )
                    closed = True
                return self._too_fast(inc, opened)
            account, person, active = opened
            t = self.translator_for(account, person, inc)
            if upd is not None:
                ctx = Ctx(self, None, inc, account, person, t, opener=upd.open_session, later=upd.later)
            else:
                assert session is not None
                ctx = Ctx(self, session, inc, account, person, t)
            ctx.active_loaded, ctx.active_row = True, active
            if upd is not None:
                upd.reads_first()
            await self._dispatch(ctx)
            self._menu(ctx)
            if inc.callback_id and not ctx.callback_answered:
                ctx.answer_callback()
            queued = self._queue_outbox(ctx) if self._outbox_payload is not None else None
            # Nothing is sent unless this commit succeeded.
            if upd is not None:
                await self._finish_pg(upd, ctx.active_row, queued, ctx.account)
            else:
                assert session is not None
                finish = self._finish_sqlite if self._sqlite is not None else self._finish
                await session.run_sync(finish, ctx.active_row, queued)
            closed = True
            return Result(ctx.actions)
        except _Redelivered:
            log.info("dropping redelivered update %s/%s/%s", inc.channel, inc.bot_id, inc.update_id)
            return Result()
        except Exception as e:
            failure = e
            # Ids only: the update's texts (notes, names, phones) stay out of the logs.
            log.exception(
                "update failed: channel=%s update=%s user=%s chat=%s kind=%s",
                inc.channel,
                inc.update_id,
                inc.user.id,
                inc.chat_id,
                _kind(inc),
            )
            t = self.catalogs.get(normalize_language(inc.user.language_code))
            return Result([Reply(chat_id=inc.chat_id, text=t("core.error"), channel=inc.channel)])
        except BaseException as e:  # cancelled: the finally below lets the user's lock go
            failure = e
            raise
        finally:
            if upd is not None:
                upd.leave_reads()
                upd.later.close()
                if upd.held:  # failed or cancelled holding the user's lock: rolled back and let go first
                    await upd.release(failure)
                await upd.close()  # the session (if made) closed, rolling back what is left; the connection back
            elif not closed and session is not None:
                await session.close()  # rolls back whatever this update did
            for ref in inc.files:  # whatever the update did not use is not kept
                self._prefetched.pop(ref.file_id, None)

    def translator_for(
        self, account: Account, person: Person | None = None, inc: Incoming | None = None
    ) -> Translator:
        """The account's language: chosen with /lang, else the roster's, else the client's, else zh_CN."""
        lang = account.language or (person.language if person else None)
        if not lang and inc is not None:
            lang = normalize_language(inc.user.language_code)
        return self.catalogs.get(lang)

    async def start_dialog(
        self, ctx: Ctx, name: str, args: dict[str, Any] | None = None, fresh: bool = False
    ) -> None:
        """Start dialog `name`, parking any other active dialog as a draft and offering to resume a draft."""
        dialog = self.dialogs[name]
        if ctx.role not in dialog.roles:
            ctx.reply("core.not_allowed")
            return
        await self._park_active(ctx, except_dialog=name)
        row = await self._state(ctx.session, ctx.account.id, name)
        keep = timedelta(days=self.settings.draft_keep_days)
        if row is not None and not fresh and row.history and ctx.now - _aware(row.updated_at) < keep:
            title = ctx.t(dialog.title_key)
            ctx.reply(
                "core.resume_offer",
                InlineKeyboard(
                    (
                        (Button(ctx.t("core.btn_resume"), RESUME_DRAFT.pack(name, "resume")),),
                        (Button(ctx.t("core.btn_restart"), RESUME_DRAFT.pack(name, "new")),),
                    )
                ),
                title=title,
                when=_aware(row.updated_at).astimezone(self.clock.tz).strftime("%m-%d %H:%M"),
            )
            return
        reused = row is not None
        if row is not None:
            # Start over in the same row (one UPDATE at commit): deleting it and inserting a new one would
            # need a flush in between, as (account, dialog) is unique. The new nonce voids its old buttons.
            row.nonce, row.step, row.data, row.history = new_nonce(), dialog.first_step, {}, []
            row.active, row.created_at, row.updated_at = True, ctx.now, ctx.now
        else:
            row = DialogState(
                account_id=ctx.account.id,
                dialog=name,
                nonce=new_nonce(),
                step=dialog.first_step,
                data={},
                history=[],
                active=True,
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            ctx.session.add(row)
        ctx.active_loaded, ctx.active_row = True, row
        st = State(row)
        step = await dialog.on_start(ctx, st, args or {})
        if step is None:
            if reused:
                await ctx.session.delete(row)  # the old draft goes, as it would have on a fresh start
            else:
                ctx.session.expunge(row)  # still pending: never written
            ctx.active_row = None
            return
        row.step = step
        await dialog.ask(ctx, st)

    async def active_state(self, ctx: Ctx) -> DialogState | None:
        """The account's active dialog, if any (read once per update; the engine keeps the cache true)."""
        if ctx.active_loaded:
            row = ctx.active_row
            if row is None or not row.active:
                return None
            session = ctx.session_made  # none made: nothing was deleted
            if session is not None and (row in session.deleted or inspect(row).was_deleted):
                return None
            return row
        row = (
            await ctx.session.execute(self._stmts.active_dialog, {"account_id": ctx.account.id})
        ).scalar_one_or_none()
        ctx.active_loaded, ctx.active_row = True, row
        return row

    # ----------------------------------------------------------------- internals
    def _open(
        self, session: Session, inc: Incoming, counted: tuple[bool, bool] = (False, False)
    ) -> tuple[Account, Person | None, DialogState | None] | str | None:
        """Record the update and load the speaker, in one trip into SQLAlchemy's sync layer (it runs
        through AsyncSession.run_sync: one greenlet for both statements instead of one per call). PostgreSQL
        on a driver other than asyncpg; SQLite has `_open_sqlite`, asyncpg `_open_pg`.

        None when the update was handled before (one INSERT ... ON CONFLICT DO NOTHING). Otherwise the
        speaker's account (created on first contact), the roster person bound to it and the active dialog,
        in one query. Both statements are built once (`_HotStatements`).
        """
        if self._lock_accounts:  # PostgreSQL without the asyncpg hot path: one user's updates take turns
            session.connection().exec_driver_sql(user_lock_sql(inc.channel, inc.user.id))
        if inc.update_id is not None:
            params = {
                "channel": inc.channel, "bot_id": inc.bot_id, "update_id": str(inc.update_id), "at": self.clock.now()
            }
            fresh = session.connection().execute(self._stmts.record_update, params).first() is not None
            if not fresh:
                log.info("dropping redelivered update %s/%s/%s", inc.channel, inc.bot_id, inc.update_id)
                return None
        if self.settings.messages_per_minute > 0 and not counted[0]:
            over = self._count_message(
                session, limits.message_key(inc.channel, inc.user.id), self.settings.messages_per_minute
            )
            if over is not None:
                return over
        if inc.chat_type != "private" and self.settings.messages_per_minute_per_group > 0 and not counted[1]:
            # A group's members together (each within their own budget) can still flood the bot.
            over = self._count_message(
                session, limits.group_key(inc.channel, inc.chat_id), self.settings.messages_per_minute_per_group
            )
            if over is not None:
                return "group_" + over
        row = session.execute(self._stmts.speaker, {"channel": inc.channel, "external_id": inc.user.id}).first()
        return _speaker(session, inc, None if row is None else tuple(row), self.clock.now())

    def _open_sqlite(
        self, session: Session, inc: Incoming, counted: tuple[bool, bool] = (False, False)
    ) -> tuple[Account, Person | None, DialogState | None] | str | None:
        """`_open` on SQLite (`bot.core.sqlite_hot`), in one trip into the sync layer: the update's
        transaction begun (BEGIN IMMEDIATE: one writer at a time; on the loop driver the kept connection's
        own, see `SqliteHotPath.begin`), then the dedup INSERT, the budget count and the speaker's SELECT
        straight on the DBAPI connection, the speaker's rows loaded into the session as the ORM would have.
        Returns what `_open` returns."""
        hot = self._sqlite
        assert hot is not None and self._stmts.record_update_raw is not None
        conn = hot.begin(session)
        now = self.clock.now()
        if inc.update_id is not None:
            sql, at = self._stmts.record_update_raw
            if not fetch(conn, sql, (inc.channel, inc.bot_id, str(inc.update_id), at(now))):
                log.info("dropping redelivered update %s/%s/%s", inc.channel, inc.bot_id, inc.update_id)
                return None
        if self.settings.messages_per_minute > 0 and not counted[0]:
            over = self._count_message(
                session, limits.message_key(inc.channel, inc.user.id), self.settings.messages_per_minute, conn
            )
            if over is not None:
                return over
        if inc.chat_type != "private" and self.settings.messages_per_minute_per_group > 0 and not counted[1]:
            over = self._count_message(
                session, limits.group_key(inc.channel, inc.chat_id), self.settings.messages_per_minute_per_group,
                conn,
            )
            if over is not None:
                return "group_" + over
        return _speaker(session, inc, hot.load_speaker(session, conn, inc.channel, inc.user.id), now)

    async def _open_pg(
        self, upd: PgUpdate, inc: Incoming, counted: tuple[bool, bool]
    ) -> tuple[Account, Person | None, DialogState | None] | str | None:
        """`_open` on PostgreSQL (`bot.core.pg_hot`): one round trip, with no transaction begun — the user's
        lock, the update id checked, the budgets counted, a first-time account created and the speaker's rows
        read, all in `bangfu_open`. Returns what `_open` returns; the speaker's rows detached, put in the
        update's session should one be made (`PgUpdate.loaded`)."""
        pg = self._pg
        assert pg is not None
        now = self.clock.now()
        budget = group = None
        if self.settings.messages_per_minute > 0 and not counted[0]:
            budget = (limits.message_key(inc.channel, inc.user.id), limits.minute_window(now),
                      self.settings.messages_per_minute)
        if inc.chat_type != "private" and self.settings.messages_per_minute_per_group > 0 and not counted[1]:
            group = (limits.group_key(inc.channel, inc.chat_id), self.settings.messages_per_minute_per_group)
        dedup = (inc.bot_id, str(inc.update_id)) if inc.update_id is not None else None
        row = await pg.open(
            upd, inc.channel, inc.user.id, inc.chat_id, inc.user.name[:128], now, dedup, budget, group
        )
        state = row[0]
        if state == 0:
            log.info("dropping redelivered update %s/%s/%s", inc.channel, inc.bot_id, inc.update_id)
            return None
        if state != 1:  # over a budget: the function counted it and recorded the update
            over = limits.verdict(int(row[1]), budget[2]) if budget is not None and row[1] is not None else None
            if over is not None:
                return over
            assert group is not None and row[2] is not None
            return "group_" + (limits.verdict(int(row[2]), group[1]) or "quiet")
        account, person, active = upd.loaded = pg.load(row)
        assert account is not None  # created by the function when new
        if inc.chat_type == "private" and account.chat_id != inc.chat_id:
            account.chat_id = inc.chat_id
        return account, person, active

    async def _finish_pg(
        self, upd: PgUpdate, active: DialogState | None, queued: list[Any] | None, account: Account | None = None
    ) -> None:
        """`_finish` on PostgreSQL: one statement (`PgHotPath.write`, final) writes the dialog row (updated,
        inserted when the update started it, deleted when it finished or cancelled it), the outbox rows, the
        sent marks, what handlers left (`Later`: rows, the account's memo), the speaker's account columns the
        update changed (`ACCOUNT_COLUMNS`: a new chat id, /lang's language and menu scope) and the update's id,
        and lets the user's lock go. With no transaction begun (the handler's statements through the session,
        if it made one, were plain reads, run outside a transaction, and it left nothing to flush; usually no
        session was made at all) it commits by itself: the update's second and last round trip. Otherwise it
        runs in the transaction, then COMMIT: straight on the connection when the session has nothing to
        flush, else the session's flush of the rest and its commit. The speaker's rows changed beyond what the
        statement writes with no session made (the person row, an account column outside `ACCOUNT_COLUMNS`):
        the session is made now, to flush them."""
        pg = self._pg
        assert pg is not None
        upd.leave_reads()  # a flush from here on (or this statement, when it is not alone) is one transaction
        columns = _account_changes(account) if account is not None else None
        if columns:  # written by the statement below: left as loaded, the ORM's flush has nothing of it
            for key, value in columns.items():
                set_committed_value(account, key, value)
        session = upd.session
        if session is None and any(o is not None and o is not active and changed(o) for o in upd.loaded):
            session = upd.open_session()
        sync = None if session is None else session.sync_session
        dialog, dialog_as = self._dialog_write_pg(sync, active)
        clean = sync is None or not _left_to_flush(sync, dialog)
        if dialog is not None and not clean:
            assert session is not None
            session.expunge(dialog)  # written by the statement below, not by the ORM's flush
        keys, self._sent_keys = self._sent_keys, []
        try:
            if not clean:  # the session's writes and this statement: one transaction
                await upd.begin()
            try:
                await pg.write(
                    upd.raw, dialog, queued or (), keys, self.clock.now(), upd.later, final=upd, dialog_as=dialog_as,
                    speaker=(account.id, columns) if account is not None and columns else None,
                )
            except Exception as e:  # asyncpg's UniqueViolationError names the constraint
                if upd.dedup is not None and getattr(e, "constraint_name", None) == _PROCESSED_PK:
                    raise _Redelivered from e  # recorded meanwhile: nothing of this update was written
                raise
            upd.info.pop(HELD, None)  # let go by the statement
            if not upd.in_transaction():
                pass  # committed: nothing to roll back (`PgUpdate.close` gives the connection back)
            elif clean:
                await upd.commit()
            else:
                await upd.close(commit=True)  # the session's flush and commit, its close, the connection back
        except BaseException:
            self._sent_keys[:0] = keys  # marked with a later commit instead
            raise

    @classmethod
    def _dialog_write_pg(
        cls, session: Session | None, active: DialogState | None
    ) -> tuple[DialogState | None, str]:
        """On PostgreSQL the active dialog's row in any of its three changes goes in the finish statement:
        changed ("": updated by its id, as `_dialog_to_write`), started in this update ("new": inserted; a
        dialog start costs no flush of its own) or finished / cancelled ("gone": deleted). None: nothing to
        write, or the ORM's to flush (a row already flushed, or deleted after a flush). `session` None (no
        session made): the row is the one the open statement loaded, detached, changed in place if at all (a
        dialog is started, finished or cancelled only through the session)."""
        if active is None:
            return None, ""
        state = inspect(active)
        if session is None:
            return (active, "") if state.key is not None and state.modified else (None, "")
        if state.pending:
            return active, "new"
        if state.persistent and active in session.deleted:
            return active, "gone"
        # Changed, or only set to what it was: the statement runs either way, so no net-change check.
        return (active, "") if state.persistent and state.modified else (None, "")

    @staticmethod
    def _dialog_to_write(session: Session, active: DialogState | None) -> bool:
        """The active dialog's row changed and is written by one prebuilt UPDATE (then left out of the
        flush): the ORM's unit of work costs several times the statement for this one row. New or deleted
        rows are the ORM's."""
        if active is None:
            return False
        state = inspect(active)
        return (
            state is not None
            and state.persistent
            and state.modified
            and active not in session.deleted  # a finished or cancelled dialog: the ORM flushes its DELETE
            and session.is_modified(active)
        )

    def _count_message(self, session: Session, key: str, budget: int, conn: Connection | None = None) -> str | None:
        """Count the update against a budget for this minute (the account's or the group's; one UPSERT;
        issue 10 #3): None within it, "too_fast" for the first one over it (answered once), "quiet" after.
        `conn`: the update's connection (SQLite), else the session's."""
        window = limits.minute_window(self.clock.now())
        conn = conn if conn is not None else session.connection()
        if self._stmts.count_message_raw is not None:  # SQLite: straight on the DBAPI connection
            sql, at = self._stmts.count_message_raw
            n = int(fetch(conn, sql, (key, at(window)))[0][0])  # RETURNING always yields the row
        else:
            n = int(conn.execute(self._stmts.count_message, {"key": key, "window_start": window}).scalar_one())
        return limits.verdict(n, budget)

    def _too_fast(self, inc: Incoming, over: str) -> Result:
        """The one answer to the first update over a message budget ("too_fast": the account's,
        "group_too_fast": the group's); nothing for the rest of the minute ("quiet", "group_quiet")."""
        if over == "too_fast":
            log.warning("account %s/%s over its message budget", inc.channel, inc.user.id)
            key = "security.too_fast"
        elif over == "group_too_fast":
            log.warning("group %s/%s over its message budget", inc.channel, inc.chat_id)
            key = "security.group_too_fast"
        else:
            return Result()
        t = self.catalogs.get(normalize_language(inc.user.language_code))
        return Result([Reply(chat_id=inc.chat_id, text=t(key), channel=inc.channel)])

    def _finish(self, session: Session, active: DialogState | None, queued: list[Any] | None = None) -> None:
        """End the update's transaction: write, commit, release the connection (one greenlet for all).

        The active dialog's row changes on nearly every dialog step. When it is the row that changed, it
        is written with one prebuilt UPDATE of its mutable columns and then left out of the flush: the
        ORM's unit of work costs several times the statement for this one row. New, deleted and other
        objects are flushed by the ORM as usual.
        """
        if active is not None and self._dialog_to_write(session, active):
            session.connection().execute(
                self._stmts.save_dialog,
                {
                    "row_id": active.id,
                    "nonce": active.nonce,
                    "step": active.step,
                    "data": active.data,
                    "history": active.history,
                    "active": active.active,
                    "created_at": active.created_at,
                    "updated_at": active.updated_at,
                },
            )
            session.expunge(active)
        if queued:
            self._outbox_stmts.write(session.connection(), queued)
        keys: list[str] = []
        try:
            if self._sent_keys:
                keys, self._sent_keys = self._sent_keys, []
                session.connection().execute(self._outbox_stmts.mark_sent, {"keys": keys, "now": self.clock.now()})
            session.commit()
        except BaseException:
            self._sent_keys[:0] = keys  # marked with a later commit instead
            raise
        session.close()

    def _finish_sqlite(self, session: Session, active: DialogState | None, queued: list[Any] | None = None) -> None:
        """`_finish` on SQLite (`bot.core.sqlite_hot`): the changed active dialog row, the outbox rows and
        the sent marks straight on the DBAPI connection; then, when the session has nothing else to flush,
        the connection's COMMIT without the session's unit of work (loop driver), else the ORM's flush and
        commit as in `_finish`. Either way the session ends closed, nothing sent unless the COMMIT succeeded
        (an exception here fails the update), and the connection is back where it was before the update."""
        hot = self._sqlite
        assert hot is not None
        conn = hot.begin(session)
        if active is not None and self._dialog_to_write(session, active):
            hot.save_dialog(conn, active)
            session.expunge(active)  # written: left out of the flush
        if queued:
            self._outbox_stmts.write(conn, queued)
        keys: list[str] = []
        try:
            if self._sent_keys:
                keys, self._sent_keys = self._sent_keys, []
                hot.mark_sent(conn, keys, self.clock.now())
            hot.commit_and_close(session)
        except BaseException:
            self._sent_keys[:0] = keys  # marked with a later commit instead
            raise

    # ------------------------------------------------------------ transactional outbox
    def use_outbox(self, handover_s: float, payload: Callable[[Reply], dict[str, Any]]) -> None:
        """Write every update's Replies to the outbox in the update's transaction (`payload` serialises a
        Reply: bot.scheduler.outbox.reply_to_dict), due for the sender `handover_s` after the commit."""
        self.outbox_handover_s = handover_s
        self._outbox_payload = payload

    def confirm_sent(self, key: str) -> None:
        """The runner sent this outbox row: mark it sent with the next update's commit (no transaction of
        its own on the hot path), or with `flush_sent` when no update comes along."""
        self._sent_keys.append(key)

    async def flush_sent(self) -> None:
        """Mark the rows `confirm_sent` collected, in a transaction of their own (`write`)."""
        if self._sent_keys:
            await self.write(self._outbox_stmts.mark_sent, None)

    async def write(self, statement: Any, params: dict[str, Any] | None) -> None:
        """Run one short write in its own transaction, taking turns with the updates (on loop SQLite on the
        connection the core keeps: a separate connection would wait for SQLite's write lock behind a
        steady stream of updates). The runner confirms sent outbox rows through this."""
        if self._update_lock is None:
            if params is None:
                if not self._sent_keys:
                    return
                keys, self._sent_keys = self._sent_keys, []
                params = {"keys": keys, "now": self.clock.now()}
            async with self._db.begin() as c:  # a Core statement: no ORM session needed
                await c.execute(statement, params)
            return
        async with self._update_lock:
            conn = self._update_conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self._update_conn = await self._db.connect()
            elif conn.in_transaction():
                await conn.rollback()
            if params is None:  # the sent keys, taken only now (an update may have marked them meanwhile)
                if not self._sent_keys:
                    return
                keys, self._sent_keys = self._sent_keys, []
                params = {"keys": keys, "now": self.clock.now()}
            try:
                await conn.execute(statement, params)
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise

    def _queue_outbox(self, ctx: Ctx) -> list[Any]:
        """The update's messages as outbox rows (written by `_finish` in the update's transaction), and each
        Reply in ctx.actions tagged with its row's key. A message to the speaker's own chat is rule "reply",
        one to anybody else "notify" (bot/scheduler/README.md: what each kind does on an unknown outcome).
        Button acknowledgements and command menus are not queued: they mean nothing later."""
        inc = ctx.inc
        now = self.clock.now()
        handover = now + timedelta(seconds=self.outbox_handover_s or 0.0)
        base = (
            f"u:{inc.channel}:{inc.bot_id}:{inc.update_id}" if inc.update_id is not None else f"u:{uuid.uuid4().hex}"
        )
        rows: list[tuple[Any, ...]] = []
        actions = ctx.actions
        payload = self._outbox_payload
        assert payload is not None
        for i, action in enumerate(actions):
            if not isinstance(action, Reply):
                continue
            key = f"{base}:{i}"[:191]
            own = action.chat_id == inc.chat_id and action.channel == inc.channel
            rows.append((
                key, ctx.account.id if own else None, action.channel, action.chat_id,
                "reply" if own else "notify", payload(action), handover, now,
            ))
            actions[i] = dataclasses.replace(action, outbox_key=key)
        return rows

    def _route(self, ctx: Ctx, kind: str, key: str) -> Route | None:
        for route in self._routes.get((kind, key), []):
            return route
        return None

    def _private_only(self, ctx: Ctx) -> bool:
        """In a group chat, say that this is answered in a private chat only; True when refused so."""
        if ctx.inc.chat_type == "private":
            return False
        ctx.answer_callback("core.private_only", alert=True)
        ctx.reply("core.private_only")
        return True

    async def _call(self, ctx: Ctx, route: Route) -> None:
        if route.private_only and self._private_only(ctx):
            return
        if ctx.role not in route.roles:
            ctx.answer_callback("core.not_allowed")
            ctx.reply("core.not_allowed")
            return
        await route.fn(ctx)

    async def _dispatch(self, ctx: Ctx) -> None:
        inc = ctx.inc
        if inc.callback_data is not None:
            await self._on_callback(ctx)
            return
        if inc.command in ("cancel", "back"):
            if self._private_only(ctx):  # dialogs are private
                return
            await self._nav(ctx, CANCEL if inc.command == "cancel" else BACK)
            return
        if inc.command is not None:
            route = self._route(ctx, "command", inc.command)
            if route is None:
                ctx.reply("core.unknown_command")
                return
            await self._call(ctx, route)
            return
        row = await self.active_state(ctx) if inc.chat_type == "private" else None  # dialogs are private
        if row is not None:
            text = (inc.text or "").strip()
            if text and text == ctx.t("core.btn_cancel"):
                await self._nav(ctx, CANCEL)
            elif text and text == ctx.t("core.btn_back"):
                await self._nav(ctx, BACK)
            elif inc.files and all(f.kind == "voice" for f in inc.files) and row.dialog in self.dialogs:
                # No dialog step takes a voice message (it is not a photo): say so and ask again.
                ctx.reply("case.voice_in_dialog")
                await self.dialogs[row.dialog].ask(ctx, State(row))
            else:
                await self._step(ctx, row)
            return
        await self._free_input(ctx)

    async def _free_input(self, ctx: Ctx) -> None:
        """Input outside any dialog: the first route of its kind the speaker's role may use."""
        inc = ctx.inc
        kind = "contact" if inc.contact else "location" if inc.location else "file" if inc.files else "text"
        for route in self._routes.get((kind, ""), []):
            if ctx.role in route.roles:
                if route.private_only and self._private_only(ctx):
                    return
                await route.fn(ctx)
                return
        ctx.reply("core.not_understood")

    async def _on_callback(self, ctx: Ctx) -> None:
        data = ctx.inc.callback_data or ""
        prefix = prefix_of(data)
        if prefix in (DIALOG_BUTTON.prefix, RESUME_DRAFT.prefix) and self._private_only(ctx):  # dialogs are private
            return
        if prefix == DIALOG_BUTTON.prefix:
            button = DIALOG_BUTTON.parse(data)
            row = await self.active_state(ctx)
            if row is None or button is None or row.nonce != button[0]:
                ctx.answer_callback("core.button_expired")
                ctx.reply("core.button_expired")
                return
            if button[1] in (BACK, CANCEL):
                await self._nav(ctx, button[1])
            else:
                await self._step(ctx, row)
            return
        if prefix == RESUME_DRAFT.prefix:
            draft = RESUME_DRAFT.parse(data)
            if draft is None or draft[0] not in self.dialogs:
                ctx.answer_callback("core.button_expired")
                return
            name, choice = draft
            if choice == "new":
                await self.start_dialog(ctx, name, fresh=True)
                return
            row = await self._state(ctx.session, ctx.account.id, name)
            if row is None:
                ctx.reply("core.button_expired")
                return
            await self._park_active(ctx, except_dialog=name)
            row.active = True
            row.updated_at = ctx.now
            ctx.active_loaded, ctx.active_row = True, row
            await self.dialogs[name].ask(ctx, State(row))
            return
        route = self._route(ctx, "callback", prefix)
        if route is None:
            ctx.answer_callback("core.button_expired")
            return
        await self._call(ctx, route)

    async def _step(self, ctx: Ctx, row: DialogState) -> None:
        dialog = self.dialogs.get(row.dialog)
        if dialog is None or ctx.role not in dialog.roles:
            await ctx.session.delete(row)
            ctx.reply("core.not_allowed")
            return
        st = State(row)
        result = await dialog.on_input(ctx, st)
        row.updated_at = ctx.now
        if isinstance(result, Goto):
            row.history = [*row.history, row.step]
            row.step = result.step
            await dialog.ask(ctx, st)
        elif isinstance(result, Retry):
            ctx.reply(result.key, **result.args)
            await dialog.ask(ctx, st)
        elif isinstance(result, Finish):
            await ctx.session.delete(row)
            if result.pass_on:
                await self._free_input(ctx)
        elif isinstance(result, Replace):
            pass

    async def _nav(self, ctx: Ctx, action: str) -> None:
        row = await self.active_state(ctx)
        if row is None:
            ctx.reply("core.nothing_to_cancel", RemoveKeyboard())
            return
        if action == CANCEL:
            title = ctx.t(self.dialogs[row.dialog].title_key) if row.dialog in self.dialogs else row.dialog
            await ctx.session.delete(row)
            ctx.answer_callback()
            ctx.reply("core.cancelled", RemoveKeyboard(), title=title)
            return
        if not row.history:
            ctx.reply("core.cannot_go_back")
        else:
            row.step = row.history[-1]
            row.history = row.history[:-1]
            row.updated_at = ctx.now
        await self.dialogs[row.dialog].ask(ctx, State(row))

    async def _park_active(self, ctx: Ctx, except_dialog: str) -> None:
        row = await self.active_state(ctx)
        if row is None or row.dialog == except_dialog:
            return
        row.active = False
        if row.history and row.dialog in self.dialogs:
            ctx.reply("core.draft_parked", title=ctx.t(self.dialogs[row.dialog].title_key))
        else:
            await ctx.session.delete(row)
        await ctx.session.flush()

    async def _state(self, session: AsyncSession, account_id: int, name: str) -> DialogState | None:
        return (
            await session.execute(self._stmts.dialog_by_name, {"account_id": account_id, "dialog": name})
        ).scalar_one_or_none()

    def _menu(self, ctx: Ctx) -> None:
        """Send the role's command menu when the role or language changed since it was last set."""
        scope = f"{ctx.role.value}:{ctx.t.lang}"
        if self.menu is None or ctx.account.commands_scope == scope or ctx.inc.chat_type != "private":
            return
        ctx.account.commands_scope = scope
        ctx.actions.append(
            SetCommands(ctx.inc.chat_id, tuple(self.menu(ctx.role, ctx.t)), channel=ctx.inc.channel)
        )


def routing_table(routers: Sequence[Router]) -> dict[tuple[str, str], list[Route]]:
    """Routes by (kind, key), in router order. A command or a button prefix belongs to one route: two
    claiming it (or a button prefix the engine keeps for dialogs) is refused at start-up, not left to
    whichever comes first."""
    table: dict[tuple[str, str], list[Route]] = {}
    owner: dict[tuple[str, str], str] = {("callback", p): "the engine" for p in ENGINE_PREFIXES}
    for r in routers:
        for route in r.routes:
            slot = (route.kind, route.key)
            if route.kind in ("command", "callback"):
                if slot in owner:
                    raise ValueError(f"{route.kind} {route.key!r} claimed by {owner[slot]} and router {r.name!r}")
                owner[slot] = f"router {r.name!r}"
            table.setdefault(slot, []).append(route)
    return table


class _HotStatements:
    """The statements every update runs, built once with bound parameters.

    Building a select() and computing its cache key costs more than running it on SQLite; a statement
    object built once keeps its memoised cache key, so each update pays only for binding and running.
    """

    def __init__(self, dialect: Any, postgres: bool) -> None:
        table = ProcessedUpdate.__table__
        insert = pg_insert if postgres else sqlite_insert
        self.record_update = (
            insert(table).on_conflict_do_nothing().returning(table.c.update_id)  # type: ignore[arg-type]
        )
        self.record_update_raw: tuple[str, Any] | None = None
        if not postgres:
            compiled = self.record_update.compile(dialect=dialect)
            assert compiled.positiontup == ["channel", "bot_id", "update_id", "at"], compiled.positiontup
            # The dialect's own processor (the column type's alone would hand sqlite3 a datetime, which its
            # default adapter stores in another text format than SQLAlchemy's: "…:00+00:00", not "…:00.000000").
            to_db = table.c.at.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
            self.record_update_raw = (compiled.string, to_db)
        self.count_message = limits.message_counter(postgres)
        self.count_message_raw: tuple[str, Any] | None = None
        if not postgres:
            compiled = self.count_message.compile(dialect=dialect)
            assert compiled.positiontup == ["key", "window_start"], compiled.positiontup
            window_type = RateLimit.__table__.c.window_start.type
            to_db = window_type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
            self.count_message_raw = (compiled.string, to_db)
        speaker = (
            select(Account, Person, DialogState)
            .outerjoin(Person, Person.id == Account.person_id)
            .outerjoin(DialogState, (DialogState.account_id == Account.id) & DialogState.active.is_(True))
            .where(Account.channel == bindparam("channel"), Account.external_id == bindparam("external_id"))
        )
        # On SQLite, BEGIN IMMEDIATE serialises every transaction. On PostgreSQL (another driver than
        # asyncpg: `_open`) the user's advisory lock is taken by a statement of its own before this one: a
        # FOR UPDATE here would read the joined dialog row from the snapshot taken before it waited.
        self.speaker = speaker
        self.active_dialog = select(DialogState).where(
            DialogState.account_id == bindparam("account_id"), DialogState.active.is_(True)
        )
        states = cast(Table, DialogState.__table__)
        self.save_dialog = (
            update(states)
            .where(states.c.id == bindparam("row_id"))
            .values(
                nonce=bindparam("nonce"),
                step=bindparam("step"),
                data=bindparam("data"),
                history=bindparam("history"),
                active=bindparam("active"),
                created_at=bindparam("created_at"),
                updated_at=bindparam("updated_at"),
            )
        )
        self.dialog_by_name = select(DialogState).where(
            DialogState.account_id == bindparam("account_id"), DialogState.dialog == bindparam("dialog")
        )


class _OutboxStatements:
    """One multi-row INSERT of an update's outbox rows, built once per row count (up to 8; more rows go in
    chunks). On SQLite the compiled SQL runs straight on the DBAPI cursor, as the dedup INSERT does."""

    COLUMNS = (  # the table's order, which the compiled VALUES follow
        "dedup_key", "account_id", "channel", "chat_id", "rule", "payload", "status", "not_before", "attempts",
        "last_error", "created_at",
    )
    MAX = 8

    def __init__(self, dialect: Any) -> None:
        self._dialect = dialect
        self._sqlite = dialect.name == "sqlite"
        table = cast(Table, Outbox.__table__)
        self._table = table
        self._by_n: dict[int, Any] = {}
        procs = {
            c: table.c[c].type.dialect_impl(dialect).bind_processor(dialect)
            for c in ("payload", "not_before", "created_at")
        }
        # The raw path serialises the JSON payload and timestamps as SQLAlchemy would for this dialect.
        self._payload = procs["payload"] or json.dumps
        self._ts = procs["not_before"] or (lambda v: v)
        self._ts2 = procs["created_at"] or (lambda v: v)
        # JSON text as SQLAlchemy's JSON type reads it back; Chinese kept as UTF-8 (a third of "\uXXXX").
        self._json = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
        # One SQL text on PostgreSQL whatever the number of keys (an expanding IN renders one per count).
        self.mark_sent = sent_by_keys(dialect)

    def _statement(self, n: int) -> Any:
        stmt = self._by_n.get(n)
        if stmt is None:
            values = [
                {c: bindparam(f"{c}_{i}", type_=self._table.c[c].type) for c in self.COLUMNS} for i in range(n)
            ]
            ins = (sqlite_insert if self._sqlite else pg_insert)(self._table).values(values)
            core = ins.on_conflict_do_nothing(index_elements=["dedup_key"])
            if self._sqlite:
                compiled = core.compile(dialect=self._dialect)
                # Positional parameters row after row, columns in COLUMNS order: rows are bound flat.
                expected = [f"{c}_{i}" for i in range(n) for c in self.COLUMNS]
                assert list(compiled.positiontup or []) == expected, compiled.positiontup
                stmt = compiled.string
            else:
                stmt = core
            self._by_n[n] = stmt
        return stmt

    def write(self, conn: Any, rows: list[tuple[Any, ...]]) -> None:
        pending = OutboxStatus.PENDING.value
        for start in range(0, len(rows), self.MAX):
            chunk = rows[start : start + self.MAX]
            stmt = self._statement(len(chunk))
            if self._sqlite:
                # The update's rows share their two timestamps: each is converted once.
                nb_at, created = chunk[0][6], chunk[0][7]
                nb_db, created_db = self._ts(nb_at), self._ts2(created)
                args: list[Any] = []
                for key, account, channel, chat, rule, payload, nb, at in chunk:
                    args += (  # attempts=1: the runner's own try
                        key, account, channel, chat, rule, self._json(payload), pending,
                        nb_db if nb is nb_at else self._ts(nb), 1, "", created_db if at is created else self._ts2(at),
                    )
                fetch(conn, stmt, args)
            else:
                params: dict[str, Any] = {}
                for i, (key, account, channel, chat, rule, payload, nb, at) in enumerate(chunk):
                    values = (key, account, channel, chat, rule, payload, pending, nb, 1, "", at)
                    params.update({f"{c}_{i}": v for c, v in zip(self.COLUMNS, values, strict=True)})
                conn.execute(stmt, params)


class _PrefetchedSource:
    """A FileSource that hands out a prefetched copy once, then falls back to the runner's source."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def download(self, file_id: str) -> bytes:
        data = self._core._prefetched.pop(file_id, None)
        if data is not None:
            return data
        assert self._core.files is not None
        return await self._core.files.download(file_id)


def _kind(inc: Incoming) -> str:
    """What an update was, for a log line without its content."""
    if inc.callback_data is not None:
        return "callback:" + inc.callback_data.partition(":")[0][:16]
    if inc.command is not None:
        return "command:" + inc.command[:32]
    return "contact" if inc.contact else "location" if inc.location else "file" if inc.files else "text"


def _speaker(
    session: Session, inc: Incoming, loaded: tuple[Any, ...] | None, now: datetime
) -> tuple[Account, Person | None, DialogState | None]:
    """The speaker as loaded (account, person, active dialog), the account's private chat kept current; a
    first-time account created and flushed (its id is needed at once)."""
    if loaded is None:
        account = _new_account(inc, now)
        session.add(account)
        session.flush()
        return account, None, None
    account, person, active = loaded
    if inc.chat_type == "private" and account.chat_id != inc.chat_id:
        account.chat_id = inc.chat_id
    return account, person, active


def _new_account(inc: Incoming, now: datetime) -> Account:
    """The account of someone writing for the first time (unbound)."""
    return Account(channel=inc.channel, external_id=inc.user.id, chat_id=inc.chat_id,
                   display_name=inc.user.name[:128], created_at=now)


class _Redelivered(Exception):
    """The update's id was recorded by another worker while this one handled it: nothing of it is kept."""


_PROCESSED_PK = "pk_processed_updates"


def _account_changes(account: Account) -> dict[str, Any] | None:
    """The speaker's account columns this update changed, when they are all among those the finish statement
    writes (`ACCOUNT_COLUMNS`: /lang's language, the menu's scope, the private chat); None when it changed
    nothing, or something else too (then the ORM flushes the row as usual). The account is persistent in the
    update's session, or detached when none was made (PostgreSQL: as the open statement loaded it)."""
    state = inspect(account)
    if not state.modified or state.key is None:
        return None
    columns: dict[str, Any] = {}
    for key in state.committed_state:
        if not state.attrs[key].history.has_changes():
            continue
        if key not in ACCOUNT_COLUMNS:
            return None
        columns[key] = getattr(account, key)
    return columns or None


def _left_to_flush(session: Session, dialog: DialogState | None) -> bool:
    """Whether the session holds a change for the ORM to flush, besides the dialog row written by the finish
    statement: a new or deleted object, or an attribute set to another value than it had (an attribute set
    to its own value, e.g. /lang choosing the language already chosen, is no change: no BEGIN, no COMMIT)."""
    if session._is_clean():
        return False
    own = None if dialog is None else inspect(dialog)
    if any(state is not own for state in session._new) or any(state is not own for state in session._deleted):
        return True
    return any(
        state is not own and (obj := state.obj()) is not None and changed(obj)
        for state in session.identity_map._modified
    )


def _commit_and_close(session: Session) -> None:
    session.commit()
    session.close()


def _aware(dt: Any) -> Any:
    """SQLite returns naive datetimes for timezone-aware columns; they are UTC."""
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


__all__ = ["Core", "Role"]
