"""Every user-facing string goes through locales/: both languages have the same keys, no text is
empty, and every message key written literally in the code exists in the catalogs."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from bot.settings import PACKAGE_DIR, REPO_DIR

LOCALES = REPO_DIR / "locales"
PREFIXES = (
    "core|start|lang|menu|help|ask|role|leader|visit|households|checkin|problem|difficulty|cadre|"
    "cause|hhstatus|policy|sched|io|console|case"
)
# A message key literal handed to a rendering call: ctx.reply("visit.ask_date", ...), t("..."), Retry("...").
KEY_LITERAL = re.compile(
    rf"""(?:\breply|\bt|\braw|\bRetry|\bsend_to\([^,()]*,|\banswer_callback)\(\s*["']((?:{PREFIXES})\.[a-z0-9_]+(?:\.[a-z0-9_]+)*)["']"""
)


def _catalog(lang: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for po in sorted((LOCALES / lang / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as f:
            for m in read_po(f):
                if m.id:
                    out[str(m.id)] = str(m.string)
    return out


def test_both_languages_have_the_same_keys_and_no_empty_text() -> None:
    zh, en = _catalog("zh_CN"), _catalog("en")
    assert set(zh) == set(en), f"only zh: {sorted(set(zh) - set(en))[:10]}; only en: {sorted(set(en) - set(zh))[:10]}"
    assert [k for k, v in {**zh, **en}.items() if not v.strip()] == []


def test_every_text_formats_with_its_fields() -> None:
    """No stray braces: each text renders when given every field either language uses."""
    zh, en = _catalog("zh_CN"), _catalog("en")
    field = re.compile(r"{(\w+)}")
    bad = []
    for k in zh:
        args = {f: "x" for f in set(field.findall(zh[k])) | set(field.findall(en[k]))}
        for text in (zh[k], en[k]):
            try:
                text.format_map(args)
            except (KeyError, ValueError, IndexError):
                bad.append(k)
    assert bad == []


def test_literal_keys_in_code_exist() -> None:
    zh = _catalog("zh_CN")
    missing: list[str] = []
    for path in sorted(Path(PACKAGE_DIR).rglob("*.py")):
        for key in KEY_LITERAL.findall(path.read_text(encoding="utf-8")):
            if key not in zh and not any(k.startswith(key + ".") for k in zh):
                missing.append(f"{path.relative_to(REPO_DIR)}: {key}")
    assert missing == []
