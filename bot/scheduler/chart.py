"""The weekly digest's bar chart: visits and village days per cadre against the target (PNG bytes).

Rendered with matplotlib's Agg backend through the object API (no pyplot state, safe off the event
loop in a worker thread). The Chinese font comes from `bot.fonts` (installed from the OS packages);
without one, names are transliterated to pinyin and the labels come from the English catalog.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.fonts import cjk_font
from bot.i18n import Translator

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _ascii_name(name: str) -> str:
    if name.isascii():
        return name
    import unicodedata

    from pypinyin import lazy_pinyin

    # Full-width brackets have no glyph in a Latin font: fold them to ASCII first.
    name = unicodedata.normalize("NFKC", name)
    return " ".join(p.capitalize() for p in lazy_pinyin(name) if p.strip())


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
    buf = io.BytesIO()
    week_figure(t, fallback, team, week_start, names, visits, days, target).savefig(buf, format="png")
    return buf.getvalue()


def week_figure(
    t: Translator,
    fallback: Translator,
    team: str,
    week_start: str,
    names: Sequence[str],
    visits: Sequence[int],
    days: Sequence[int],
    target: int,
) -> Figure:
    """The digest's figure (laid out, not yet saved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    font = cjk_font()
    if font is None:
        t = fallback
        names = [_ascii_name(n) for n in names]
        team = _ascii_name(team)
        family = ["DejaVu Sans"]
    else:
        family = font.families()
    title = t.raw("sched.chart.title").format(team=team, start=week_start)
    n = max(len(names), 1)
    # Constrained layout keeps the title, the legend under the title and the rotated names on the canvas.
    fig = Figure(figsize=(max(6.4, 0.7 * n + 2), 4.6), dpi=100, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    kw: dict[str, Any] = {"fontfamily": family}
    xs = list(range(len(names)))
    w = 0.38
    for bars in (
        ax.bar([x - w / 2 for x in xs], visits, w, label=t.raw("sched.chart.visits"), color="#4C72B0"),
        ax.bar([x + w / 2 for x in xs], days, w, label=t.raw("sched.chart.days"), color="#55A868"),
    ):
        ax.bar_label(bars, padding=1, fontsize=8, fontfamily=family)  # a zero still shows as "0"
    ax.axhline(target, color="#C44E52", linestyle="--", linewidth=1.2, label=t.raw("sched.chart.target"))
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=30 if n > 6 else 0, ha="right" if n > 6 else "center", **kw)
    ax.set_ylim(0, max([*visits, *days, target, 1]) * 1.1 + 0.5)
    ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    for tick in ax.get_yticklabels():
        tick.set_fontfamily(family)
    ax.spines[["top", "right"]].set_visible(False)
    size = 13.0
    head = fig.suptitle(title, fontsize=size, **kw)
    renderer = FigureCanvasAgg(fig).get_renderer()
    while size > 8 and head.get_window_extent(renderer).width > 0.96 * fig.get_figwidth() * fig.dpi:
        size -= 0.5
        head.set_fontsize(size)
    # The legend goes between the title and the plot, in one row: it never covers a bar.
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False,
              prop={"family": family, "size": 9})
    return fig
