"""Translation of Bot API updates into Incoming, keyboards into Bot API JSON, and per-user ordering."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from bot.core.types import Button, InlineKeyboard, KeyButton, RemoveKeyboard, ReplyKeyboard
from bot.runners.telegram_common import UserSequencer, incoming_from_update, markup_to_api, split_text

SENDER = {"id": 42, "is_bot": False, "first_name": "建国", "last_name": "王", "language_code": "zh-hans"}
CHAT = {"id": 42, "type": "private"}


def _msg(**content: object) -> dict[str, object]:
    return {"update_id": 9, "message": {"message_id": 5, "date": 0, "chat": CHAT, "from": SENDER, **content}}


def test_commands_text_and_addressing() -> None:
    inc = incoming_from_update(_msg(text="/start@Bangfu_Bot ABC123"), "bangfu_bot")
    assert inc is not None and (inc.command, inc.args, inc.update_id, inc.user.name) == ("start", "ABC123", "9", "建国 王")
    assert incoming_from_update(_msg(text="/help@other_bot"), "bangfu_bot") is None
    plain = incoming_from_update(_msg(text="低保怎么申请"), "bangfu_bot")
    assert plain is not None and plain.command is None and plain.text == "低保怎么申请"
    assert incoming_from_update({"update_id": 1, "edited_message": {"text": "x"}}) is None


def test_location_contact_photo_document_callback() -> None:
    loc = incoming_from_update(_msg(location={"latitude": 25.5, "longitude": 102.25}))
    assert loc is not None and loc.location is not None and (loc.location.lat, loc.location.lon) == (25.5, 102.25)
    c = incoming_from_update(_msg(contact={"phone_number": "+8613900000001", "first_name": "王", "user_id": 42}))
    assert c is not None and c.contact is not None and (c.contact.phone, c.contact.user_id) == ("+8613900000001", "42")
    sizes = [{"file_id": f"f{i}", "file_unique_id": f"u{i}", "width": w, "height": w} for i, w in enumerate([90, 1280, 320])]
    p = incoming_from_update(_msg(photo=sizes, caption="门前"))
    assert p is not None and [f.file_id for f in p.files] == ["f1"] and p.text == "门前"
    d = incoming_from_update(_msg(document={"file_id": "d1", "file_unique_id": "du", "file_name": "a.pdf"}))
    assert d is not None and d.files[0].kind == "document" and d.files[0].name == "a.pdf"
    cq = incoming_from_update({"update_id": 3, "callback_query": {
        "id": "cq7", "from": SENDER, "chat_instance": "x", "data": "lang:en",
        "message": {"message_id": 77, "date": 0, "chat": CHAT}}})
    assert cq is not None and (cq.callback_data, cq.callback_id, cq.chat_id, cq.message_id) == ("lang:en", "cq7", "42", "77")


def test_markup_shapes() -> None:
    assert markup_to_api(InlineKeyboard(((Button("保存", "d:1:ok"), Button("看", url="https://x")),))) == {
        "inline_keyboard": [[{"text": "保存", "callback_data": "d:1:ok"}, {"text": "看", "url": "https://x"}]]
    }
    kb = markup_to_api(ReplyKeyboard(((KeyButton("手机号", request_contact=True),),), one_time=False))
    assert kb == {"keyboard": [[{"text": "手机号", "request_contact": True}]], "one_time_keyboard": False,
                  "resize_keyboard": True}
    assert markup_to_api(RemoveKeyboard()) == {"remove_keyboard": True}


def test_split_text_keeps_everything() -> None:
    text = "\n".join("行" * 100 for _ in range(100)) + "\n" + "长" * 9000
    parts = split_text(text)
    assert all(len(p) <= 4096 for p in parts) and "".join(parts).replace("\n", "") == text.replace("\n", "")


async def test_sequencer_orders_one_key_and_overlaps_keys() -> None:
    seq = UserSequencer()
    log: list[str] = []
    running: set[str] = set()
    overlap = False

    async def job(key: str, n: int) -> None:
        nonlocal overlap
        async with seq.hold(key):
            assert key not in running  # never two of one user at once
            running.add(key)
            overlap = overlap or len(running) > 1
            await asyncio.sleep(0.01 * (3 - n))  # earlier jobs are slower: order must still hold
            log.append(f"{key}{n}")
            running.discard(key)

    await asyncio.gather(*(job(k, n) for n in range(3) for k in ("a", "b")))
    assert [x for x in log if x[0] == "a"] == ["a0", "a1", "a2"]
    assert [x for x in log if x[0] == "b"] == ["b0", "b1", "b2"]
    assert overlap and len(seq) == 0


def test_sequence_key_is_the_sender() -> None:
    from bot.runners.telegram_common import sequence_key

    assert sequence_key(_msg(text="hi")) == "42"
    press = {"update_id": 4, "callback_query": {"id": "c", "from": {**SENDER, "id": 43}, "data": "x"}}
    assert sequence_key(press) == "43"
    assert sequence_key({"update_id": 5, "channel_post": {"text": "x"}}) == "update:5"


async def test_process_update_keeps_one_senders_order() -> None:
    """Polled or POSTed updates start as tasks in arrival order; one sender's run one after another in
    that order (the first is slow), another sender's overlap them."""
    from bot.runners.telegram_common import UserSequencer, process_update

    log: list[tuple[str, object]] = []

    class Bridge:
        sequencer = UserSequencer()

        async def handle_update(self, update: dict[str, object]) -> None:
            log.append(("start", update["update_id"]))
            await asyncio.sleep(0.05 if update["update_id"] == 1 else 0)
            log.append(("end", update["update_id"]))

    bridge: Any = Bridge()
    other = {"update_id": 3, "message": {"message_id": 1, "date": 0, "chat": CHAT, "from": {**SENDER, "id": 7}}}
    await asyncio.gather(*(asyncio.create_task(process_update(bridge, u))
                           for u in ({**_msg(text="a"), "update_id": 1}, {**_msg(text="b"), "update_id": 2}, other)))
    assert log.index(("end", 1)) < log.index(("start", 2))  # 42's second waited for its first
    assert log.index(("start", 3)) < log.index(("end", 1))  # 7's did not wait for 42's


