"""The bare aiogram echo bot both benches measure bangfu against (bench/core_bench.py in-process,
bench/e2e_bench.py as its own process): every message answered with its text, every press answered and
followed by a message with its data."""

from __future__ import annotations

from typing import Any


def echo_router(bot: Any) -> Any:
    """An aiogram Router with the echo handlers, sending through `bot`."""
    from aiogram import Router
    from aiogram.types import CallbackQuery, Message

    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    @router.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer()
        if query.message is not None:
            await bot.send_message(query.message.chat.id, query.data or "?")

    return router
