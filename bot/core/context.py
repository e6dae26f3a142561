"""Ctx: what a handler or a dialog step receives for one update."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from bot.clock import local_today
from bot.core.rows import RowLog, insert_now, write_memo_now
from bot.core.types import AnswerCallback, Document, Incoming, Markup, Outgoing, Photo, Reply
from bot.i18n import Translator
from bot.store.enums import Role
from bot.store.models import Account, AuditLog, DialogState, Person

if TYPE_CHECKING:
    from bot.core.engine import Core
    from bot.core.pg_hot import Later


@dataclass(frozen=True, slots=True)
class Rendered:
    """A notice as one recipient reads it: text in their language (HTML-safe) and its buttons."""

    text: str
    markup: Markup | None = None


class Notice(Protocol):
    """What a feature tells other people after its own work (bot/notices/): a typed value that knows
    who is to be told and how it reads in each reader's language. Emitted with `Ctx.notify`."""

    async def recipients(self, ctx: Ctx) -> Sequence[Account]:
        """The accounts to tell (reachable ones only)."""
        ...

    async def render(self, ctx: Ctx, t: Translator) -> Rendered:
        """The notice in the language of translator t."""
        ...


class Ctx:
    """One update's world: the session (one transaction), who is speaking, and the replies so far.

    On PostgreSQL's hot path the session is made when a handler first uses `session` (`opener`): an update
    that runs nothing through it never pays for one. `later` (that path's): what `remember` and `add_row`
    leave for the update's finish statement, without a session."""

    __slots__ = (
        "_opener", "_session", "account", "actions", "active_loaded", "active_row", "callback_answered", "core",
        "inc", "later", "person", "t",
    )

    def __init__(
        self,
        core: Core,
        session: AsyncSession | None,
        inc: Incoming,
        account: Account,
        person: Person | None,
        t: Translator,
        *,
        opener: Callable[[], AsyncSession] | None = None,
        later: Later | None = None,
    ) -> None:
        if session is None and opener is None:
            raise TypeError("Ctx needs a session or an opener")
        self.core = core
        self._session = session
        self._opener = opener
        self.inc = inc
        self.account = account
        self.person = person
        self.t = t
        self.later = later
        self.actions: list[Outgoing] = []
        self.callback_answered = False
        # The active dialog row, read at most once per update (see Core.active_state).
        self.active_loaded = False
        self.active_row: DialogState | None = None

    @property
    def session(self) -> AsyncSession:
        """The update's session (one transaction, the update's), made on first use."""
        session = self._session
        if session is None:
            assert self._opener is not None
            session = self._session = self._opener()
        return session

    @property
    def session_made(self) -> AsyncSession | None:
        """The session if it was made, without making it (None: nothing ran through one yet)."""
        return self._session

    # --- who ---
    @property
    def role(self) -> Role:
        """The speaker's role; unbound accounts are villagers without a household."""
        if self.person is None or not self.person.active:
            return Role.VILLAGER
        return Role(self.person.role)

    @property
    def now(self) -> datetime:
        return self.core.clock.now()

    @property
    def today(self) -> date:
        return local_today(self.core.clock)

    # --- replies ---
    def reply(self, key: str, markup: Markup | None = None, **args: object) -> None:
        """Reply in the speaker's language with the message key rendered."""
        self.reply_text(self.t(key, **args), markup)

    def reply_text(self, text: str, markup: Markup | None = None) -> None:
        """Reply with text already rendered (and HTML-safe)."""
        self.actions.append(
            Reply(chat_id=self.inc.chat_id, text=text, markup=markup, channel=self.inc.channel)
        )

    def reply_photo(self, photo: Photo, caption: str | None = None, markup: Markup | None = None) -> None:
        self.actions.append(
            Reply(
                chat_id=self.inc.chat_id, text=caption, photo=photo, markup=markup, channel=self.inc.channel
            )
        )

    def reply_document(self, document: Document, caption: str | None = None) -> None:
        self.actions.append(
            Reply(chat_id=self.inc.chat_id, text=caption, document=document, channel=self.inc.channel)
        )

    def send_to(self, account: Account, key: str, markup: Markup | None = None, **args: object) -> None:
        """Message another account, rendered in that account's language."""
        t = self.core.translator_for(account)
        self.deliver(account, t(key, **args), markup)

    async def notify(self, notice: Notice) -> int:
        """Tell a notice to its recipients, each in their own language; returns how many accounts."""
        accounts = await notice.recipients(self)
        for account in accounts:
            rendered = await notice.render(self, self.core.translator_for(account))
            self.deliver(account, rendered.text, rendered.markup)
        return len(accounts)

    def deliver(self, account: Account, text: str, markup: Markup | None = None) -> None:
        """The one place a message to another account becomes an action of this update."""
        self.actions.append(Reply(chat_id=account.chat_id, text=text, markup=markup, channel=account.channel))

    def answer_callback(self, key: str | None = None, alert: bool = False, **args: object) -> None:
        """Acknowledge the button press being handled (once)."""
        if self.inc.callback_id and not self.callback_answered:
            self.callback_answered = True
            text = self.t(key, **args) if key else None
            self.actions.append(AnswerCallback(self.inc.callback_id, text, alert))

    # --- memory between updates ---
    @property
    def memo(self) -> Mapping[str, Any]:
        """The speaker's account memo: small values features keep from one update to the next (read-only
        here; change it with `remember`). Loaded with the account at no extra cost."""
        return self.account.memo or {}

    async def remember(self, key: str, value: Any) -> None:
        """Keep `value` (JSON; None forgets it) in the account memo under `key` (a feature's own name),
        written with this update: in its finish statement on PostgreSQL, at once elsewhere. Keep it
        small: it is read with every update of the account."""
        memo = {k: v for k, v in (self.account.memo or {}).items() if k != key}
        if value is not None:
            memo[key] = value
        stored = memo or None
        # As loaded: the ORM's flush leaves the column alone (written below, or by the finish statement).
        set_committed_value(self.account, "memo", stored)
        later = self.later
        if later is not None:
            later.memo = (self.account.id, stored)
        else:
            await self.session.run_sync(write_memo_now, self.account.id, stored)

    # --- record ---
    async def add_row(self, log: RowLog, **values: Any) -> int:
        """Add a row to `log`'s table in this update's transaction and return its id (columns not given
        take their defaults). On PostgreSQL the row waits for the update's finish statement — unless a
        statement runs through the session first, which then finds it written (bot/core/rows.py); read it
        back through the session, not by another connection, within the update."""
        row = log.values(values)
        later = self.later
        if later is not None:
            return int(await later.add(log, row))
        return int(await self.session.run_sync(insert_now, log, row))

    def audit(self, action: str, entity: str = "", entity_id: int | None = None, **detail: Any) -> None:
        """Append an audit-log row in this update's transaction."""
        self.session.add(
            AuditLog(
                at=self.now,
                actor_person_id=self.person.id if self.person else None,
                account_id=self.account.id,
                action=action,
                entity=entity,
                entity_id=entity_id,
                detail=detail,
            )
        )
