"""A pulled 微信客服 message (kf/sync_msg msg_list item) → the core's Incoming.

- text → text (a command when it starts with "/"); a click on a msgmenu item arrives as text with
  `menu_id` = our callback data → a button press;
- image → a photo by media_id; voice → a voice file reference the core answers with "please type";
  location → lat/lon;
- events (origin 4) are the runner's (enter_session binds by the door card's scene); servicer and
  system messages (origin 5, 4 non-event) are ignored.
update_id: "k" + msgid (hashed when long), so a message pulled twice (a replayed callback, a resumed
sync) is handled once by the core's processed-updates check.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bot.channels.wechat_kf import CHANNEL
from bot.core.types import FileRef, Incoming, Location, User

CUSTOMER = 3


def update_id(msgid: str) -> str:
    uid = "k" + msgid
    return uid if len(uid) <= 64 else "k" + hashlib.sha1(msgid.encode()).hexdigest()


def to_incoming(msg: dict[str, Any]) -> Incoming | None:
    if int(msg.get("origin", 0)) != CUSTOMER:
        return None
    user_id = str(msg.get("external_userid", ""))
    if not user_id:
        return None
    uid = update_id(str(msg.get("msgid", "")))
    base: dict[str, Any] = {"channel": CHANNEL, "user": User(user_id), "chat_id": user_id, "update_id": uid,
                            "message_id": str(msg.get("msgid", ""))[:64]}
    kind = msg.get("msgtype")
    if kind == "text":
        body = msg.get("text") or {}
        menu_id = str(body.get("menu_id") or "")
        if menu_id:
            return Incoming(**base, callback_data=menu_id, callback_id=menu_id)
        text = str(body.get("content", "")).strip()
        cmd, args = Incoming.parse_command(text)
        return Incoming(**base, text=text, command=cmd, args=args)
    if kind == "image":
        media = str((msg.get("image") or {}).get("media_id", ""))
        return Incoming(**base, files=(FileRef(media, f"kf:{uid}", "photo"),)) if media else None
    if kind == "voice":
        media = str((msg.get("voice") or {}).get("media_id", ""))
        return Incoming(**base, files=(FileRef(media, f"kf:{uid}", "voice", name="voice.amr"),)) if media else None
    if kind == "location":
        loc = msg.get("location") or {}
        return Incoming(**base, location=Location(float(loc["latitude"]), float(loc["longitude"])))
    return None
