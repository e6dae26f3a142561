"""Both Transport implementations against the fake server: uploads, and Bot API failures mapped onto the
core's send errors (what the outbox sender relies on to retry, back off or give up)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from bot.core.types import (
    AnswerCallback,
    Document,
    KeyButton,
    Photo,
    Reply,
    ReplyKeyboard,
    RetryAfter,
    SendError,
    SetCommands,
    TransientError,
    Unreachable,
)
from bot.settings import Settings
from tests.fakebotapi import FakeBotAPI

# PTB warns about its own int retry_after while building the error message; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*")


@pytest.fixture(params=["aiogram", "ptb"])
async def transport(request: pytest.FixtureRequest, api: FakeBotAPI) -> AsyncIterator[Any]:
    settings = Settings(telegram_token=SecretStr(api.token), telegram_api_url=api.url)
    if request.param == "aiogram":
        from bot.runners.aiogram_runner import AiogramTransport, make_bot

        bot = make_bot(settings)
        aio = AiogramTransport(bot)
        yield aio
        await aio.close()
        await bot.session.close()
    else:
        from bot.runners.ptb_runner import PTBTransport, build_application

        application = build_application(settings)
        await application.bot.initialize()
        transport = PTBTransport(application.bot)
        yield transport
        await transport.close()
        await application.bot.shutdown()


async def test_text_photo_document_and_menu(transport: Any, api: FakeBotAPI) -> None:
    kb = ReplyKeyboard(((KeyButton("发位置", request_location=True),), (KeyButton("取消"),)), placeholder="输入")
    mid = await transport.send(Reply("42", "<b>你好</b>", markup=kb, channel="telegram"))
    msg = api.sent[-1]
    assert str(msg["message_id"]) == mid and msg["text"] == "<b>你好</b>" and msg["params"]["parse_mode"] == "HTML"
    markup = msg["params"]["reply_markup"]
    assert markup["keyboard"][0][0] == {"text": "发位置", "request_location": True}
    assert markup["one_time_keyboard"] is True and markup["resize_keyboard"] is True

    png = b"\x89PNG\r\n\x1a\n" + bytes(300)
    await transport.send(Reply("42", "走访照片", photo=Photo(data=png, filename="v.png"), channel="telegram"))
    sent = api.sent[-1]
    assert sent["method"] == "sendPhoto" and sent["caption"] == "走访照片"
    assert api.files[sent["photo"][0]["file_id"]]["data"] == png

    await transport.send(Reply("42", None, document=Document("台账.xlsx", b"PK\x03\x04data"), channel="telegram"))
    sent = api.sent[-1]
    assert sent["method"] == "sendDocument" and api.files[sent["document"]["file_id"]]["data"] == b"PK\x03\x04data"

    await transport.send(SetCommands("42", (("help", "帮助"), ("visit", "记录走访")), channel="telegram"))
    assert api.commands["chat:42"] == [
        {"command": "help", "description": "帮助"},
        {"command": "visit", "description": "记录走访"},
    ]
    await transport.send(AnswerCallback("cq1", "已保存"))
    assert api.calls("answerCallbackQuery")[-1].params["text"] == "已保存"

    long_text = "\n".join(f"第{i}行 " + "字" * 60 for i in range(150))
    await transport.send(Reply("43", long_text, channel="telegram"))
    parts = [m["text"] for m in api.sent_to(43)]
    assert len(parts) > 1 and "\n".join(parts) == long_text


async def test_failures_map_to_send_errors(transport: Any, api: FakeBotAPI) -> None:
    api.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as exc:
        await transport.send(Reply("42", "hi", channel="telegram"))
    assert exc.value.seconds == 7
    api.fail_next("sendMessage", status=502)
    with pytest.raises(TransientError):
        await transport.send(Reply("42", "hi", channel="telegram"))
    api.block_chat(44)
    with pytest.raises(Unreachable):
        await transport.send(Reply("44", "hi", channel="telegram"))
    api.fail_next("sendMessage", status=400, chat_id=45)
    with pytest.raises(Unreachable):  # "chat not found"
        await transport.send(Reply("45", "hi", channel="telegram"))
    # Faults were one-shot: the next message goes through.
    assert await transport.send(Reply("42", "hi again", channel="telegram"))
    with pytest.raises(SendError):
        await transport.download("no-such-file")
    fid = api.register_file(b"abc", "documents/a.txt")
    assert await transport.download(fid) == b"abc"


async def test_menus_and_typing_on_the_json_wire(transport: Any, api: FakeBotAPI) -> None:
    """Menus and "typing…" go out as plain JSON POSTs like text (no library request objects): the same
    Bot API shapes, a description cut to Telegram's 256 characters, failures mapped as for any send, and
    the next call unaffected."""
    await transport.send(SetCommands("42", (("help", "帮" * 300), ("visit", "")), channel="telegram"))
    menu = api.calls("setMyCommands")[-1].params
    assert menu["scope"] == {"type": "chat", "chat_id": 42}
    assert menu["commands"] == [{"command": "help", "description": "帮" * 256},
                                {"command": "visit", "description": "visit"}]
    await transport.typing("42")
    action = api.calls("sendChatAction")[-1].params
    assert action == {"chat_id": 42, "action": "typing"}
    api.fail_next("sendChatAction", status=429, retry_after=3)
    with pytest.raises(RetryAfter):
        await transport.typing("42")
    api.fail_next("setMyCommands", status=502)
    with pytest.raises(TransientError):
        await transport.send(SetCommands("42", (("help", "帮助"),), channel="telegram"))
    before = len(api.calls("sendChatAction"))
    await transport.typing("42")  # one-shot faults: the next calls go through
    assert len(api.calls("sendChatAction")) == before + 1
    assert await transport.send(Reply("42", "好的", channel="telegram"))
    assert api.sent[-1]["text"] == "好的"
