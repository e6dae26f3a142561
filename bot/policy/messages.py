"""The policy domain's message catalog (locales/<lang>/LC_MESSAGES/policy.po), read directly at load.

The engine is channel-free and builds whole answer texts itself, so it reads its own .po files
with babel rather than depending on compiled .mo files or the bot's Translator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

DOMAIN = "policy"
LANGS = ("zh_CN", "en")
DEFAULT = "zh_CN"


@dataclass(frozen=True)
class Messages:
    """Message key -> text, per language; English falls back to Chinese, then to the key."""

    by_lang: dict[str, dict[str, str]]

    @classmethod
    def load(cls, locales_dir: Path) -> Messages:
        """Read policy.po for every language."""
        by_lang: dict[str, dict[str, str]] = {}
        for lang in LANGS:
            path = Path(locales_dir) / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
            table: dict[str, str] = {}
            if path.exists():
                with path.open("rb") as f:
                    for msg in read_po(f):
                        if msg.id and isinstance(msg.id, str) and msg.string:
                            table[msg.id] = str(msg.string)
            else:
                log.warning("no policy catalog at %s", path)
            by_lang[lang] = table
        return cls(by_lang)

    def get(self, lang: str, key: str, /, **args: object) -> str:
        """The text for key in lang with {fields} filled (not HTML-escaped: the engine escapes the whole text)."""
        text = self.by_lang.get(lang, {}).get(key) or self.by_lang[DEFAULT].get(key) or key
        if not args:
            return text
        try:
            return text.format_map(args)
        except (KeyError, IndexError, ValueError):
            log.exception("bad format arguments for %s in %s", key, lang)
            return text

    def missing(self, lang: str) -> list[str]:
        """Keys present in the default language but not in lang."""
        return sorted(set(self.by_lang[DEFAULT]) - set(self.by_lang.get(lang, {})))
