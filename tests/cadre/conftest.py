"""Fixtures for the cadre dialogs: bound chats for a cadre, the team leader and a villager, and a
small in-process file source standing in for the runner's Telegram getFile."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.bootstrap import App
from bot.core.types import Reply
from tests.conftest import Chat, World, bind


class BytesFiles:
    """A FileSource returning distinct JPEG-looking bytes per file id (what getFile would fetch)."""

    def __init__(self) -> None:
        self.downloaded: list[str] = []

    async def download(self, file_id: str) -> bytes:
        self.downloaded.append(file_id)
        return b"\xff\xd8\xff\xe0" + file_id.encode() * 50


@pytest.fixture
def files(app: App) -> BytesFiles:
    app.core.files = BytesFiles()
    return app.core.files  # type: ignore[return-value]


@pytest.fixture
async def cadre(app: App, world: World) -> Chat:
    """王建国: paired with 张大山, 张小山, 刘老四."""
    chat = Chat(app, "201", name="王建国")
    await bind(app, chat, person_id=world.cadre_ids[0])
    return chat


@pytest.fixture
async def leader(app: App, world: World) -> Chat:
    chat = Chat(app, "209", name="赵队长")
    await bind(app, chat, person_id=world.leader_id)
    return chat


def to(chat: Chat, user_id: str) -> list[str]:
    """Texts of the messages the core addressed to another chat while `chat` was talking."""
    return [a.text or "" for a in chat.replies if isinstance(a, Reply) and a.chat_id == user_id]


async def count(app: App, model: Any, *where: Any) -> int:
    async with app.core.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def rows(app: App, model: Any, *where: Any) -> list[Any]:
    async with app.core.sessions() as s:
        return list((await s.execute(select(model).where(*where).order_by(model.id))).scalars())


async def log_visit_until_summary(chat: Chat, head: str = "张大山", date_text: str | None = None) -> None:
    """/visit with buttons up to the summary card, no photos, no location."""
    await chat.send("/visit")
    await chat.press_text(head)
    if date_text is None:
        await chat.press_text("今天")
    else:
        await chat.send(date_text)
    await chat.press_text("日常走访")
    await chat.send("了解务工收入，讲了医保政策")
    await chat.press_text("没有")
    await chat.press_text("不拍照")
    await chat.send("没有信号，跳过")
