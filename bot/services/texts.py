"""Dates and distances as a reader reads them, in the reader's language (shared by every feature)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from bot.i18n import Translator

if TYPE_CHECKING:
    from bot.core.context import Ctx


def date_text(t: Translator, d: date, this_year: int) -> str:
    """A date as the reader reads it: "11月26日" (with the year when not this year)."""
    key = "cadre.date_md" if d.year == this_year else "cadre.date_ymd"
    return t(key, y=d.year, m=d.month, d=d.day)


def fmt_date(ctx: Ctx, d: date) -> str:
    """A date in the speaker's language."""
    return date_text(ctx.t, d, ctx.today.year)


def distance_text(t: Translator, meters: float) -> str:
    """ "350米", "1.2公里", "2公里", "788公里": metres under a kilometre, then kilometres with one decimal
    (none when it is .0) up to 100 km and whole kilometres beyond (GPS is not that precise)."""
    if round(meters) < 1000:
        return t("cadre.meters", n=round(meters))
    km = meters / 1000
    n = f"{km:.0f}" if km >= 100 else f"{km:.1f}".removesuffix(".0")
    return t("cadre.km", n=n)


def kinds_text(t: Translator, kinds: Sequence[str]) -> str:
    """A visit's kinds as the reader reads them: "日常走访、政策宣讲"."""
    return t.raw("visit.kinds_sep").join(t(f"visit.kind.{k}") for k in kinds)
