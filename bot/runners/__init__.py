"""Channel runners: the only package that imports aiogram / python-telegram-bot.

- `telegram_common`: Bot API update JSON -> `Incoming`, keyboards -> Bot API JSON, per-user ordering
  (`UserSequencer`) and the `Bridge` both Telegram runners hand updates to.
- `aiogram_runner` (default) and `ptb_runner`: long polling, or webhook mode when BANGFU_WEBHOOK_URL
  is set; BANGFU_TELEGRAM_API_URL points them at a self-hosted (or, in tests, fake) Bot API server.
  Each provides a `Transport` (sending, Telegram errors mapped to RetryAfter / Unreachable /
  TransientError) that is also the core's `FileSource` for user photos.
- `console`: `bangfu chat --as NAME_OR_PHONE`, the same core in a terminal.
- `cli`: the `run` and `chat` subcommands.
"""
