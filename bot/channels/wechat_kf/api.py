"""The 微信客服 endpoints on the WeCom app's API client (same corp, same shared access token; the app must
be granted 微信客服 API access in the admin console: 微信客服 → API → 可调用接口的应用)."""

from __future__ import annotations

from typing import Any

from bot.channels.wecom.api import WeComAPI

Json = dict[str, Any]
# 95xxx: 微信客服. Out of the reply window / over its five messages; the user has not written to us.
WINDOW_ERRCODES = frozenset({95001, 95018, 95019})


async def sync_msg(api: WeComAPI, *, token: str, cursor: str, open_kfid: str, limit: int = 1000) -> Json:
    """kf/sync_msg: up to `limit` messages after `cursor`; the callback's Token lets us pull (10 minutes)."""
    body: Json = {"token": token, "limit": limit, "voice_format": 0, "open_kfid": open_kfid}
    if cursor:
        body["cursor"] = cursor
    data: Json = await api.call("POST", "kf/sync_msg", json=body)
    return data


async def send_msg(api: WeComAPI, body: Json) -> str:
    data: Json = await api.call("POST", "kf/send_msg", json=body)
    return str(data.get("msgid", ""))


async def send_msg_on_event(api: WeComAPI, code: str, body: Json) -> str:
    """A welcome on enter_session (with its welcome_code, within 20 s; outside the 5-message budget)."""
    data: Json = await api.call("POST", "kf/send_msg_on_event", json={"code": code, **body})
    return str(data.get("msgid", ""))


async def add_contact_way(api: WeComAPI, open_kfid: str, scene: str = "bangfu") -> str:
    """kf/add_contact_way: the account's contact link (a scene_param may be appended)."""
    data: Json = await api.call("POST", "kf/add_contact_way", json={"open_kfid": open_kfid, "scene": scene})
    return str(data["url"])


async def upload_image(api: WeComAPI, filename: str, content: bytes, content_type: str) -> str:
    return await api.upload_media("image", filename, content, content_type)
