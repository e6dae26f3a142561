"""Typed input a dialog step accepts (shared by the dialogs)."""

from __future__ import annotations

from bot.core.context import Ctx
from bot.core.dialog import Retry
from bot.services.privacy import stored_text
from bot.services.stray import is_number


def text_input(ctx: Ctx) -> tuple[str | None, Retry | None]:
    """The typed text of this update, or the Retry that explains why it is not acceptable."""
    text = (ctx.inc.text or "").strip()
    if not text:
        return None, Retry("cadre.need_text")
    if is_number(text):
        # "1" where words are asked for is a button number typed, not an answer worth keeping.
        return None, Retry("core.stray.words")
    limit = ctx.core.settings.max_text_length
    if len(text) > limit:
        return None, Retry("core.text_too_long", {"limit": limit, "length": len(text)})
    # ID numbers typed into a note never reach the dialog's draft or the database.
    return stored_text(text), None
