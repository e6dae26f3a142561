"""`bangfu web`: serve the dashboard (beside `bangfu run` and `bangfu scheduler`, same database)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from bot.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("web", help="serve the web dashboard for leaders, townships and the county")
    p.add_argument("--listen", help="host:port (default BANGFU_WEB_LISTEN, 127.0.0.1:8090)")
    p.set_defaults(func=_web)


def _web(args: argparse.Namespace) -> int:
    from bot.store.migrate import upgrade
    from bot.web.app import serve

    settings = Settings()
    if args.listen:
        settings = settings.model_copy(update={"web_listen": args.listen})
    upgrade(settings.database_url)
    print(f"web dashboard on http://{settings.web_listen} (links point to {settings.web_url}); send /web in the chat")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return 0
