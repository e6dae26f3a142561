"""The Transport for channel "wecom": the core's Outgoing actions as WeCom message/send calls.

- Text: rendered by bot/runners/render.py (`wecom_content`: text, or WeCom markdown when there is bold or
  a link), split into parts of at most 2,048 bytes at line breaks.
- Photos and documents: uploaded as temporary media (media/upload), then sent by media_id; a photo the
  user sent us (a WeCom media id) is sent again by its id.
- Inline buttons: `template_card` cards of type `button_interaction`, at most BUTTONS_PER_CARD buttons
  each (WeCom's limit), a fresh task_id per card, the callback data as the button key (≤ 64 bytes by the
  core's codec). A reply keyboard's plain choices become card buttons too (key TEXT_KEY + the choice; the
  runner turns such a press back into the typed text); its location/contact requests have no WeCom form
  (the user sends a location with the chat's + button) and are left out.
- AnswerCallback: the press's card is updated once (message/update_template_card): its buttons grey out
  under the toast's text, or the pressed button's own text.
- SetCommands: WeCom's app menu is one per app, set in the admin console: nothing to do per chat.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from typing import Any

from bot.channels.wecom import CHANNEL
from bot.channels.wecom.api import WeComAPI, WeComError
from bot.core.types import (
    AnswerCallback,
    Button,
    InlineKeyboard,
    Markup,
    Outgoing,
    Reply,
    ReplyKeyboard,
    SendError,
    SetCommands,
)
from bot.runners.render import photo_upload, plain, split_bytes, wecom_content

log = logging.getLogger(__name__)

TEXT_LIMIT = 2048  # bytes, text and markdown messages alike
BUTTONS_PER_CARD = 6  # button_interaction: button_list holds at most 6
TITLE_LIMIT = 36  # characters WeCom shows of a card's main title
BUTTON_TEXT_LIMIT = 20  # WeCom advises 10 characters; household names with their group need more
TEXT_KEY = "~t:"  # a card button standing for a typed text (a reply keyboard's choice)
Json = dict[str, Any]


def pack_callback_id(userid: str, response_code: str, key: str) -> str:
    return "\x1f".join((userid, response_code, key))


def unpack_callback_id(callback_id: str) -> tuple[str, str, str] | None:
    parts = callback_id.split("\x1f")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def card_buttons(markup: Markup | None) -> list[Button]:
    """The buttons a card can carry for a markup: inline callback buttons, and reply-keyboard choices."""
    if isinstance(markup, InlineKeyboard):
        return [b for row in markup.rows for b in row if b.data]
    if isinstance(markup, ReplyKeyboard):
        out = []
        for row in markup.rows:
            for k in row:
                key = TEXT_KEY + k.text
                if not (k.request_location or k.request_contact) and len(key.encode()) <= 64:
                    out.append(Button(k.text, key))
        return out
    return []


def url_lines(markup: Markup | None) -> list[str]:
    """Link buttons have no place on a button_interaction card: they go under the text."""
    if not isinstance(markup, InlineKeyboard):
        return []
    return [f"{b.text}: {b.url}" for row in markup.rows for b in row if b.url]


def cards(title: str, buttons: list[Button]) -> list[Json]:
    """template_card bodies for the buttons, BUTTONS_PER_CARD at most on each, each with its task_id."""
    out = []
    for i in range(0, len(buttons), BUTTONS_PER_CARD):
        chunk = buttons[i : i + BUTTONS_PER_CARD]
        out.append({
            "card_type": "button_interaction",
            "main_title": {"title": title[:TITLE_LIMIT] or "…"},
            "task_id": f"bf{uuid.uuid4().hex}",
            "button_list": [{"text": b.text[:BUTTON_TEXT_LIMIT], "style": 1 if j == 0 and i == 0 else 2,
                             "key": b.data} for j, b in enumerate(chunk)],
        })
    return out


class WeComTransport:
    """Transport port of the WeCom channel (see the module docstring)."""

    channel = CHANNEL

    def __init__(self, api: WeComAPI) -> None:
        self.api = api
        self._labels: OrderedDict[str, str] = OrderedDict()  # button key -> its text, for greying a press
        self.sent = 0  # message/send calls that WeCom accepted

    async def send(self, action: Outgoing) -> str | None:
        if isinstance(action, Reply):
            return await self._reply(action)
        if isinstance(action, AnswerCallback):
            await self._answer(action)
            return None
        if isinstance(action, SetCommands):
            return None
        raise SendError(f"unsupported action {action!r}")

    async def _send(self, userid: str, msgtype: str, body: Json) -> str:
        data = await self.api.send_message({"touser": userid, "msgtype": msgtype, msgtype: body})
        self.sent += 1
        return str(data.get("msgid", ""))

    async def _reply(self, r: Reply) -> str | None:
        to = r.chat_id
        msg_id: str | None = None
        if r.photo is not None:
            media = r.photo.file_id
            if r.photo.data is not None:
                name, mime = photo_upload(r.photo)
                media = await self.api.upload_media("image", name, r.photo.data, mime)
            if media:
                try:
                    msg_id = await self._send(to, "image", {"media_id": media})
                except WeComError:
                    if r.photo.data is not None:
                        raise
                    # A file id from another channel, or a WeCom media id past its 3 days: the text still goes.
                    log.warning("a photo by id could not be sent on WeCom; sending the text alone")
        if r.document is not None:
            media = await self.api.upload_media("file", r.document.filename, r.document.data, r.document.mime)
            msg_id = await self._send(to, "file", {"media_id": media})
        msgtype, content = wecom_content(r)
        extra = url_lines(r.markup)
        if extra:
            content = "\n".join([content, *extra]) if content else "\n".join(extra)
        buttons = card_buttons(r.markup)
        title = plain(r.text or "") if r.format == "markup" else (r.text or "")
        short = "\n" not in title and len(title) <= TITLE_LIMIT and not extra and msgtype == "text"
        if content and not (buttons and short):
            for part in split_bytes(content, TEXT_LIMIT):
                msg_id = await self._send(to, msgtype, {"content": part})
        if buttons:
            card_title = title if short else title.split("\n", 1)[0]
            for card in cards(card_title, buttons):
                for b in card["button_list"]:
                    self._remember(b["key"], b["text"])
                msg_id = await self._send(to, "template_card", card)
        return msg_id

    def _remember(self, key: str, text: str) -> None:
        self._labels[key] = text
        self._labels.move_to_end(key)
        while len(self._labels) > 10_000:
            self._labels.popitem(last=False)

    async def _answer(self, a: AnswerCallback) -> None:
        parts = unpack_callback_id(a.callback_id)
        if parts is None:
            return
        userid, response_code, key = parts
        if not response_code:
            return
        name = plain(a.text or "") or self._labels.get(key) or "✓"
        await self.api.update_card(userid, response_code, name[:BUTTON_TEXT_LIMIT * 2])

    async def download(self, file_id: str) -> bytes:
        """A file the user sent (image MediaId) through media/get."""
        return await self.api.get_media(file_id)
