"""Secrets out of logs (issue 10 #4): bot tokens are redacted from every log record of every logger.

python-telegram-bot's httpx and aiogram's aiohttp log request URLs (`…/bot<token>/getUpdates`) at INFO,
and an exception's text may carry the URL too. `install()` wraps the log-record factory, so every record
any logger creates (whatever its handlers, pytest's capture included) has its message, arguments and
traceback text redacted before a handler sees it; `RedactingFilter` does the same as a handler filter
and is put on the root logger's handlers. Records cost nothing extra unless they are emitted at all.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

REDACTED = "<redacted>"
# A bot token (digits, a colon, 30+ URL-safe characters), and anything after /bot in an API URL path.
_TOKEN = re.compile(r"\d{3,}:[A-Za-z0-9_-]{30,}")
_URL_TOKEN = re.compile(r"(/(?:file/)?bot)[^/\s'\"]+(?=/)")
_installed = False


# WeCom's API takes its credentials in the query string (gettoken?corpsecret=…, ?access_token=…).
_QUERY_SECRET = re.compile(r"((?:access_token|corpsecret)=)[^&\s'\"]+")


def redact(text: str) -> str:
    """`text` with bot tokens (and WeCom's secret and access token in URLs) replaced."""
    if "=" in text:
        text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    if ":" not in text and "/bot" not in text:
        return text
    return _URL_TOKEN.sub(rf"\1{REDACTED}", _TOKEN.sub(REDACTED, text))


def _scrub(record: logging.LogRecord) -> None:
    if record.args or not isinstance(record.msg, str):
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for logging to report
            return
        record.msg, record.args = redact(message), None
    else:
        record.msg = redact(record.msg)
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """A handler filter redacting bot tokens from each record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)
        return True


def install() -> None:
    """Redact every log record from now on (idempotent): the record factory, and the root handlers."""
    global _installed
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub(record)
        return record

    logging.setLogRecordFactory(factory)
