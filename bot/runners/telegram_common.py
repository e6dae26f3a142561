"""What both Telegram runners share: Bot API update dict -> Incoming, Outgoing -> Bot API shapes,
per-user ordering, and the loop that executes the core's actions.

The translation works on the Bot API's own JSON shapes (dicts), so aiogram and python-telegram-bot
only differ in how they obtain the dict and how they make the HTTP call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson

from bot.core.types import (
    AnswerCallback,
    Contact,
    FileRef,
    Incoming,
    InlineKeyboard,
    Location,
    Markup,
    OutcomeUnknown,
    Outgoing,
    RemoveKeyboard,
    Reply,
    ReplyKeyboard,
    Result,
    RetryAfter,
    SendError,
    SetCommands,
    TransientError,
    Transport,
    Unreachable,
    User,
)
from bot.runners.delivery import ConfirmingPoller, OutboxConfirmations, RawUpdates
from bot.runners.splitting import CAPTION_LIMIT, TEXT_LIMIT, fits_caption, split_html
from bot.scheduler.outbox import UNKNOWN_PREFIX, OutMessage, enqueue, reply_to_dict

__all__ = ["CAPTION_LIMIT", "TEXT_LIMIT", "fits_caption", "split_text"]

log = logging.getLogger(__name__)

CHANNEL = "telegram"
# Waiting longer than this for a 429 inside an update handler would stall the user's queue;
# the outbox sender (scheduler) handles long waits itself.
MAX_INLINE_RETRY_WAIT = 5.0
PASSING_FAILURE_DELAY = 1.0  # a 5xx or network error: the sender tries again this much later
TYPING_AFTER = 0.8  # seconds of handling before the chat shows "typing…"

Json = dict[str, Any]


# --------------------------------------------------------------------------- updates in
def incoming_from_update(update: Json, bot_username: str | None = None, bot_id: str = "") -> Incoming | None:
    """Translate one Bot API update (as JSON) into an Incoming; None for updates the bot ignores
    (edits, channel posts, membership changes, commands addressed to another bot). `bot_id` is the
    receiving bot's id (update ids are numbered per bot)."""
    update_id = str(update["update_id"]) if update.get("update_id") is not None else None
    if cq := update.get("callback_query"):
        sender = cq.get("from") or {}
        msg = cq.get("message") or {}
        chat = msg.get("chat") or {}
        return Incoming(
            channel=CHANNEL,
            user=_user(sender),
            chat_id=str(chat.get("id", sender.get("id"))),
            update_id=update_id,
            message_id=str(msg["message_id"]) if msg.get("message_id") is not None else None,
            callback_data=str(cq.get("data") or ""),
            callback_id=str(cq["id"]),
            chat_type=str(chat.get("type", "private")),
            bot_id=bot_id,
        )
    msg = update.get("message")
    if not msg or not msg.get("from"):
        return None
    chat = msg.get("chat") or {}
    text: str | None = msg.get("text")
    command, args = Incoming.parse_command(text) if text else (None, "")
    if command is not None and text is not None:
        addressed = text[1:].split(" ", 1)[0].partition("@")[2]
        if addressed and bot_username and addressed.lower() != bot_username.lower():
            return None  # "/help@other_bot" in a group is not for us
    if text is None and msg.get("caption"):
        text = str(msg["caption"])
    location = None
    if loc := msg.get("location"):
        location = Location(float(loc["latitude"]), float(loc["longitude"]))
    contact = None
    if c := msg.get("contact"):
        contact = Contact(
            phone=str(c.get("phone_number", "")),
            user_id=str(c["user_id"]) if c.get("user_id") is not None else None,
            name=" ".join(x for x in (c.get("first_name"), c.get("last_name")) if x),
        )
    files: list[FileRef] = []
    if photos := msg.get("photo"):
        # Clients send several sizes of one photo; only the largest is worth keeping as evidence.
        best = max(photos, key=lambda p: (p.get("width", 0) * p.get("height", 0), p.get("file_size") or 0))
        files.append(FileRef(best["file_id"], best.get("file_unique_id"), "photo", best.get("file_size")))
    if doc := msg.get("document"):
        files.append(
            FileRef(doc["file_id"], doc.get("file_unique_id"), "document", doc.get("file_size"), doc.get("file_name"))
        )
    for key in ("voice", "audio", "video_note"):
        # Spoken messages: the core cannot understand them yet, but must know one came (not "empty text").
        if v := msg.get(key):
            files.append(FileRef(v["file_id"], v.get("file_unique_id"), "voice", v.get("file_size")))
            break
    return Incoming(
        channel=CHANNEL,
        user=_user(msg["from"]),
        chat_id=str(chat.get("id", msg["from"]["id"])),
        update_id=update_id,
        message_id=str(msg.get("message_id")),
        text=text,
        command=command,
        args=args,
        location=location,
        contact=contact,
        files=tuple(files),
        chat_type=str(chat.get("type", "private")),
        bot_id=bot_id,
    )


