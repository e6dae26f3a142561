"""Fuzz the dialog steps through the real core: a cadre, the team leader, a villager and a stranger
send generated text, commands, button presses (real buttons from the latest replies, mutated ones and
random data), locations, contacts and photos, in any order. No update may fail: the core answers a
failed update with core.error and logs "update failed" — either is a crash."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.bootstrap import App
from bot.core.types import Contact, FileRef, Incoming, InlineKeyboard, Location, Reply, User
from tests.conftest import Chat, World, bind
from tests.fuzz.budget import INPUTS, fuzz_settings
from tests.fuzz.strategies import ODD_DIGITS, digits, hostile, mixed, texts

COMMANDS = [
    "start", "help", "lang", "cancel", "back", "ask", "households", "visit", "checkin", "problem",
    "overdue", "week", "digest", "difficulties", "export", "report", "menu", "nonsense",
]
PREFIXES = ["d", "df", "ex", "hh", "lang", "pb", "pq", "rm", "vc", "vs", "x", ""]
WORDS = st.sampled_from(
    ["今天", "昨天", "3月5日", "取消", "上一步", "没有", "张大山", "刘老", "全村", "饮水安全", "紧急", "住院报销",
     "日常走访", "跳过", "保存", "中文", "English", "是", "否"]
)
PART = st.one_of(digits, st.text(alphabet="0123456789" + ODD_DIGITS + "-", max_size=6), hostile, st.text(max_size=8))


class Crashes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@st.composite
def action(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["text", "text", "command", "press", "press", "mutate", "callback", "location",
                                 "contact", "photo"]))
    if kind == "text":
        return kind, draw(st.one_of(texts, mixed(WORDS, digits, hostile)))
    if kind == "command":
        cmd = draw(st.sampled_from(COMMANDS))
        return kind, f"/{cmd} {draw(st.one_of(st.just(''), texts, digits))}".rstrip()
    if kind in ("press", "mutate"):
        return kind, (draw(st.integers(0, 30)), draw(PART))
    if kind == "callback":
        parts = draw(st.lists(PART, max_size=4))
        return kind, ":".join([draw(st.sampled_from(PREFIXES)), *parts])[:64]
    if kind == "location":
        return kind, (draw(st.floats(-1000, 1000, allow_nan=False)), draw(st.floats(-1000, 1000, allow_nan=False)))
    if kind == "contact":
        return kind, (draw(st.one_of(digits, st.sampled_from(["13900000001", "+86 139 0000 0000", "13800000001"]))),
                      draw(st.booleans()))
    return kind, draw(st.text(alphabet="abc123²", min_size=1, max_size=8))


class Driver:
    def __init__(self, app: App, chats: list[Chat]) -> None:
        self.app = app
        self.chats = chats
        self.error_texts = {app.core.catalogs.get(lang)("core.error") for lang in ("zh_CN", "en")}

    def buttons(self, chat: Chat) -> list[str]:
        out: list[str] = []
        for a in reversed(chat.replies[-12:]):
            if isinstance(a, Reply) and isinstance(a.markup, InlineKeyboard):
                out += [b.data for row in a.markup.rows for b in row if b.data]
        return out

    async def run(self, chat: Chat, kind: str, value: Any) -> list[Reply]:
        if kind in ("text", "command"):
            return await chat.send(value)
        if kind in ("press", "mutate"):
            buttons = self.buttons(chat)
            if not buttons:
                return await chat.send("/visit")
            data = buttons[value[0] % len(buttons)]
            if kind == "mutate":  # the same button with its last field replaced
                head, _, _ = data.rpartition(":")
                data = f"{head}:{value[1]}"[:64]
            return await chat.press(data)
        if kind == "callback":
            return await chat.press(value)
        if kind == "location":
            return await chat.location(*value)
        if kind == "contact":
            phone, own = value
            return await chat._go(contact=Contact(phone=phone, user_id=chat.user_id if own else "999"))
        return await chat._go(files=(FileRef(file_id=value, unique_id=value + "u"),))


@pytest.fixture
async def driver(app: App, world: World) -> Driver:
    cadre = Chat(app, "201", name="王建国")
    await bind(app, cadre, person_id=world.cadre_ids[0])
    leader = Chat(app, "209", name="赵队长")
    await bind(app, leader, person_id=world.leader_id)
    villager = Chat(app, "502", name="陈秀英")
    await bind(app, villager, household_id=world.villager_household)
    stranger = Chat(app, "777", name="路人", language_code="en")
    return Driver(app, [cadre, leader, villager, stranger])


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
@fuzz_settings("dialogs")
@given(steps=st.lists(st.tuples(st.integers(0, 3), action()), min_size=1, max_size=15))
async def test_dialog_steps_never_crash(driver: Driver, steps: list[tuple[int, tuple[str, Any]]]) -> None:
    crashes = Crashes()
    logging.getLogger("bot.core.engine").addHandler(crashes)
    try:
        for who, (kind, value) in steps:
            chat = driver.chats[who]
            INPUTS["dialogs"] += 1
            replies = await driver.run(chat, kind, value)
            failed = [r.text for r in replies if r.text in driver.error_texts]
            assert not failed and not crashes.records, (kind, value, crashes.records[:1])
    finally:
        logging.getLogger("bot.core.engine").removeHandler(crashes)


def test_incoming_is_what_runners_build() -> None:
    """The driver builds the same Incoming a runner would (guard against the fixtures drifting)."""
    inc = Incoming(channel="telegram", user=User("1", "x"), chat_id="1", location=Location(1.0, 2.0))
    assert inc.location is not None and inc.files == ()
