"""Reading roster files (xlsx or csv) into raw rows, tolerant of how townships lay them out.

Tolerated: a title row above the headers, headers with (必填) or units in brackets, header variants,
several sheets of the same kind (one 农户 sheet per village), blank rows, GBK-encoded CSV from Excel.
Not tolerated, with a clear error: an old binary .xls, something that is not a spreadsheet, a file
with no data rows, a sheet whose required column is missing.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from bot.io import limits
from bot.io.format import HOUSEHOLDS, SHEETS, Column, Sheet, column_index, match_header, match_sheet
from bot.io.limits import LimitError
from bot.io.validate import is_blank

HEADER_SCAN_ROWS = 10
log = logging.getLogger(__name__)


class RosterError(Exception):
    """The file as a whole cannot be read; key is an io.po message id."""

    def __init__(self, key: str, **args: object) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args


@dataclass
class RawSheet:
    """One sheet (or CSV) as found: which roster sheet it is, where its columns are, its data rows."""

    sheet: Sheet
    title: str
    header_row: int
    headers: list[str]
    columns: dict[int, Column]
    rows: list[tuple[int, list[Any]]] = field(default_factory=list)
    ignored_headers: list[str] = field(default_factory=list)

    def header_of(self, key: str) -> str:
        """The header as written in this file for a column key (the canonical one if absent)."""
        for i, col in self.columns.items():
            if col.key == key:
                return self.headers[i]
        return self.sheet.by_key[key].header

    @cached_property
    def keys(self) -> frozenset[str]:
        return frozenset(c.key for c in self.columns.values())

    def has(self, key: str) -> bool:
        return key in self.keys


@dataclass
class Roster:
    """Everything read from one file, grouped by roster sheet kind."""

    filename: str
    sheets: list[RawSheet]
    ignored_sheets: list[str] = field(default_factory=list)

    def of(self, key: str) -> list[RawSheet]:
        return [s for s in self.sheets if s.sheet.key == key]

    @property
    def row_count(self) -> int:
        return sum(len(s.rows) for s in self.sheets)


def _find_header(rows: list[list[Any]], sheet: Sheet | None) -> tuple[Sheet, int, dict[int, Column]] | None:
    """The header row among the first rows: the one naming most known columns (at least two)."""
    candidates = [sheet] if sheet else list(SHEETS)
    best: tuple[int, int, Sheet, int, dict[int, Column]] | None = None
    for s_order, s in enumerate(candidates):
        index = column_index(s)
        for r, cells in enumerate(rows[:HEADER_SCAN_ROWS]):
            cols: dict[int, Column] = {}
            seen: set[str] = set()
            for i, cell in enumerate(cells):
                col = match_header(index, cell)
                if col is not None and col.key not in seen:
                    cols[i] = col
                    seen.add(col.key)
            score = len(cols)
            # A sheet of unknown title: prefer the kind naming more of its columns, then 农户.
            rank = score * 10 - (0 if s is HOUSEHOLDS else s_order + 1)
            if score >= 2 and (best is None or rank > best[0]):
                best = (rank, score, s, r, cols)
    if best is None:
        return None
    return best[2], best[3], best[4]


def _sheet_from_rows(title: str, rows: list[list[Any]], sheet: Sheet | None) -> RawSheet | None:
    found = _find_header(rows, sheet)
    if found is None:
        return None
    kind, header_idx, cols = found
    headers = ["" if c is None else str(c).strip() for c in rows[header_idx]]
    raw = RawSheet(kind, title, header_idx + 1, headers, cols)
    raw.ignored_headers = [h for i, h in enumerate(headers) if h and i not in cols]
    for offset, cells in enumerate(rows[header_idx + 1 :], start=header_idx + 2):
        if not any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
            continue
        raw.rows.append((offset, list(cells)))
    return raw


def _collect(roster: Roster, title: str, rows: list[list[Any]]) -> None:
    if roster.row_count + len(rows) > limits.MAX_TOTAL_ROWS:
        raise LimitError("io.err.too_many_rows", sheet=title, limit=limits.MAX_TOTAL_ROWS)
    raw = _sheet_from_rows(title, rows, match_sheet(title)) if rows else None
    if raw is None and rows:
        raw = _sheet_from_rows(title, rows, None)
    if raw is not None:
        roster.sheets.append(raw)
    elif any(not is_blank(c) for r in rows for c in r):
        roster.ignored_sheets.append(title)


def _read_xlsx_fast(data: bytes, filename: str) -> Roster:
    from bot.io.xlsx import XlsxReader

    reader = XlsxReader(data)
    roster = Roster(filename, [])
    try:
        for title, path in reader.sheets:
            _collect(roster, title, reader.sheet_rows(path, title))
    finally:
        reader.close()
    return roster


def _openpyxl_rows(ws: Any) -> list[list[Any]]:
    """A sheet's rows through openpyxl's streaming reader, within the row and cell limits."""
    rows: list[list[Any]] = []
    for number, r in enumerate(ws.iter_rows(values_only=True), start=1):
        limits.check_rows(number, ws.title)
        cells = list(r)
        limits.check_cells(cells, ws.title, number)
        rows.append(cells)
    return rows


def _check_zip(data: bytes, filename: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            limits.check_zip(z)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise RosterError("io.err.not_spreadsheet", file=filename) from e


def _read_xlsx(data: bytes, filename: str) -> Roster:
    # The zip's directory first: nothing is inflated from a file that promises too much.
    _check_zip(data, filename)
    try:
        return _read_xlsx_fast(data, filename)
    except LimitError:
        raise
    except Exception:  # anything unusual: let openpyxl have a go, it knows more of the format
        log.debug("fast xlsx reader failed on %s, using openpyxl", filename, exc_info=True)
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except LimitError:
        raise
    except Exception as e:  # whatever a broken or hostile file makes openpyxl raise
        raise RosterError("io.err.not_spreadsheet", file=filename) from e
    roster = Roster(filename, [])
    try:
        for ws in wb.worksheets:
            _collect(roster, ws.title, _openpyxl_rows(ws))
    except LimitError:
        raise
    except Exception as e:
        raise RosterError("io.err.not_spreadsheet", file=filename) from e
    finally:
        wb.close()
    return roster


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise RosterError("io.err.not_spreadsheet", file="")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise RosterError("io.err.not_spreadsheet", file="")


def _read_csv(data: bytes, filename: str) -> Roster:
    try:
        content = _decode(data)
    except RosterError:
        raise RosterError("io.err.not_spreadsheet", file=filename) from None
    try:
        dialect: Any = csv.Sniffer().sniff(content[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    rows: list[list[Any]] = []
    title = Path(filename).stem
    try:
        for number, r in enumerate(csv.reader(io.StringIO(content), dialect), start=1):
            limits.check_rows(number, title)
            limits.check_cells(r, title, number)
            rows.append(list(r))
    except csv.Error as e:  # a field past csv's own limit, a stray quote: not a roster we can read
        raise RosterError("io.err.not_spreadsheet", file=filename) from e
    roster = Roster(filename, [])
    if not rows:
        return roster
    raw = _sheet_from_rows(title, rows, None)
    if raw is None:
        if not filename.lower().endswith((".csv", ".txt", ".tsv")):
            raise RosterError("io.err.not_spreadsheet", file=filename)
        raise RosterError("io.err.no_header", file=filename)
    roster.sheets.append(raw)
    return roster


def read_roster(source: Path | bytes, filename: str | None = None) -> Roster:
    """Read an xlsx workbook or a CSV file; raises RosterError with a message key when unusable,
    including a file past the limits of `bot.io.limits` (zip bombs, too many rows, huge cells)."""
    name = filename or (source.name if isinstance(source, Path) else None) or "roster"
    try:
        return _read_roster(source, name)
    except LimitError as e:
        raise RosterError(e.key, file=name, **e.args_) from None


def _read_roster(source: Path | bytes, name: str) -> Roster:
    if isinstance(source, Path):
        try:
            limits.check_file_size(source.stat().st_size)
            data = source.read_bytes()
        except FileNotFoundError:
            raise RosterError("io.err.no_file", file=str(source)) from None
    else:
        data = source
        limits.check_file_size(len(data))
    if not data.strip():
        raise RosterError("io.err.empty", file=name)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise RosterError("io.err.old_xls", file=name)
    if data[:2] == b"PK":
        roster = _read_xlsx(data, name)
    elif name.lower().endswith((".xlsx", ".xlsm")):
        raise RosterError("io.err.not_spreadsheet", file=name)
    else:
        roster = _read_csv(data, name)
    if not roster.sheets:
        if roster.ignored_sheets:
            raise RosterError("io.err.no_header", file=name)
        raise RosterError("io.err.empty", file=name)
    if roster.row_count == 0:
        raise RosterError("io.err.empty", file=name)
    return roster
