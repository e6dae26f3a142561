"""The dialog framework: steps as a StrEnum, state and draft data persisted per account.

A dialog never keeps anything in memory between updates. Its step, the data entered so far and
the back-stack live in `dialog_states`, so a restart or another worker continues exactly where
the user was. Buttons carry "d:<nonce>:<value>"; the nonce ties them to one dialog instance, so a
button from a finished or replaced dialog is refused instead of acting twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.callbacks import REST, TOKEN, WORD, Callback, one_of
from bot.core.context import Ctx
from bot.core.types import Button, InlineKeyboard, KeyButton, ReplyKeyboard
from bot.store.enums import Role
from bot.store.models import DialogState

BACK = "__back"
CANCEL = "__cancel"
# A dialog's own buttons: d:<nonce>:<value> (the value is the dialog's, e.g. "hh:12"); and the offer to
# resume a parked draft: dr:<dialog>:resume|new. Both prefixes belong to the engine.
DIALOG_BUTTON = Callback("d", None, TOKEN, REST)
RESUME_DRAFT = Callback("dr", None, WORD, one_of("resume", "new"))


def new_nonce() -> str:
    return secrets.token_hex(4)


@dataclass
class Goto:
    """Move to another step (the current one is pushed on the back-stack)."""

    step: str


@dataclass
class Retry:
    """Input not accepted: say why (message key + args) and ask the same step again; nothing is lost."""

    key: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Finish:
    """The dialog is complete; its state is removed. With pass_on, the input that ended it is then
    handled as if no dialog were active (e.g. a question typed where an invite code was expected)."""

    pass_on: bool = False


@dataclass
class Replace:
    """Stay at the current step without asking again (e.g. a photo added; the step already replied)."""


Next = Goto | Retry | Finish | Replace


class State:
    """A view on one DialogState row with helpers for steps and buttons."""

    def __init__(self, row: DialogState) -> None:
        self.row = row
        # What a step read during this update and its prompt may show again in the same update (e.g. a
        # picker's rows: on_input matched against them, ask lists them): never persisted, gone with the
        # update. A prompt takes it with pop(), so it is used at most once.
        self.scratch: dict[str, Any] = {}

    @property
    def step(self) -> str:
        return self.row.step

    @property
    def nonce(self) -> str:
        return self.row.nonce

    @property
    def data(self) -> dict[str, Any]:
        return self.row.data

    def set(self, **values: Any) -> None:
        """Store entered values (JSON-serialisable); reassigns so the change is persisted."""
        self.row.data = {**self.row.data, **values}

    def drop(self, *keys: str) -> None:
        self.row.data = {k: v for k, v in self.row.data.items() if k not in keys}

    def btn(self, text: str, value: str) -> Button:
        """An inline button bound to this dialog instance."""
        return Button(text=text, data=DIALOG_BUTTON.join(self.nonce, value))

    def nav_row(self, ctx: Ctx, back: bool = True) -> tuple[Button, ...]:
        """The shared back / cancel row."""
        row = [self.btn(ctx.t("core.btn_back"), BACK)] if back and self.row.history else []
        row.append(self.btn(ctx.t("core.btn_cancel"), CANCEL))
        return tuple(row)

    def keyboard(self, ctx: Ctx, rows: list[list[Button]], back: bool = True) -> InlineKeyboard:
        """Inline keyboard of rows plus the back / cancel row."""
        return InlineKeyboard((*(tuple(r) for r in rows if r), self.nav_row(ctx, back)))

    def value(self, ctx: Ctx) -> str | None:
        """The value of a button of this dialog that was pressed, if any."""
        data = ctx.inc.callback_data
        if data is None:
            return None
        # The engine parsed the payload (DIALOG_BUTTON) before any step sees it: a prefix test is enough.
        head = f"{DIALOG_BUTTON.stem}:{self.nonce}:"
        return data[len(head) :] if data.startswith(head) else None


def reply_keyboard(ctx: Ctx, *buttons: KeyButton, back: bool = True) -> ReplyKeyboard:
    """A reply keyboard (e.g. the share-location button) with typed back / cancel buttons under it."""
    nav = (
        (KeyButton(ctx.t("core.btn_back")), KeyButton(ctx.t("core.btn_cancel")))
        if back
        else (KeyButton(ctx.t("core.btn_cancel")),)
    )
    return ReplyKeyboard(rows=(tuple(buttons), nav), one_time=True)


@contextmanager
def dialog_rows_unflushed(session: AsyncSession) -> Iterator[None]:
    """For a read that does not touch `dialog_states`: when the session's only pending changes are dialog
    rows (a step moved on: its row is dirty), the read runs without the autoflush that would write the row
    now in a round trip of its own; the engine writes it at the end of the update anyway, on PostgreSQL in
    its finish statement. With any other pending change (a visit added, a household edited) the autoflush
    runs as usual, so the read still sees the update's own writes."""
    s = session.sync_session
    if all(isinstance(o, DialogState) for o in (*s.new, *s.dirty, *s.deleted)):
        with s.no_autoflush:
            yield
    else:
        yield


async def dialog_state(ctx: Ctx, name: str) -> DialogState | None:
    """The speaker's state row of dialog `name` (active or parked), if any."""
    q = select(DialogState).where(DialogState.account_id == ctx.account.id, DialogState.dialog == name)
    return (await ctx.session.execute(q)).scalar_one_or_none()


class Dialog:
    """Base of every multi-step dialog. Subclasses define name, roles, steps, ask() and on_input()."""

    name: ClassVar[str]
    roles: ClassVar[frozenset[Role]]
    first_step: ClassVar[str]
    title_key: ClassVar[str]  # message key naming the dialog ("记录走访"), for drafts and resume offers

    async def on_start(self, ctx: Ctx, st: State, args: dict[str, Any]) -> str | None:
        """Initialise data from args; return the first step (or None to finish at once)."""
        return self.first_step

    async def ask(self, ctx: Ctx, st: State) -> None:
        """Prompt the user for the current step."""
        raise NotImplementedError

    async def on_input(self, ctx: Ctx, st: State) -> Next:
        """Handle the user's input (text, button value, location, photo) at the current step."""
        raise NotImplementedError


class StepEnum(StrEnum):
    """Base for dialog step enums."""
