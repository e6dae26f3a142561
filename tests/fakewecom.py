"""A local fake WeCom server API and callback sender (aiohttp), for the WeCom channel's tests and bench.

The server side serves what Bangfu calls on qyapi.weixin.qq.com — gettoken, message/send, media/upload,
media/get, message/update_template_card, user/list, user/get, agent/get — answering WeCom's JSON with
its errcodes. The callback side encrypts real WeCom-format XML with the same crypto (the channel's
CallbackCrypto) and POSTs it to the bot's callback URL with msg_signature/timestamp/nonce.

Fault injection: `expire_tokens()` (the next call with an old token gets 42001), `fail_next(path,
errcode=..., status=..., delay=..., times=...)` (rate-limit errcodes, 5xx, slow answers).

    async with FakeWeCom() as wecom:
        settings = wecom.settings(settings)          # BANGFU_WECOM_* pointed at the fake
        ...
        await wecom.text("wjg", "/visit")           # a member types in the app's chat
        msg = await wecom.wait_for_sent("wjg")
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import ClientSession, web
from pydantic import SecretStr

from bot.channels.wecom.crypto import CallbackCrypto
from bot.settings import Settings

Json = dict[str, Any]


@dataclass
class Fault:
    errcode: int | None = None
    status: int | None = None
    delay: float = 0.0
    times: int = 1


@dataclass
class Sent:
    touser: str
    msgtype: str
    body: Json
    at: float
    token: str

    @property
    def text(self) -> str:
        return str(self.body.get("content", ""))

    @property
    def keys(self) -> dict[str, str]:
        """A card's buttons: text -> key."""
        return {b["text"]: b["key"] for b in self.body.get("button_list", [])}


@dataclass
class Member:
    userid: str
    name: str
    mobile: str = ""
    department: list[int] = field(default_factory=lambda: [1])


