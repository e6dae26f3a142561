"""The bot process's database pool sized for its updates in flight (Settings.updates_in_flight, db_pool_size),
the runners' bound on updates in the core at once, and more updates in flight than the pool has connections
all answered, each user's in order: an update holds one connection and never asks for a second."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event

from bot.clock import FixedClock
from bot.core.bootstrap import build_core
from bot.core.types import Result
from bot.runners.telegram_common import Bridge, process_update
from bot.settings import DB_POOL_EXTRA, Settings
from bot.store.db import create_engine, is_sqlite
from tests.fakebotapi import FakeBotAPI, FakeUser

NOW = datetime(2026, 11, 28, 10, 0)


def test_pool_size_follows_the_updates_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BANGFU_UPDATES_IN_FLIGHT", "BANGFU_DB_POOL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().pool_size() == Settings().updates_in_flight + DB_POOL_EXTRA
    monkeypatch.setenv("BANGFU_UPDATES_IN_FLIGHT", "5")
    assert (Settings().updates_in_flight, Settings().pool_size()) == (5, 5 + DB_POOL_EXTRA)
    monkeypatch.setenv("BANGFU_DB_POOL_SIZE", "3")  # set: taken as it is
    assert Settings().pool_size() == 3
    for bad in ("0", "-1", "x"):
        monkeypatch.setenv("BANGFU_UPDATES_IN_FLIGHT", bad)
        with pytest.raises(ValueError):
            Settings()


async def test_the_bot_process_pool_is_the_settings(db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=db_url, media_dir=tmp_path / "media", updates_in_flight=3)
    app = build_core(settings, FixedClock(NOW))
    try:
        if is_sqlite(db_url):
            assert app.engine.pool.size() == 1  # SQLite keeps its one-writer pool
        else:
            assert app.engine.pool.size() == 3 + DB_POOL_EXTRA
            assert app.engine.pool._max_overflow == 0  # type: ignore[attr-defined]
    finally:
        await app.close()
    if not is_sqlite(db_url):
        app = build_core(settings.model_copy(update={"db_pool_size": 2}), FixedClock(NOW))
        try:
            assert app.engine.pool.size() == 2
        finally:
            await app.close()


class _SlowCore:
    """A core that only counts how many updates are in it at once, and in which order they came in."""

    def __init__(self, limit: int) -> None:
        self.settings = Settings(updates_in_flight=limit)
        self.now = self.most = 0
        self.order: list[str] = []

    async def handle(self, inc: Any) -> Result:
        self.order.append(inc.user.id)
        self.now += 1
        self.most = max(self.most, self.now)
        await asyncio.sleep(0.02)
        self.now -= 1
        return Result()


def _update(n: int, user: int) -> dict[str, Any]:
    sender = {"id": user, "is_bot": False, "first_name": f"u{user}"}
    return {"update_id": n, "message": {"message_id": n, "date": 0, "chat": {"id": user, "type": "private"},
                                        "from": sender, "text": "低保"}}


async def test_bridge_runs_at_most_updates_in_flight_through_the_core_in_arrival_order() -> None:
    core = _SlowCore(3)
    bridge = Bridge(core, transport=None)  # type: ignore[arg-type]
    assert bridge.in_flight_limit == 3
    users = list(range(100, 110))
    await asyncio.gather(*(process_update(bridge, _update(n, u)) for n, u in enumerate(users)))
    assert core.most == 3  # ten users at once, three in the core
    assert core.order == [str(u) for u in users]  # the others waited their turn in the order they came


SCRIPT = ["/help", "低保怎么申请", "/lang", "医保报销比例是多少"]


@pytest.mark.parametrize("runner_kind", ["aiogram", "ptb"])
async def test_more_updates_in_flight_than_connections_all_answered_in_order(
    db_url: str, tmp_path: Path, runner_kind: str
) -> None:
    """Twelve updates in the core at once over a pool of two connections (no overflow, and a pool timeout short
    enough that an update waiting for a second connection while holding one would fail the test): every
    update of 20 users sending 4 messages back to back is answered, each user's answers in the order of
    their messages, the same as one user alone gets them; the outbox in the update's transaction (as in
    production) and the runner's sent-marks written beside the updates."""
    from bot.runners.cli import make_runner

    clock = FixedClock(NOW)
    connections = [0]
    async with FakeBotAPI() as api:
        settings = Settings(database_url=db_url, media_dir=tmp_path / "media", telegram_token=SecretStr(api.token),
                            telegram_api_url=api.url, updates_in_flight=12, db_pool_size=2,
                            messages_per_minute=0)
        engine = None
        if not is_sqlite(db_url):
            engine = create_engine(db_url, pool_size=settings.pool_size(), pool_timeout=3)

            @event.listens_for(engine.sync_engine, "connect")
            def _count(*_: Any) -> None:
                connections[0] += 1

        app = build_core(settings, clock, engine=engine)
        inside = [0, 0]  # updates in the core now, the most at once
        handle = app.core.handle

        async def counted(inc: Any) -> Any:
            inside[0] += 1
            inside[1] = max(inside[1], inside[0])
            try:
                return await handle(inc)
            finally:
                inside[0] -= 1

        app.core.handle = counted  # type: ignore[method-assign]
        runner = make_runner(runner_kind, app, settings, polling_timeout=1)
        await runner.start()
        try:
            alone = FakeUser(7000, "独自")
            expected = []
            for text in SCRIPT:  # one user, one message at a time: the answers to expect
                api.inject_message(alone, text)
                expected.append((await api.wait_for_sent(alone.id, timeout=20))["text"])
            assert "出了点问题" not in " ".join(expected)
            users = [FakeUser(7100 + i, f"村民{i}") for i in range(20)]
            for text in SCRIPT:
                for u in users:
                    api.inject_message(u, text)
            for u in users:
                await api.wait_for_sent(u.id, lambda _m, u=u: len(api.sent_to(u.id)) >= len(SCRIPT), 60, since=0)
            await asyncio.sleep(0.3)  # nothing more comes
            for u in users:
                assert [m["text"] for m in api.sent_to(u.id)] == expected, u.id
        finally:
            await runner.stop()
            await app.close()
    assert inside[1] <= 12  # never more than updates_in_flight in the core
    if not is_sqlite(db_url):  # (loop SQLite runs one update at a time on its one connection)
        assert inside[1] > 2  # more updates were in the core at once than the pool has connections
        assert connections[0] <= 2


