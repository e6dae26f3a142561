"""Owner-only files for personal data (the SQLite database and its -wal/-shm, media folders, photos),
whatever the process's umask: folders 0700, files 0600.

SQLite creates a database's -wal, -shm and journal files with the database file's own permission bits,
so creating (or tightening) the database file before SQLite opens it covers them too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, root: Path | None = None) -> Path:
    """Create path (and missing parents) as owner-only folders; with root, every folder from root down
    to path is made owner-only even if it existed (the media tree is ours alone)."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask
    if root is not None:
        p = path
        while True:
            os.chmod(p, DIR_MODE)
            if p == root or p.parent == p or root not in p.parents:
                break
            p = p.parent
    return path


def private_file(path: Path) -> None:
    """Create path empty as owner-only, or make an existing one owner-only.

    An existing file is never opened: closing any descriptor of a file drops every POSIX lock this process
    holds on it, and SQLite's locks are such locks. A second engine on a database this process already has
    open (the bot's scheduler beside its core) would otherwise leave the core's connections unlocked: another
    process closing its last connection would then believe itself the last one anywhere and delete the WAL
    under them ("disk I/O error"; tests/test_file_modes.py)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        os.chmod(path, FILE_MODE)
        return
    try:
        os.fchmod(fd, FILE_MODE)  # the umask filtered open's mode
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Write data to path, owner-only, atomically (a temporary file beside it, then rename)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def private_sqlite(database: str) -> None:
    """Before SQLite opens a database file: its folder exists (created owner-only), the file is
    owner-only (created empty if new; SQLite takes an empty file as a new database), and any -wal,
    -shm or -journal left from before is tightened too."""
    path = Path(database)
    private_dir(path.parent)
    try:
        private_file(path)
        for suffix in ("-wal", "-shm", "-journal"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.chmod(side, FILE_MODE)
    except PermissionError:  # someone else's (read-only) database: SQLite reports what it cannot do
        log.warning("cannot make %s owner-only", path)
