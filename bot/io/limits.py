"""What a spreadsheet handed to us (`bangfu import`, or any roster read through `bot.io.reader`) may make
us read, checked before a byte of it is decompressed: zip bombs and sparse-row tricks are refused with
a message key instead of growing the process to gigabytes.

An xlsx is a zip of XML parts. Before reading, the zip's directory is checked: member count, each
member's and the total uncompressed size, and each large member's compression ratio (real sheet XML
compresses about 3-15×; deflate can reach ~1000×). Python's zipfile never inflates a member past the
size its directory declares (and fails the CRC when the data says otherwise), so the declared sizes
bound what is read. While reading, rows (and the highest row number, which a sparse sheet could
otherwise turn into millions of empty rows), one row's XML and each cell's length are capped.

The limits are generous for real rosters: `bench/import_bench.py`'s 100,000-household sheet is
108 MB of XML compressed 11×.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence

MiB = 1 << 20
MAX_FILE_BYTES = 64 * MiB  # the file as uploaded (a 100,000-household xlsx is about 10 MB)
MAX_MEMBERS = 1000  # parts in the zip (a roster has a few dozen)
MAX_MEMBER_BYTES = 256 * MiB  # one part, uncompressed
MAX_TOTAL_BYTES = 512 * MiB  # all parts, uncompressed
MAX_RATIO = 100  # uncompressed / compressed, for parts larger than RATIO_FROM
RATIO_FROM = 1 * MiB
MAX_ROWS = 1_048_576  # rows per sheet, and the highest row number: Excel's own limit
MAX_TOTAL_ROWS = 2_000_000  # rows in the whole file
MAX_CELL_CHARS = 32_767  # Excel's own limit for one cell
MAX_ROW_BYTES = 16 * MiB  # the XML of one row
# xlsx writers use deflate (or none); bzip2 and LZMA members inflate in one unbounded step in zipfile.
ALLOWED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class LimitError(Exception):
    """A file beyond one of the limits; key is an io message id, args its fields (without the file)."""

    def __init__(self, key: str, **args: object) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args


def check_file_size(size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise LimitError("io.err.file_too_big", size=size // MiB, limit=MAX_FILE_BYTES // MiB)


def check_zip(z: zipfile.ZipFile) -> None:
    """Refuse a zip whose directory promises more than we are willing to inflate."""
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        raise LimitError("io.err.zip_members", count=len(infos), limit=MAX_MEMBERS)
    total = 0
    for info in infos:
        if info.compress_type not in ALLOWED_METHODS:
            raise LimitError("io.err.zip_method", part=info.filename)
        size = info.file_size
        total += size
        ratio = size / max(info.compress_size, 1)
        if size > MAX_MEMBER_BYTES or (size > RATIO_FROM and ratio > MAX_RATIO):
            raise LimitError("io.err.zip_bomb", part=info.filename, packed=info.compress_size, size=size)
        if total > MAX_TOTAL_BYTES:
            raise LimitError("io.err.zip_bomb", part=info.filename, packed=info.compress_size, size=total)


def check_rows(count: int, sheet: str) -> None:
    """count: rows read so far in the sheet (or the row number reached)."""
    if count > MAX_ROWS:
        raise LimitError("io.err.too_many_rows", sheet=sheet, limit=MAX_ROWS)


def check_cells(values: Sequence[object], sheet: str, row: int) -> None:
    for value in values:
        if type(value) is str and len(value) > MAX_CELL_CHARS:
            raise LimitError("io.err.cell_too_long", sheet=sheet, row=row, limit=MAX_CELL_CHARS)
