"""微信客服 inbound: the `kf_msg_or_event` callback (on the WeCom app's callback URL, same crypto), then
kf/sync_msg with the cursor kept in kf_cursors.

Exactly once: each pulled message is handled by the core in its own transaction, which records it in
processed_updates (update_id "k<msgid>"); the page's next_cursor is saved only after every message of
the page was handled. A crash mid-page re-pulls the page from the saved cursor on the next callback and
the core drops what it already handled: no loss, no duplicate effects. (A reply the crash cut off after
its update committed is not re-sent: the same at-most-once window as every channel's replies.)
Syncs of one 客服账号 run one at a time in this process; a callback arriving during a sync just asks for
one more round with its fresh token.

enter_session with a door-card scene_param binds the villager to that household (villager role, only
that household's own file, never over an existing binding) and tells the household's cadre.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.channels.wechat_kf import CHANNEL
from bot.channels.wechat_kf.api import send_msg_on_event, sync_msg
from bot.channels.wechat_kf.inbound import to_incoming, update_id
from bot.channels.wechat_kf.transport import KfTransport
from bot.channels.wecom import CHANNEL as WECOM
from bot.channels.wecom.crypto import BadCallback
from bot.channels.wecom.runner import WeComBridge, WeComRunner
from bot.core.bootstrap import App
from bot.core.types import AnswerCallback, Incoming, Outgoing, Reply, Transport, User
from bot.runners.render import plain_reply_text
from bot.runners.telegram_common import execute
from bot.scheduler.outbox import OutMessage, enqueue
from bot.services.onboarding import create_invite
from bot.settings import Settings
from bot.store.models import Account, Household, KfCursor, KfScene, KfWindow, Pairing, ProcessedUpdate

log = logging.getLogger(__name__)
MAX_PAGES = 20  # pages (of up to 1,000 messages) pulled before handling them


def kf_event(xml: str) -> tuple[str, str] | None:
    """(Token, OpenKfId) of a kf_msg_or_event callback; None for any other callback."""
    import xmltodict

    d = xmltodict.parse(xml).get("xml") or {}
    if str(d.get("Event", "")).lower() != "kf_msg_or_event":
        return None
    return str(d.get("Token", "")), str(d.get("OpenKfId", ""))


async def run_actions(actions: list[Outgoing], origin: Transport, transports: dict[str, Transport],
                      park: Any) -> None:
    """Execute actions: each Reply on its channel's transport when this process has it, else parked in
    the outbox for the sender; acknowledgements on the origin's."""
    by: dict[str, list[Outgoing]] = {}
    for a in actions:
        ch = a.channel if isinstance(a, Reply) else origin.channel
        by.setdefault(ch, []).append(a)
    for ch, acts in by.items():
        await execute(transports.get(ch, origin), acts, park)


async def park_reply(core: Any, reply: Reply) -> None:
    message = OutMessage(dedup_key=f"relay:{uuid.uuid4().hex}", reply=reply, rule="relay")
    async with core.sessions() as s, s.begin():
        await enqueue(s, [message], now=core.clock.now())


