"""Aliyun 短信服务 (Dysmsapi 2017-05-25) SendSms over its documented HTTP RPC API, no SDK.

Why Aliyun rather than Tencent Cloud: its RPC signature is a plain HMAC-SHA1 over the sorted, percent-
encoded query (no SDK, no request-body hashing), it is what most county governments already buy through
their 政务云, and a mock of it is simple to keep honest. Tencent Cloud SMS would be one more class with
the same `send`.

Request: GET <BANGFU_SMS_API_URL>?AccessKeyId&Action=SendSms&Format=JSON&PhoneNumbers&RegionId&SignName
&SignatureMethod=HMAC-SHA1&SignatureNonce&SignatureVersion=1.0&TemplateCode&TemplateParam(JSON)
&Timestamp(ISO 8601 UTC)&Version=2017-05-25&Signature. StringToSign = "GET&%2F&" + percent(canonical
query); Signature = base64(HMAC-SHA1(secret + "&", StringToSign)). Answer: {"Code": "OK", "BizId": ...}
or an error Code: isv.BUSINESS_LIMIT_CONTROL / isv.DAY_LIMIT_CONTROL / Throttling.User (limits) →
RetryAfter; isv.MOBILE_NUMBER_ILLEGAL → Unreachable; 5xx / network → TransientError.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import aiohttp

from bot.core.types import RetryAfter, SendError, TransientError, Unreachable

LIMIT_CODES = {"isv.BUSINESS_LIMIT_CONTROL": 60.0, "isv.DAY_LIMIT_CONTROL": 3600.0, "Throttling.User": 1.0,
               "isv.MONTH_LIMIT_CONTROL": 86400.0}
GONE_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.BLACK_KEY_CONTROL_LIMIT", "isv.MOBILE_COUNT_OVER_LIMIT"})


def percent(s: str) -> str:
    """Aliyun's percent-encoding: RFC 3986 (space %20, '*' %2A, '~' kept)."""
    return quote(s, safe="~")


def sign(params: dict[str, str], secret: str, method: str = "GET") -> str:
    canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{percent('/')}&{percent(canonical)}"
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSms:
    name = "aliyun"

    def __init__(self, url: str, access_key_id: str, secret: str, sign_name: str, region: str = "cn-hangzhou",
                 timeout_s: float = 10.0) -> None:
        self.url = url
        self.key_id = access_key_id
        self._secret = secret
        self.sign_name = sign_name
        self.region = region
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def params(self, phone: str, template_code: str, values: dict[str, str]) -> dict[str, str]:
        p = {
            "AccessKeyId": self.key_id, "Action": "SendSms", "Format": "JSON", "PhoneNumbers": phone,
            "RegionId": self.region, "SignName": self.sign_name, "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0", "TemplateCode": template_code,
            "TemplateParam": json.dumps(values, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
        }
        p["Signature"] = sign(p, self._secret)
        return p

    async def send(self, phone: str, template_code: str, values: dict[str, str]) -> str:
        """The provider's BizId; a core SendError otherwise."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self.url, params=self.params(phone, template_code, values)) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as e:
            raise TransientError(f"SMS: {type(e).__name__}") from None
        if status >= 500:
            raise TransientError(f"SMS: HTTP {status}")
        try:
            data = json.loads(body)
        except ValueError:
            raise TransientError(f"SMS: HTTP {status}, not JSON") from None
        code = str(data.get("Code", ""))
        if code == "OK":
            return str(data.get("BizId", ""))
        if code in LIMIT_CODES:
            raise RetryAfter(LIMIT_CODES[code])
        if code in GONE_CODES:
            raise Unreachable(f"SMS {code}")
        raise SendError(f"SMS {code}: {data.get('Message', '')}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
