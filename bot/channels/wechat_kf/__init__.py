"""微信客服 (WeChat customer service) for villagers: any WeChat user chats from a link or a door-card QR.
Same corp, token and callback crypto as the WeCom app (bot.channels.wecom); inbound is a
`kf_msg_or_event` callback then `kf/sync_msg` with a cursor kept in the database (`sync.py`); outbound
`kf/send_msg` within the 5-messages-in-48-hours window, else held and the villager told by SMS
(`transport.py`)."""

CHANNEL = "wechat_kf"
