"""A small WeCom server-API client on aiohttp: the token handling, errcodes mapped onto the core's send
errors, and the few endpoints Bangfu uses (message/send, media/upload and media/get,
message/update_template_card, user/list, agent/get).

Errcodes (WeCom's global error codes): 42001 access_token expired and 40014 invalid access_token → the
token is refreshed (once, shared) and the call retried once; 45009 (API frequency), 45033 (concurrency),
45047 (too many messages) → RetryAfter; -1 (system busy), HTTP 5xx, timeouts and network errors →
TransientError; 81013/60111/60102 and the like (the member is gone) → Unreachable.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from bot.channels.wecom.token import DbTokenStore, RedisTokenStore, TokenCache, TokenStore
from bot.core.types import RetryAfter, SendError, TransientError, Unreachable
from bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_URL = "https://qyapi.weixin.qq.com"
TOKEN_ERRCODES = frozenset({40014, 42001, 41001})
RATE_ERRCODES = {45009: 60.0, 45033: 1.0, 45047: 60.0, 45011: 1.0, 45035: 5.0}
GONE_ERRCODES = frozenset({60111, 60102, 81013, 60123, 40031, 82001, 60020})
Json = dict[str, Any]


class WeComError(SendError):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeCom errcode {errcode}: {errmsg}")
        self.errcode = errcode


def classify(errcode: int, errmsg: str) -> SendError:
    """The core's send error for a WeCom errcode (not the token ones: those are retried here)."""
    if errcode in RATE_ERRCODES:
        return RetryAfter(RATE_ERRCODES[errcode])
    if errcode == -1:
        return TransientError(f"WeCom busy: {errmsg}")
    if errcode in GONE_ERRCODES:
        return Unreachable(f"WeCom errcode {errcode}: {errmsg}")
    return WeComError(errcode, errmsg)


class WeComAPI:
    """One WeCom app's server API. `tokens` is the shared token cache (see token.py); None only for
    `fetch_token` itself and `bangfu wecom check`."""

    def __init__(self, base_url: str, corp_id: str, secret: str, agent_id: int, timeout_s: float = 10.0) -> None:
        self.base = base_url.rstrip("/")
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.tokens: TokenCache | None = None

    @property
    def token_key(self) -> str:
        return f"{self.corp_id}:{self.agent_id}"

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> WeComAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(self, method: str, path: str, params: Json, **kw: Any) -> aiohttp.ClientResponse:
        try:
            resp = await self.session().request(method, f"{self.base}/cgi-bin/{path}", params=params, **kw)
            await resp.read()
        except (aiohttp.ClientError, TimeoutError) as e:
            raise TransientError(f"WeCom {path}: {type(e).__name__}") from None
        if resp.status >= 500:
            raise TransientError(f"WeCom {path}: HTTP {resp.status}")
        if resp.status != 200:
            raise SendError(f"WeCom {path}: HTTP {resp.status}")
        return resp

    async def fetch_token(self) -> tuple[str, float]:
        """gettoken: (access_token, expires_in seconds)."""
        resp = await self._request("GET", "gettoken", {"corpid": self.corp_id, "corpsecret": self._secret})
        data = await resp.json(content_type=None)
        if data.get("errcode", 0) != 0:
            raise classify(int(data["errcode"]), str(data.get("errmsg", "")))
        return str(data["access_token"]), float(data.get("expires_in", 7200))

    async def call(self, method: str, path: str, *, params: Json | None = None, raw: bool = False,
                   **kw: Any) -> Any:
        """Call an endpoint with the access token; JSON answer (or bytes with raw=True for a file).
        A token WeCom calls expired or invalid is refreshed and the call made once more."""
        assert self.tokens is not None, "WeComAPI.tokens is not set"
        stale: str | None = None
        for attempt in (1, 2):
            token = await self.tokens.token(stale)
            resp = await self._request(method, path, {**(params or {}), "access_token": token}, **kw)
            body = await resp.read()
            if raw and not resp.content_type.startswith(("application/json", "text/plain")):
                return body
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                raise TransientError(f"WeCom {path}: not JSON") from None
            code = int(data.get("errcode", 0) or 0)
            if code == 0:
                return data
            if code in TOKEN_ERRCODES and attempt == 1:
                log.info("WeCom said the access token is %s; refreshing once", "expired" if code == 42001 else "invalid")
                stale = token
                continue
            raise classify(code, str(data.get("errmsg", "")))
        raise AssertionError("unreachable")

    # ----------------------------------------------------------------- endpoints
    async def send_message(self, message: Json) -> Json:
        """message/send; a recipient WeCom reports as invalid (invaliduser) is Unreachable."""
        data: Json = await self.call("POST", "message/send", json={**message, "agentid": self.agent_id})
        if data.get("invaliduser"):
            raise Unreachable(f"WeCom invalid user {data['invaliduser']}")
        return data

    async def upload_media(self, kind: str, filename: str, content: bytes, content_type: str) -> str:
        """media/upload (temporary media, 3 days): the media_id."""
        form = aiohttp.FormData()
        form.add_field("media", content, filename=filename, content_type=content_type)
        data: Json = await self.call("POST", "media/upload", params={"type": kind}, data=form)
        return str(data["media_id"])

    async def get_media(self, media_id: str) -> bytes:
        data = await self.call("GET", "media/get", params={"media_id": media_id}, raw=True)
        if not isinstance(data, bytes):
            raise SendError(f"WeCom media/get gave no file for {media_id}")
        return data

    async def update_card(self, userid: str, response_code: str, replace_name: str) -> None:
        """message/update_template_card: grey the card's buttons under a new name (once per press)."""
        await self.call("POST", "message/update_template_card", json={
            "userids": [userid], "agentid": self.agent_id, "response_code": response_code,
            "button": {"replace_name": replace_name},
        })

    async def members(self, department_id: int = 1) -> list[Json]:
        """Every member under a department (with its children): userid, name, mobile when the app may see it."""
        data: Json = await self.call("GET", "user/list", params={"department_id": department_id, "fetch_child": 1})
        return list(data.get("userlist", []))

    async def member(self, userid: str) -> Json:
        data: Json = await self.call("GET", "user/get", params={"userid": userid})
        return data

    async def agent(self) -> Json:
        data: Json = await self.call("GET", "agent/get", params={"agentid": self.agent_id})
        return data


def make_api(settings: Settings, sessions: Any) -> WeComAPI:
    """The app's API client with its token shared through Redis (when configured) or the database
    (`sessions`: an async_sessionmaker on the deployment's database)."""
    cfg = settings.require_wecom()
    api = WeComAPI(settings.wecom_api_url or DEFAULT_URL, cfg.corp_id, cfg.secret, cfg.agent_id)
    store: TokenStore
    if settings.redis_url:
        from redis.asyncio import Redis

        store = RedisTokenStore(Redis.from_url(settings.redis_url))
    else:
        store = DbTokenStore(sessions)
    api.tokens = TokenCache(store, api.token_key, api.fetch_token)
    return api