def sequence_key(update: Json) -> str:
    """Whose queue an update waits in (`UserSequencer`): its sender, else the update itself."""
    for kind in ("message", "callback_query", "edited_message"):
        if isinstance(ev := update.get(kind), dict) and isinstance(sender := ev.get("from"), dict):
            return str(sender.get("id"))
    return f"update:{update.get('update_id', '')}"


def _user(u: Json) -> User:
    name = " ".join(x for x in (u.get("first_name"), u.get("last_name")) if x)
    return User(str(u.get("id")), name, u.get("username"), u.get("language_code"))


def bot_id_from_token(token: str) -> str:
    """A Telegram bot's id is the part of its token before the colon (getMe says the same)."""
    head = token.split(":", 1)[0]
    return head if head.isdigit() else ""


# --------------------------------------------------------------------------- actions out
def chat_id_value(chat_id: str) -> int | str:
    """Telegram chat ids are integers; "@channel" names stay strings."""
    try:
        return int(chat_id)
    except ValueError:
        return chat_id


def markup_to_api(markup: Markup | None) -> Json | None:
    """The Bot API JSON form of a keyboard."""
    if markup is None:
        return None
    if isinstance(markup, InlineKeyboard):
        rows = []
        for row in markup.rows:
            buttons = []
            for b in row:
                btn: Json = {"text": b.text}
                if b.url:
                    btn["url"] = b.url
                else:
                    btn["callback_data"] = b.data or ""
                buttons.append(btn)
            rows.append(buttons)
        return {"inline_keyboard": rows}
    if isinstance(markup, ReplyKeyboard):
        kb: Json = {
            "keyboard": [
                [
                    {
                        "text": b.text,
                        **({"request_location": True} if b.request_location else {}),
                        **({"request_contact": True} if b.request_contact else {}),
                    }
                    for b in row
                ]
                for row in markup.rows
            ],
            "one_time_keyboard": markup.one_time,
            "resize_keyboard": True,  # cheap phones: big keyboards hide the conversation
        }
        if markup.placeholder:
            kb["input_field_placeholder"] = markup.placeholder[:64]
        return kb
    if isinstance(markup, RemoveKeyboard):
        return {"remove_keyboard": True}
    raise TypeError(f"unknown markup {markup!r}")


def split_text(text: str, limit: int = TEXT_LIMIT, html: bool = True) -> list[str]:
    """Split a long message so each part fits Telegram's limit in UTF-16 units, at line breaks where
    possible, never inside an HTML tag or entity, tags balanced per part (bot/runners/splitting.py)."""
    return split_html(text, limit, html)


def classify_error(status: int | None, description: str, retry_after: float | None = None) -> SendError:
    """Map a Bot API failure onto the core's send errors."""
    desc = description.lower()
    if retry_after is not None or status == 429:
        return RetryAfter(float(retry_after or 1))
    if status == 403 or "chat not found" in desc or "user is deactivated" in desc or "bot was blocked" in desc:
        return Unreachable(description)
    if status is None or status >= 500:
        return TransientError(description)
    return SendError(description)


# Failures that prove the request never reached the server (nothing can have been sent); any other
# network failure of a send (a timeout, a connection cut after the request was written) is an unknown
# outcome. Class names, so both libraries' HTTP clients (aiohttp, httpx) are covered without imports.
_NOT_SENT = {"ClientConnectorError", "ConnectError", "ConnectTimeout", "PoolTimeout"}


def network_failure(exc: BaseException, message: str) -> TransientError:
    """TransientError when the library's network error shows the request was never sent, OutcomeUnknown
    when it may have been (read timeout, connection lost while waiting for the answer)."""
    cause: BaseException | None = exc.__cause__
    if cause is None:
        return TransientError(message)  # an HTTP status (5xx), no lower-level failure
    names = {k.__name__ for k in type(cause).__mro__}
    if names & _NOT_SENT:
        return TransientError(message)
    return OutcomeUnknown(message)


