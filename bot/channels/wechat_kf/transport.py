"""The Transport for channel "wechat_kf": kf/send_msg within the reply window.

WeChat lets a 客服账号 send a user at most 5 messages within 48 hours of that user's last message. The
window is tracked per villager in kf_windows (last inbound time by the injected clock, messages sent
since). A Reply is rendered to as few messages as fit the budget left:
- text (plain, split at 2,048 bytes) and buttons as ONE `msgmenu` (the text as head_content when it fits
  in 1,024 bytes; each button a `click` item whose id is the callback data, ≤ 64 bytes by the core's
  codec, which comes back as the text's menu_id);
- a photo as an image (uploaded as temporary media) only when the budget has room after the text;
- over budget: the parts are merged (texts joined), then cut with "…" in the last message.
With the window closed (a cadre's answer days later) the Reply is held in kf_windows.held and delivered
when the villager next writes; the villager is told once by SMS (template kf_reply_waiting) when their
household or person has a phone, else the hold is counted as undeliverable until they write.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.wechat_kf import CHANNEL
from bot.channels.wechat_kf.api import WINDOW_ERRCODES, send_msg, upload_image
from bot.channels.wecom.api import WeComAPI, WeComError
from bot.clock import Clock
from bot.core.types import AnswerCallback, Button, InlineKeyboard, Outgoing, Reply, SendError, SetCommands
from bot.runners.render import photo_upload, plain_reply_text, split_bytes
from bot.scheduler.outbox import reply_from_dict, reply_to_dict
from bot.store.models import Account, Household, KfWindow, Person

log = logging.getLogger(__name__)
WINDOW = timedelta(hours=48)
BUDGET = 5
TEXT_LIMIT = 2048
HEAD_LIMIT = 1024
ITEM_LIMIT = 20  # characters of a menu item we show
Json = dict[str, Any]


def buttons_of(r: Reply) -> list[Button]:
    if isinstance(r.markup, InlineKeyboard):
        return [b for row in r.markup.rows for b in row if b.data or b.url]
    return []


def render(r: Reply, budget: int) -> list[Json]:
    """The send_msg bodies (without touser/open_kfid) for a Reply, at most `budget` of them."""
    if budget <= 0:
        return []
    text = plain_reply_text(r).strip()
    buttons = buttons_of(r)
    links = [f"{b.text}: {b.url}" for b in buttons if b.url]
    if links:
        text = "\n".join([text, *links]) if text else "\n".join(links)
    clicks = [b for b in buttons if b.data]
    parts: list[Json] = []
    texts = split_bytes(text, TEXT_LIMIT) if text else []
    if clicks:
        head = ""
        if texts and len(texts[-1].encode()) <= HEAD_LIMIT:
            head = texts.pop()
        menu: Json = {"head_content": head, "list": [
            {"type": "click", "click": {"id": b.data, "content": b.text[:ITEM_LIMIT]}} for b in clicks]}
        parts = [{"msgtype": "text", "text": {"content": t}} for t in texts]
        parts.append({"msgtype": "msgmenu", "msgmenu": menu})
    else:
        parts = [{"msgtype": "text", "text": {"content": t}} for t in texts]
    if r.photo is not None and len(parts) < budget:
        parts.insert(0, {"msgtype": "image", "photo": r.photo})
    if len(parts) > budget:
        # Merge: keep budget-1 parts whole, the rest's text into the last, cut to size.
        keep, rest = parts[: budget - 1], parts[budget - 1 :]
        tail_text = "\n".join(p["text"]["content"] for p in rest if p["msgtype"] == "text")
        last: Json | None = next((p for p in rest if p["msgtype"] == "msgmenu"), None)
        if last is not None:
            menu = last
            head = (tail_text + "\n" + menu["msgmenu"]["head_content"]).strip()
            if len(head.encode()) > HEAD_LIMIT:
                head = _cut(head, HEAD_LIMIT)
            menu["msgmenu"]["head_content"] = head
            keep.append(menu)
        else:
            keep.append({"msgtype": "text", "text": {"content": _cut(tail_text, TEXT_LIMIT)}})
        parts = keep
    return parts


def _cut(text: str, limit: int) -> str:
    if len(text.encode()) <= limit:
        return text
    out = text.encode()[: limit - 3].decode(errors="ignore")
    return out + "…"


class KfTransport:
    channel = CHANNEL

    def __init__(self, api: WeComAPI, open_kfid: str, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 sms: Any = None) -> None:
        self.api = api
        self.open_kfid = open_kfid
        self.sessions = sessions
        self.clock = clock
        self.sms = sms  # bot.channels.sms.sender.SmsSender or None
        self._locks: dict[str, asyncio.Lock] = {}
        self.sent = 0
        self.held = 0
        self.sms_sent = 0

    def budget(self, w: KfWindow | None, now: datetime) -> int:
        if w is None or w.last_inbound_at is None or now - w.last_inbound_at >= WINDOW:
            return 0
        return max(BUDGET - w.sent_since, 0)

    async def send(self, action: Outgoing) -> str | None:
        if isinstance(action, (AnswerCallback, SetCommands)):
            return None  # a menu click needs no acknowledgement; 微信客服 has no command menu
        if not isinstance(action, Reply):
            raise SendError(f"unsupported action {action!r}")
        async with self._locks.setdefault(action.chat_id, asyncio.Lock()):
            return await self._reply(action)

    async def _window(self, s: AsyncSession, user: str) -> KfWindow:
        w = await s.get(KfWindow, user)
        if w is None:
            w = KfWindow(external_userid=user, open_kfid=self.open_kfid, sent_since=0, last_msg_time=0, last_msgid="", held=[],
                         undeliverable=0)
            s.add(w)
        return w

    async def _reply(self, r: Reply, *, from_hold: bool = False) -> str | None:
        now = self.clock.now()
        async with self.sessions() as s:
            w = await s.get(KfWindow, r.chat_id)
            budget = self.budget(w, now)
        if budget == 0:
            if not from_hold:
                await self._hold(r)
            return None
        msg_id: str | None = None
        for body in render(r, budget):
            if body["msgtype"] == "image":
                photo = body.pop("photo")
                media = photo.file_id
                if photo.data is not None:
                    name, mime = photo_upload(photo)
                    media = await upload_image(self.api, name, photo.data, mime)
                body["image"] = {"media_id": media}
            # Counted before it is sent (a crash in between costs a message of budget, never a refusal).
            await self._count(r.chat_id, 1)
            try:
                msg_id = await send_msg(self.api, {"touser": r.chat_id, "open_kfid": self.open_kfid, **body})
            except WeComError as e:
                if e.errcode in WINDOW_ERRCODES:  # WeChat's count differs from ours: trust WeChat
                    await self._count(r.chat_id, exhausted=True)
                    if not from_hold:
                        await self._hold(r)
                    return None
                await self._count(r.chat_id, -1)
                raise
            except SendError:
                await self._count(r.chat_id, -1)
                raise
            self.sent += 1
        return msg_id

    async def _count(self, user: str, delta: int = 0, exhausted: bool = False) -> None:
        async with self.sessions() as s, s.begin():
            w = await self._window(s, user)
            w.sent_since = BUDGET if exhausted else max((w.sent_since or 0) + delta, 0)

    async def _hold(self, r: Reply) -> None:
        """Keep the Reply for the villager's next message; tell them by SMS once per closed window."""
        self.held += 1
        phone, name = None, ""
        async with self.sessions() as s, s.begin():
            w = await self._window(s, r.chat_id)
            w.held = [*(w.held or []), reply_to_dict(r)]
            told = w.sms_told_at is not None and (w.last_inbound_at is None or w.sms_told_at > w.last_inbound_at)
            if not told:
                phone, name = await self._phone(s, r.chat_id)
                if phone is None or self.sms is None:
                    w.undeliverable = (w.undeliverable or 0) + 1
        if phone is None or self.sms is None or told:
            return
        from bot.channels.sms.sender import Sent

        out = await self.sms.send(phone, "kf_reply_waiting", name=name or "您")
        if isinstance(out, Sent):
            self.sms_sent += 1
            async with self.sessions() as s, s.begin():
                w = await self._window(s, r.chat_id)
                w.sms_told_at = self.clock.now()
        else:
            log.warning("could not tell a villager by SMS that an answer waits: %s", out)

    async def _phone(self, s: AsyncSession, user: str) -> tuple[str | None, str]:
        row = (await s.execute(
            select(Person.phone, Person.name, Household.phone, Household.head_name)
            .select_from(Account)
            .outerjoin(Person, Person.id == Account.person_id)
            .outerjoin(Household, Household.id == Account.household_id)
            .where(Account.channel == CHANNEL, Account.external_id == user)
        )).first()
        if row is None:
            return None, ""
        if row[0]:
            return row[0], row[1] or ""
        if row[2]:
            return row[2], row[3] or ""
        return None, ""

    async def flush_held(self, user: str) -> int:
        """After the villager wrote (the window is open again): send what was held, within the budget."""
        async with self.sessions() as s, s.begin():
            w = await s.get(KfWindow, user)
            if w is None or not w.held:
                return 0
            held, w.held = list(w.held), []
            w.undeliverable = 0
        sent = 0
        for i, d in enumerate(held):
            async with self._locks.setdefault(user, asyncio.Lock()):
                now = self.clock.now()
                async with self.sessions() as s:
                    budget = self.budget(await s.get(KfWindow, user), now)
                if budget == 0:
                    async with self.sessions() as s, s.begin():
                        w = await self._window(s, user)
                        w.held = [*held[i:], *(w.held or [])]
                    break
                await self._reply(reply_from_dict(d), from_hold=True)
                sent += 1
        return sent

    async def download(self, file_id: str) -> bytes:
        return await self.api.get_media(file_id)
