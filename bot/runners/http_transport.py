"""A minimal Telegram Bot API client over aiohttp, implementing the `Transport` port for the sender.

Only what reminders need: sendMessage, sendPhoto (multipart upload or file_id), sendDocument,
answerCallbackQuery, setMyCommands. Errors map onto the port's: 429 → RetryAfter(retry_after),
403 (blocked, deactivated) and 400 "chat not found" → Unreachable, 5xx / network / timeout →
TransientError; any other refusal is a plain SendError (the sender gives that message up).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from bot.core.types import (
    AnswerCallback,
    InlineKeyboard,
    Markup,
    Outgoing,
    RemoveKeyboard,
    Reply,
    ReplyKeyboard,
    RetryAfter,
    SendError,
    SetCommands,
    TransientError,
    Unreachable,
)

DEFAULT_API_URL = "https://api.telegram.org"


def markup_json(m: Markup | None) -> str | None:
    """The Bot API reply_markup JSON for a Markup."""
    if m is None:
        return None
    if isinstance(m, InlineKeyboard):
        rows = [
            [{"text": b.text, **({"url": b.url} if b.url else {"callback_data": b.data or ""})} for b in row]
            for row in m.rows
        ]
        return json.dumps({"inline_keyboard": rows}, ensure_ascii=False)
    if isinstance(m, ReplyKeyboard):
        kb = [
            [
                {"text": b.text, **({"request_location": True} if b.request_location else {}),
                 **({"request_contact": True} if b.request_contact else {})}
                for b in row
            ]
            for row in m.rows
        ]
        d: dict[str, Any] = {"keyboard": kb, "resize_keyboard": True, "one_time_keyboard": m.one_time}
        if m.placeholder:
            d["input_field_placeholder"] = m.placeholder
        return json.dumps(d, ensure_ascii=False)
    if isinstance(m, RemoveKeyboard):
        return json.dumps({"remove_keyboard": True})
    raise TypeError(f"unknown markup {type(m).__name__}")


class HttpTransport:
    """Sends Outgoing actions to the Bot API at `api_url` (a self-hosted server or a test fake)."""

    channel = "telegram"

    def __init__(self, token: str, api_url: str | None = None, *, timeout: float = 30.0) -> None:
        self._base = f"{(api_url or DEFAULT_API_URL).rstrip('/')}/bot{token}/"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Created lazily inside the running loop; aiohttp sessions are bound to one loop.
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def call(self, method: str, data: dict[str, Any] | aiohttp.FormData) -> Any:
        """POST one Bot API method and return its `result`, mapping failures to SendError kinds."""
        try:
            if isinstance(data, aiohttp.FormData):
                resp_cm = self._http().post(self._base + method, data=data)
            else:
                resp_cm = self._http().post(self._base + method, json={k: v for k, v in data.items()
                                                                         if v is not None})
            async with resp_cm as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except (json.JSONDecodeError, aiohttp.ContentTypeError, ValueError):
                    body = {}
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise TransientError(f"{method}: {type(e).__name__}: {e}") from e
        if not isinstance(body, dict):
            body = {}
        if status == 200 and body.get("ok"):
            return body.get("result")
        desc = str(body.get("description") or f"HTTP {status}")
        if status == 429:
            params = body.get("parameters") or {}
            raise RetryAfter(float(params.get("retry_after") or 1))
        if status == 403:
            raise Unreachable(desc)
        if status == 400 and ("chat not found" in desc.lower() or "user is deactivated" in desc.lower()):
            raise Unreachable(desc)
        if status >= 500 or status == 0:
            raise TransientError(f"{method}: {desc}")
        raise SendError(f"{method}: {desc}")

    async def send(self, action: Outgoing) -> str | None:
        """Send one action; returns the message id for messages."""
        if isinstance(action, Reply):
            return await self._send_reply(action)
        if isinstance(action, AnswerCallback):
            await self.call("answerCallbackQuery", {"callback_query_id": action.callback_id,
                                                    "text": action.text, "show_alert": action.alert})
            return None
        if isinstance(action, SetCommands):
            await self.call("setMyCommands", {
                "commands": [{"command": c, "description": d} for c, d in action.commands],
                "scope": {"type": "chat", "chat_id": action.chat_id},
            })
            return None
        raise TypeError(f"cannot send {type(action).__name__}")

    async def _send_reply(self, r: Reply) -> str | None:
        markup = markup_json(r.markup)
        if r.photo is not None or r.document is not None:
            field, method = ("photo", "sendPhoto") if r.photo is not None else ("document", "sendDocument")
            form = aiohttp.FormData()
            form.add_field("chat_id", r.chat_id)
            if r.text:
                form.add_field("caption", r.text)
                if r.parse_mode:
                    form.add_field("parse_mode", r.parse_mode)
            if markup:
                form.add_field("reply_markup", markup)
            if r.photo is not None and r.photo.data is None:
                form.add_field("photo", r.photo.file_id or "")
            elif r.photo is not None:
                form.add_field(field, r.photo.data, filename=r.photo.filename, content_type="image/png")
            elif r.document is not None:
                form.add_field(field, r.document.data, filename=r.document.filename,
                               content_type=r.document.mime)
            result = await self.call(method, form)
        else:
            result = await self.call("sendMessage", {
                "chat_id": r.chat_id, "text": r.text or "", "parse_mode": r.parse_mode,
                "reply_markup": json.loads(markup) if markup else None,
            })
        if isinstance(result, dict) and "message_id" in result:
            return str(result["message_id"])
        return None

    async def download(self, file_id: str) -> bytes:
        """Fetch a user's file (getFile, then the file URL)."""
        info = await self.call("getFile", {"file_id": file_id})
        path = (info or {}).get("file_path")
        if not path:
            raise SendError("getFile returned no file_path")
        url = self._base.replace("/bot", "/file/bot", 1) + path
        try:
            async with self._http().get(url) as resp:
                if resp.status != 200:
                    raise TransientError(f"download HTTP {resp.status}")
                return await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise TransientError(f"download: {e}") from e
