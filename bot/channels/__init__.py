"""Chat channels beyond Telegram, one package each (WeCom today). Like bot/runners, these are adapters:
they translate a channel's updates into the core's Incoming and send its Outgoing actions."""
