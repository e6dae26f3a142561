"""Hostile spreadsheets for the reader's limits (tests/io/test_io_limits.py, bench/hostile_files_bench.py).

A zip is written by hand so a member's deflate stream can be built without inflating it first: a block
compressed once and ended with a full flush is byte-aligned and independent of what came before, so
repeating its bytes N times (then an empty final block) is a valid stream of N copies of the block.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from io_helpers import roster_bytes

from bot.io.template import sample_rows


@dataclass
class Member:
    name: str
    data: bytes  # the stored bytes (raw deflate, or plain when method is 0)
    crc: int
    size: int  # declared uncompressed size
    method: int = zipfile.ZIP_DEFLATED


def deflated(name: str, content: bytes) -> Member:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Member(name, c.compress(content) + c.flush(), zlib.crc32(content), len(content))


def repeated(name: str, head: bytes, block: bytes, copies: int, tail: bytes) -> Member:
    """head + block × copies + tail, deflated without ever holding the whole content."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)]
    unit = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    out.append(unit * copies)
    out.append(c.compress(tail) + c.flush(zlib.Z_FULL_FLUSH))
    out.append(b"\x03\x00")  # an empty final block
    crc = zlib.crc32(head)
    for _ in range(copies):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    return Member(name, b"".join(out), crc, len(head) + len(block) * copies + len(tail))


def write_zip(members: list[Member]) -> bytes:
    """A plain (non-zip64) zip of the members, sizes as declared."""
    buf = io.BytesIO()
    central = []
    for m in members:
        offset = buf.tell()
        name = m.name.encode()
        fields = (20, 0, m.method, 0, 0, m.crc, len(m.data), m.size, len(name), 0)
        buf.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields) + name + m.data)
        central.append(
            struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, offset) + name
        )
    start = buf.tell()
    for c in central:
        buf.write(c)
    size = buf.tell() - start
    buf.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), size, start, 0))
    return buf.getvalue()


def small_roster() -> bytes:
    rows = sample_rows()
    return roster_bytes({"households": rows["households"][:2]})


def members_of(xlsx: bytes) -> list[Member]:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        return [deflated(i.filename, z.read(i.filename)) for i in z.infolist()]


def sheet_name(xlsx: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        return next(n for n in z.namelist() if n.startswith("xl/worksheets/sheet"))


HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>\xe6\x88\xb7\xe7\xbc\x96\xe5\x8f\xb7</t></is></c>'
    b'<c r="B1" t="inlineStr"><is><t>\xe6\x88\xb7\xe4\xb8\xbb\xe5\xa7\x93\xe5\x90\x8d</t></is></c></row>'
)
TAIL = b"</sheetData></worksheet>"


def deflate_bomb(unpacked_mib: int = 2048) -> bytes:
    """A valid-looking roster whose 农户 sheet inflates to unpacked_mib MiB (about 1,000× its size): each
    MiB holds 80 rows padded with blanks between them, which deflate packs best (distance-1 matches)."""
    base = small_roster()
    sheet = sheet_name(base)
    row = b'<row><c t="inlineStr"><is><t>H0000001</t></is></c><c t="inlineStr"><is><t>AAAA</t></is></c></row>'
    rows = row * 80
    block = rows + b" " * ((1 << 20) - len(rows))
    bomb = repeated(sheet, HEAD, block, unpacked_mib * (1 << 20) // len(block), TAIL)
    return write_zip([bomb if m.name == sheet else m for m in members_of(base)])


def lying_bomb(unpacked_mib: int = 1024) -> bytes:
    """The same bomb, its directory claiming the sheet is 4 KiB: inflating stops at the declared size."""
    base = small_roster()
    sheet = sheet_name(base)
    block = b"<row><c><v>1</v></c></row>" * 40000
    bomb = repeated(sheet, HEAD, block, unpacked_mib * (1 << 20) // len(block), TAIL)
    bomb.size = 4096
    return write_zip([bomb if m.name == sheet else m for m in members_of(base)])


def sparse_rows() -> bytes:
    """A few hundred bytes whose last row is numbered two billion: a dense reader makes 2e9 empty rows."""
    base = small_roster()
    sheet = sheet_name(base)
    xml = HEAD + b'<row r="2000000000"><c r="A2000000000"><v>1</v></c></row>' + TAIL
    return write_zip([deflated(sheet, xml) if m.name == sheet else m for m in members_of(base)])


def long_cell(chars: int = 40_000) -> bytes:
    base = small_roster()
    sheet = sheet_name(base)
    xml = HEAD + b'<row r="2"><c r="A2" t="inlineStr"><is><t>' + b"a" * chars + b"</t></is></c></row>" + TAIL
    return write_zip([deflated(sheet, xml) if m.name == sheet else m for m in members_of(base)])


def many_members(count: int = 5000) -> bytes:
    return write_zip(members_of(small_roster()) + [deflated(f"xl/media/x{i}.bin", b"x") for i in range(count)])


def bzip2_member() -> bytes:
    import bz2

    base = small_roster()
    sheet = sheet_name(base)
    out = []
    for m in members_of(base):
        if m.name == sheet:
            with zipfile.ZipFile(io.BytesIO(base)) as z:
                content = z.read(sheet)
            m = Member(sheet, bz2.compress(content), zlib.crc32(content), len(content), zipfile.ZIP_BZIP2)
        out.append(m)
    return write_zip(out)


def long_csv_field(chars: int = 200_000) -> bytes:
    return ("户编号,户主姓名\nH1," + "a" * chars + "\n").encode()