async def test_sent_by_keys_one_statement_for_any_number_of_keys(db_url: str, tmp_path: Path) -> None:
    """The runner's sent-marks by dedup key: the same rows as the expanding IN it replaces, on both
    databases, and on PostgreSQL one SQL text for 1 or 5 keys (one prepared statement per connection): a call
    of bangfu_sent with the keys as one array."""
    from datetime import timedelta

    from sqlalchemy import bindparam, insert, select, update

    from bot.store.enums import OutboxStatus
    from bot.store.outbox_sql import OUTBOX, sent_by_keys

    app = build_core(Settings(database_url=db_url, media_dir=tmp_path / "media"), FixedClock(NOW))
    try:
        dialect = app.engine.dialect
        stmt = sent_by_keys(dialect)
        old = (update(OUTBOX)
               .where(OUTBOX.c.dedup_key.in_(bindparam("keys", expanding=True)),
                      OUTBOX.c.status == OutboxStatus.PENDING.value)
               .values(status=OutboxStatus.SENT.value, sent_at=bindparam("now"), last_error=""))
        now = NOW.astimezone()
        rows = [{"dedup_key": f"{prefix}{i}", "chat_id": "1", "payload": {}, "not_before": now, "created_at": now,
                 "status": OutboxStatus.FAILED.value if i == 3 else OutboxStatus.PENDING.value, "last_error": "x"}
                for prefix in ("a", "b") for i in range(6)]
        async with app.core.sessions() as s, s.begin():
            await s.execute(insert(OUTBOX), rows)
        later = now + timedelta(minutes=1)
        texts: dict[str, set[str]] = {"a": set(), "b": set()}
        prefix = "a"

        @event.listens_for(app.engine.sync_engine, "before_cursor_execute")
        def _seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.startswith("UPDATE outbox") or "bangfu_sent(" in statement:
                texts[prefix].add(statement)

        async with app.core.sessions() as s, s.begin():
            for prefix, statement in (("a", stmt), ("b", old)):
                await s.execute(statement, {"keys": [f"{prefix}{i}" for i in (0, 2, 3, 5)] + ["nope"], "now": later})
                await s.execute(statement, {"keys": [f"{prefix}1"], "now": later})
                await s.execute(statement, {"keys": [], "now": later})  # nothing to mark: no error
        async with app.core.sessions() as s:
            got = {k: (st, err, sent is not None) for k, st, err, sent in (await s.execute(
                select(OUTBOX.c.dedup_key, OUTBOX.c.status, OUTBOX.c.last_error, OUTBOX.c.sent_at))).all()}
        for i in range(6):
            assert got[f"a{i}"] == got[f"b{i}"]  # the same as the expanding IN
        assert [got[f"a{i}"][0] for i in range(6)] == ["sent", "sent", "sent", "failed", "pending", "sent"]
        assert got["a3"] == ("failed", "x", False)  # only pending rows are marked
        if dialect.name == "postgresql":
            # 5 keys, 1, none: one text (bangfu_sent's own UPDATE: migration hot_0002, tests/test_outbox_plan.py)
            assert len(texts["a"]) == 1 and "bangfu_sent(" in next(iter(texts["a"]))
            assert len(texts["b"]) == 3  # what it replaces: a text per count of keys
    finally:
        await app.close()
