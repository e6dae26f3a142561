"""A minimal Telegram Bot API client, implementing the `Transport` port for the outbox sender (`bangfu
scheduler` runs without a bot library) and carrying both runners' text messages and button answers.

JSON methods go through `BotApiHttp` (bot/runners/botapi_http.py: a small keep-alive HTTP/1.1 client, a
fraction of aiohttp's CPU per call, which matters because every reply is one call); the body is serialised
once with orjson (the same JSON as before, non-ASCII text as UTF-8 rather than escaped). Uploads (multipart) and file
downloads stay on aiohttp.

Only what reminders need: sendMessage, sendPhoto (multipart upload or file_id), sendDocument,
answerCallbackQuery, setMyCommands. Errors map onto the port's: 429 → RetryAfter(retry_after),
403 (blocked, deactivated) and 400 "chat not found" → Unreachable, 5xx / network / timeout →
TransientError; any other refusal is a plain SendError (the sender gives that message up).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from bot.core.types import (
    AnswerCallback,
    Markup,
    OutcomeUnknown,
    Outgoing,
    Reply,
    SendError,
    SetCommands,
    TransientError,
)
from bot.runners.botapi_http import BotApiHttp, RequestNotSent, ResponseLost
from bot.runners.render import photo_upload, telegram_parse_mode
from bot.runners.telegram_common import chat_id_value, classify_error, fits_caption, markup_to_api, split_text

DEFAULT_API_URL = "https://api.telegram.org"


def markup_json(m: Markup | None) -> str | None:
    """The Bot API reply_markup JSON for a Markup."""
    api = markup_to_api(m)
    return None if api is None else json.dumps(api, ensure_ascii=False)


class HttpTransport:
    """Sends Outgoing actions to the Bot API at `api_url` (a self-hosted server or a test fake)."""

    channel = "telegram"

    def __init__(self, token: str, api_url: str | None = None, *, timeout: float = 30.0, base: str | None = None,
                 session: Callable[[], Awaitable[aiohttp.ClientSession]] | None = None) -> None:
        """`base`: the method URL prefix ("…/bot<token>/") when it is not `api_url`'s usual one;
        `session`: where to get the aiohttp session for uploads, owned (and closed) by someone else, e.g.
        aiogram's."""
        self._base = base or f"{(api_url or DEFAULT_API_URL).rstrip('/')}/bot{token}/"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._shared = session
        self._json = BotApiHttp(self._base, timeout=timeout)

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._json.close()
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
        if isinstance(data, aiohttp.FormData):
            status, body = await self._upload(method, data)
        else:
            payload = orjson.dumps({k: v for k, v in data.items() if v is not None})
            try:
                status, raw = await self._json.post(method, payload)
            except RequestNotSent as e:  # never reached the server: nothing was sent
                raise TransientError(f"{method}: {e}") from e
            except ResponseLost as e:  # the request went out and may have been acted on
                raise OutcomeUnknown(f"{method}: {e}") from e
            try:
                body = orjson.loads(raw)
            except ValueError:  # orjson.JSONDecodeError is one: an HTML error page, a cut body
                body = {}
        if not isinstance(body, dict):
            body = {}
        if status == 200 and not body:
            raise OutcomeUnknown(f"{method}: HTTP 200 with an undecodable answer")
        if status == 200 and body.get("ok"):
            return body.get("result")
        desc = str(body.get("description") or f"HTTP {status}")
        retry_after = (body.get("parameters") or {}).get("retry_after") if status == 429 else None
        raise classify_error(status or None, f"{method}: {desc}", float(retry_after) if retry_after else None)

    async def _upload(self, method: str, form: aiohttp.FormData) -> tuple[int, Any]:
        """A multipart POST through aiohttp: its status and decoded JSON ({} when not JSON)."""
        try:
            http = await self._shared() if self._shared is not None else self._http()
            async with http.post(self._base + method, data=form, timeout=self._timeout) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except (json.JSONDecodeError, aiohttp.ContentTypeError, ValueError):
                    body = {}
        except aiohttp.ClientConnectorError as e:  # never reached the server: nothing was sent
            raise TransientError(f"{method}: {type(e).__name__}: {e}") from e
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            # The request may have gone out and been acted on: the outcome is unknown.
            raise OutcomeUnknown(f"{method}: {type(e).__name__}: {e}") from e
        return status, body

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
                "commands": [{"command": c, "description": d[:256] or c} for c, d in action.commands],
                "scope": {"type": "chat", "chat_id": chat_id_value(action.chat_id)},
            })
            return None
        raise TypeError(f"cannot send {type(action).__name__}")

    async def typing(self, chat_id: str) -> None:
        """Show "typing…" in the chat (sendChatAction)."""
        await self.call("sendChatAction", {"chat_id": chat_id_value(chat_id), "action": "typing"})

    async def _send_reply(self, r: Reply) -> str | None:
        markup = markup_json(r.markup)
        if r.photo is not None or r.document is not None:
            field, method = ("photo", "sendPhoto") if r.photo is not None else ("document", "sendDocument")
            form = aiohttp.FormData()
            form.add_field("chat_id", r.chat_id)
            long_caption = bool(r.text) and not fits_caption(r.text or "")
            if r.text and not long_caption:
                form.add_field("caption", r.text)
                if parse_mode := telegram_parse_mode(r):
                    form.add_field("parse_mode", parse_mode)
            if markup:
                form.add_field("reply_markup", markup)
            if r.photo is not None and r.photo.data is None:
                form.add_field("photo", r.photo.file_id or "")
            elif r.photo is not None:
                filename, content_type = photo_upload(r.photo)
                form.add_field(field, r.photo.data, filename=filename, content_type=content_type)
            elif r.document is not None:
                form.add_field(field, r.document.data, filename=r.document.filename,
                               content_type=r.document.mime)
            result = await self.call(method, form)
            if long_caption:  # too long for a caption (UTF-16 units): the text follows as messages
                await self._send_text(r, None)
        else:
            result = await self._send_text(r, markup)
        if isinstance(result, dict) and "message_id" in result:
            return str(result["message_id"])
        return None

    async def _send_text(self, r: Reply, markup: str | None) -> Any:
        """sendMessage, split by Telegram's length in UTF-16 units (markup on the last part)."""
        parse_mode = telegram_parse_mode(r)
        parts = split_text(r.text or "", html=parse_mode == "HTML")
        result: Any = None
        api_markup = json.loads(markup) if markup else None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            result = await self.call("sendMessage", {
                "chat_id": r.chat_id, "text": part, "parse_mode": parse_mode,
                "reply_markup": api_markup if last else None,
            })
        return result

    async def send_text(self, r: Reply) -> str | None:
        """A Reply without a photo or document: sendMessage(s) straight from the Reply (no markup round trip
        through a JSON string)."""
        parse_mode = telegram_parse_mode(r)
        parts = split_text(r.text or "", html=parse_mode == "HTML")
        markup = markup_to_api(r.markup)
        result: Any = None
        for i, part in enumerate(parts):
            result = await self.call("sendMessage", {
                "chat_id": r.chat_id, "text": part, "parse_mode": parse_mode,
                "reply_markup": markup if i == len(parts) - 1 else None,
            })
        return str(result["message_id"]) if isinstance(result, dict) and "message_id" in result else None

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