class KfChannel:
    def __init__(self, app: App, settings: Settings, api: Any, sms: Any = None, page_limit: int = 1000) -> None:
        if not settings.wechat_kf_open_kfid:
            raise ValueError("BANGFU_WECHAT_KF_OPEN_KFID is not set (微信客服 → 客服账号 → its open_kfid)")
        self.core = app.core
        self.api = api
        self.open_kfid = settings.wechat_kf_open_kfid
        self.transport = KfTransport(api, self.open_kfid, app.core.sessions, app.core.clock, sms)
        self.transports: dict[str, Transport] = {CHANNEL: self.transport}
        self.page_limit = page_limit
        self._token: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.handled = 0  # messages handed to the core
        self.syncs = 0

    def on_event(self, token: str, open_kfid: str) -> None:
        if open_kfid != self.open_kfid:
            log.warning("kf_msg_or_event for another 客服账号 %s ignored", open_kfid)
            return
        self._token = token
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._token:
            token, self._token = self._token, None
            try:
                await self.sync(token)
            except Exception:
                log.exception("微信客服 sync failed; the next callback resumes from the saved cursor")

    async def wait_idle(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])

    async def abort(self) -> None:
        """Stop at once, as a crash would (tests)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _cursor(self) -> str:
        async with self.core.sessions() as s:
            row = await s.get(KfCursor, self.open_kfid)
            return row.cursor if row else ""

    async def _save_cursor(self, cursor: str) -> None:
        async with self.core.sessions() as s, s.begin():
            row = await s.get(KfCursor, self.open_kfid)
            if row is None:
                s.add(KfCursor(open_kfid=self.open_kfid, cursor=cursor, updated_at=self.core.clock.now()))
            else:
                row.cursor, row.updated_at = cursor, self.core.clock.now()

    async def sync(self, token: str) -> int:
        """Pull and handle everything after the saved cursor; how many messages were pulled.

        Pages are pulled first (up to MAX_PAGES at a time) so each villager's reply window counts from
        their last message among them, as WeChat's does; then each page's messages are handled and its
        next_cursor saved."""
        self.syncs += 1
        cursor = await self._cursor()
        pulled = 0
        more = True
        while more:
            pages: list[tuple[list[dict[str, Any]], str]] = []
            while more and len(pages) < MAX_PAGES:
                page = await sync_msg(self.api, token=token, cursor=cursor, open_kfid=self.open_kfid,
                                      limit=self.page_limit)
                cursor = str(page.get("next_cursor", "") or cursor)
                pages.append((list(page.get("msg_list", [])), cursor))
                more = bool(page.get("has_more"))
            await self._opened([m for msgs, _ in pages for m in msgs])
            for msgs, nxt in pages:
                for msg in msgs:
                    pulled += 1
                    await self.process(msg)
                await self._save_cursor(nxt)  # only after the page's messages are processed updates
        return pulled

    async def _seen(self, uid: str) -> bool:
        async with self.core.sessions() as s:
            return await s.get(ProcessedUpdate, (CHANNEL, "", uid)) is not None

    async def process(self, msg: dict[str, Any]) -> None:
        if msg.get("msgtype") == "event":
            await self._event(msg)
            return
        inc = to_incoming(msg)
        if inc is None:
            return
        assert inc.update_id is not None
        if await self._seen(inc.update_id):
            return
        await self.transport.flush_held(inc.chat_id)
        result = await self.core.handle(inc)
        self.handled += 1
        await run_actions(list(result.actions), self.transport, self.transports, self.park)

    async def _opened(self, msgs: list[dict[str, Any]]) -> None:
        """The villagers who wrote: a new window of five messages for 48 hours from their LAST message of
        the page (WeChat counts replies from there: answers to their earlier messages of the same page
        share it). Messages already handled (a replay, a resumed sync) reopen nothing."""
        latest: dict[str, tuple[int, str]] = {}  # user -> (send_time, msgid) of their last message here
        for msg in msgs:
            inc = to_incoming(msg)
            if inc is None or inc.update_id is None or await self._seen(inc.update_id):
                continue
            sent_at = int(msg.get("send_time") or 0)
            if sent_at >= latest.get(inc.chat_id, (0, ""))[0]:
                latest[inc.chat_id] = (sent_at, str(msg.get("msgid", ""))[:128])
        if not latest:
            return
        now = self.core.clock.now()
        async with self.core.sessions() as s, s.begin():
            for user, (sent_at, msgid) in latest.items():
                w = await s.get(KfWindow, user)
                if w is None:
                    s.add(KfWindow(external_userid=user, open_kfid=self.open_kfid, last_inbound_at=now,
                                   last_msg_time=sent_at, last_msgid=msgid, sent_since=0, held=[], undeliverable=0))
                elif msgid != w.last_msgid and sent_at >= (w.last_msg_time or 0):
                    # A message after the last one we counted from (the same one again, after a crash, is not).
                    w.last_inbound_at, w.sent_since, w.last_msg_time, w.last_msgid = now, 0, sent_at, msgid

    async def park(self, reply: Reply) -> None:
        await park_reply(self.core, reply)

    async def _event(self, msg: dict[str, Any]) -> None:
        ev = msg.get("event") or {}
        if ev.get("event_type") != "enter_session":
            return
        user = str(ev.get("external_userid", ""))
        scene = str(ev.get("scene_param", "") or "")
        uid = update_id(str(msg.get("msgid", "")))
        if not user or not scene or await self._seen(uid):
            return
        code = None
        cadre_accounts: list[Account] = []
        hh_name = ""
        async with self.core.sessions() as s, s.begin():
            sc = await s.get(KfScene, scene[:32])
            account = (await s.execute(select(Account).where(Account.channel == CHANNEL, Account.external_id == user))
                       ).scalar_one_or_none()
            already = account is not None and (account.person_id is not None or account.household_id is not None)
            if sc is not None and sc.household_id is not None and not already:
                hh = await s.get(Household, sc.household_id)
                if hh is not None:
                    code = (await create_invite(s, self.core.clock.now(), household=hh, valid_days=1)).code
                    hh_name = hh.head_name
                    today = self.core.clock.now().date()
                    cadre_ids = list((await s.execute(
                        select(Pairing.cadre_id).where(Pairing.household_id == hh.id, Pairing.start_date <= today,
                                                       (Pairing.end_date.is_(None)) | (Pairing.end_date >= today))
                    )).scalars())
                    if cadre_ids:
                        cadre_accounts = list((await s.execute(
                            select(Account).where(Account.person_id.in_(cadre_ids), Account.unreachable.is_(False))
                        )).scalars())
        if code is None:
            return
        inc = Incoming(channel=CHANNEL, user=User(user), chat_id=user, update_id=uid, text=f"/start {code}",
                       command="start", args=code)
        result = await self.core.handle(inc)
        self.handled += 1
        actions = list(result.actions)
        welcome = str(ev.get("welcome_code", "") or "")
        for a in list(actions):
            if welcome and isinstance(a, Reply) and a.channel == CHANNEL and a.chat_id == user:
                await send_msg_on_event(self.api, welcome, {"msgtype": "text",
                                                            "text": {"content": plain_reply_text(a)[:1000]}})
                actions.remove(a)
                break
        for acc in cadre_accounts:
            t = self.core.catalogs.get(acc.language or "zh_CN")
            actions.append(Reply(chat_id=acc.chat_id, text=t("kf.bound_by_scan", name=hh_name), channel=acc.channel))
        await run_actions(actions, self.transport, self.transports, self.park)


class MultiBridge(WeComBridge):
    """The WeCom bridge, sending each Reply on its own channel's transport when this process has it."""

    transports: dict[str, Transport]

    async def handle_incoming(self, inc: Incoming) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            async with self.sequencer.hold(inc.user.id):
                result = await self.run_core(inc)
                actions = list(result.actions)
                if inc.callback_id and not any(isinstance(a, AnswerCallback) for a in actions):
                    actions.insert(0, AnswerCallback(inc.callback_id))
                await run_actions(actions, self.transport, self.transports, self.park)
        except Exception:
            log.exception("failed to process WeCom update %s", inc.update_id)
        finally:
            if task is not None:
                self._in_flight.discard(task)


