"""Formula injection (CSV/Excel injection, OWASP): text that people typed never runs as a formula.

Text beginning with = + - @ (or a tab / carriage return) is what Excel, WPS and LibreOffice may take
for a formula: `=HYPERLINK("http://…","点我")` in a visit note became a live link in the leader's
workbook. Two guards:

- Writing (every workbook we produce goes through `append_row`): such text is written as a string
  cell with Excel's quote-prefix style — exactly what Excel stores when someone types '=… — so it is
  shown as the text it is, never evaluated, also after the cell is edited. The text itself is kept
  byte for byte (our exports re-import). Numbers we write as numbers (a negative amount) stay numbers.
- Reading (roster import): such text is stored with a leading apostrophe (`inert`), so whatever
  later copies it out of the database (a CSV dump, another tool) gets inert text too.

A cell that is only dashes or plus signs ("-", "—", "--", a placeholder for "none") is not a formula.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_START = frozenset("=+-@\t\r")
_PLACEHOLDER = "-+—－ \t\r"


def formula_like(s: str) -> bool:
    """Whether a spreadsheet program could take s for a formula."""
    return bool(s) and s[0] in FORMULA_START and s.strip(_PLACEHOLDER) != ""


def inert(s: str) -> str:
    """s with a leading apostrophe when it could be taken for a formula (OWASP's advice)."""
    return "'" + s if formula_like(s) else s


def append_row(ws: Any, values: Iterable[Any]) -> None:
    """ws.append(values), with every formula-like text written as quote-prefixed text, not a formula."""
    row = list(values)
    ws.append(row)
    r = ws.max_row
    for i, value in enumerate(row, start=1):
        if type(value) is str and value and value[0] in FORMULA_START and formula_like(value):
            cell = ws.cell(r, i)
            cell.data_type = "s"  # openpyxl made "=…" a formula cell
            cell.quotePrefix = True
