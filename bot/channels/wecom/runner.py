"""The WeCom runner: the callback URL (an aiohttp app) in, the core, WeComTransport out.

- GET  <path>?msg_signature&timestamp&nonce&echostr: the console's URL check; answered with the
  decrypted echostr.
- POST <path>?msg_signature&timestamp&nonce: one encrypted callback. It is verified and decrypted, put
  on the work queue and answered at once with an empty 200 (WeCom retries a callback it had no answer
  to within a few seconds; the retry is then dropped by the core's processed-updates check, keyed by
  channel "wecom" and the MsgId / event digest). A forged or undecryptable callback gets 403 and one
  log line naming the peer and the reason, never the body, token or key.
- The work runs off the request: one task per callback, in arrival order per user (UserSequencer, as
  the Telegram runners), concurrently across users; replies that cannot go out now are parked in the
  outbox like on Telegram.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from bot.channels.wecom.api import make_api
from bot.channels.wecom.crypto import BadCallback, CallbackCrypto, parse
from bot.channels.wecom.inbound import to_incoming
from bot.channels.wecom.transport import WeComTransport
from bot.core.bootstrap import App
from bot.core.types import AnswerCallback, Incoming
from bot.runners.telegram_common import Bridge, execute
from bot.settings import Settings

log = logging.getLogger(__name__)


class WeComBridge(Bridge):
    """The Telegram runners' bridge (parking, ordering, draining), fed WeCom's Incoming."""

    async def handle_incoming(self, inc: Incoming) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            async with self.sequencer.hold(inc.user.id):
                result = await self.run_core(inc)
                actions = list(result.actions)
                if inc.callback_id and not any(isinstance(a, AnswerCallback) for a in actions):
                    actions.insert(0, AnswerCallback(inc.callback_id))
                await execute(self.transport, actions, self.park)
        except Exception:
            log.exception("failed to process WeCom update %s", inc.update_id)
        finally:
            if task is not None:
                self._in_flight.discard(task)


class WeComRunner:
    """Runs the core on WeCom. `start()` returns once the callback URL is served."""

    name = "wecom"

    def __init__(self, app: App, settings: Settings) -> None:
        cfg = settings.require_wecom()
        self.app = app
        self.settings = settings
        self.crypto = CallbackCrypto(cfg.token, cfg.aes_key, cfg.corp_id)
        self.api = make_api(settings, app.core.sessions)
        self.transport = WeComTransport(self.api)
        self.bridge = WeComBridge(app.core, self.transport)
        self.path = cfg.path
        self.refused = 0  # callbacks refused (bad signature, not decryptable)
        self._tasks: set[asyncio.Task[None]] = set()
        self._web: web.AppRunner | None = None
        self.port: int | None = None

    def webapp(self) -> web.Application:
        webapp = web.Application()
        webapp.router.add_get(self.path, self.on_verify)
        webapp.router.add_post(self.path, self.on_callback)
        return webapp

    async def on_verify(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            echo = self.crypto.verify_url(q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""),
                                          q.get("echostr", ""))
        except BadCallback as e:
            self.refused += 1
            log.warning("refused a WeCom URL check from %s: %s", request.remote, e)
            return web.Response(status=403, text="forbidden")
        return web.Response(text=echo)

    async def on_callback(self, request: web.Request) -> web.Response:
        q = request.query
        body = await request.read()
        try:
            xml = self.crypto.decrypt(body, q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
            message = parse(xml)
        except BadCallback as e:
            self.refused += 1
            log.warning("refused a WeCom callback from %s: %s", request.remote, e)
            return web.Response(status=403, text="forbidden")
        except Exception as e:
            self.refused += 1
            log.warning("refused a WeCom callback from %s: unreadable (%s)", request.remote, type(e).__name__)
            return web.Response(status=400, text="bad request")
        inc = to_incoming(message)
        if inc is not None:
            self.dispatch(inc)
        return web.Response(text="")

    def dispatch(self, inc: Incoming) -> asyncio.Task[None]:
        """Handle an update off the request. Tasks start in creation order and take the user's lock
        first thing, so one user's updates run in arrival order."""
        task = asyncio.create_task(self.bridge.handle_incoming(inc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self) -> None:
        """Check the token works, set the core's file source, serve the callback URL."""
        if self.api.tokens is not None:
            await self.api.tokens.token()
        self.app.core.files = self.transport
        runner = web.AppRunner(self.webapp(), access_log=None)
        await runner.setup()
        host, _, port = self.settings.wecom_listen.rpartition(":")
        site = web.TCPSite(runner, host or "127.0.0.1", int(port or 0))
        await site.start()
        self._web = runner
        server: Any = site._server
        sockets = list(server.sockets) if server is not None else []
        self.port = int(sockets[0].getsockname()[1]) if sockets else int(port or 0)
        log.info("WeCom callback URL served on %s:%s%s", host, self.port, self.path)

    @property
    def url(self) -> str:
        host = self.settings.wecom_listen.rpartition(":")[0] or "127.0.0.1"
        return f"http://{host}:{self.port}{self.path}"

    async def stop(self) -> None:
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        await self.bridge.drain()
        await self.api.close()
        if self.app.core.files is self.transport:
            self.app.core.files = None

    async def wait(self) -> None:
        await asyncio.Event().wait()


def callback_path(url_or_path: str) -> str:
    return urlparse(url_or_path).path or "/"
