"""SMS through the real Aliyun wire format against the fake gateway: signature, templates, segments,
fault mapping, and the per-number limits holding with zero violations under concurrency."""

from __future__ import annotations

import asyncio

import pytest

from bot.channels.sms.aliyun import AliyunSms, sign
from bot.channels.sms.sender import Failed, Limited, Sent, SmsSender
from bot.channels.sms.templates import TemplateError, load_templates, segments
from bot.clock import FixedClock
from bot.core.bootstrap import App
from tests.fakesms import FakeSms


def test_signature_matches_aliyuns_documented_example() -> None:
    # The worked example of Aliyun's RPC signature documentation (ECS DescribeRegions, secret "testsecret").
    params = {
        "AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
    }
    assert sign(params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_segments_and_templates() -> None:
    assert segments("字" * 64, "帮扶通") == 1  # 64 + 【帮扶通】 = 69
    assert segments("字" * 66, "帮扶通") == 2  # 71 > 70: two parts of 67
    assert segments("字" * 129, "帮扶通") == 2
    assert segments("字" * 130, "帮扶通") == 3
    tpl = load_templates()["kf_reply_waiting"]
    assert "王建国" in tpl.render({"name": "王建国"})
    with pytest.raises(TemplateError):
        tpl.render({"name": "王建国", "extra": "x"})
    with pytest.raises(TemplateError):
        tpl.render({"name": "点 http://evil.example 领钱"})


async def test_send_through_the_wire_format(sms: SmsSender, fakesms: FakeSms) -> None:
    out = await sms.send("+86 138-0000-0001", "kf_reply_waiting", name="王建国")
    assert isinstance(out, Sent) and out.segments == 1
    [m] = fakesms.sent
    assert m.phone == "13800000001" and m.params == {"name": "王建国"} and m.sign_name == "帮扶通"
    assert not fakesms.refused


async def test_a_wrong_secret_is_refused_by_the_gateway(app: App, fakesms: FakeSms, clock: FixedClock) -> None:
    bad = SmsSender(app.core.sessions, AliyunSms(fakesms.url, fakesms.key_id, "wrong", "帮扶通"), clock)
    out = await bad.send("13800000001", "kf_reply_waiting", name="王建国")
    await bad.close()
    assert isinstance(out, Failed) and "SignatureDoesNotMatch" in out.error
    assert fakesms.sent == []


async def test_faults_map_to_the_core_errors(sms: SmsSender, fakesms: FakeSms, clock: FixedClock) -> None:
    fakesms.fail_next(status=503)
    out = await sms.send("13800000001", "kf_reply_waiting", name="王建国")
    assert isinstance(out, Failed) and "503" in out.error
    clock.advance(minutes=2)
    fakesms.fail_next(code="isv.BUSINESS_LIMIT_CONTROL")
    out = await sms.send("13800000001", "kf_reply_waiting", name="王建国")
    assert isinstance(out, Failed) and "retry after" in out.error
    clock.advance(minutes=2)
    assert isinstance(await sms.send("13800000001", "kf_reply_waiting", name="王建国"), Sent)


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_per_number_limits_hold_with_zero_violations(sms: SmsSender, fakesms: FakeSms,
                                                           clock: FixedClock) -> None:
    """Two simulated days, every 5 minutes three concurrent sends to one number and one to another:
    the gateway (which applies 1/min, 5/h, 10/day itself) never sees one over the limits."""
    phones = ["13800000001", "13800000001", "13800000001", "13800000004"]
    limited = 0
    for _ in range(2 * 24 * 12):
        outs = await asyncio.gather(*(sms.send(p, "cadre_reminder", name="王建国", what="本周走访未完成")
                                      for p in phones))
        limited += sum(isinstance(o, Limited) for o in outs)
        clock.advance(minutes=5)
    assert fakesms.violations == []
    assert len(fakesms.to("13800000001")) == 20 and len(fakesms.to("13800000004")) == 20  # 10 a day, 2 days
    assert limited == sms.refused > 0
