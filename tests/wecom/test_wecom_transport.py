"""WeComTransport and the API client against the fake WeCom: rendering, splitting, media, cards, errcodes,
the shared token; the callback crypto; the per-member send windows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.channels.wecom.api import WeComAPI
from bot.channels.wecom.crypto import BadCallback, CallbackCrypto, parse
from bot.channels.wecom.inbound import to_incoming
from bot.channels.wecom.token import DbTokenStore, MemoryTokenStore, TokenCache
from bot.channels.wecom.transport import BUTTONS_PER_CARD, TEXT_LIMIT, WeComTransport, pack_callback_id
from bot.core.bootstrap import App
from bot.core.types import (
    AnswerCallback,
    Button,
    InlineKeyboard,
    KeyButton,
    Photo,
    Reply,
    ReplyKeyboard,
    RetryAfter,
    SetCommands,
    TransientError,
    Unreachable,
)
from bot.scheduler.member_limits import WindowLimiter, mark_wait
from tests.fakewecom import FakeWeCom, Member


@pytest.fixture
async def api(wecom: FakeWeCom) -> AsyncIterator[WeComAPI]:
    client = WeComAPI(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id, timeout_s=2)
    client.tokens = TokenCache(MemoryTokenStore(), client.token_key, client.fetch_token)
    yield client
    await client.close()


def reply(text: str | None = None, **kw: object) -> Reply:
    return Reply("wjg", text, channel="wecom", **kw)  # type: ignore[arg-type]


async def test_text_rendered_and_split_on_bytes(api: WeComAPI, wecom: FakeWeCom) -> None:
    t = WeComTransport(api)
    await t.send(reply("<b>走访</b> 已保存 &amp; <a href=\"https://x.cn/a\">详情</a>"))
    assert wecom.sent[-1].msgtype == "markdown" and wecom.sent[-1].text == "**走访** 已保存 & [详情](https://x.cn/a)"
    await t.send(reply("<i>张&lt;三&gt;</i>"))
    assert wecom.sent[-1].msgtype == "text" and wecom.sent[-1].text == "张<三>"
    long = "\n".join(f"第{i}行：" + "帮扶" * 40 for i in range(60))  # ~15 KB of CJK
    n = len(wecom.sent)
    await t.send(reply(long, format="plain"))
    parts = [m.text for m in wecom.sent[n:]]
    assert len(parts) > 1 and all(len(p.encode()) <= TEXT_LIMIT for p in parts)
    assert "\n".join(parts) == long  # split at line breaks only, nothing lost
    one_line = "村" * 2000  # 6,000 bytes without a line break: cut between characters
    n = len(wecom.sent)
    await t.send(reply(one_line, format="plain"))
    assert "".join(m.text for m in wecom.sent[n:]) == one_line
    # Menus have no per-chat form on WeCom.
    assert await t.send(SetCommands("wjg", (("help", "帮助"),), channel="wecom")) is None


async def test_buttons_become_cards_split_by_the_limit(api: WeComAPI, wecom: FakeWeCom) -> None:
    t = WeComTransport(api)
    buttons = tuple((Button(f"户{i}", f"hh:o:{i}"),) for i in range(BUTTONS_PER_CARD + 2))
    n = len(wecom.sent)
    await t.send(reply("选一户：", markup=InlineKeyboard((*buttons, (Button("说明", url="https://x.cn"),)))))
    sent = wecom.sent[n:]
    cards = [m for m in sent if m.msgtype == "template_card"]
    assert len(cards) == 2 and [len(c.keys) for c in cards] == [BUTTONS_PER_CARD, 2]
    assert len({c.body["task_id"] for c in cards}) == 2
    assert cards[0].keys["户0"] == "hh:o:0"
    assert any("https://x.cn" in m.text for m in sent if m.msgtype == "text")  # link buttons under the text
    # A short prompt goes on the card itself.
    n = len(wecom.sent)
    await t.send(reply("语言？", markup=InlineKeyboard(((Button("中文", "lang:zh_CN"),),))))
    [card] = wecom.sent[n:]
    assert card.msgtype == "template_card" and card.body["main_title"]["title"] == "语言？"
    # A reply keyboard: its choices as buttons standing for the typed text; location requests dropped.
    n = len(wecom.sent)
    await t.send(reply("请发送位置", markup=ReplyKeyboard(((KeyButton("发位置", request_location=True),),
                                                         (KeyButton("上一步"), KeyButton("取消"))))))
    [card] = [m for m in wecom.sent[n:] if m.msgtype == "template_card"]
    assert card.keys == {"上一步": "~t:上一步", "取消": "~t:取消"}
    # A press greys the card once, under the pressed button's name or the toast.
    await t.send(AnswerCallback(pack_callback_id("wjg", "RC1", "~t:取消")))
    await t.send(AnswerCallback(pack_callback_id("wjg", "RC2", "x"), text="已保存"))
    assert [(u["response_code"], u["button"]["replace_name"]) for u in wecom.card_updates] == [
        ("RC1", "取消"), ("RC2", "已保存")]


async def test_photos_uploaded_and_user_media_downloaded(api: WeComAPI, wecom: FakeWeCom) -> None:
    t = WeComTransport(api)
    png = b"\x89PNG\r\n\x1a\n" + b"chart" * 100
    await t.send(reply("本月走访", photo=Photo(data=png, filename="chart.bin")))
    img = wecom.sent[-2]
    assert img.msgtype == "image" and wecom.media[img.body["media_id"]] == (png, "image/png")
    assert wecom.sent[-1].text == "本月走访"
    # A photo by an id WeCom does not know (another channel's, or expired): the text still goes.
    await t.send(reply("照片见附件", photo=Photo(file_id="AgACAgIAAxkBAAIB-telegram")))
    assert wecom.sent[-1].text == "照片见附件"
    mid = wecom.add_media(b"\xff\xd8\xffjpeg")
    assert await t.download(mid) == b"\xff\xd8\xffjpeg"


async def test_errcodes_map_to_send_errors(api: WeComAPI, wecom: FakeWeCom) -> None:
    t = WeComTransport(api)
    wecom.fail_next("message/send", errcode=45009)
    with pytest.raises(RetryAfter):
        await t.send(reply("x"))
    wecom.fail_next("message/send", errcode=45033)
    with pytest.raises(RetryAfter):
        await t.send(reply("x"))
    wecom.fail_next("message/send", status=502)
    with pytest.raises(TransientError):
        await t.send(reply("x"))
    wecom.fail_next("message/send", errcode=-1)
    with pytest.raises(TransientError):
        await t.send(reply("x"))
    wecom.fail_next("message/send", delay=3)  # slower than the client's timeout
    with pytest.raises(TransientError):
        await t.send(reply("x"))
    wecom.members = [Member("someone", "某人")]
    with pytest.raises(Unreachable):
        await t.send(reply("x"))  # "wjg" is not a member: WeCom answers invaliduser


async def test_token_expired_or_invalid_refreshed_once_and_retried(api: WeComAPI, wecom: FakeWeCom) -> None:
    t = WeComTransport(api)
    await t.send(reply("一"))
    assert wecom.token_fetches == 1
    wecom.expire_tokens()
    await t.send(reply("二"))
    assert wecom.token_fetches == 2 and wecom.sent[-1].text == "二"
    wecom.fail_next("message/send", errcode=40014)
    await t.send(reply("三"))
    assert wecom.token_fetches == 3 and wecom.sent[-1].text == "三"
    # Refused twice in a row: given up after one refresh, not refreshed in a loop.
    wecom.fail_next("message/send", errcode=42001, times=2)
    with pytest.raises(Exception, match="42001"):
        await t.send(reply("四"))
    assert wecom.token_fetches == 4


async def test_token_shared_by_processes_through_the_database(app: App, wecom: FakeWeCom) -> None:
    """Eight workers (caches) starting at once, and all told the token expired: one gettoken each time."""
    clients = []
    for _ in range(8):
        c = WeComAPI(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id)
        c.tokens = TokenCache(DbTokenStore(app.core.sessions), c.token_key, c.fetch_token)
        clients.append(c)
    try:
        tokens = await asyncio.gather(*(c.tokens.token() for c in clients if c.tokens))
        assert len(set(tokens)) == 1 and wecom.token_fetches == 1
        stale = tokens[0]
        wecom.expire_tokens()
        fresh = await asyncio.gather(*(c.tokens.token(stale) for c in clients if c.tokens))
        assert len(set(fresh)) == 1 and fresh[0] != stale and wecom.token_fetches == 2
    finally:
        for c in clients:
            await c.close()


def test_crypto_roundtrip_and_forgery(wecom: FakeWeCom) -> None:
    crypto = CallbackCrypto(wecom.token, wecom.aes_key, wecom.corp_id)
    xml = wecom.text_xml("wjg", "/visit 张大山")
    body, params = wecom.encrypt(xml)
    plain = crypto.decrypt(body, params["msg_signature"], params["timestamp"], params["nonce"])
    inc = to_incoming(parse(plain))
    assert inc is not None and inc.command == "visit" and inc.args == "张大山" and inc.channel == "wecom"
    with pytest.raises(BadCallback):
        crypto.decrypt(body, "0" * 40, params["timestamp"], params["nonce"])
    other = CallbackCrypto(wecom.token, wecom.aes_key, "another-corp")
    with pytest.raises(BadCallback):  # signed right, but for another corp
        other.decrypt(body, params["msg_signature"], params["timestamp"], params["nonce"])


def test_messages_and_events_translate(wecom: FakeWeCom) -> None:
    loc = to_incoming(parse(wecom.location_xml("wjg", 25.0015, 102.7012, "石桥村")))
    assert loc is not None and loc.location is not None and (loc.location.lat, loc.location.lon) == (25.0015, 102.7012)
    img = to_incoming(parse(wecom.image_xml("wjg", "MEDIA1")))
    assert img is not None and img.files[0].file_id == "MEDIA1" and img.files[0].kind == "photo"
    assert to_incoming(parse(wecom.event_xml("wjg", "enter_agent"))) is None
    card = type("C", (), {"body": {"task_id": "bf1"}})()
    press = parse(wecom.press_xml("wjg", card, "hh:o:3", "RCX"))  # type: ignore[arg-type]
    assert (press.event, press.task_id, press.response_code) == ("template_card_event", "bf1", "RCX")
    inc = to_incoming(press)
    assert inc is not None and inc.callback_data == "hh:o:3" and inc.callback_id
    assert inc.update_id == to_incoming(press).update_id  # type: ignore[union-attr]
    typed = to_incoming(parse(wecom.press_xml("wjg", card, "~t:取消")))  # type: ignore[arg-type]
    assert typed is not None and typed.text == "取消" and typed.callback_data is None


async def test_window_limiter_holds_30_a_minute_per_member() -> None:
    lim = WindowLimiter(windows=((3, 0.3), (5, 1.0)), rate_per_s=1000, avoid_marks=False)
    stamps: dict[str, list[float]] = {"a": [], "b": []}

    async def send(member: str) -> None:
        async with lim.turn(member):
            await asyncio.sleep(0.005)
            stamps[member].append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(send(m) for m in ["a"] * 6 + ["b"] * 3))
    a = stamps["a"]
    assert all(a[i + 3] - a[i] >= 0.3 for i in range(len(a) - 3))  # ≤ 3 in any 0.3 s
    assert a[5] - a[0] >= 1.0  # ≤ 5 in any 1 s
    assert stamps["b"][-1] - start < 0.2  # another member is not held up


def test_the_half_hour_marks_are_avoided() -> None:
    from datetime import UTC, datetime

    def at(h: int, m: int, s: int) -> float:
        return datetime(2026, 11, 29, h, m, s, tzinfo=UTC).timestamp()

    assert mark_wait(at(8, 0, 10)) == pytest.approx(50)
    assert mark_wait(at(8, 30, 0)) == pytest.approx(60)
    assert mark_wait(at(8, 1, 0)) == 0 and mark_wait(at(8, 29, 59)) == 0


async def test_token_shared_through_redis(wecom: FakeWeCom) -> None:
    import uuid

    from redis.asyncio import Redis

    from bot.channels.wecom.token import RedisTokenStore

    redis = Redis.from_url("redis://127.0.0.1:6379")
    try:
        await redis.ping()
    except Exception:
        await redis.aclose()
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"bangfu-test:{uuid.uuid4().hex}:"
    clients = []
    try:
        for _ in range(6):
            c = WeComAPI(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id)
            c.tokens = TokenCache(RedisTokenStore(redis, prefix), c.token_key, c.fetch_token)
            clients.append(c)
        tokens = await asyncio.gather(*(c.tokens.token() for c in clients if c.tokens))
        assert len(set(tokens)) == 1 and wecom.token_fetches == 1
        fresh = await asyncio.gather(*(c.tokens.token(tokens[0]) for c in clients if c.tokens))
        assert len(set(fresh)) == 1 and fresh[0] != tokens[0] and wecom.token_fetches == 2
    finally:
        for c in clients:
            await c.close()
        async for key in redis.scan_iter(prefix + "*"):
            await redis.delete(key)
        await redis.aclose()


async def test_outbox_sender_keeps_the_member_windows(app: App, wecom: FakeWeCom) -> None:
    """Reminders to one member through the outbox sender and WeComTransport: within the (scaled) window at
    WeCom's side, none twice, a rate-limit errcode retried."""
    from bot.clock import FixedClock
    from bot.core.services import county_rules
    from bot.scheduler.outbox import OutMessage, enqueue
    from bot.scheduler.sender import Sender, SenderConfig
    from bot.settings import Settings

    clock = app.core.clock
    assert isinstance(clock, FixedClock)
    rows = [OutMessage(dedup_key=f"w:{i}", rule="t", reply=Reply(chat_id="wjg", text=f"提醒{i}", channel="wecom"))
            for i in range(8)]
    async with app.core.sessions() as s, s.begin():
        await enqueue(s, rows, now=clock.now())
    api = WeComAPI(wecom.url, wecom.corp_id, wecom.secret, wecom.agent_id)
    api.tokens = TokenCache(DbTokenStore(app.core.sessions), api.token_key, api.fetch_token)
    wecom.fail_next("message/send", errcode=45033)
    limiter = WindowLimiter(windows=((3, 0.4),), rate_per_s=100, avoid_marks=False)
    sender = Sender(app.core.sessions, WeComTransport(api), clock, county_rules(Settings()), app.core.catalogs,
                    SenderConfig(poll_interval_s=0.05), limiters={"wecom": limiter})
    try:
        stats = await sender.run(asyncio.Event(), until_idle=True)
    finally:
        await api.close()
    stamps = [m.at for m in wecom.sent]
    assert sorted(m.text for m in wecom.sent) == sorted(f"提醒{i}" for i in range(8))  # each once
    assert all(stamps[i + 3] - stamps[i] >= 0.4 for i in range(len(stamps) - 3))
    assert stats.sent == 8 and stats.retried == 1


