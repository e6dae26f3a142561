"""The fake WeCom server (tests/fakewecom.py) with the 微信客服 endpoints: kf/sync_msg (a cursor over the
messages villagers sent, pages of `limit`, the callback's Token checked), kf/send_msg and
kf/send_msg_on_event (the 5-messages-in-48-hours window enforced: over it → errcode 95001 and counted in
`window_violations`), kf/add_contact_way. The customer side: `villager_text(...)` etc. store a message
and POST the encrypted `kf_msg_or_event` callback to the bot, as WeChat does.

Time for the window follows `now` (the tests pass their clock)."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.fakewecom import FakeWeCom, Sent

Json = dict[str, Any]


class FakeKf(FakeWeCom):
    def __init__(self, *, now: Callable[[], datetime] | None = None, open_kfid: str = "wkFAKEKF0001") -> None:
        super().__init__()
        self.open_kfid = open_kfid
        self.now = now or (lambda: datetime.fromtimestamp(time.time(), UTC))
        self.messages: list[Json] = []  # what sync_msg serves, in order
        self.kf_tokens: set[str] = set()
        self.kf_sent: list[Sent] = []
        self.window_violations: list[Json] = []
        self.last_inbound: dict[str, datetime] = {}
        self.sent_since: dict[str, int] = {}
        self.welcome_codes: set[str] = set()
        self.sync_calls = 0
        self._ids = itertools.count(1)

    # --- server side
    async def _api_kf_sync_msg(self, request: web.Request, q: Json, token: str) -> web.Response:
        body = await request.json()
        self.sync_calls += 1
        if body.get("token") not in self.kf_tokens or body.get("open_kfid") != self.open_kfid:
            return web.json_response({"errcode": 95007, "errmsg": "invalid msg token"})
        start = int(body.get("cursor") or 0)
        limit = min(int(body.get("limit", 1000)), 1000)
        page = self.messages[start : start + limit]
        nxt = start + len(page)
        return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": str(nxt),
                                  "has_more": 1 if nxt < len(self.messages) else 0, "msg_list": page})

    def _window_ok(self, user: str) -> bool:
        last = self.last_inbound.get(user)
        return last is not None and self.now() - last < timedelta(hours=48) and self.sent_since.get(user, 0) < 5

    async def _api_kf_send_msg(self, request: web.Request, q: Json, token: str) -> web.Response:
        body = await request.json()
        user = body.get("touser", "")
        if body.get("open_kfid") != self.open_kfid:
            return web.json_response({"errcode": 95000, "errmsg": "invalid open_kfid"})
        kind = body.get("msgtype")
        content = body.get(kind, {})
        if kind == "text" and len(content.get("content", "").encode()) > 2048:
            return web.json_response({"errcode": 44004, "errmsg": "content exceed max length"})
        if kind == "msgmenu" and (len(content.get("head_content", "").encode()) > 1024
                                  or any(len(i["click"]["id"].encode()) > 64 for i in content.get("list", []))):
            return web.json_response({"errcode": 40058, "errmsg": "invalid msgmenu"})
        if kind == "image" and content.get("media_id") not in self.media:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        if not self._window_ok(user):
            self.window_violations.append(body)
            return web.json_response({"errcode": 95001, "errmsg": "send msg count limit"})
        self.sent_since[user] = self.sent_since.get(user, 0) + 1
        self.kf_sent.append(Sent(user, kind, content, time.monotonic(), token))
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"kfmsg{len(self.kf_sent)}"})

    async def _api_kf_send_msg_on_event(self, request: web.Request, q: Json, token: str) -> web.Response:
        body = await request.json()
        if body.get("code") not in self.welcome_codes:
            return web.json_response({"errcode": 95011, "errmsg": "invalid code"})
        self.welcome_codes.discard(body["code"])
        kind = body.get("msgtype")
        self.kf_sent.append(Sent("welcome", kind, body.get(kind, {}), time.monotonic(), token))
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": "welcome"})

    async def _api_kf_add_contact_way(self, request: web.Request, q: Json, token: str) -> web.Response:
        body = await request.json()
        return web.json_response({"errcode": 0, "errmsg": "ok",
                                  "url": f"https://work.weixin.qq.com/kfid/{body['open_kfid']}?enc_scene=FAKE"})

    # --- customer side
    def callback_xml(self, token: str) -> str:
        return (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><CreateTime>{int(time.time())}</CreateTime>"
                "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
                f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{self.open_kfid}]]></OpenKfId></xml>")

    async def notify(self) -> int:
        """The kf_msg_or_event callback with a fresh sync token (what WeChat sends after new messages)."""
        token = "ENC" + uuid.uuid4().hex
        self.kf_tokens.add(token)
        return await self.post(self.callback_xml(token))

    def add(self, user: str, msgtype: str, body: Json, origin: int = 3) -> Json:
        msg = {"msgid": f"from_msgid_{next(self._ids):019d}", "open_kfid": self.open_kfid, "external_userid": user,
               "send_time": int(time.time()), "origin": origin, "msgtype": msgtype, msgtype: body}
        self.messages.append(msg)
        if origin == 3:
            self.last_inbound[user] = self.now()
            self.sent_since[user] = 0
        return msg

    async def villager_text(self, user: str, content: str, menu_id: str = "") -> int:
        self.add(user, "text", {"content": content, **({"menu_id": menu_id} if menu_id else {})})
        return await self.notify()

    async def enter(self, user: str, scene_param: str) -> str:
        code = "WELCOME" + uuid.uuid4().hex
        self.welcome_codes.add(code)
        self.add(user, "event", {"event_type": "enter_session", "open_kfid": self.open_kfid, "external_userid": user,
                                 "scene": "bangfu", "scene_param": scene_param, "welcome_code": code}, origin=4)
        await self.notify()
        return code

    async def wait_kf(self, user: str, fragment: str, since: int = 0, timeout: float = 5.0) -> Sent:  # noqa: ASYNC109
        def find() -> Sent | None:
            for m in self.kf_sent[since:]:
                text = m.body.get("content", "") or m.body.get("head_content", "")
                if m.touser == user and fragment in text:
                    return m
            return None

        try:
            return await self.wait_for(find, timeout)  # type: ignore[no-any-return]
        except TimeoutError:
            raise TimeoutError(f"nothing with {fragment!r} to {user}; sent: "
                               f"{[(m.touser, m.body) for m in self.kf_sent][-5:]}") from None
