"""The python-telegram-bot 22 runner (`bangfu run --runner ptb`): long polling, or a webhook served by our own
aiohttp handler (PTB's own webhook server answers Telegram before the update is handled, so a crash lost it).

Updates come in as the Bot API's JSON (our own getUpdates loop, `RawUpdates` + `ConfirmingPoller`, or
`webhook_handler`), are translated from those dicts and handed to `core.handle`, different users'
concurrently and one user's strictly in order (`process_update`); PTB's Update objects and handlers
are not on that path (they only cost CPU: bench/e2e_bench.py). PTB's Bot sends photos and documents,
answers getMe, sets the webhook and downloads files.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from telegram import (
    InlineKeyboardMarkup,
    InputFile,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application

from bot.core.bootstrap import App
from bot.core.types import (
    AnswerCallback,
    Markup,
    OutcomeUnknown,
    Outgoing,
    Reply,
    SendError,
    SetCommands,
)
from bot.runners.http_transport import HttpTransport
from bot.runners.render import photo_upload, telegram_parse_mode
from bot.runners.telegram_common import (
    CHANNEL,
    UPDATE_TYPES,
    Bridge,
    Receiver,
    bot_id_from_token,
    chat_id_value,
    classify_error,
    fits_caption,
    markup_to_api,
    network_failure,
    split_text,
)
from bot.settings import Settings

log = logging.getLogger(__name__)
AnyMarkup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def _markup(markup: Markup | None) -> AnyMarkup | None:
    data = markup_to_api(markup)
    if data is None:
        return None
    if "inline_keyboard" in data:
        return InlineKeyboardMarkup.de_json(data, None)
    if "keyboard" in data:
        return ReplyKeyboardMarkup.de_json(data, None)
    return ReplyKeyboardRemove()


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class PTBTransport:
    """The Transport port over a python-telegram-bot Bot.

    Text messages, button answers, menus and "typing…" (every action but a photo or document) go out as
    plain JSON POSTs (`HttpTransport`, the same Bot API shapes and error mapping the outbox sender uses):
    PTB's request and answer objects and its httpx request (logged at INFO by httpx, each) cost more CPU
    than the rest of a reply (bench/e2e_bench.py; "typing…" is sent when the bot is slow, i.e. under
    load). Photos, documents and downloads go through PTB. `close()` closes the JSON client."""

    channel = CHANNEL

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.wire = HttpTransport(bot.token, base=f"{bot.base_url}/")

    async def close(self) -> None:
        await self.wire.close()

    async def send(self, action: Outgoing) -> str | None:
        """Send one action; Bot API failures become the core's SendError subclasses."""
        if isinstance(action, Reply) and action.photo is None and action.document is None:
            return await self.wire.send_text(action)
        if isinstance(action, AnswerCallback | SetCommands):
            return await self.wire.send(action)
        if not isinstance(action, Reply):
            raise SendError(f"unsupported action {action!r}")
        try:
            return await self._reply(action)
        except RetryAfter as e:
            raise classify_error(429, e.message, _seconds(e._retry_after)) from e
        except Forbidden as e:
            raise classify_error(403, e.message) from e
        except BadRequest as e:
            raise classify_error(400, e.message) from e
        except (TimedOut, NetworkError) as e:  # PTB reports 5xx (a proxy's 502 page too) as NetworkError
            raise network_failure(e, e.message) from e
        except TelegramError as e:
            if e.message == "Invalid server response":  # a 2xx whose body is not JSON: it may have been sent
                raise OutcomeUnknown(e.message) from e
            raise SendError(e.message) from e

    async def _reply(self, r: Reply) -> str | None:
        chat = chat_id_value(r.chat_id)
        markup = _markup(r.markup)
        text = r.text or ""
        if r.photo is not None or r.document is not None:
            caption = text if fits_caption(text) else None
            extra: dict[str, Any] = {"caption": caption, "parse_mode": telegram_parse_mode(r) if caption else None}
            if caption is not None:
                extra["reply_markup"] = markup
            if r.photo is not None:
                photo: Any = r.photo.file_id or InputFile(r.photo.data or b"", filename=photo_upload(r.photo)[0])
                msg = await self.bot.send_photo(chat, photo, **extra)
            else:
                assert r.document is not None
                doc = InputFile(r.document.data, filename=r.document.filename)
                msg = await self.bot.send_document(chat, doc, **extra)
            if text and caption is None:
                return await self._text(chat, text, telegram_parse_mode(r), markup)
            return str(msg.message_id)
        return await self._text(chat, text, telegram_parse_mode(r), markup)

    async def _text(self, chat: int | str, text: str, parse_mode: str | None, markup: AnyMarkup | None) -> str:
        parts = split_text(text, html=parse_mode == "HTML")
        msg_id = ""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            msg = await self.bot.send_message(chat, part, parse_mode=parse_mode, reply_markup=markup if last else None)
            msg_id = str(msg.message_id)
        return msg_id

    async def typing(self, chat_id: str) -> None:
        """Show "typing…" in the chat."""
        await self.wire.typing(chat_id)

    async def download(self, file_id: str) -> bytes:
        """getFile, then fetch the bytes from the file endpoint."""
        try:
            f = await self.bot.get_file(file_id)
            return bytes(await f.download_as_bytearray())
        except TelegramError as e:
            raise classify_error(None if isinstance(e, NetworkError) and not isinstance(e, BadRequest) else 400,
                                 e.message) from e


