"""The WeCom callback crypto and XML parsing: the ONE module that uses wechatpy.

wechatpy 1.8.18 (pinned; its last release) does the AES-CBC with the app's EncodingAESKey, the SHA-1
signature over (token, timestamp, nonce, ciphertext) and the XML parsing (`wechatpy.enterprise`: in the
2.x alphas it is renamed `wechatpy.work`). Everything else in Bangfu sees only `CallbackCrypto` and the
plain `WeComMessage` below, so a maintained crypto library can replace wechatpy here alone.

What wechatpy lacks: the template-card click event (`template_card_event`, a press on a
`button_interaction` card) parses as `UnknownMessage`; `_TemplateCardEvent` fills that one gap.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as _WeChatCrypto
from wechatpy.events import BaseEvent
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.fields import IntegerField, StringField
from wechatpy.messages import UnknownMessage


class BadCallback(Exception):
    """A callback that failed the signature, could not be decrypted, or is not for this corp."""


@dataclass(frozen=True, slots=True)
class WeComMessage:
    """One decrypted callback, whatever its type, with only the fields Bangfu reads."""

    type: str  # "text", "image", "location", "voice", ... or "event"
    user: str  # FromUserName: the member's userid
    create_time: int
    agent_id: int = 0
    msg_id: str | None = None
    content: str = ""
    media_id: str = ""
    pic_url: str = ""
    lat: float | None = None
    lon: float | None = None
    label: str = ""
    event: str = ""  # for type "event": "template_card_event", "enter_agent", "click", ...
    event_key: str = ""
    task_id: str = ""
    response_code: str = ""
    card_type: str = ""


class _TemplateCardEvent(BaseEvent):
    """The gap in wechatpy: 模板卡片事件推送 (a button press on a template card)."""

    event = "template_card_event"
    agent = IntegerField("AgentID", 0)
    key = StringField("EventKey")
    task_id = StringField("TaskId")
    card_type = StringField("CardType")
    response_code = StringField("ResponseCode")


def _signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, encrypt))).encode()).hexdigest()


class CallbackCrypto:
    """Verify, decrypt and parse WeCom callbacks (and encrypt them, for the test's fake WeCom)."""

    def __init__(self, token: str, aes_key: str, corp_id: str) -> None:
        try:
            self._crypto = _WeChatCrypto(token, aes_key, corp_id)
        except (AssertionError, ValueError) as e:  # not 43 base64 characters
            raise ValueError("the EncodingAESKey must be the 43 characters shown in the WeCom console") from e
        self._token = token
        self._key: bytes = self._crypto.key
        self.corp_id = corp_id

    def _check(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        # Compared in constant time (wechatpy compares with !=); decryption only after this.
        if not hmac.compare_digest(_signature(self._token, timestamp, nonce, encrypt), signature or ""):
            raise BadCallback("bad signature")

    def verify_url(self, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The URL check (GET): the decrypted echostr to answer with."""
        self._check(signature, timestamp, nonce, echostr)
        try:
            return str(self._crypto.check_signature(signature, timestamp, nonce, echostr))
        except Exception as e:
            raise BadCallback(f"cannot decrypt echostr: {type(e).__name__}") from None

    def decrypt(self, body: bytes | str, signature: str, timestamp: str, nonce: str) -> str:
        """The plain XML inside a POSTed callback; BadCallback if forged or not for this corp."""
        import xmltodict  # wechatpy's own XML dependency

        try:
            envelope = xmltodict.parse(body)["xml"]
            encrypt = str(envelope["Encrypt"])
        except Exception as e:
            raise BadCallback(f"malformed envelope: {type(e).__name__}") from None
        self._check(signature, timestamp, nonce, encrypt)
        try:
            return str(self._crypto.decrypt_message(envelope, signature, timestamp, nonce))
        except InvalidSignatureException:
            raise BadCallback("bad signature") from None
        except Exception as e:  # wrong corp id, bad padding, garbage
            raise BadCallback(f"cannot decrypt: {type(e).__name__}") from None

    def encrypt(self, xml: str, nonce: str, timestamp: str | None = None) -> tuple[str, str, str]:
        """(POST body, msg_signature, timestamp) of a callback carrying `xml` (what WeCom sends)."""
        ts = timestamp or str(int(time.time()))
        encrypt = PrpCrypto(self._key).encrypt(xml, self.corp_id).decode()
        signature = _signature(self._token, ts, nonce, encrypt)
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[0]]></AgentID></xml>")
        return body, signature, ts

    def encrypt_echo(self, text: str, nonce: str, timestamp: str) -> tuple[str, str]:
        """(echostr, msg_signature) for a URL check, as WeCom's console sends it."""
        echostr = PrpCrypto(self._key).encrypt(text, self.corp_id).decode()
        return echostr, _signature(self._token, timestamp, nonce, echostr)


def parse(xml: str) -> WeComMessage:
    """A decrypted callback's XML as a WeComMessage."""
    m: Any = parse_message(xml)
    if isinstance(m, UnknownMessage):
        raw: dict[str, Any] = m._data
        if str(raw.get("Event", "")).lower() == "template_card_event":
            m = _TemplateCardEvent(raw)
        else:
            return WeComMessage(
                type=str(raw.get("MsgType", "unknown")).lower(), user=str(raw.get("FromUserName", "")),
                create_time=int(raw.get("CreateTime") or 0), event=str(raw.get("Event", "")).lower(),
                msg_id=str(raw["MsgId"]) if raw.get("MsgId") else None,
            )
    base: dict[str, Any] = {
        "type": m.type, "user": m.source, "create_time": int(m.time or 0), "agent_id": int(getattr(m, "agent", 0) or 0),
    }
    if m.type == "event":
        return WeComMessage(
            **base, event=str(m.event), event_key=str(getattr(m, "key", "") or ""),
            task_id=str(getattr(m, "task_id", "") or ""), response_code=str(getattr(m, "response_code", "") or ""),
            card_type=str(getattr(m, "card_type", "") or ""),
        )
    base["msg_id"] = str(m.id) if getattr(m, "id", None) else None
    if m.type == "text":
        return WeComMessage(**base, content=str(m.content or ""))
    if m.type == "image":
        return WeComMessage(**base, media_id=str(m.media_id or ""), pic_url=str(m.image or ""))
    if m.type == "voice":
        return WeComMessage(**base, media_id=str(m.media_id or ""))
    if m.type == "location":
        return WeComMessage(**base, lat=float(m.location_x), lon=float(m.location_y), label=str(m.label or ""))
    return WeComMessage(**base)