async def test_raw_updates_are_dicts_and_conflicts_raise() -> None:
    from bot.runners.delivery import RawUpdates
    from tests.fakebotapi import FakeBotAPI, FakeUser

    async with FakeBotAPI() as api:
        fetch = RawUpdates(f"{api.url}/bot{api.token}/getUpdates", ["message", "callback_query"])
        try:
            first = api.inject_message(FakeUser(42), "/help")
            api.inject_message(FakeUser(43), "低保")
            got = await fetch(None, 0)
            assert [i for i, _ in got] == [first, first + 1] and got[0][1]["message"]["text"] == "/help"
            assert [i for i, _ in await fetch(first + 1, 0)] == [first + 1]  # the offset confirms the first
            api.webhook = {"url": "http://127.0.0.1:9/hook"}
            with pytest.raises(RuntimeError, match="409") as e:
                await fetch(None, 0)
            assert api.token not in str(e.value)  # the URL (and its token) is never in the error
        finally:
            await fetch.close()


async def test_poller_fetches_new_updates_while_a_slow_one_runs() -> None:
    """getUpdates keeps handing out an update in progress (the offset cannot pass it); a slow one must
    not hold back another person's new message, and the offset moves past both once they finish."""
    from bot.runners.delivery import ConfirmingPoller

    pending: list[tuple[int, dict[str, Any]]] = [(1, {"update_id": 1})]
    offsets: list[int | None] = []
    arrived = asyncio.Event()

    async def fetch(offset: int | None, wait: float) -> list[tuple[int, dict[str, Any]]]:
        offsets.append(offset)
        if offset:
            pending[:] = [(i, u) for i, u in pending if i >= offset]  # confirmed: Telegram forgets them
        if not pending and wait:
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), wait)
        return list(pending)

    release, second_done = asyncio.Event(), asyncio.Event()
    started: list[int] = []

    async def process(update: dict[str, Any]) -> None:
        started.append(update["update_id"])
        if update["update_id"] == 1:
            await release.wait()  # a slow report
        else:
            second_done.set()

    poller = ConfirmingPoller(fetch, process, timeout=1)
    task = asyncio.create_task(poller.run())
    try:
        await poller.started.wait()
        await asyncio.sleep(0.1)  # update 1 is running, getUpdates hands it out again meanwhile
        pending.append((2, {"update_id": 2}))
        arrived.set()
        await asyncio.wait_for(second_done.wait(), 2)  # fetched and handled while 1 still runs
        assert poller.offset == 1 and not release.is_set()
        release.set()
        await asyncio.sleep(0.1)
        assert poller.offset == 3
    finally:
        await poller.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert started == [1, 2]  # each once, though handed out many times
    assert offsets[-1] == 3 and not pending  # the last getUpdates confirmed both


