"""A decrypted WeCom callback (WeComMessage) → the core's Incoming.

- text: a command ("/visit ...") or plain text; image: a photo by its MediaId (the core's file source
  downloads it through media/get); voice: a voice file reference (never downloaded: the core answers
  that it cannot understand voice yet, and in a dialog asks the step again); location: lat/lng (Location_X is the latitude);
- template_card_event: a card button press; its key is the callback data (or, for a reply keyboard's
  choice, the typed text), and the callback id carries userid, ResponseCode and key so the answer can
  update that card;
- enter_agent, subscribe, menu views and the like: nothing to do (None).

update_id (the core drops one it has seen, per channel): "m<MsgId>" for messages; for events, which
have no MsgId, a digest of user, time, task and key, so WeCom's retries of one press are one update.
"""

from __future__ import annotations

import hashlib

from bot.channels.wecom import CHANNEL
from bot.channels.wecom.crypto import WeComMessage
from bot.channels.wecom.transport import TEXT_KEY, pack_callback_id
from bot.core.types import FileRef, Incoming, Location, User


def event_update_id(m: WeComMessage) -> str:
    raw = "\x1f".join((m.user, str(m.create_time), m.event, m.task_id, m.event_key, m.response_code))
    return "e" + hashlib.sha1(raw.encode()).hexdigest()


def to_incoming(m: WeComMessage) -> Incoming | None:
    if not m.user:
        return None
    user = User(m.user)
    if m.type == "event":
        if m.event != "template_card_event" or not m.event_key:
            return None
        uid = event_update_id(m)
        cb_id = pack_callback_id(m.user, m.response_code, m.event_key)
        if m.event_key.startswith(TEXT_KEY):
            text = m.event_key[len(TEXT_KEY):]
            cmd, args = Incoming.parse_command(text)
            return Incoming(channel=CHANNEL, user=user, chat_id=m.user, update_id=uid, text=text, command=cmd,
                            args=args, callback_id=cb_id)
        return Incoming(channel=CHANNEL, user=user, chat_id=m.user, update_id=uid, callback_data=m.event_key,
                        callback_id=cb_id)
    uid = f"m{m.msg_id}" if m.msg_id else f"m{m.user}:{m.create_time}:{m.type}"
    base = {"channel": CHANNEL, "user": user, "chat_id": m.user, "update_id": uid[:64], "message_id": m.msg_id}
    if m.type == "text":
        text = m.content.strip()
        cmd, args = Incoming.parse_command(text)
        return Incoming(**base, text=text, command=cmd, args=args)  # type: ignore[arg-type]
    if m.type == "image" and m.media_id:
        return Incoming(**base, files=(FileRef(m.media_id, f"wecom:{m.msg_id or m.media_id}", "photo"),))  # type: ignore[arg-type]
    if m.type == "voice" and m.media_id:
        return Incoming(**base, files=(FileRef(m.media_id, f"wecom:{m.msg_id or m.media_id}", "voice"),))  # type: ignore[arg-type]
    if m.type == "location" and m.lat is not None and m.lon is not None:
        return Incoming(**base, location=Location(m.lat, m.lon))  # type: ignore[arg-type]
    return None
