"""A local fake Telegram Bot API server (aiohttp) that real bot libraries talk to over HTTP.

It speaks the wire protocol aiogram and python-telegram-bot use against api.telegram.org:
`POST /bot<token>/<method>` with a JSON, url-encoded or multipart body, answers wrapped in
`{"ok": true, "result": ...}`, errors as `{"ok": false, "error_code": ..., "description": ...}`,
and file downloads at `/file/bot<token>/<path>`. Updates are queued by the test (`inject_*`) and
handed out by `getUpdates` long polling, or POSTed to the webhook once one is set.

Every request is recorded (`requests`), every message the bot sends is kept (`sent`), and faults can
be injected (`fail_next`, `block_chat`) for retry/backoff tests. Usage:

    async with FakeBotAPI() as api:
        settings = Settings(telegram_token=api.token, telegram_api_url=api.url, ...)
        ...
        api.inject_message(FakeUser(42), "/start")
        reply = await api.wait_for_sent(42)
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import BodyPartReader, ClientSession, ClientTimeout, web

Json = dict[str, Any]

# Parameters that arrive JSON-encoded inside form fields (both libraries send them that way).
_JSON_FIELDS = {
    "reply_markup",
    "commands",
    "scope",
    "entities",
    "caption_entities",
    "allowed_updates",
    "link_preview_options",
    "reply_parameters",
    "media",
}
_SEND_METHODS = {"sendmessage", "sendphoto", "senddocument"}


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user talking to the bot in a private chat (chat id = user id)."""

    id: int
    first_name: str = "Tester"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "zh-hans"

    def to_api(self) -> Json:
        d: Json = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for k in ("last_name", "username", "language_code"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d


@dataclass
class RecordedRequest:
    """One call the bot made: method name (as sent), decoded parameters, uploaded files."""

    method: str
    params: Json
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # field -> (filename, bytes)
    at: float = 0.0
    status: int = 200


@dataclass
class _Fault:
    method: str  # lower-case method name
    status: int
    retry_after: int
    chat_id: str | None
    remaining: int
    html: bool = False  # a proxy's HTML error page instead of the Bot API's JSON
    lose_response: bool = False  # accept (the message is delivered), then cut the connection


def _as_user(user: FakeUser | int) -> FakeUser:
    return user if isinstance(user, FakeUser) else FakeUser(user)


class FakeBotAPI:
    """The fake server. Start with `await start()` (or `async with`), stop with `await stop()`."""

    def __init__(self, token: str = "123456789:TEST-fake-token", bot_username: str = "bangfu_test_bot",
                 keep_last: int | None = None) -> None:
        """`keep_last`: keep only about that many recorded requests and sent messages (long benchmarks;
        `wait_for_sent` and the `inject_*` marks assume the full history, so tests leave it None)."""
        self.token = token
        self.keep_last = keep_last
        # Called with (request, result) after every successful method call: benchmarks' cheap way to
        # see answers as they happen without scanning `sent`.
        self.listeners: list[Callable[[RecordedRequest, Any], None]] = []
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.requests: list[RecordedRequest] = []
        self.sent: list[Json] = []  # Message objects the bot sent (plus "method" and raw "params")
        self.files: dict[str, Json] = {}  # file_id -> File metadata + "data"
        self.commands: dict[str, list[Json]] = {}  # scope key -> commands
        self.webhook: Json = {"url": ""}
        self._updates: list[Json] = []
        self._update_seq = itertools.count(1)
        self._message_seq = itertools.count(1000)
        self._file_seq = itertools.count(1)
        self._changed = asyncio.Condition()
        self._faults: list[_Fault] = []
        self._held = False  # hold_sends(): send requests wait, unrecorded, until release_sends()
        self._release = asyncio.Event()
        self._blocked: set[str] = set()
        self._inject_mark: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self._deliver_task: asyncio.Task[None] | None = None
        self._wake_delivery = asyncio.Event()
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """Root URL (what a self-hosted Bot API server would be configured as)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeBotAPI:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._on_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._on_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._deliver_task is not None:
            self._deliver_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._deliver_task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ injecting updates
    def inject_update(self, update: Json) -> int:
        """Queue a raw update (an update_id is assigned if missing); returns its update_id."""
        if "update_id" not in update:  # the first key, as Telegram writes it (RawUpdates skips by it)
            rest = dict(update)
            update.clear()
            update["update_id"] = next(self._update_seq)
            update.update(rest)
        self._updates.append(update)
        chat = _chat_of(update)
        if chat is not None:
            self._inject_mark[chat] = len(self.sent)
        self._notify()
        return int(update["update_id"])

    def _message(self, user: FakeUser, **content: Any) -> Json:
        return {
            "message_id": next(self._message_seq),
            "date": int(time.time()),
            "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
            "from": user.to_api(),
            **content,
        }

    def inject_message(self, user: FakeUser | int, text: str) -> int:
        """A text message; "/cmd args" gets a bot_command entity like real clients send."""
        u = _as_user(user)
        content: Json = {"text": text}
        if text.startswith("/"):
            head = text.split(" ", 1)[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(head)}]
        return self.inject_update({"message": self._message(u, **content)})

    def inject_callback(self, user: FakeUser | int, data: str, message: Json | None = None) -> int:
        """An inline-button press on `message` (a message the bot sent; the latest one to the user by default)."""
        u = _as_user(user)
        if message is None:
            message = next((m for m in reversed(self.sent) if str(m["chat"]["id"]) == str(u.id)), None)
        msg = {k: v for k, v in (message or self._message(u, text="?")).items() if k not in ("method", "params")}
        cq = {
            "id": f"cq{next(self._update_seq) * 7919}",
            "from": u.to_api(),
            "chat_instance": f"ci{u.id}",
            "message": msg,
            "data": data,
        }
        return self.inject_update({"callback_query": cq})

    def inject_location(self, user: FakeUser | int, lat: float, lon: float) -> int:
        u = _as_user(user)
        return self.inject_update(
            {"message": self._message(u, location={"latitude": lat, "longitude": lon})}
        )

    def inject_contact(self, user: FakeUser | int, phone: str, own: bool | None = True) -> int:
        """A shared contact; `own=False` shares somebody else's card, `own=None` a card picked from the
        phone's address book (no user_id at all)."""
        u = _as_user(user)
        contact: Json = {"phone_number": phone, "first_name": u.first_name}
        if own is not None:
            contact["user_id"] = u.id if own else u.id + 1
        return self.inject_update({"message": self._message(u, contact=contact)})

    def inject_photo(self, user: FakeUser | int, data: bytes, caption: str | None = None) -> tuple[int, str]:
        """A photo in three sizes like real clients send; the largest one carries `data`.
        Returns (update_id, file_id of the largest size)."""
        u = _as_user(user)
        sizes = []
        for i, (w, h) in enumerate([(90, 60), (320, 213), (1280, 853)]):
            blob = data if i == 2 else data[: max(1, len(data) // (4 - i))]
            fid = self.register_file(blob, f"photos/file_{next(self._file_seq)}.jpg")
            meta = self.files[fid]
            sizes.append(
                {"file_id": fid, "file_unique_id": meta["file_unique_id"], "width": w, "height": h,
                 "file_size": len(blob)}
            )
        content: Json = {"photo": sizes}
        if caption:
            content["caption"] = caption
        return self.inject_update({"message": self._message(u, **content)}), sizes[-1]["file_id"]

    def inject_document(self, user: FakeUser | int, data: bytes, file_name: str) -> tuple[int, str]:
        u = _as_user(user)
        fid = self.register_file(data, f"documents/{file_name}")
        meta = self.files[fid]
        doc = {"file_id": fid, "file_unique_id": meta["file_unique_id"], "file_name": file_name,
               "file_size": len(data)}
        return self.inject_update({"message": self._message(u, document=doc)}), fid

    def inject_voice(self, user: FakeUser | int, data: bytes, duration: int = 5) -> tuple[int, str]:
        """A voice message (OGG/Opus, as clients record it); returns (update_id, file_id)."""
        u = _as_user(user)
        fid = self.register_file(data, f"voice/file_{next(self._file_seq)}.oga")
        meta = self.files[fid]
        voice = {"file_id": fid, "file_unique_id": meta["file_unique_id"], "duration": duration,
                 "mime_type": "audio/ogg", "file_size": len(data)}
        return self.inject_update({"message": self._message(u, voice=voice)}), fid

    def register_file(self, data: bytes, path: str | None = None) -> str:
        """Make bytes downloadable through getFile; returns the file_id."""
        n = next(self._file_seq)
        fid = f"FILE{n:06d}{'x' * 20}"
        self.files[fid] = {
            "file_id": fid,
            "file_unique_id": f"U{n:06d}",
            "file_size": len(data),
            "file_path": path or f"documents/file_{n}",
            "data": data,
        }
        return fid

    # ------------------------------------------------------------------ faults
    def fail_next(
        self, method: str = "sendMessage", n: int = 1, status: int = 429, retry_after: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Make the next n calls of `method` (optionally only to one chat) fail with `status`
        (429 carries retry_after, 403 means blocked, 5xx a server error)."""
        self._faults.append(
            _Fault(method.lower(), status, retry_after, None if chat_id is None else str(chat_id), n)
        )

    def fail_next_html(self, method: str = "sendMessage", n: int = 1, status: int = 502,
                       chat_id: int | str | None = None) -> None:
        """The next n calls answer a proxy's HTML error page (not JSON), like nginx's 502 Bad Gateway."""
        self._faults.append(_Fault(method.lower(), status, 0, None if chat_id is None else str(chat_id), n,
                                   html=True))

    def lose_response_next(self, method: str = "sendMessage", n: int = 1, chat_id: int | str | None = None) -> None:
        """The next n calls are carried out (a message is delivered and recorded) but the connection is cut
        before the answer: the bot cannot know whether it was sent."""
        self._faults.append(_Fault(method.lower(), 200, 0, None if chat_id is None else str(chat_id), n,
                                   lose_response=True))

    def hold_sends(self) -> None:
        """Sends wait unanswered and unrecorded (Telegram stalls); a client that goes away meanwhile sent nothing."""
        self._held = True
        self._release.clear()

    def release_sends(self) -> None:
        self._held = False
        self._release.set()

    def replies_per_update(self, chat_ids: set[str] | None = None) -> dict[str, int]:
        """How many messages carry each text, over `sent` (for lost / duplicate counts in tests)."""
        counts: dict[str, int] = {}
        for m in self.sent:
            if chat_ids is None or str(m["chat"]["id"]) in chat_ids:
                key = str(m.get("text") or m.get("caption") or "")
                counts[key] = counts.get(key, 0) + 1
        return counts

    def block_chat(self, chat_id: int | str) -> None:
        """Every send to this chat answers 403 (the user blocked the bot)."""
        self._blocked.add(str(chat_id))

    # ------------------------------------------------------------------ waiting / inspecting
    def sent_to(self, chat_id: int | str) -> list[Json]:
        return [m for m in self.sent if str(m["chat"]["id"]) == str(chat_id)]

    def calls(self, method: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method.lower() == method.lower() and r.status == 200]

    async def wait_for_sent(
        self,
        chat_id: int | str,
        predicate: Callable[[Json], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the helper owns its deadline
        since: int | None = None,
    ) -> Json:
        """The first message sent to chat_id after the latest update injected for that chat (or after
        index `since` of `sent`) that satisfies predicate; raises TimeoutError with what was sent."""
        start = self._inject_mark.get(str(chat_id), 0) if since is None else since

        def find() -> Json | None:
            for m in self.sent[start:]:
                if str(m["chat"]["id"]) == str(chat_id) and (predicate is None or predicate(m)):
                    return m
            return None

        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    while (found := find()) is None:
                        await self._changed.wait()
                    return found
        except TimeoutError:
            texts = [m.get("text") or m.get("caption") for m in self.sent_to(chat_id)[-5:]]
            raise TimeoutError(f"nothing matching sent to {chat_id} in {timeout}s; last: {texts}") from None

    async def wait_for_request(
        self, method: str, predicate: Callable[[RecordedRequest], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> RecordedRequest:
        """The first successful recorded call of `method` satisfying predicate."""

        def find() -> RecordedRequest | None:
            for r in self.calls(method):
                if predicate is None or predicate(r):
                    return r
            return None

        async with asyncio.timeout(timeout), self._changed:
            while (found := find()) is None:
                await self._changed.wait()
            return found

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        self._wake_delivery.set()
        asyncio.get_running_loop().create_task(notify())

    # ------------------------------------------------------------------ HTTP
    async def _on_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for meta in self.files.values():
            if meta["file_path"] == path:
                return web.Response(body=meta["data"], content_type="application/octet-stream")
        return web.Response(status=404, text="Not Found")

    async def _on_method(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params, files = await _read_params(request)
        rec = RecordedRequest(method, params, files, time.time())
        self.requests.append(rec)
        if self.keep_last is not None and len(self.requests) > 2 * self.keep_last:
            del self.requests[: -self.keep_last]
        self._notify()  # wait_for_request sees a long poll as soon as it arrives, not when it returns
        if request.match_info["token"] != self.token:
            rec.status = 401
            return _error(401, "Unauthorized")
        if self._held and method.lower() in _SEND_METHODS:
            await self._release.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)  # the client went away meanwhile: nothing was sent
        fault = self._fault_for(method.lower(), params)
        if fault is not None and fault.lose_response:
            handler = getattr(self, f"_m_{method.lower()}")
            await handler(params, files)  # delivered...
            self._notify()
            rec.status = 0
            assert request.transport is not None
            request.transport.abort()  # ...and the answer never arrives
            raise web.HTTPServiceUnavailable()
        if fault is not None:
            rec.status = fault.status
            return fault_response(fault)
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            rec.status = 404
            return _error(404, "Not Found: method not found")
        try:
            result = await handler(params, files)
        except _ApiError as e:
            rec.status = e.status
            return _error(e.status, e.description)
        self._notify()
        for listener in self.listeners:
            listener(rec, result)
        # orjson, as the real server answers (compact UTF-8): the stdlib's encoder was a fifth of this fake's
        # CPU in bench/e2e_bench.py, on the cores the bot under test shares with it
        return web.Response(body=orjson.dumps({"ok": True, "result": result}), content_type="application/json")

    def _fault_for(self, method: str, params: Json) -> _Fault | None:
        chat = str(params.get("chat_id", ""))
        if method in _SEND_METHODS and chat in self._blocked:
            return _Fault(method, 403, 0, chat, 1)
        for f in self._faults:
            if f.remaining > 0 and f.method == method and (f.chat_id is None or f.chat_id == chat):
                f.remaining -= 1
                if f.remaining == 0:
                    self._faults.remove(f)
                return f
        return None

    # ------------------------------------------------------------------ methods
    def _me(self) -> Json:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Bangfu Test",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getme(self, p: Json, f: Any) -> Json:
        return self._me()

    async def _m_getupdates(self, p: Json, f: Any) -> list[Json]:
        offset = int(p.get("offset") or 0)
        timeout = float(p.get("timeout") or 0)
        limit = int(p.get("limit") or 100)
        if self.webhook["url"]:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        if offset:
            # Confirming: updates below the offset are forgotten, like Telegram does.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._changed:
                while not self._updates:
                    await self._changed.wait()
        return self._updates[:limit]

    def _chat(self, chat_id: Any) -> Json:
        cid = int(chat_id) if str(chat_id).lstrip("-").isdigit() else chat_id
        return {"id": cid, "type": "private" if isinstance(cid, int) and cid > 0 else "group"}

    def _record_sent(self, method: str, p: Json, **content: Any) -> Json:
        if "chat_id" not in p:
            raise _ApiError(400, "Bad Request: chat_id is empty")
        msg: Json = {
            "message_id": next(self._message_seq),
            "date": int(time.time()),
            "chat": self._chat(p["chat_id"]),
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Bangfu Test",
                     "username": self.bot_username},
            **content,
        }
        markup = p.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        self.sent.append({**msg, "method": method, "params": p})
        if self.keep_last is not None and len(self.sent) > 2 * self.keep_last:
            del self.sent[: -self.keep_last]
        return msg

    async def _m_sendmessage(self, p: Json, f: Any) -> Json:
        text = p.get("text")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if telegram_length(str(text), p.get("parse_mode")) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        return self._record_sent("sendMessage", p, text=str(text))

    def _upload(self, name: str, p: Json, files: dict[str, tuple[str, bytes]]) -> tuple[str, bytes | None]:
        if name in files:
            filename, data = files[name]
            return self.register_file(data, f"uploads/{filename}"), data
        ref = p.get(name)
        if isinstance(ref, str) and ref.startswith("attach://") and ref[9:] in files:
            filename, data = files[ref[9:]]
            return self.register_file(data, f"uploads/{filename}"), data
        if not ref:
            raise _ApiError(400, f"Bad Request: there is no {name} in the request")
        if ref not in self.files:
            raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return str(ref), None

    async def _m_sendphoto(self, p: Json, files: dict[str, tuple[str, bytes]]) -> Json:
        if p.get("caption") and telegram_length(str(p["caption"]), p.get("parse_mode")) > 1024:
            raise _ApiError(400, "Bad Request: message caption is too long")
        fid, _ = self._upload("photo", p, files)
        meta = self.files[fid]
        content: Json = {"photo": [{"file_id": fid, "file_unique_id": meta["file_unique_id"], "width": 800,
                                    "height": 600, "file_size": meta["file_size"]}]}
        if p.get("caption"):
            content["caption"] = p["caption"]
        return self._record_sent("sendPhoto", p, **content)

    async def _m_senddocument(self, p: Json, files: dict[str, tuple[str, bytes]]) -> Json:
        if p.get("caption") and telegram_length(str(p["caption"]), p.get("parse_mode")) > 1024:
            raise _ApiError(400, "Bad Request: message caption is too long")
        fid, _ = self._upload("document", p, files)
        meta = self.files[fid]
        content: Json = {"document": {"file_id": fid, "file_unique_id": meta["file_unique_id"],
                                      "file_name": meta["file_path"].rsplit("/", 1)[-1],
                                      "file_size": meta["file_size"]}}
        if p.get("caption"):
            content["caption"] = p["caption"]
        return self._record_sent("sendDocument", p, **content)

    def _find_sent(self, p: Json) -> Json:
        for m in reversed(self.sent):  # message ids are unique: the newest first is the same answer, sooner
            if str(m["chat"]["id"]) == str(p.get("chat_id")) and str(m["message_id"]) == str(p.get("message_id")):
                return m
        raise _ApiError(400, "Bad Request: message to edit not found")

    async def _m_editmessagetext(self, p: Json, f: Any) -> Json:
        m = self._find_sent(p)
        m["text"] = p.get("text")
        m["edited"] = True
        if isinstance(p.get("reply_markup"), dict):
            m["reply_markup"] = p["reply_markup"]
        else:
            m.pop("reply_markup", None)
        return {k: v for k, v in m.items() if k not in ("method", "params", "edited")}

    async def _m_editmessagereplymarkup(self, p: Json, f: Any) -> Json:
        m = self._find_sent(p)
        m["edited"] = True
        if isinstance(p.get("reply_markup"), dict):
            m["reply_markup"] = p["reply_markup"]
        else:
            m.pop("reply_markup", None)
        return {k: v for k, v in m.items() if k not in ("method", "params", "edited")}

    async def _m_answercallbackquery(self, p: Json, f: Any) -> bool:
        if not p.get("callback_query_id"):
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    @staticmethod
    def _scope_key(scope: Any) -> str:
        if not isinstance(scope, dict) or scope.get("type", "default") == "default":
            return "default"
        if scope.get("type") == "chat":
            return f"chat:{scope.get('chat_id')}"
        return str(scope.get("type"))

    async def _m_setmycommands(self, p: Json, f: Any) -> bool:
        cmds = p.get("commands")
        if not isinstance(cmds, list):
            raise _ApiError(400, "Bad Request: commands must be an array")
        for c in cmds:
            name = str(c.get("command", ""))
            if not (1 <= len(name) <= 32) or name != name.lower() or not (1 <= len(str(c.get("description", ""))) <= 256):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands[self._scope_key(p.get("scope"))] = cmds
        return True

    async def _m_deletemycommands(self, p: Json, f: Any) -> bool:
        self.commands.pop(self._scope_key(p.get("scope")), None)
        return True

    async def _m_getmycommands(self, p: Json, f: Any) -> list[Json]:
        return self.commands.get(self._scope_key(p.get("scope")), [])

    async def _m_getfile(self, p: Json, f: Any) -> Json:
        meta = self.files.get(str(p.get("file_id")))
        if meta is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {k: v for k, v in meta.items() if k != "data"}

    async def _m_setwebhook(self, p: Json, f: Any) -> bool:
        self.webhook = {"url": str(p.get("url") or ""), "secret_token": p.get("secret_token")}
        if p.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()
        if self.webhook["url"] and self._deliver_task is None:
            self._deliver_task = asyncio.get_running_loop().create_task(self._deliver())
        self._wake_delivery.set()
        return True

    async def _m_deletewebhook(self, p: Json, f: Any) -> bool:
        self.webhook = {"url": ""}
        if p.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()
        return True

    async def _m_getwebhookinfo(self, p: Json, f: Any) -> Json:
        return {"url": self.webhook["url"], "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    async def _m_sendchataction(self, p: Json, f: Any) -> bool:
        return True

    async def _m_logout(self, p: Json, f: Any) -> bool:
        return True

    async def _m_close(self, p: Json, f: Any) -> bool:
        return True

    # ------------------------------------------------------------------ webhook delivery
    async def _deliver(self) -> None:
        """POST queued updates to the webhook one at a time, in order, like Telegram does per chat."""
        async with ClientSession(timeout=ClientTimeout(total=10)) as http:
            while True:
                await self._wake_delivery.wait()
                self._wake_delivery.clear()
                while self.webhook["url"] and self._updates:
                    update = self._updates[0]
                    headers = {}
                    if self.webhook.get("secret_token"):
                        headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
                    try:
                        async with http.post(self.webhook["url"], json=update, headers=headers) as resp:
                            ok = resp.status == 200
                    except Exception:
                        ok = False
                    if ok:
                        self._updates.pop(0)
                    else:
                        await asyncio.sleep(0.1)


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str, parameters: Json | None = None) -> web.Response:
    body: Json = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def fault_response(f: _Fault) -> web.Response:
    if f.html:
        page = f"<html><head><title>{f.status} Bad Gateway</title></head><body><center><h1>{f.status} Bad Gateway" \
               "</h1></center><hr><center>nginx</center></body></html>"
        return web.Response(status=f.status, text=page, content_type="text/html")
    if f.status == 429:
        return _error(429, f"Too Many Requests: retry after {f.retry_after}", {"retry_after": f.retry_after})
    if f.status == 403:
        return _error(403, "Forbidden: bot was blocked by the user")
    if f.status == 400:
        return _error(400, "Bad Request: chat not found")
    return _error(f.status, "Bad Gateway" if f.status == 502 else "Internal Server Error")


def _decode(key: str, value: Any) -> Any:
    if isinstance(value, str) and key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def _read_params(request: web.Request) -> tuple[Json, dict[str, tuple[str, bytes]]]:
    """Decode a Bot API request body the way Telegram does: query string, JSON, url-encoded or multipart."""
    params: Json = dict(request.query)
    files: dict[str, tuple[str, bytes]] = {}
    ctype = request.content_type
    if request.can_read_body:
        if ctype == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue  # nested multipart: Telegram clients never send one
                name = part.name or ""
                data = await part.read()
                if part.filename:
                    files[name] = (part.filename, bytes(data))
                else:
                    params[name] = bytes(data).decode("utf-8")
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return {k: _decode(k, v) for k, v in params.items()}, files


def telegram_length(text: str, parse_mode: Any = None) -> int:
    """A message's length as Telegram counts it: UTF-16 code units of the text after entity parsing
    (HTML tags removed, entities decoded). An HTML text whose tags do not balance is refused."""
    if parse_mode == "HTML":
        stack: list[str] = []
        for m in re.finditer(r"<\s*(/?)\s*([A-Za-z][\w-]*)[^>]*>", text):
            if m.group(1):
                if not stack or stack.pop() != m.group(2).lower():
                    raise _ApiError(400, "Bad Request: can't parse entities: unmatched end tag")
            else:
                stack.append(m.group(2).lower())
        if stack:
            raise _ApiError(400, "Bad Request: can't parse entities: unclosed start tag")
        text = html.unescape(re.sub(r"<[^>]*>", "", text))
    return len(text.encode("utf-16-le")) // 2


def _chat_of(update: Json) -> str | None:
    if "message" in update:
        return str(update["message"]["chat"]["id"])
    if "callback_query" in update:
        cq = update["callback_query"]
        return str(cq["message"]["chat"]["id"]) if cq.get("message") else str(cq["from"]["id"])
    return None