Park = Callable[[Reply, float], Awaitable[None]]


async def execute(
    transport: Transport,
    actions: Iterable[Outgoing],
    park: Park | None = None,
    confirm: OutboxConfirmations | None = None,
    own_chat: str | None = None,
) -> None:
    """Run the core's actions in order. One failed action (a blocked recipient of a notification,
    say) must not stop the rest; a short 429 is waited out once.

    A Reply the core already wrote to the outbox (`outbox_key`) is confirmed there once sent
    (`confirm`); one that could not go out for a passing reason (Telegram or the network down, a long
    429) is handed over to the outbox sender, due after the 429's retry_after or a short backoff. When
    the request went out but its answer was lost, the message's kind decides (bot/scheduler/README.md):
    the user's own reply (to `own_chat`) is tried once more by the sender, a message to anybody else is
    not resent. A Reply without a row is put in the outbox by `park` on a passing failure. Button
    acknowledgements and menus are neither (they mean nothing later).
    """
    for action in actions:
        key = action.outbox_key if isinstance(action, Reply) and confirm is not None else None
        if isinstance(action, Reply) and action.channel != transport.channel:
            # A message to someone on another channel (a notice to a console or WeCom user): the outbox
            # sender routes it to that channel's transport.
            if key is not None and confirm is not None:
                await _hand_over_now(confirm, key, action)
            elif park is not None:
                await _park(park, action, "another channel")
            continue
        if isinstance(action, SetCommands) and action.channel != transport.channel:
            continue
        try:
            try:
                await transport.send(action)
            except RetryAfter as e:
                if e.seconds > MAX_INLINE_RETRY_WAIT:
                    raise
                await asyncio.sleep(e.seconds)
                await transport.send(action)
            if key is not None and confirm is not None:
                confirm.sent(key)
        except SendError as e:
            await _settle(action, e, key, confirm, park, own_chat)


async def _settle(
    action: Outgoing, e: SendError, key: str | None, confirm: OutboxConfirmations | None, park: Park | None,
    own_chat: str | None,
) -> None:
    """What becomes of an action that was not (or maybe not) sent. Never raises."""
    try:
        if key is not None and confirm is not None:
            if isinstance(e, OutcomeUnknown):
                if isinstance(action, Reply) and action.chat_id == own_chat:
                    await confirm.hand_over(key, 0.0, f"{UNKNOWN_PREFIX}{e}")
                else:
                    await confirm.unknown(key, str(e))
            elif isinstance(e, RetryAfter):
                await confirm.hand_over(key, e.seconds, repr(e))
            elif isinstance(e, TransientError | Unreachable):
                # The sender also handles an unreachable recipient (account marked, the leader told).
                await confirm.hand_over(key, 0.0 if isinstance(e, Unreachable) else PASSING_FAILURE_DELAY, repr(e))
            else:
                await confirm.failed(key, repr(e))
            log.warning("could not send %s now (%r); settled in the outbox", describe(action), e)
            return
        if isinstance(e, TransientError | RetryAfter) and park is not None and isinstance(action, Reply):
            if isinstance(e, OutcomeUnknown) and action.chat_id != own_chat:
                log.warning("outcome of %s unknown (%r); not resent", describe(action), e)
                return
            await park(action, e.seconds if isinstance(e, RetryAfter) else PASSING_FAILURE_DELAY)
            log.warning("could not send %s now (%r); left in the outbox for the sender", describe(action), e)
            return
        target = getattr(action, "chat_id", None) or getattr(action, "callback_id", "?")
        log.warning("could not send %s to %s: %r", type(action).__name__, target, e)
    except Exception:
        log.exception("could not send %s (%r), nor settle it in the outbox", describe(action), e)


async def _hand_over_now(confirm: OutboxConfirmations, key: str, reply: Reply) -> None:
    try:
        await confirm.hand_over(key, 0.0, "another channel")
    except Exception:
        log.exception("could not hand %s over to the sender (another channel)", describe(reply))


async def _park(park: Park, reply: Reply, why: str, delay_s: float = 0.0) -> None:
    try:
        await park(reply, delay_s)
        log.warning("could not send %s now (%s); left in the outbox for the sender", describe(reply), why)
    except Exception:
        log.exception("could not send %s (%s), nor put it in the outbox", describe(reply), why)


