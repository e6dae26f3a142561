"""Photo storage: keep the channel's file id and a local copy of the bytes, so exports and reports
still work after Telegram's file id expires."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.core.types import FileRef, FileSource
from bot.fsperm import private_dir, write_private
from bot.store.models import Photo

log = logging.getLogger(__name__)

MAX_PHOTO_BYTES = 20 * 1024 * 1024  # Bot API getFile limit


async def fetch_photo(
    files: FileSource | None, media_dir: Path, ref: FileRef, now: datetime
) -> dict[str, Any]:
    """Download one user photo into media_dir (content-addressed by sha256) and describe it as a
    JSON-able dict for dialog data. Without a file source, or when the download fails, the file id
    is kept and the photo is marked as having no local copy (local_path None)."""
    info: dict[str, Any] = {
        "file_id": ref.file_id,
        "unique_id": ref.unique_id,
        "local_path": None,
        "sha256": None,
        "size": ref.size,
    }
    if files is None:
        return info
    try:
        data = await files.download(ref.file_id)
    except Exception:  # a failed download must not lose the visit; the file id is still kept
        log.warning("photo download failed for %s", ref.file_id, exc_info=True)
        return info
    if not data or len(data) > MAX_PHOTO_BYTES:
        return info
    digest = hashlib.sha256(data).hexdigest()
    # Same bytes, same file: a photo sent twice is stored once.
    rel = Path(f"{now:%Y}") / f"{now:%m}" / f"{digest}{_suffix(data, ref.name)}"
    path = media_dir / rel
    # Owner-only folders and files (0700 / 0600) whatever the umask: these are people's homes and faces.
    private_dir(path.parent, root=media_dir)
    if not path.exists():
        write_private(path, data)
    info.update(local_path=str(rel), sha256=digest, size=len(data))
    return info


def photo_row(
    info: dict[str, Any], now: datetime, visit_id: int | None = None, difficulty_id: int | None = None
) -> Photo:
    """A Photo row from the dict fetch_photo made."""
    return Photo(
        visit_id=visit_id,
        difficulty_id=difficulty_id,
        file_id=str(info["file_id"])[:255],
        file_unique_id=(str(info["unique_id"])[:128] if info.get("unique_id") else None),
        local_path=info.get("local_path"),
        sha256=info.get("sha256"),
        size=info.get("size"),
        created_at=now,
    )


def _suffix(data: bytes, name: str | None) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if name and "." in name:
        ext = name.rsplit(".", 1)[1].lower()
        if ext.isalnum() and len(ext) <= 5:
            return "." + ext
    return ".bin"
