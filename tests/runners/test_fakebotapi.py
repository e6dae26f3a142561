"""The fake Bot API server itself, spoken to with plain HTTP: what other tests rely on when reusing it."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.fakebotapi import FakeBotAPI, FakeUser


async def test_protocol_edits_commands_webhook_info_and_errors(api: FakeBotAPI) -> None:
    base = f"{api.url}/bot{api.token}"
    async with aiohttp.ClientSession() as http:

        async def call(method: str, **params: object) -> tuple[int, dict[str, object]]:
            async with http.post(f"{base}/{method}", json=params) as r:
                return r.status, await r.json()

        status, body = await call("sendMessage", chat_id=5, text="hi",
                                  reply_markup={"inline_keyboard": [[{"text": "a", "callback_data": "x"}]]})
        assert status == 200 and body["ok"] is True
        msg = body["result"]
        assert isinstance(msg, dict)
        # Url-encoded form with a JSON-encoded markup, the way the libraries send it.
        async with http.post(f"{base}/editMessageText", data={
            "chat_id": "5", "message_id": str(msg["message_id"]), "text": "edited",
            "reply_markup": json.dumps({"inline_keyboard": [[{"text": "b", "callback_data": "y"}]]}),
        }) as r:
            assert r.status == 200
        assert api.sent[-1]["text"] == "edited" and api.sent[-1]["reply_markup"]["inline_keyboard"][0][0]["text"] == "b"
        status, _ = await call("editMessageReplyMarkup", chat_id=5, message_id=msg["message_id"])
        assert status == 200 and "reply_markup" not in api.sent[-1]
        assert (await call("editMessageText", chat_id=5, message_id=999, text="x"))[0] == 400

        scope = {"type": "chat", "chat_id": 5}
        await call("setMyCommands", commands=[{"command": "help", "description": "帮助"}], scope=scope)
        assert (await call("getMyCommands", scope=scope))[1]["result"] == [{"command": "help", "description": "帮助"}]
        await call("deleteMyCommands", scope=scope)
        assert (await call("getMyCommands", scope=scope))[1]["result"] == []
        assert (await call("setMyCommands", commands=[{"command": "Bad Name", "description": "x"}]))[0] == 400

        await call("setWebhook", url="https://example.org/hook")
        assert (await call("getWebhookInfo"))[1]["result"]["url"] == "https://example.org/hook"
        assert (await call("getUpdates"))[0] == 409  # like Telegram while a webhook is set
        await call("deleteWebhook")

        assert (await call("noSuchMethod"))[0] == 404
        async with http.post(f"{api.url}/bot1:wrong/getMe") as r:
            assert r.status == 401
        fid = api.register_file(b"bytes!", "documents/x.bin")
        path = (await call("getFile", file_id=fid))[1]["result"]["file_path"]  # type: ignore[index]
        async with http.get(f"{api.url}/file/bot{api.token}/{path}") as r:
            assert await r.read() == b"bytes!"


async def test_long_poll_wakes_on_inject_and_confirms_offsets(api: FakeBotAPI) -> None:
    base = f"{api.url}/bot{api.token}"
    async with aiohttp.ClientSession() as http:
        poll = asyncio.create_task(http.post(f"{base}/getUpdates", json={"timeout": 10}))
        await api.wait_for_request("getUpdates")
        uid = api.inject_message(FakeUser(3), "/start X")
        async with await asyncio.wait_for(poll, 3) as r:
            updates = (await r.json())["result"]
        assert [u["update_id"] for u in updates] == [uid]
        assert updates[0]["message"]["entities"][0]["type"] == "bot_command"
        async with http.post(f"{base}/getUpdates", json={"offset": uid + 1, "timeout": 0}) as r:
            assert (await r.json())["result"] == []