def describe(action: Outgoing) -> str:
    """Short log form of an action."""
    if isinstance(action, Reply):
        return f"Reply(chat={action.chat_id}, chars={len(action.text or '')})"  # no personal text in logs
    return repr(action)


# --------------------------------------------------------------------------- ordering
class UserSequencer:
    """Per-key FIFO locks: one user's updates run one at a time and in arrival order, different users
    run concurrently. Locks are dropped when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            # asyncio.Lock wakes waiters first-in first-out, which keeps arrival order.
            async with lock:
                yield
        finally:
            lock2, n = self._locks[key]
            if n <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock2, n - 1)

    def __len__(self) -> int:
        return len(self._locks)


# --------------------------------------------------------------------------- bridge
class Bridge:
    """Update dict in -> core -> actions out. Both runners' handlers call `handle_update`; it also
    keeps track of updates in flight so a runner can stop without cutting one in half."""

    def __init__(
        self, core: Any, transport: Transport, bot_username: str | None = None, bot_id: str = ""
    ) -> None:
        self.core = core
        self.transport = transport
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.sequencer = UserSequencer()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self.confirmations: OutboxConfirmations | None = None
        # Updates in the core at once (Settings.updates_in_flight): the process's connection pool is sized
        # from it (Settings.pool_size), so updates never take the connections the scheduler and the outbox
        # need, and the ones beyond it wait here in arrival order instead of in the pool's queue (which
        # gives up after its pool_timeout).
        self.in_flight_limit = core.settings.updates_in_flight  # >= 1 (Settings checks it)
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None

    def use_outbox(self, handover_s: float) -> None:
        """Every message of an update goes through the outbox in the update's transaction (the
        transactional outbox); this runner sends them at once and confirms them."""
        self.core.use_outbox(handover_s, reply_to_dict)
        self.confirmations = OutboxConfirmations(self.core)
        self.confirmations.start()

    async def close(self) -> None:
        """Confirm what was sent (after drain)."""
        if self.confirmations is not None:
            await self.confirmations.close()
            st = self.confirmations.stats
            log.info("delivery: sent %d, handed over to the sender %d, outcome unknown %d, refused %d",
                     st.sent, st.handed_over, st.unknown, st.failed)

    async def handle_update(self, update: Json) -> None:
        """Translate, let the core decide, send what it returned. Never raises."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            inc = incoming_from_update(update, self.bot_username, self.bot_id)
            if inc is None:
                return
            # A timer, not a task per update: most updates finish long before it fires.
            shown: list[asyncio.Task[None]] = []
            timer = asyncio.get_running_loop().call_later(
                TYPING_AFTER, lambda: shown.append(asyncio.create_task(self._typing(inc.chat_id))))
            try:
                result = await self.run_core(inc)
            finally:
                timer.cancel()
                for t in shown:
                    t.cancel()
            actions = list(result.actions)
            if inc.callback_id and not any(isinstance(a, AnswerCallback) for a in actions):
                # Even when the core failed: an unanswered press leaves the button spinning on the phone.
                actions.insert(0, AnswerCallback(inc.callback_id))
            await execute(self.transport, actions, self.park, self.confirmations, inc.chat_id)
        except Exception:
            log.exception("failed to process update %s", update.get("update_id"))
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def run_core(self, inc: Incoming) -> Result:
        """`core.handle(inc)`, at most `in_flight_limit` of them at once in this process."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:  # first use, or a new event loop (tests)
            self._slots, self._slots_loop = asyncio.Semaphore(self.in_flight_limit), loop
        async with self._slots:
            result: Result = await self.core.handle(inc)
            return result

    async def park(self, reply: Reply, delay_s: float = 0.0) -> None:
        """Put a message that could not be sent into the outbox, for the sender to retry after `delay_s`
        (a 429's retry_after)."""
        now = self.core.clock.now()
        message = OutMessage(
            dedup_key=f"relay:{uuid.uuid4().hex}", reply=reply, rule="relay",
            not_before=now + timedelta(seconds=delay_s),
        )
        async with self.core.sessions() as s, s.begin():
            await enqueue(s, [message], now=now)

    async def _typing(self, chat_id: str) -> None:
        """Show "typing…" when an update takes a while (a report, a slow database), so the user waits."""
        typing = getattr(self.transport, "typing", None)
        if typing is not None:
            try:
                await typing(chat_id)
            except SendError:
                pass

    async def drain(self, grace: float = 10.0) -> None:
        """Wait (bounded) for updates being processed to finish."""
        pending = [t for t in self._in_flight if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending, timeout=grace)


# --------------------------------------------------------------------------- updates in, one at a time
async def process_update(bridge: Bridge, update: Json) -> None:
    """One update from getUpdates or a webhook POST: in its sender's queue (taken first thing, before any
    suspension, so in the order received), then translated, handled by the core and answered."""
    async with bridge.sequencer.hold(sequence_key(update)):
        await bridge.handle_update(update)


def webhook_handler(bridge: Bridge, secret: str | None) -> Callable[[Any], Awaitable[Any]]:
    """The aiohttp handler of the webhook URL (both runners).

    Telegram's POST is answered 200 only once the update is handled (the core committed it and its
    messages are in the outbox): a worker killed before that gets it delivered again (to it or to another
    worker) and the core's dedup drops it if it was committed after all. The update stays the Bot API's
    JSON dict, which is what the translation reads (a library's models only cost CPU here); a POST without
    the secret token is refused, a body that is not an update is a 400."""
    from aiohttp import web

    expected = secret.encode() if secret is not None else None

    async def on_webhook(request: web.Request) -> web.Response:
        if expected is not None and not hmac.compare_digest(
            request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode(), expected
        ):
            return web.Response(status=403)
        try:
            update = orjson.loads(await request.read())
        except ValueError:  # orjson.JSONDecodeError is one
            return web.Response(status=400)
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return web.Response(status=400)
        await process_update(bridge, update)
        return web.Response()

    return on_webhook


UPDATE_TYPES = ["message", "callback_query"]  # what the bot asks Telegram for (getUpdates and the webhook)


class Receiver:
    """How updates reach a Telegram runner, the same for both libraries: our own getUpdates loop
    (`ConfirmingPoller` over `RawUpdates`, the offset confirmed only past handled updates) or a webhook
    server (`webhook_handler`, answered after commit). The runner only names its getUpdates URL and how its
    library registers the webhook."""

    def __init__(self, bridge: Bridge, settings: Any, update_types: list[str] = UPDATE_TYPES) -> None:
        self.bridge, self.settings, self.update_types = bridge, settings, update_types
        self.task: asyncio.Task[None] | None = None
        self._poller: ConfirmingPoller | None = None
        self._raw: RawUpdates | None = None
        self._web: Any = None  # the webhook's aiohttp AppRunner

    async def _process(self, update: Json) -> None:
        await process_update(self.bridge, update)

    async def poll(self, get_updates_url: str, polling_timeout: int) -> None:
        """Start polling; returns once the first getUpdates is under way (a start-up failure is raised)."""
        self._raw = RawUpdates(get_updates_url, self.update_types)
        self._poller = ConfirmingPoller(self._raw, self._process, polling_timeout)
        self.task = asyncio.create_task(self._poller.run())
        started = asyncio.create_task(self._poller.started.wait())
        await asyncio.wait([self.task, started], return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if self.task.done():
            self.task.result()  # re-raise a start-up failure

    async def serve_webhook(self, set_webhook: Callable[[str, str | None], Awaitable[Any]]) -> None:
        """Serve the webhook URL's path, then register it with Telegram through the library
        (`set_webhook(url, secret)`)."""
        from urllib.parse import urlparse

        from aiohttp import web

        url = self.settings.webhook_url or ""
        path = urlparse(url).path or "/"
        secret = self.settings.webhook_secret.get_secret_value() if self.settings.webhook_secret else None
        webapp = web.Application()
        # Answered only once the update is handled (committed): see `webhook_handler`.
        webapp.router.add_post(path, webhook_handler(self.bridge, secret))
        runner = web.AppRunner(webapp, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.settings.webhook_listen, self.settings.webhook_port).start()
        self._web = runner
        await set_webhook(url, secret)
        log.info("webhook listening on %s:%s%s", self.settings.webhook_listen, self.settings.webhook_port, path)

    async def stop(self) -> None:
        """Stop receiving; updates in progress finish (the webhook server's cleanup waits for them)."""
        if self._poller is not None:
            await self._poller.stop()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        if self._raw is not None:
            await self._raw.close()
            self._raw = None
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