async def test_raw_updates_skip_the_ones_handed_out_before_undecoded() -> None:
    """Updates in progress come back with every getUpdates: after the first time they are not decoded (the
    last one's id says there were some); a new one (and one whose text looks like an update) is decoded
    whole, and nothing is lost."""
    from bot.runners.delivery import RawUpdates
    from tests.fakebotapi import FakeBotAPI, FakeUser

    async with FakeBotAPI() as api:
        fetch = RawUpdates(f"{api.url}/bot{api.token}/getUpdates", ["message", "callback_query"])
        try:
            first = api.inject_message(FakeUser(42), "/help")
            api.inject_message(FakeUser(43), '{"update_id": 1, "message": {}}')
            got = await fetch(None, 0)
            assert [i for i, _ in got] == [first, first + 1] and all(u is not None for _, u in got)
            assert await fetch(None, 0) == [(first + 1, None)]  # handed out before: only the last one's id
            third = api.inject_message(FakeUser(44), "低保")
            got = await fetch(first, 0)
            assert [(i, u is None) for i, u in got] == [(first + 1, True), (third, False)]
            assert got[1][1]["message"]["text"] == "低保" and got[1][1]["message"]["from"]["id"] == 44
            assert await fetch(third + 1, 0) == []  # all confirmed
        finally:
            await fetch.close()


def test_skip_handed_out_only_on_the_shape_it_can_prove() -> None:
    import orjson

    from bot.runners.delivery import skip_handed_out

    ups = [{"update_id": 7, "message": {"text": '{"update_id":99}'}}, {"update_id": 8, "message": {"text": "b"}},
           {"update_id": 9, "callback_query": {"data": "c"}}]
    compact = orjson.dumps({"ok": True, "result": ups})
    spaced = json.dumps({"ok": True, "result": ups}, indent=1).encode()
    for raw in (compact, spaced):
        assert skip_handed_out(raw, 9) == (8, ups[2:])
        assert skip_handed_out(raw, 8) == (7, ups[1:])
        assert skip_handed_out(raw, 7) == (None, ups)
        assert skip_handed_out(raw, 100) == (9, [])
    assert skip_handed_out(orjson.dumps({"ok": True, "result": []}), 5) == (None, [])
    # An update whose id is not its first key cannot be skipped safely: the caller decodes all.
    odd = orjson.dumps({"ok": True, "result": [{"message": {"text": "a"}, "update_id": 7}, ups[1]]})
    assert skip_handed_out(odd, 8) is None
    assert skip_handed_out(orjson.dumps({"result": ups, "ok": True}), 9) is None
    assert skip_handed_out(orjson.dumps({"ok": False, "description": "Conflict"}), 9) is None
    assert skip_handed_out(b"<html>502</html>", 9) is None
