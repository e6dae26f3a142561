"""The default Telegram runner, on aiogram 3: long polling, or a webhook when Settings.webhook_url is set.

Updates come in as the Bot API's JSON (our own getUpdates loop, `RawUpdates` + `ConfirmingPoller`, or
our own webhook handler, `webhook_handler`), are translated from those dicts and handed to `core.handle`
in each user's order; everything the bot says comes back as actions executed by `AiogramTransport`.
aiogram's Dispatcher and models are not on that path: parsing each update into pydantic objects and
dumping it back to a dict was most of what the runner cost (bench/e2e_bench.py).
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.core.bootstrap import App
from bot.core.types import (
    AnswerCallback,
    Markup,
    Outgoing,
    Reply,
    SendError,
    SetCommands,
    TransientError,
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


# aiogram parses every Bot API answer as `Response[<the method's return type>]`, a pydantic generic model
# that pydantic builds on first use and caches only weakly: each full garbage collection dropped them and
# the next answer rebuilt one (~5 ms of CPU each, hundreds of times a minute under load; measured with
# bench/e2e_bench.py --profile). The answer types of the methods the runner calls are held here for good.
_PINNED: list[Any] = []


def pin_response_types() -> int:
    """Build once and keep the `Response[...]` models of the methods this runner calls; returns how many."""
    if not _PINNED:
        from aiogram import methods
        from aiogram.methods.base import Response

        used = (methods.SendMessage, methods.SendPhoto, methods.SendDocument, methods.EditMessageText,
                methods.EditMessageReplyMarkup, methods.AnswerCallbackQuery, methods.SetMyCommands,
                methods.GetUpdates, methods.SendChatAction, methods.GetFile, methods.GetMe,
                methods.DeleteWebhook, methods.SetWebhook)
        for returning in {m.__returning__ for m in used}:
            _PINNED.append(Response[returning])  # type: ignore[valid-type]
    return len(_PINNED)


def make_bot(settings: Settings) -> Bot:
    """A Bot for the configured token, talking to Telegram or to Settings.telegram_api_url."""
    token = settings.require_token()
    if settings.telegram_api_url:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
        return Bot(token, session=session)
    return Bot(token)


def _markup(markup: Markup | None) -> AnyMarkup | None:
    data = markup_to_api(markup)
    if data is None:
        return None
    if "inline_keyboard" in data:
        return InlineKeyboardMarkup.model_validate(data)
    if "keyboard" in data:
        return ReplyKeyboardMarkup.model_validate(data)
    return ReplyKeyboardRemove.model_validate(data)


class AiogramTransport:
    """The Transport port over an aiogram Bot: executes Outgoing actions, downloads user files.

    Text messages, button answers, menus and "typing…" (every action but a photo or document) go out as
    plain JSON POSTs (`HttpTransport`, the same Bot API shapes and error mapping the outbox sender uses, on
    its own keep-alive connections): aiogram's request and answer models and its aiohttp request cost
    more CPU than the rest of a reply (bench/e2e_bench.py; "typing…" is sent when the bot is slow, i.e.
    under load). Photos, documents and downloads go through aiogram. `close()` closes the JSON client's
    connections (aiogram's session is closed with the Bot)."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        create = getattr(bot.session, "create_session", None)  # AiohttpSession: the session aiogram closes
        self.wire = HttpTransport(bot.token, base=bot.session.api.api_url(bot.token, ""), session=create)

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
        except TelegramRetryAfter as e:
            raise classify_error(429, e.message, e.retry_after) from e
        except TelegramForbiddenError as e:
            raise classify_error(403, e.message) from e
        except TelegramServerError as e:
            raise classify_error(500, e.message) from e
        except TelegramNetworkError as e:
            raise network_failure(e, str(e)) from e
        except ClientDecodeError as e:
            # Not the Bot API's JSON: a proxy's 502/504 HTML page in front of it (nothing was sent).
            raise TransientError(f"undecodable answer: {str(e)[:200]}") from e
        except TelegramBadRequest as e:
            raise classify_error(400, e.message) from e
        except TelegramAPIError as e:
            raise SendError(e.message) from e

    async def _reply(self, r: Reply) -> str | None:
        chat = chat_id_value(r.chat_id)
        markup = _markup(r.markup)
        text = r.text or ""
        if r.photo is not None or r.document is not None:
            caption = text if fits_caption(text) else None
            if r.photo is not None:
                photo: Any = r.photo.file_id or BufferedInputFile(r.photo.data or b"", photo_upload(r.photo)[0])
                msg = await self.bot.send_photo(
                    chat, photo, caption=caption, parse_mode=telegram_parse_mode(r) if caption else None,
                    reply_markup=markup if caption is not None else None,
                )
            else:
                assert r.document is not None
                msg = await self.bot.send_document(
                    chat, BufferedInputFile(r.document.data, r.document.filename), caption=caption,
                    parse_mode=telegram_parse_mode(r) if caption else None,
                    reply_markup=markup if caption is not None else None,
                )
            if text and caption is None:
                return await self._text(chat, text, telegram_parse_mode(r), markup)
            return str(msg.message_id)
        return await self._text(chat, text, telegram_parse_mode(r), markup)

    async def _text(self, chat: int | str, text: str, parse_mode: str | None, markup: AnyMarkup | None) -> str:
        parts = split_text(text, html=parse_mode == "HTML")
        msg_id = ""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            msg = await self.bot.send_message(
                chat, part, parse_mode=parse_mode, reply_markup=markup if last else None
            )
            msg_id = str(msg.message_id)
        return msg_id

    async def typing(self, chat_id: str) -> None:
        """Show "typing…" in the chat."""
        await self.wire.typing(chat_id)

    async def download(self, file_id: str) -> bytes:
        """getFile, then fetch the bytes from the file endpoint."""
        try:
            f = await self.bot.get_file(file_id)
            if not f.file_path:
                raise SendError(f"no file path for {file_id}")
            buf = io.BytesIO()
            await self.bot.download_file(f.file_path, buf)
            return buf.getvalue()
        except TelegramAPIError as e:
            raise classify_error(None if isinstance(e, TelegramServerError | TelegramNetworkError) else 400,
                                 e.message) from e


class AiogramRunner:
    """Runs the core on Telegram with aiogram. `start()` returns once polling (or the webhook) is up."""

    name = "aiogram"

    def __init__(self, app: App, settings: Settings, polling_timeout: int = 30) -> None:
        self.app = app
        self.settings = settings
        self.polling_timeout = polling_timeout
        self.bot = make_bot(settings)
        pin_response_types()
        self.transport = AiogramTransport(self.bot)
        self.bridge = Bridge(app.core, self.transport, bot_id=bot_id_from_token(self.bot.token))
        self.receiver = Receiver(self.bridge, settings)

    async def start(self) -> None:
        """Connect (getMe), set the core's file source, and start polling or serving the webhook."""
        me = await self.bot.me()
        self.bridge.bot_username = me.username
        self.bridge.bot_id = str(me.id)
        self.bridge.use_outbox(self.settings.outbox_handover_s)
        self.app.core.files = self.transport
        if self.settings.webhook_url:
            await self.receiver.serve_webhook(self._set_webhook)
            return
        # A webhook left over from an earlier deployment would make getUpdates fail with 409.
        await self.bot.delete_webhook(drop_pending_updates=False)
        # Our own getUpdates loop rather than dp.start_polling: aiogram confirms a batch as soon as it is
        # fetched, so a crash lost every update fetched and not yet handled. The updates stay JSON dicts
        # (RawUpdates): the translation reads dicts, and aiogram's models only cost CPU on this path.
        await self.receiver.poll(self.bot.session.api.api_url(self.bot.token, "getUpdates"), self.polling_timeout)

    async def _set_webhook(self, url: str, secret: str | None) -> None:
        await self.bot.set_webhook(url, secret_token=secret, allowed_updates=UPDATE_TYPES)

    async def stop(self) -> None:
        """Stop receiving, let updates in progress finish, close the HTTP session."""
        await self.receiver.stop()
        await self.bridge.drain()
        await self.bridge.close()
        await self.transport.close()
        await self.bot.session.close()
        if self.app.core.files is self.transport:
            self.app.core.files = None

    async def wait(self) -> None:
        """Until polling ends by itself (a fatal error) — forever in webhook mode."""
        if self.receiver.task is not None:
            # Shielded: a caller giving up waiting must not cancel polling mid-request; stop() ends it.
            await asyncio.shield(self.receiver.task)
        else:
            await asyncio.Event().wait()