class KfRunner(WeComRunner):
    """The WeCom app's callback URL serving 微信客服 (and, with `wecom=True`, the app's own chat too)."""

    name = "wechat_kf"

    def __init__(self, app: App, settings: Settings, *, wecom: bool = True, sms: Any = None) -> None:
        super().__init__(app, settings)
        if sms is None:
            from bot.channels.sms.sender import make_sms

            sms = make_sms(settings, app.core.sessions, app.core.clock)
        self.sms = sms
        self.serve_wecom = wecom
        self.kf = KfChannel(app, settings, self.api, sms)
        bridge = MultiBridge(app.core, self.transport)
        bridge.transports = {WECOM: self.transport, CHANNEL: self.kf.transport}
        self.bridge = bridge
        self.kf.transports[WECOM] = self.transport

    @property
    def transports(self) -> Any:
        from bot.core.transports import Transports

        out = Transports(self.transport, self.kf.transport) if self.serve_wecom else Transports(self.kf.transport)
        if self.sms is not None:  # reminders to people who chose SMS, from the scheduler in this process
            from bot.channels.sms.transport import SmsTransport

            out.add(SmsTransport(self.sms, self.app.core.sessions))
        return out

    async def on_callback(self, request: web.Request) -> web.Response:
        q = request.query
        body = await request.read()  # aiohttp keeps the body: the WeCom handler reads it again
        try:
            xml = self.crypto.decrypt(body, q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
            ev = kf_event(xml)
        except BadCallback:
            return await super().on_callback(request)  # refused and counted there
        except Exception:
            ev = None
        if ev is not None:
            self.kf.on_event(*ev)
            return web.Response(text="")
        if not self.serve_wecom:
            return web.Response(text="")
        return await super().on_callback(request)

    async def stop(self) -> None:
        await self.kf.wait_idle()
        await super().stop()
        if self.sms is not None:
            await self.sms.close()