def build_application(settings: Settings) -> Application[Any, Any, Any, Any, Any, Any]:
    """An Application for the configured token, talking to Telegram or to Settings.telegram_api_url.
    Long polling (`ConfirmingPoller`) and the webhook server are ours, so no Updater is built."""
    builder = Application.builder().token(settings.require_token()).updater(None)
    if settings.telegram_api_url:
        url = settings.telegram_api_url.rstrip("/")
        builder = builder.base_url(f"{url}/bot").base_file_url(f"{url}/file/bot")
    return builder.build()


class PTBRunner:
    """Runs the core on Telegram with python-telegram-bot. `start()` returns once polling (or the webhook) is up."""

    name = "ptb"

    def __init__(self, app: App, settings: Settings, polling_timeout: int = 30) -> None:
        self.app = app
        self.settings = settings
        self.polling_timeout = polling_timeout
        self.application = build_application(settings)
        self.transport = PTBTransport(self.application.bot)
        self.bridge = Bridge(app.core, self.transport, bot_id=bot_id_from_token(settings.require_token()))
        self.receiver = Receiver(self.bridge, settings)

    async def start(self) -> None:
        """Connect (getMe), set the core's file source, and start polling or the webhook server."""
        await self.application.initialize()
        self.bridge.bot_username = self.application.bot.username
        self.bridge.bot_id = str(self.application.bot.id)
        self.bridge.use_outbox(self.settings.outbox_handover_s)
        self.app.core.files = self.transport
        await self.application.start()
        if self.settings.webhook_url:
            await self.receiver.serve_webhook(self._set_webhook)
            return
        # Our own getUpdates loop rather than the Updater's: it confirms a batch as soon as it is fetched,
        # so a crash lost every update fetched and not yet handled. The updates stay JSON dicts (RawUpdates):
        # the translation reads dicts, and PTB's objects only cost CPU on this path.
        await self.application.bot.delete_webhook(drop_pending_updates=False)
        await self.receiver.poll(f"{self.application.bot.base_url}/getUpdates", self.polling_timeout)

    async def _set_webhook(self, url: str, secret: str | None) -> None:
        await self.application.bot.set_webhook(url, secret_token=secret, allowed_updates=UPDATE_TYPES)

    async def stop(self) -> None:
        """Stop receiving, let updates in progress finish, close the HTTP clients."""
        await self.receiver.stop()
        if self.application.running:
            await self.application.stop()
        await self.bridge.drain()
        await self.bridge.close()
        await self.transport.close()
        await self.application.shutdown()
        if self.app.core.files is self.transport:
            self.app.core.files = None

    async def wait(self) -> None:
        """PTB keeps running until stopped."""
        await asyncio.Event().wait()
