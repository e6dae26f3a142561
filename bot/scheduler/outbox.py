"""The outbox: every reminder is written here first, keyed for dedup, and sent later by the sender.

A row's `dedup_key` names recipient + rule + period, and inserts use ON CONFLICT DO NOTHING, so a
re-run tick, a restart or a second scheduler process never produces a second copy. The payload is
a serialised `Reply` (JSON; photo and document bytes as base64).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.types import (
    Button,
    Document,
    InlineKeyboard,
    KeyButton,
    Markup,
    Photo,
    RemoveKeyboard,
    Reply,
    ReplyKeyboard,
    TextFormat,
)
from bot.store.enums import OutboxStatus
from bot.store.models import Account, Outbox

# The Core table (typed as a Table): bulk inserts and deletes skip the ORM's per-row work.
OUTBOX = cast(Table, Outbox.__table__)

PAYLOAD_VERSION = 1
UNKNOWN_PREFIX = "outcome unknown: "  # last_error of a row whose latest try's outcome is unknown


# --- Reply (de)serialisation -------------------------------------------------------------------


def _markup_to_dict(m: Markup | None) -> dict[str, Any] | None:
    if m is None:
        return None
    if isinstance(m, InlineKeyboard):
        return {
            "type": "inline",
            "rows": [[{"text": b.text, "data": b.data, "url": b.url} for b in row] for row in m.rows],
        }
    if isinstance(m, ReplyKeyboard):
        return {
            "type": "reply",
            "rows": [
                [
                    {"text": b.text, "request_location": b.request_location, "request_contact": b.request_contact}
                    for b in row
                ]
                for row in m.rows
            ],
            "one_time": m.one_time,
            "placeholder": m.placeholder,
        }
    if isinstance(m, RemoveKeyboard):
        return {"type": "remove"}
    raise TypeError(f"unknown markup {type(m).__name__}")


def _markup_from_dict(d: dict[str, Any] | None) -> Markup | None:
    if d is None:
        return None
    kind = d.get("type")
    if kind == "inline":
        return InlineKeyboard(
            rows=tuple(
                tuple(Button(text=b["text"], data=b.get("data"), url=b.get("url")) for b in row)
                for row in d["rows"]
            )
        )
    if kind == "reply":
        return ReplyKeyboard(
            rows=tuple(
                tuple(
                    KeyButton(
                        text=b["text"],
                        request_location=bool(b.get("request_location")),
                        request_contact=bool(b.get("request_contact")),
                    )
                    for b in row
                )
                for row in d["rows"]
            ),
            one_time=bool(d.get("one_time", True)),
            placeholder=d.get("placeholder"),
        )
    if kind == "remove":
        return RemoveKeyboard()
    raise ValueError(f"unknown markup type {kind!r}")


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


def reply_to_dict(r: Reply) -> dict[str, Any]:
    """A JSON-safe dict for a Reply (bytes as base64), for the outbox payload column."""
    return {
        "v": PAYLOAD_VERSION,
        "chat_id": r.chat_id,
        "text": r.text,
        "markup": _markup_to_dict(r.markup),
        "photo": None
        if r.photo is None
        else {"file_id": r.photo.file_id, "data": _b64(r.photo.data), "filename": r.photo.filename},
        "document": None
        if r.document is None
        else {"filename": r.document.filename, "data": _b64(r.document.data), "mime": r.document.mime},
        "format": r.format,
        "channel": r.channel,
    }


def _format(d: dict[str, Any]) -> TextFormat:
    """The text format of a payload; rows written before it was recorded carry Telegram's parse_mode."""
    if "format" in d:
        return "plain" if d["format"] == "plain" else "markup"
    return "markup" if d.get("parse_mode") == "HTML" else "plain"


