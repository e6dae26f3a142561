"""A local fake of Aliyun's SMS API (Dysmsapi 2017-05-25 SendSms over HTTP RPC), for tests and benches.

It verifies what the real one verifies — AccessKeyId known, the HMAC-SHA1 signature over the sorted
percent-encoded query, Action/Version/SignatureMethod, SignName, a known TemplateCode and a TemplateParam
JSON with exactly the template's variables, a SignatureNonce never seen before — and applies the
per-number limits itself (1 a minute, 5 an hour, 10 a day by default): a send over them is answered
isv.BUSINESS_LIMIT_CONTROL and counted in `violations` (our sender must keep that at zero).

Fault injection: `fail_next(code=..., status=..., times=...)` (throttling codes, 5xx).
Time: `now` is a callable (the tests pass their clock) so limits follow simulated time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

LIMITS: tuple[tuple[int, float], ...] = ((1, 60.0), (5, 3600.0), (10, 86400.0))


def _percent(s: str) -> str:
    return quote(s, safe="~")


@dataclass
class Message:
    phone: str
    sign_name: str
    template_code: str
    params: dict[str, str]
    at: datetime


@dataclass
class Fault:
    code: str | None = None
    status: int | None = None
    times: int = 1


class FakeSms:
    def __init__(self, templates: dict[str, list[str]], *, now: Callable[[], datetime] | None = None,
                 sign_name: str = "帮扶通", limits: tuple[tuple[int, float], ...] = LIMITS) -> None:
        self.key_id = "LTAI" + uuid.uuid4().hex[:16]
        self.secret = uuid.uuid4().hex
        self.sign_name = sign_name
        self.templates = templates  # TemplateCode -> variable names
        self.now = now or (lambda: datetime.fromtimestamp(time.time(), UTC))
        self.limits = limits
        self.sent: list[Message] = []
        self.violations: list[Message] = []
        self.refused: list[str] = []  # error codes answered
        self.faults: list[Fault] = []
        self._nonces: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeSms:
        app = web.Application()
        app.router.add_route("*", "/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, *, code: str | None = None, status: int | None = None, times: int = 1) -> None:
        self.faults.append(Fault(code, status, times))

    def _error(self, code: str, message: str, status: int = 200) -> web.Response:
        self.refused.append(code)
        return web.json_response({"Code": code, "Message": message, "RequestId": uuid.uuid4().hex}, status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        if request.method == "POST":
            q.update({k: str(v) for k, v in (await request.post()).items()})
        if self.faults:
            f = self.faults[0]
            f.times -= 1
            if f.times <= 0:
                self.faults.pop(0)
            if f.status:
                return web.Response(status=f.status, text="server error")
            if f.code:
                return self._error(f.code, "injected")
        given = q.pop("Signature", "")
        if q.get("AccessKeyId") != self.key_id:
            return self._error("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        canonical = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(q.items()))
        to_sign = f"{request.method}&{_percent('/')}&{_percent(canonical)}"
        want = base64.b64encode(hmac.new((self.secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(want, given):
            return self._error("SignatureDoesNotMatch", "Specified signature is not matched.", 400)
        if (q.get("Action"), q.get("Version"), q.get("SignatureMethod"), q.get("SignatureVersion")) != (
                "SendSms", "2017-05-25", "HMAC-SHA1", "1.0"):
            return self._error("InvalidParameter", "Action/Version/SignatureMethod", 400)
        nonce = q.get("SignatureNonce", "")
        if not nonce or nonce in self._nonces:
            return self._error("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
        self._nonces.add(nonce)
        try:
            ts = datetime.strptime(q.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return self._error("InvalidTimeStamp.Format", "Timestamp", 400)
        if abs((datetime.now(UTC) - ts).total_seconds()) > 900:
            return self._error("InvalidTimeStamp.Expired", "Timestamp expired", 400)
        if q.get("SignName") != self.sign_name:
            return self._error("isv.SMS_SIGNATURE_ILLEGAL", "sign name not approved")
        code = q.get("TemplateCode", "")
        if code not in self.templates:
            return self._error("isv.SMS_TEMPLATE_ILLEGAL", "template not approved")
        try:
            params: Any = json.loads(q.get("TemplateParam", "{}"))
        except ValueError:
            return self._error("isv.INVALID_JSON_PARAM", "TemplateParam is not JSON")
        if not isinstance(params, dict) or set(params) != set(self.templates[code]):
            return self._error("isv.TEMPLATE_MISSING_PARAMETERS", "template variables")
        phone = q.get("PhoneNumbers", "")
        if not re.fullmatch(r"1\d{10}", phone):
            return self._error("isv.MOBILE_NUMBER_ILLEGAL", "bad number")
        now = self.now()
        msg = Message(phone, q["SignName"], code, {k: str(v) for k, v in params.items()}, now)
        mine = [m.at for m in self.sent if m.phone == phone]
        for limit, window in self.limits:
            if len([t for t in mine if t > now - timedelta(seconds=window)]) >= limit:
                self.violations.append(msg)
                return self._error("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控" if window >= 86400 else "触发分钟级流控")
        self.sent.append(msg)
        return web.json_response({"Code": "OK", "Message": "OK", "BizId": f"{len(self.sent)}^{uuid.uuid4().hex[:10]}",
                                  "RequestId": uuid.uuid4().hex})

    def to(self, phone: str) -> list[Message]:
        return [m for m in self.sent if m.phone == phone]
