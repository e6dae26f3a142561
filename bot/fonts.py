"""The Chinese font the charts draw with (the weekly digest and the monthly report).

Chinese fonts come from the OS package manager (Debian: `apt-get install fonts-wqy-microhei`, or the
larger fonts-noto-cjk). matplotlib keeps a cached list of the fonts it found when the cache was built,
so a font installed later is invisible to it by family name: when no known CJK family has the glyphs,
the Debian font folders are scanned and what is found there is added to matplotlib's font manager.

When no CJK font exists at all the charts still render (English labels, names in pinyin) and say so
in a footnote; `tests/test_chart_fonts.py` fails on such a machine, so CI cannot pass without one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Family names as matplotlib reports them, best first.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK JP",
    "Noto Serif CJK SC",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Hiragino Sans GB",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "Droid Sans Fallback",
)
# Where Debian (and most Linux distributions) put fonts, and file-name hints of the CJK ones.
FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
    Path.home() / ".fonts",
)
_FILE_HINTS = ("wqy", "notosanscjk", "notoserifcjk", "sourcehan", "droidsansfallback", "uming", "ukai", "simhei")
# Text every chart draws: Chinese, full-width brackets and colon, digits and the bullet.
PROBE = "帮扶通青石村驻村工作队（演示）周报：走访打卡目标完成率逾期春耕夏收秋播 0123456789%•"

# The Debian package the README and .ci/run install.
DEBIAN_PACKAGE = "fonts-wqy-microhei"


@dataclass(frozen=True)
class ChartFont:
    family: str
    path: str

    def families(self) -> list[str]:
        """The font list to give matplotlib texts: the CJK font, then DejaVu for anything it lacks."""
        return [self.family, "DejaVu Sans"]


_lock = threading.Lock()
_found: list[ChartFont | None] = []


def missing_glyphs(path: str, text: str) -> set[str]:
    """The characters of text (other than spaces) the font file has no glyph for."""
    from matplotlib.ft2font import FT2Font

    font = FT2Font(path)
    return {c for c in set(text) if not c.isspace() and not font.get_char_index(ord(c))}


def _has_glyphs(path: str) -> bool:
    try:
        return not missing_glyphs(path, PROBE)
    except (OSError, RuntimeError, ValueError):
        return False


def _from_font_manager() -> ChartFont | None:
    from matplotlib import font_manager

    rank = {name: i for i, name in enumerate(CJK_FAMILIES)}
    entries = sorted(
        (f for f in font_manager.fontManager.ttflist if f.name in rank or "CJK" in f.name),
        key=lambda f: (rank.get(f.name, len(rank)), f.weight != 400 and f.weight != "normal", f.fname),
    )
    for f in entries:
        if _has_glyphs(f.fname):
            return ChartFont(str(f.name), str(f.fname))
    return None


def _scan_font_dirs() -> list[Path]:
    found: list[Path] = []
    for root in FONT_DIRS:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in (".ttf", ".ttc", ".otf") and any(
                h in path.name.lower().replace("-", "").replace("_", "") for h in _FILE_HINTS
            ):
                found.append(path)
    return found


def _find() -> ChartFont | None:
    try:
        font = _from_font_manager()
        if font is not None:
            return font
        # Installed after matplotlib built its font cache: add the files to the manager ourselves.
        from matplotlib import font_manager

        known = {f.fname for f in font_manager.fontManager.ttflist}
        for path in _scan_font_dirs():
            if str(path) not in known and _has_glyphs(str(path)):
                try:
                    font_manager.fontManager.addfont(str(path))
                except (OSError, RuntimeError, ValueError):
                    continue
        return _from_font_manager()
    except Exception:  # a broken font cache must not break a report
        log.exception("looking for a CJK font failed")
        return None


def cjk_font() -> ChartFont | None:
    """The installed font that draws every character the charts use, or None (looked up once)."""
    with _lock:
        if not _found:
            font = _find()
            if font is None:
                log.warning(
                    "no Chinese font found: charts fall back to English and pinyin "
                    "(install one, e.g. apt-get install %s)",
                    DEBIAN_PACKAGE,
                )
            _found.append(font)
        return _found[0]
