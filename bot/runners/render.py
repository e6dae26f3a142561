"""Rendering is the channel's job: the core's Reply says what (text in the core's simple semantic markup,
see `TextFormat` in bot/core/types.py), each channel says how.

- Telegram: the markup is the subset of HTML the Bot API understands, so it goes as is with
  parse_mode HTML; plain text goes without a parse mode.
- Channels without formatting (the console, SMS, ...): `plain` turns markup into readable text.
- WeCom: `wecom_content` gives a text message, or WeCom markdown (bold, links, code) when the markup
  has any; `split_bytes` cuts at line breaks to WeCom's 2,048 bytes, never inside a character.
- Uploads: `image_type` names a picture's real content type from its bytes (JPEG, PNG, WebP, GIF).
"""

from __future__ import annotations

import html
import re
from pathlib import PurePath

from bot.core.types import Photo, Reply

_TAG = re.compile(r"<[^>]+>")
_LINK = re.compile(r'<a\s+href="([^"]*)"[^>]*>(.*?)</a>', re.S)


def plain(text: str) -> str:
    """Markup to plain text: links keep their address, tags go, entities are unescaped."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(1) != m.group(2) else m.group(2), text)
    text = re.sub(r"<br\s*/?>", "\n", text)
    return html.unescape(_TAG.sub("", text))


def plain_reply_text(r: Reply) -> str:
    """A Reply's text for a channel without formatting."""
    text = r.text or ""
    return plain(text) if r.format == "markup" else text


def telegram_parse_mode(r: Reply) -> str | None:
    """The Bot API parse_mode for a Reply: the core's markup is Telegram HTML."""
    return "HTML" if r.format == "markup" else None


_MD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"<b>(.*?)</b>", re.S), r"**\1**"),
    (re.compile(r"<code>(.*?)</code>", re.S), r"`\1`"),
    (re.compile(r'<a\s+href="([^"]*)"[^>]*>(.*?)</a>', re.S), r"[\2](\1)"),
)
_MD_WORTH = re.compile(r"<(b|a|code)[\s>]")


def wecom_content(r: Reply) -> tuple[str, str]:
    """(msgtype, content) for a WeCom message/send: "markdown" when the markup has bold, links or code
    (WeCom's markdown: **bold**, [text](url), `code`), else "text" with the tags gone. No HTML reaches WeCom."""
    text = r.text or ""
    if r.format != "markup":
        return "text", text
    if not _MD_WORTH.search(text):
        return "text", plain(text)
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    return "markdown", plain(text)


def split_bytes(text: str, limit: int) -> list[str]:
    """Split text into parts of at most `limit` UTF-8 bytes: at line breaks where possible, inside a long
    line only between characters (never mid-character)."""
    if len(text.encode()) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line.encode()) > limit:
            if current:
                parts.append(current)
                current = ""
            cut = line.encode()[:limit].decode("utf-8", errors="ignore")
            parts.append(cut)
            line = line[len(cut):]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return [p for p in parts if p]


_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", ".png"),
    (b"GIF87a", 0, "image/gif", ".gif"),
    (b"GIF89a", 0, "image/gif", ".gif"),
)


def image_type(data: bytes) -> tuple[str, str] | None:
    """(content type, file extension) of an image from its first bytes, or None if not one we know."""
    for magic, offset, mime, ext in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return mime, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", ".webp"
    return None


def photo_upload(photo: Photo) -> tuple[str, str]:
    """(filename, content type) to upload a photo's bytes with: what the bytes are, not what the name says."""
    kind = image_type(photo.data or b"")
    if kind is None:
        return photo.filename, "application/octet-stream"
    mime, ext = kind
    name = PurePath(photo.filename or "photo")
    same = name.suffix.lower() in ((ext, ".jpeg") if ext == ".jpg" else (ext,))
    return (photo.filename if same else f"{name.stem or 'photo'}{ext}"), mime
