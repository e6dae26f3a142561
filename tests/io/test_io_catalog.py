"""Every io message key the code uses is in both catalogs, with the same format fields."""

from __future__ import annotations

import re
import string

from babel.messages.pofile import read_po

from bot.settings import REPO_DIR

KEY = re.compile(r"""["'](io\.(?:err|at|bad|import|template|entity|export|report)\.[a-z_.]+)["']""")


def _catalog(lang: str) -> dict[str, str]:
    """io.po and the io domains beside it (iosafe.po: limits, formulas, ID numbers)."""
    out: dict[str, str] = {}
    for po in sorted((REPO_DIR / "locales" / lang / "LC_MESSAGES").glob("io*.po")):
        with po.open("rb") as f:
            out.update({m.id: m.string for m in read_po(f) if m.id})
    return out


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_keys_used_exist_in_both_languages() -> None:
    zh, en = _catalog("zh_CN"), _catalog("en")
    assert set(zh) == set(en)
    used = {k for p in (REPO_DIR / "bot" / "io").glob("*.py") for k in KEY.findall(p.read_text("utf-8"))}
    used |= {f"io.entity.{e}" for e in ("villages", "teams", "people", "households", "members", "pairings")}
    used |= {f"io.report.season.{s}" for s in ("spring", "summer", "autumn")}
    assert len(used) > 60
    assert used <= set(zh), used - set(zh)
    for key in zh:
        assert zh[key] and en[key], key
        # English may leave out a field that only Chinese needs (年/月), never add one.
        assert _fields(en[key]) <= _fields(zh[key]) | {"ym"}, key