def reply_from_dict(d: dict[str, Any]) -> Reply:
    """The Reply a payload dict describes (inverse of reply_to_dict)."""
    if d.get("v") != PAYLOAD_VERSION:
        raise ValueError(f"unsupported outbox payload version {d.get('v')!r}")
    p, doc = d.get("photo"), d.get("document")
    return Reply(
        chat_id=str(d["chat_id"]),
        text=d.get("text"),
        markup=_markup_from_dict(d.get("markup")),
        photo=None
        if p is None
        else Photo(file_id=p.get("file_id"), data=_unb64(p.get("data")), filename=p.get("filename") or "photo.png"),
        document=None
        if doc is None
        else Document(
            filename=doc["filename"], data=_unb64(doc["data"]) or b"", mime=doc.get("mime") or "application/octet-stream"
        ),
        format=_format(d),
        channel=d.get("channel") or "telegram",  # rows written before channels were recorded: all Telegram
    )


# --- writing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutMessage:
    """A message to put in the outbox."""

    dedup_key: str
    reply: Reply
    rule: str
    account_id: int | None = None
    not_before: datetime | None = None  # None: as soon as allowed


def _insert_for(session: AsyncSession) -> Any:
    # The Core table, not the mapped class: the ORM bulk path costs ~0.3 ms per row here.
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(OUTBOX)
    if name == "sqlite":
        return sqlite.insert(OUTBOX)
    raise RuntimeError(f"outbox needs ON CONFLICT support; dialect {name} is not supported")


async def enqueue(
    session: AsyncSession, messages: Sequence[OutMessage], *, now: datetime, quiet: Any = None
) -> int:
    """Insert messages, skipping any whose dedup_key already exists; returns how many were new.

    `quiet` is the Rules (anything with `next_send_time`): a message due in quiet hours waits.
    """
    if not messages:
        return 0
    rows = []
    for m in messages:
        if len(m.dedup_key) > 191:
            raise ValueError(f"dedup_key too long: {m.dedup_key[:60]}...")
        nb = m.not_before or now
        if quiet is not None:
            nb = quiet.next_send_time(nb)
        rows.append(
            {
                "dedup_key": m.dedup_key,
                "account_id": m.account_id,
                "channel": m.reply.channel,
                "chat_id": m.reply.chat_id,
                "rule": m.rule,
                "payload": reply_to_dict(m.reply),
                "status": OutboxStatus.PENDING.value,
                "not_before": nb,
                "attempts": 0,
                "last_error": "",
                "created_at": now,
            }
        )
    stmt = _insert_for(session).on_conflict_do_nothing(index_elements=["dedup_key"])
    new = 0
    # Chunked so a very large tick does not build one enormous statement.
    for i in range(0, len(rows), 1000):
        res = await session.execute(stmt.returning(OUTBOX.c.id), rows[i : i + 1000])
        new += len(res.all())
    return new


# --- claiming and marking (used by the sender) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    dedup_key: str
    account_id: int | None
    chat_id: str
    rule: str
    payload: dict[str, Any]
    attempts: int
    last_error: str = ""


async def claim(
    session: AsyncSession, *, now: datetime, limit: int, lease: timedelta,
    channels: Sequence[str] | None = None, only_rules: Sequence[str] | None = None,
) -> list[Claimed]:
    """Take up to `limit` due rows for this sender by pushing their not_before forward by `lease`;
    with `channels`, only rows for those channels (the ones this sender has transports for: a WeCom
    process leaves Telegram's rows to the Telegram process, and the other way round); with `only_rules`,
    only rows of those rules (quiet hours).

    One statement: on PostgreSQL the candidate rows are locked with SKIP LOCKED so concurrent
    senders take disjoint sets; SQLite serialises writers, so its single UPDATE is already atomic.
    A sender that dies after claiming leaves the rows to be taken again once the lease is over.
    """
    pick = (
        select(Outbox.id)
        .where(Outbox.status == OutboxStatus.PENDING.value, Outbox.not_before <= now)
        .order_by(Outbox.not_before, Outbox.id)
        .limit(limit)
    )
    if channels is not None:
        pick = pick.where(Outbox.channel.in_(list(channels)))
    if only_rules is not None:  # quiet hours: only what may go out at any hour
        pick = pick.where(Outbox.rule.in_(list(only_rules)))
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(Outbox)
        .where(Outbox.id.in_(pick.scalar_subquery()))
        .values(not_before=now + lease, attempts=Outbox.attempts + 1)
        .returning(
            Outbox.id, Outbox.dedup_key, Outbox.account_id, Outbox.chat_id, Outbox.rule, Outbox.payload,
            Outbox.attempts, Outbox.last_error,
        )
        .execution_options(synchronize_session=False)
    )
    res = await session.execute(stmt)
    out = [Claimed(*row) for row in res.all()]
    out.sort(key=lambda c: c.id)
    return out


