"""The weekly digest's bar chart: visits and village days per cadre against the target (PNG bytes).

Rendered with matplotlib's Agg backend through the object API (no pyplot state, safe off the event
loop in a worker thread). Servers often lack a CJK font; then Chinese would draw as empty boxes, so
names are transliterated to pinyin and the labels come from the English catalog instead.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from bot.i18n import Translator

_CJK_FONT_HINTS = (
    "Noto Sans CJK",
    "Noto Sans SC",
    "Noto Serif CJK",
    "Source Han Sans",
    "WenQuanYi",
    "SimHei",
    "Microsoft YaHei",
    "PingFang",
    "AR PL",
    "Droid Sans Fallback",
)


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of an installed font that can draw Chinese, or None."""
    from matplotlib import font_manager

    names = sorted({f.name for f in font_manager.fontManager.ttflist})
    for hint in _CJK_FONT_HINTS:
        for n in names:
            if n.lower().startswith(hint.lower()):
                return n
    return None


def _ascii_name(name: str) -> str:
    if name.isascii():
        return name
    from pypinyin import lazy_pinyin

    return " ".join(p.capitalize() for p in lazy_pinyin(name))


def week_chart(
    t: Translator,
    fallback: Translator,
    team: str,
    week_start: str,
    names: Sequence[str],
    visits: Sequence[int],
    days: Sequence[int],
    target: int,
) -> bytes:
    """A grouped bar chart PNG: per cadre, visits and village days, with the village-day target line.

    `fallback` is the translator used when no CJK font is installed (English labels).
    """
    from matplotlib.figure import Figure

    font = cjk_font()
    if font is None:
        t = fallback
        names = [_ascii_name(n) for n in names]
        team = _ascii_name(team)
    title = t.raw("sched.chart.title").format(team=team, start=week_start)
    n = max(len(names), 1)
    fig = Figure(figsize=(max(6.0, 0.7 * n + 2), 4.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    kw: dict[str, Any] = {"fontfamily": font} if font else {}
    xs = list(range(len(names)))
    w = 0.38
    ax.bar([x - w / 2 for x in xs], visits, w, label=t.raw("sched.chart.visits"), color="#4C72B0")
    ax.bar([x + w / 2 for x in xs], days, w, label=t.raw("sched.chart.days"), color="#55A868")
    ax.axhline(target, color="#C44E52", linestyle="--", linewidth=1.2, label=t.raw("sched.chart.target"))
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=30 if n > 6 else 0, ha="right" if n > 6 else "center", **kw)
    ax.set_title(title, **kw)
    ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    legend = ax.legend(loc="upper right", fontsize=8)
    if font:
        for txt in legend.get_texts():
            txt.set_fontfamily(font)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