async def test_member_windows_shared_by_two_senders_through_redis() -> None:
    import uuid

    from redis.asyncio import Redis

    from bot.scheduler.member_limits import RedisWindowLimiter

    redis = Redis.from_url("redis://127.0.0.1:6379")
    try:
        await redis.ping()
    except Exception:
        await redis.aclose()
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"bangfu-test:{uuid.uuid4().hex}"
    two = [RedisWindowLimiter(redis, windows=((3, 0.3),), rate_per_s=1000, avoid_marks=False, prefix=prefix)
           for _ in range(2)]
    stamps: list[float] = []

    async def send(lim: RedisWindowLimiter) -> None:
        async with lim.turn("wjg"):
            await asyncio.sleep(0.002)
            stamps.append(time.monotonic())

    try:
        await asyncio.gather(*(send(two[i % 2]) for i in range(8)))
        stamps.sort()
        assert all(stamps[i + 3] - stamps[i] >= 0.29 for i in range(len(stamps) - 3))
        # A refused send is taken back out of the window.
        async with two[0].turn("lhm") as ticket:
            await two[0].refund(ticket)
        assert await redis.zcard(f"{prefix}:m:lhm") == 0
    finally:
        async for key in redis.scan_iter(prefix + "*"):
            await redis.delete(key)
        await redis.aclose()


def test_wecom_credentials_are_redacted_from_logs() -> None:
    from bot.logsafe import redact

    line = "GET http://qyapi/cgi-bin/gettoken?corpid=ww1&corpsecret=s3cr3t-xyz then ?access_token=AT99&media_id=M"
    out = redact(line)
    assert "s3cr3t-xyz" not in out and "AT99" not in out and "corpid=ww1" in out and "media_id=M" in out
