"""CSV that a spreadsheet reads as data: cells from uploads (file names, class names) never become formulas.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some spreadsheets
skip before looking) is a formula to Excel, LibreOffice and Google Sheets: a file named
``=HYPERLINK("https://evil.example", "open").png`` would be a live link in a downloaded report. The OWASP
remedy is applied to text cells: a leading apostrophe, which spreadsheets show as text and do not display.
Numbers are left alone (``-0.5`` is a number, not a formula), so only strings are ever changed.

Every CSV that cnndash writes from names a user chose goes through :func:`spreadsheet_safe` or
:func:`safe_frame`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """``value`` unchanged, unless it is a string a spreadsheet would read as a formula: then ``'`` + it."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells, column labels and index labels are :func:`spreadsheet_safe`."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(spreadsheet_safe)
    out.columns = [spreadsheet_safe(c) for c in out.columns]
    out.index = out.index.map(spreadsheet_safe)
    return out


def add_column(csv_text: str, name: str, values: Sequence[Any]) -> str:
    """``csv_text`` (a header and one row per value) with one more column ``name`` at the end, every cell
    :func:`spreadsheet_safe`; the other cells are kept as they were written (read as text)."""
    frame = pd.read_csv(io.StringIO(csv_text), dtype=str, keep_default_na=False)
    if len(frame) != len(values):
        raise ValueError(f"{len(values)} values for a column of {len(frame)} rows")
    frame[name] = list(values)
    return safe_frame(frame).to_csv(index=False, lineterminator="\n")
