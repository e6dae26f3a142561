"""Charts draw Chinese with a real CJK font: this FAILS on a machine where the digest or the monthly
report would fall back to pinyin or draw boxes (install one: `apt-get install fonts-wqy-microhei`,
as `.ci/run` does). Also the layout: the legend covers no bar, the title is not clipped, the charts
start right under the summary, and the leader is no cadre with a target."""

from __future__ import annotations

import logging
import warnings
from datetime import date
from typing import Any

import pytest
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from bot import fonts
from bot.i18n import Catalogs, Translator
from bot.io.report import CadreLine, MonthlyFigures, OverdueLine, kpi_lines, render_png, report_figure
from bot.scheduler.chart import week_chart, week_figure
from bot.settings import REPO_DIR
from bot.store.enums import VisitKind

TEAM = "青石村驻村工作队（演示）"
NAMES = ["王建国", "李红梅", "欧阳秀英", "张志强", "刘桂兰", "陈玉华", "杨明亮", "黄春生"]


@pytest.fixture(scope="module")
def zh() -> Translator:
    return Catalogs(REPO_DIR / "locales").get("zh_CN")


@pytest.fixture(scope="module")
def en() -> Translator:
    return Catalogs(REPO_DIR / "locales").get("en")


def _figures() -> MonthlyFigures:
    cadres = [
        CadreLine(i, n, f"1390000{i:04d}", households=15, visits=v, visit_target=15, days=d, day_target=8)
        for i, (n, v, d) in enumerate(zip(NAMES, (15, 12, 17, 0, 13, 15, 9, 14), (8, 6, 9, 0, 8, 7, 8, 6), strict=True))
    ]
    return MonthlyFigures(
        team=TEAM,
        month=date(2026, 11, 1),
        last_day=date(2026, 11, 30),
        as_of=date(2026, 11, 28),
        cadres=cadres,
        season=VisitKind.AUTUMN,
        season_start=date(2026, 9, 20),
        season_end=date(2026, 10, 31),
        season_done=110,
        season_total=120,
        difficulties_new=3,
        difficulties_resolved=2,
        difficulties_open=4,
        overdue=[OverdueLine("DEMO0001", "张大山", "青石村（演示）", "王建国", None, None)],
        difficulties=[],
        cadence_days=30,
        village_days_per_week=2,
    )


def _week(zh: Translator, en: Translator) -> Any:
    return week_figure(zh, en, TEAM, "2026-11-16", NAMES, [5, 3, 8, 0, 4, 6, 1, 12], [2, 1, 3, 0, 2, 2, 1, 3], 2)


def test_a_cjk_font_is_installed_and_found() -> None:
    font = fonts.cjk_font()
    assert font is not None, f"no Chinese font: apt-get install {fonts.DEBIAN_PACKAGE} (see README set-up)"
    # matplotlib resolves the family the charts ask for to that very file, which has every glyph.
    resolved = font_manager.findfont(font_manager.FontProperties(family=font.families()), fallback_to_default=False)
    assert resolved == font.path
    assert not fonts.missing_glyphs(resolved, fonts.PROBE)


def test_every_chart_text_has_glyphs(zh: Translator) -> None:
    font = fonts.cjk_font()
    assert font is not None
    texts = [TEAM, *NAMES, *kpi_lines(_figures(), zh)]
    texts += [zh.raw(k) for k in ("sched.chart.title", "sched.chart.visits", "sched.chart.days", "sched.chart.target")]
    texts += [zh.raw(f"io.report.{k}") for k in ("title", "period", "visits_chart", "days_chart", "visits",
                                                  "target", "days")]
    missing = fonts.missing_glyphs(font.path, "".join(texts).replace("{", "").replace("}", ""))
    assert not missing, f"{font.family} has no glyph for {sorted(missing)}"


def test_charts_render_without_glyph_warnings(
    zh: Translator, en: Translator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="matplotlib")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        week = week_chart(zh, en, TEAM, "2026-11-16", NAMES, [1] * 8, [2] * 8, 2)
        page = render_png(_figures(), zh, en)
    assert week.startswith(b"\x89PNG") and page.startswith(b"\x89PNG")
    glyphs = [str(w.message) for w in caught if "Glyph" in str(w.message) or "font" in str(w.message).lower()]
    assert not glyphs
    assert not [r.getMessage() for r in caplog.records if "findfont" in r.getMessage()]


def test_a_font_installed_after_matplotlibs_cache_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib's cached font list predates the apt-get install: the Debian font folders are scanned."""
    font = fonts.cjk_font()
    assert font is not None
    stale = [f for f in font_manager.fontManager.ttflist if f.fname != font.path]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale)
    assert fonts._from_font_manager() is None or fonts._from_font_manager() != font
    found = fonts._find()
    assert found is not None and not fonts.missing_glyphs(found.path, fonts.PROBE)


def _overlap(a: Any, b: Any) -> bool:
    return a.x0 < b.x1 - 0.5 and b.x0 < a.x1 - 0.5 and a.y0 < b.y1 - 0.5 and b.y0 < a.y1 - 0.5


def test_week_chart_legend_covers_no_bar_and_title_fits(zh: Translator, en: Translator) -> None:
    fig = _week(zh, en)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    [ax] = fig.axes
    legend = ax.get_legend().get_window_extent(renderer)
    bars = [p.get_window_extent(renderer) for p in ax.patches]
    assert bars and not any(_overlap(legend, b) for b in bars)
    canvas = fig.bbox
    title = fig._suptitle.get_window_extent(renderer)  # type: ignore[union-attr]
    assert canvas.x0 <= title.x0 and title.x1 <= canvas.x1 and title.y1 <= canvas.y1
    assert not _overlap(title, legend)


def test_report_page_layout(zh: Translator, en: Translator) -> None:
    fig = report_figure(_figures(), zh, en)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    canvas = fig.bbox
    texts = [t for t in fig.texts if isinstance(t, Text)]
    for t in texts:  # nothing drawn off the page (a long title is shrunk to fit)
        box = t.get_window_extent(renderer)
        assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1, t.get_text()
    summary = next(t for t in texts if t.get_bbox_patch() is not None)
    summary_bottom = summary.get_bbox_patch().get_window_extent(renderer).y0  # type: ignore[union-attr]
    first_chart_top = max(ax.get_tightbbox(renderer).y1 for ax in fig.axes)
    # The first chart starts right under the summary: no empty band (more than ~8% of the page).
    assert 0 < summary_bottom - first_chart_top < 0.08 * canvas.height
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        assert not any(_overlap(legend, p.get_window_extent(renderer)) for p in ax.patches)


def test_long_team_name_title_is_shrunk_not_clipped(zh: Translator, en: Translator) -> None:
    f = _figures()
    f.team = "某某省某某市某某县某某镇某某村乡村振兴驻村帮扶工作队（第三批次·演示）"
    fig = report_figure(f, zh, en)
    renderer = FigureCanvasAgg(fig).get_renderer()
    title = fig.texts[0].get_window_extent(renderer)
    assert fig.bbox.x0 <= title.x0 and title.x1 <= fig.bbox.x1