def strip_media(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The payload without photo/document bytes (kept: everything else), or None if it has none.

    A sent weekly chart is ~40 KB of base64; a thousand teams a week would bloat the table."""
    if not any(isinstance(payload.get(k), dict) and payload[k].get("data") for k in ("photo", "document")):
        return None
    out = dict(payload)
    for k in ("photo", "document"):
        if isinstance(out.get(k), dict) and out[k].get("data"):
            out[k] = {**out[k], "data": None, "sent_bytes": len(base64.b64decode(out[k]["data"]))}
    return out


async def mark_sent(session: AsyncSession, row_id: int, *, now: datetime,
                    payload: dict[str, Any] | None = None) -> None:
    """Mark a row sent; `payload` replaces the stored one (e.g. without its media bytes)."""
    values: dict[str, Any] = {"status": OutboxStatus.SENT.value, "sent_at": now, "last_error": ""}
    if payload is not None:
        values["payload"] = payload
    await session.execute(
        update(Outbox).where(Outbox.id == row_id).values(**values).execution_options(synchronize_session=False)
    )


async def mark_failed(session: AsyncSession, row_id: int, *, error: str) -> None:
    await session.execute(
        update(Outbox)
        .where(Outbox.id == row_id)
        .values(status=OutboxStatus.FAILED.value, last_error=error[:2000])
        .execution_options(synchronize_session=False)
    )


async def mark_unknown(session: AsyncSession, row_id: int, *, error: str) -> None:
    """Close a row whose send may or may not have been delivered, not to be sent again."""
    await session.execute(
        update(Outbox)
        .where(Outbox.id == row_id)
        .values(status=OutboxStatus.UNKNOWN.value, last_error=f"{UNKNOWN_PREFIX}{error}"[:2000])
        .execution_options(synchronize_session=False)
    )


async def reschedule(session: AsyncSession, row_id: int, *, at: datetime, error: str) -> None:
    """Give a claimed row back to the queue, due again at `at`."""
    await session.execute(
        update(Outbox)
        .where(Outbox.id == row_id)
        .values(not_before=at, last_error=error[:2000])
        .execution_options(synchronize_session=False)
    )


async def fail_unreachable(session: AsyncSession) -> int:
    """Mark pending rows to accounts already known unreachable as failed (they are never tried)."""
    res = await session.execute(
        update(Outbox)
        .where(
            and_(
                Outbox.status == OutboxStatus.PENDING.value,
                Outbox.account_id.in_(select(Account.id).where(Account.unreachable.is_(True)).scalar_subquery()),
            )
        )
        .values(status=OutboxStatus.FAILED.value, last_error="unreachable")
        .execution_options(synchronize_session=False)
    )
    return res.rowcount or 0  # type: ignore[attr-defined]


async def prune(session: AsyncSession, *, now: datetime, keep_days: int = 90) -> int:
    """Delete sent rows older than keep_days (the table would otherwise grow by every reminder).

    Kept long enough that a rule re-run for a recent period still finds its dedup keys; the per-
    difficulty alerts may come back once after that if the difficulty is still late (a reminder).
    """
    res = await session.execute(
        delete(OUTBOX).where(
            OUTBOX.c.status == OutboxStatus.SENT.value,
            OUTBOX.c.sent_at < now - timedelta(days=keep_days),
        )
    )
    return res.rowcount or 0  # type: ignore[attr-defined]
