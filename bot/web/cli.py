"""`bangfu web`: serve the dashboard (beside `bangfu run` and `bangfu scheduler`, same database)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from bot import eventloop
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
        eventloop.run(serve(settings), use_uvloop=settings.uvloop)
    return 0


def demo_web(settings: Settings, leader_phone: str, *, start: bool) -> str:
    """For `bangfu demo`: start the dashboard in a background thread (when start) and return the banner
    lines: its address and a one-time sign-in link for the demo's team leader."""
    import logging
    import threading

    from bot.clock import SystemClock
    from bot.services.onboarding import find_person
    from bot.services.weblinks import LINK_MINUTES, create_link
    from bot.store.db import create_engine, session_factory
    from bot.web.app import serve

    async def link() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as s, s.begin():
                people = await find_person(s, leader_phone)
                if len(people) != 1:
                    return None
                return await create_link(s, people[0], SystemClock(settings.timezone).now())
        finally:
            await engine.dispose()

    token = asyncio.run(link())
    if start:
        def run() -> None:
            try:
                asyncio.run(serve(settings))
            except OSError as e:  # the port is taken: the chat still works
                logging.getLogger(__name__).warning("web dashboard not started: %s", e)

        threading.Thread(target=run, name="bangfu-web", daemon=True).start()
    url = settings.web_url.rstrip("/")
    lines = [f"网页工作台 / web dashboard: {url}  (bangfu web; 在聊天里发送 /web 获取登录链接 / send /web for a link)"]
    if token:
        lines.append(f"  队长登录链接（{LINK_MINUTES} 分钟内有效，一次性）/ leader's sign-in link: {url}/login/{token}")
    return "\n".join(lines)
