"""Long messages split the way Telegram counts them (issue 10 #17).

Telegram limits a message to 4096 and a caption to 1024 *UTF-16 code units* after entity parsing; an
emoji is two units, so counting Python characters sent over-long summaries that were refused with
"message is too long". `split_html` cuts by UTF-16 units, at line breaks where it can, never inside an
HTML tag or entity ("&amp;" cut in two showed a stray "amp;"), and keeps tags balanced: a tag open at
a cut is closed at the end of the part and opened again at the start of the next.

The count is of the HTML source, which is never shorter than the text Telegram counts, so a part that
fits here fits there.
"""

from __future__ import annotations

import re

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

_TOKEN = re.compile(r"<[^<>]*>|&#?[A-Za-z0-9]+;|[^<&]+|[<&]")
_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][\w-]*)")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def fits_caption(text: str) -> bool:
    return utf16_len(text) <= CAPTION_LIMIT


class _Builder:
    def __init__(self, limit: int, html: bool) -> None:
        self.limit = limit
        self.html = html
        self.parts: list[str] = []
        self.stack: list[tuple[str, str]] = []  # (tag name, opening tag text)
        self.buf: list[str] = []
        self.size = 0
        self.body = False  # the current part holds more than re-opened tags
        self._start()

    def _closing(self, stack: list[tuple[str, str]]) -> int:
        return sum(len(name) + 3 for name, _ in stack)

    def _start(self) -> None:
        self.buf = [opening for _, opening in self.stack]
        self.size = sum(utf16_len(o) for o in self.buf)
        self.body = False

    def flush(self) -> None:
        if not self.body:
            return
        closing = "".join(f"</{name}>" for name, _ in reversed(self.stack))
        part = "".join(self.buf) + closing
        if part.strip():
            self.parts.append(part)
        self._start()

    def _after(self, tokens: list[str]) -> list[tuple[str, str]]:
        stack = list(self.stack)
        if not self.html:
            return stack
        for tok in tokens:
            if tok.startswith("<") and (m := _TAG.match(tok)):
                closing, name = m.group(1) == "/", m.group(2).lower()
                if closing:
                    for i in range(len(stack) - 1, -1, -1):
                        if stack[i][0] == name:
                            del stack[i:]
                            break
                elif not tok.endswith("/>"):
                    stack.append((name, tok))
        return stack

    def _fits(self, tokens: list[str], extra: int) -> bool:
        return self.size + extra + self._closing(self._after(tokens)) <= self.limit

    def _take(self, tokens: list[str], extra: int) -> None:
        self.stack = self._after(tokens)
        self.buf.extend(tokens)
        self.size += extra
        self.body = True

    def add_line(self, tokens: list[str]) -> None:
        extra = sum(utf16_len(t) for t in tokens)
        if self._fits(tokens, extra):
            self._take(tokens, extra)
            return
        self.flush()
        if self._fits(tokens, extra):
            self._take(tokens, extra)
            return
        for tok in tokens:  # a line longer than a part: cut between tokens, text runs by characters
            self.add_token(tok)

    def add_token(self, tok: str) -> None:
        n = utf16_len(tok)
        if self._fits([tok], n):
            self._take([tok], n)
            return
        if tok.startswith(("<", "&")) and len(tok) > 1:
            self.flush()
            self._take([tok], n)  # a tag or an entity is never cut (one longer than a part is sent whole)
            return
        for ch in tok:  # a text run: as much as fits here, the rest in the next parts
            w = utf16_len(ch)
            if not self._fits([], w):
                self.flush()
            self._take([ch], w)


def split_html(text: str, limit: int = TEXT_LIMIT, html: bool = True) -> list[str]:
    """`text` in parts of at most `limit` UTF-16 units; see the module docstring."""
    if len(text) * 2 <= limit or utf16_len(text) <= limit:  # no character is more than two units
        return [text]
    b = _Builder(limit, html)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if i < len(lines) - 1:
            line += "\n"
        tokens = _TOKEN.findall(line) if html else [line]
        b.add_line(tokens)
    b.flush()
    return [p.rstrip("\n") or p for p in b.parts] or [text[:0]]