class FakeWeCom:
    def __init__(self, corp_id: str = "wwfakecorp0001", agent_id: int = 1000002) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.secret = "s3cr3t-" + uuid.uuid4().hex
        self.token = "Tok" + uuid.uuid4().hex[:12]
        self.aes_key = base64.b64encode(os.urandom(32)).decode()[:43]
        self.crypto = CallbackCrypto(self.token, self.aes_key, corp_id)
        self.tokens: set[str] = set()
        self.token_fetches = 0
        self.sent: list[Sent] = []
        self.card_updates: list[Json] = []
        self.media: dict[str, tuple[bytes, str]] = {}  # media_id -> (bytes, content type)
        self.members: list[Member] = []
        self.faults: dict[str, list[Fault]] = {}
        self.requests: list[tuple[str, Json]] = []
        self._changed = asyncio.Condition()
        self._msg_ids = itertools.count(7_000_000_000_000_000_001)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.callback_url = ""
        self._client: ClientSession | None = None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> FakeWeCom:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/cgi-bin/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._client = ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def settings(self, base: Settings, **extra: Any) -> Settings:
        """`base` with BANGFU_WECOM_* pointed at this fake (callback URL on a free local port)."""
        return base.model_copy(update={
            "wecom_corp_id": self.corp_id, "wecom_agent_id": self.agent_id,
            "wecom_secret": SecretStr(self.secret), "wecom_token": SecretStr(self.token),
            "wecom_aes_key": SecretStr(self.aes_key), "wecom_api_url": self.url,
            "wecom_listen": "127.0.0.1:0", **extra,
        })

    # ------------------------------------------------------------------ fault injection
    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (42001)."""
        self.tokens.clear()

    def fail_next(self, path: str, *, errcode: int | None = None, status: int | None = None,
                  delay: float = 0.0, times: int = 1) -> None:
        self.faults.setdefault(path, []).append(Fault(errcode, status, delay, times))

    def add_media(self, data: bytes, content_type: str = "image/jpeg") -> str:
        media_id = "MEDIA" + uuid.uuid4().hex
        self.media[media_id] = (data, content_type)
        return media_id

    # ------------------------------------------------------------------ server side
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        q = dict(request.query)
        self.requests.append((path, q))
        faults = self.faults.get(path)
        if faults:
            f = faults[0]
            f.times -= 1
            if f.times <= 0:
                faults.pop(0)
            if f.delay:
                await asyncio.sleep(f.delay)
            if f.status:
                return web.Response(status=f.status, text="server error")
            if f.errcode is not None:
                return web.json_response({"errcode": f.errcode, "errmsg": "injected"})
        if path == "gettoken":
            if q.get("corpid") != self.corp_id or q.get("corpsecret") != self.secret:
                return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
            token = "AT" + uuid.uuid4().hex
            self.tokens.add(token)
            self.token_fetches += 1
            async with self._changed:
                self._changed.notify_all()
            return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})
        token = q.get("access_token", "")
        if not token:
            return web.json_response({"errcode": 41001, "errmsg": "access_token missing"})
        if token not in self.tokens:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        handler = getattr(self, "_api_" + path.replace("/", "_"), None)
        if handler is None:
            return web.json_response({"errcode": 60011, "errmsg": f"no such api {path}"})
        result: web.StreamResponse = await handler(request, q, token)
        return result

    async def _api_message_send(self, request: web.Request, q: Json, token: str) -> web.Response:
        body = await request.json()
        if body.get("agentid") != self.agent_id:
            return web.json_response({"errcode": 40056, "errmsg": "invalid agentid"})
        msgtype = body["msgtype"]
        content = body.get(msgtype, {})
        if msgtype in ("text", "markdown") and len(content.get("content", "").encode()) > 2048:
            return web.json_response({"errcode": 44004, "errmsg": "content exceed max length"})
        if msgtype in ("image", "file") and content.get("media_id") not in self.media:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        if msgtype == "template_card":
            if len(content.get("button_list", [])) > 6 or any(len(b["key"].encode()) > 1024 for b in content["button_list"]):
                return web.json_response({"errcode": 40058, "errmsg": "invalid button_list"})
        known = {m.userid for m in self.members}
        if self.members and body["touser"] not in known:
            return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": body["touser"]})
        self.sent.append(Sent(body["touser"], msgtype, content, time.monotonic(), token))
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"msg{len(self.sent)}",
                                  "response_code": f"rc{uuid.uuid4().hex}" if msgtype == "template_card" else ""})

    async def _api_media_upload(self, request: web.Request, q: Json, token: str) -> web.Response:
        reader = await request.multipart()
        part: Any = await reader.next()
        data = await part.read(decode=False)
        media_id = self.add_media(bytes(data), part.headers.get("Content-Type", "application/octet-stream"))
        return web.json_response({"errcode": 0, "errmsg": "", "type": q.get("type"), "media_id": media_id,
                                  "created_at": str(int(time.time()))})

    async def _api_media_get(self, request: web.Request, q: Json, token: str) -> web.Response:
        found = self.media.get(q.get("media_id", ""))
        if found is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        return web.Response(body=found[0], content_type=found[1])

    async def _api_message_update_template_card(self, request: web.Request, q: Json, token: str) -> web.Response:
        body = await request.json()
        self.card_updates.append(body)
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": []})

    async def _api_user_list(self, request: web.Request, q: Json, token: str) -> web.Response:
        return web.json_response({"errcode": 0, "errmsg": "ok", "userlist": [
            {"userid": m.userid, "name": m.name, "mobile": m.mobile, "department": m.department}
            for m in self.members]})

    async def _api_user_get(self, request: web.Request, q: Json, token: str) -> web.Response:
        for m in self.members:
            if m.userid == q.get("userid"):
                return web.json_response({"errcode": 0, "errmsg": "ok", "userid": m.userid, "name": m.name,
                                          "mobile": m.mobile})
        return web.json_response({"errcode": 60111, "errmsg": "userid not found"})

    async def _api_agent_get(self, request: web.Request, q: Json, token: str) -> web.Response:
        if str(q.get("agentid")) != str(self.agent_id):
            return web.json_response({"errcode": 40056, "errmsg": "invalid agentid"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "agentid": self.agent_id, "name": "帮扶通",
                                  "allow_userinfos": {"user": [{"userid": m.userid} for m in self.members]}})

    async def wait_for(self, find: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        async with asyncio.timeout(timeout), self._changed:
            while (found := find()) is None:
                await self._changed.wait()
            return found

    async def wait_for_sent(self, userid: str, predicate: Callable[[Sent], bool] | None = None,
                            since: int = 0, timeout: float = 5.0) -> Sent:  # noqa: ASYNC109
        """The first message to userid at or after index `since` of `sent` matching predicate."""
        def find() -> Sent | None:
            for m in self.sent[since:]:
                if m.touser == userid and (predicate is None or predicate(m)):
                    return m
            return None

        try:
            return await self.wait_for(find, timeout)  # type: ignore[no-any-return]
        except TimeoutError:
            last = [(m.msgtype, m.text or m.body.get("main_title")) for m in self.sent if m.touser == userid][-5:]
            raise TimeoutError(f"nothing matching sent to {userid}; last: {last}") from None

    # ------------------------------------------------------------------ callback side
    def _xml(self, user: str, msgtype: str, fields: str, msg_id: bool = True) -> str:
        mid = f"<MsgId>{next(self._msg_ids)}</MsgId>" if msg_id else ""
        return (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
                f"<FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{int(time.time())}</CreateTime>"
                f"<MsgType><![CDATA[{msgtype}]]></MsgType>{fields}{mid}<AgentID>{self.agent_id}</AgentID></xml>")

    def text_xml(self, user: str, content: str) -> str:
        return self._xml(user, "text", f"<Content><![CDATA[{content}]]></Content>")

    def image_xml(self, user: str, media_id: str) -> str:
        return self._xml(user, "image", f"<PicUrl><![CDATA[http://example.invalid/p.jpg]]></PicUrl>"
                                        f"<MediaId><![CDATA[{media_id}]]></MediaId>")

    def voice_xml(self, user: str, media_id: str) -> str:
        return self._xml(user, "voice", f"<MediaId><![CDATA[{media_id}]]></MediaId><Format><![CDATA[amr]]></Format>")

    def location_xml(self, user: str, lat: float, lon: float, label: str = "") -> str:
        return self._xml(user, "location", f"<Location_X>{lat}</Location_X><Location_Y>{lon}</Location_Y>"
                                           f"<Scale>15</Scale><Label><![CDATA[{escape(label)}]]></Label>")

    def press_xml(self, user: str, card: Sent, key: str, response_code: str | None = None) -> str:
        rc = response_code or f"RC{uuid.uuid4().hex}"
        return self._xml(user, "event", "<Event><![CDATA[template_card_event]]></Event>"
                                        f"<EventKey><![CDATA[{key}]]></EventKey>"
                                        f"<TaskId><![CDATA[{card.body['task_id']}]]></TaskId>"
                                        "<CardType><![CDATA[button_interaction]]></CardType>"
                                        f"<ResponseCode><![CDATA[{rc}]]></ResponseCode>", msg_id=False)

    def event_xml(self, user: str, event: str) -> str:
        return self._xml(user, "event", f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[]]></EventKey>",
                         msg_id=False)

    def encrypt(self, xml: str) -> tuple[str, Json]:
        nonce = uuid.uuid4().hex[:10]
        body, signature, ts = self.crypto.encrypt(xml, nonce)
        return body, {"msg_signature": signature, "timestamp": ts, "nonce": nonce}

    async def post(self, xml: str, *, forge: bool = False) -> int:
        """POST one callback to the bot's callback URL; the HTTP status it answered."""
        body, params = self.encrypt(xml)
        if forge:
            params["msg_signature"] = "0" * 40
        return await self.post_raw(body, params)

    async def post_raw(self, body: str, params: Json) -> int:
        assert self._client is not None and self.callback_url
        async with self._client.post(self.callback_url, params=params, data=body.encode()) as resp:
            await resp.read()
            return resp.status

    async def verify_url(self) -> tuple[int, str]:
        """The console's URL check: GET with an encrypted echostr; (status, answer)."""
        assert self._client is not None
        nonce, ts, plain = uuid.uuid4().hex[:8], str(int(time.time())), uuid.uuid4().hex
        echostr, signature = self.crypto.encrypt_echo(plain, nonce, ts)
        params = {"msg_signature": signature, "timestamp": ts, "nonce": nonce, "echostr": echostr}
        async with self._client.get(self.callback_url, params=params) as resp:
            text = await resp.text()
            return resp.status, ("OK" if text == plain else text)

    async def text(self, user: str, content: str) -> int:
        return await self.post(self.text_xml(user, content))

    async def image(self, user: str, data: bytes) -> int:
        return await self.post(self.image_xml(user, self.add_media(data)))

    async def voice(self, user: str, data: bytes) -> int:
        return await self.post(self.voice_xml(user, self.add_media(data, "audio/amr")))

    async def location(self, user: str, lat: float, lon: float, label: str = "") -> int:
        return await self.post(self.location_xml(user, lat, lon, label))

    async def press(self, user: str, card: Sent, button_text: str) -> int:
        return await self.post(self.press_xml(user, card, card.keys[button_text]))
