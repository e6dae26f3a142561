"""Gettext catalogs from locales/ (zh_CN first, en second), merged across feature domains.

Every feature owns one catalog file, locales/<lang>/LC_MESSAGES/<domain>.po, so features never edit
the same file. Message ids are stable symbolic keys ("visit.ask_date"); the text uses str.format
fields ("{name}"). Arguments are HTML-escaped when rendered unless wrapped in `Safe`.
"""

from __future__ import annotations

import gettext
import html
import logging
from pathlib import Path

log = logging.getLogger(__name__)

LANGUAGES = ("zh_CN", "en")
DEFAULT_LANGUAGE = "zh_CN"


class Safe(str):
    """A string already safe for HTML (rendered by us); not escaped again."""

    __slots__ = ()


def normalize_language(code: str | None) -> str | None:
    """Map a client language code ("zh-hans", "en-US") to one we have, or None."""
    if not code:
        return None
    c = code.replace("-", "_").lower()
    if c.startswith("zh"):
        return "zh_CN"
    if c.startswith("en"):
        return "en"
    return None


def compile_catalogs(locales_dir: Path) -> None:
    """Compile every .po under locales_dir to .mo where the .mo is missing or older."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in locales_dir.glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f)
        with mo.open("wb") as f:
            write_mo(f, catalog)


class Translator:
    """Renders message keys in one language, from one merged key -> text table."""

    def __init__(self, lang: str, catalog: dict[str, str]) -> None:
        self.lang = lang
        self._catalog = catalog

    def raw(self, key: str) -> str:
        """The catalog text for key (the key itself when missing)."""
        return self._catalog.get(key, key)

    def __call__(self, key: str, /, **args: object) -> str:
        """Render key with args; arguments are HTML-escaped unless Safe."""
        text = self._catalog.get(key, key)
        if not args:
            return text
        safe = {k: (v if isinstance(v, Safe) else html.escape(str(v), quote=False)) for k, v in args.items()}
        try:
            return text.format_map(safe)
        except (KeyError, IndexError, ValueError):
            log.exception("bad format arguments for message %r in %s", key, self.lang)
            return text

    def has(self, key: str) -> bool:
        return key in self._catalog


class Catalogs:
    """All languages, each merged from every domain's catalog into one table at start-up (a lookup is
    one dict access, not a walk down a chain of gettext fallbacks on every message)."""

    def __init__(self, locales_dir: Path, default: str = DEFAULT_LANGUAGE) -> None:
        self.dir = locales_dir
        self.default = default
        compile_catalogs(locales_dir)
        tables = {lang: _read_language(locales_dir, lang) for lang in LANGUAGES}
        # English falls back to Chinese for a key not yet translated, never to the bare key.
        for lang in LANGUAGES:
            if lang != DEFAULT_LANGUAGE:
                tables[lang] = {**tables[DEFAULT_LANGUAGE], **tables[lang]}
        self._by_lang = {lang: Translator(lang, table) for lang, table in tables.items()}

    def get(self, lang: str | None) -> Translator:
        """The translator for lang (falling back to the default language)."""
        return self._by_lang.get(lang or self.default) or self._by_lang[self.default]


def _read_language(locales_dir: Path, lang: str) -> dict[str, str]:
    """Every domain's compiled catalog for lang, merged (domains never share keys; a later one wins)."""
    table: dict[str, str] = {}
    for mo in sorted((locales_dir / lang / "LC_MESSAGES").glob("*.mo")):
        with mo.open("rb") as f:
            t = gettext.GNUTranslations(f)
        table.update(
            (k, v) for k, v in t._catalog.items() if isinstance(k, str) and k and v  # type: ignore[attr-defined]
        )
    return table
