"""Personal data on disk is owner-only whatever the umask: the SQLite file and its -wal/-shm (0600),
the media folders (0700) and the photos in them (0600)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.core.bootstrap import App
from bot.core.types import FileRef
from bot.services.media import fetch_photo
from bot.store.db import create_engine
from tests.conftest import Chat, World, bind


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual 022 (files 0644, folders 0755 unless we say otherwise)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("on_loop", [True, False])
async def test_new_sqlite_database_is_owner_only(loose_umask: None, tmp_path: Path, on_loop: bool) -> None:
    path = tmp_path / "var" / "db" / "bangfu.sqlite3"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", on_loop=on_loop)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
            await conn.execute(text("INSERT INTO t VALUES ('张大山 身份证 ****1234')"))
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
        assert oct(mode(path.parent)) == "0o700" and oct(mode(path.parent.parent)) == "0o700"
    finally:
        await engine.dispose()


async def test_existing_database_is_tightened_when_opened(loose_umask: None, tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    engine = create_engine(f"sqlite+aiosqlite:///{path}", on_loop=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert oct(mode(path)) == "0o600"
        assert oct(mode(path.with_name(path.name + "-wal"))) == "0o600"
    finally:
        await engine.dispose()


class Files:
    """The runner's side of a download (Telegram's getFile), serving fixed bytes."""

    async def download(self, file_id: str) -> bytes:
        return b"\xff\xd8\xff" + file_id.encode() * 100


async def test_photos_and_media_folders_are_owner_only(loose_umask: None, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    os.chmod(media, 0o755)  # made by an earlier version or by hand
    info = await fetch_photo(Files(), media, FileRef("f1", "u1"), datetime(2026, 11, 28, 2, tzinfo=UTC))
    photo = media / info["local_path"]
    assert photo.is_file() and oct(mode(photo)) == "0o600"
    assert [oct(mode(d)) for d in (photo.parent, photo.parent.parent, media)] == ["0o700"] * 3
    assert not list(photo.parent.glob("*.part"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_bots_database_is_owner_only_after_updates(
    loose_umask: None, app: App, world: World, db_url: str
) -> None:
    chat = Chat(app, "501")
    await bind(app, chat, person_id=world.cadre_ids[0])
    await chat.send("/households")
    path = Path(db_url.split("///", 1)[1])
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        assert oct(mode(f)) == "0o600", f


async def test_a_second_engine_on_an_open_database_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    """`bangfu run` opens the database twice (the core's engine, then the in-process scheduler's). Making the
    file owner-only for the second must not open and close it: closing any descriptor of a file drops all of
    this process's POSIX locks on it, SQLite's included. Then another process (`bangfu invite`, the web
    dashboard) closing its last connection believes itself the last one anywhere, checkpoints and deletes the
    WAL under the bot's connections: the bot's next statement fails with "disk I/O error"."""
    import asyncio
    import sys

    path = tmp_path / "bangfu.sqlite3"
    first = create_engine(f"sqlite+aiosqlite:///{path}", on_loop=True)
    second = None
    try:
        async with first.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x TEXT)"))
        async with first.connect() as held:  # the core's connection, open from here on
            await held.execute(text("SELECT count(*) FROM t"))
            await held.commit()
            second = create_engine(f"sqlite+aiosqlite:///{path}")  # the scheduler's engine
            other = (
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                "c.execute('PRAGMA journal_mode=WAL'); c.execute(\"INSERT INTO t VALUES ('other')\"); c.close()"
            )
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", other, str(path))
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            # The other process saw this one's connection: it left the WAL in place for it.
            assert path.with_name(path.name + "-wal").exists()
            await held.execute(text("INSERT INTO t VALUES ('bot')"))
            await held.commit()
            assert (await held.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2
    finally:
        await first.dispose()
        if second is not None:
            await second.dispose()
    assert mode(path) == 0o600
