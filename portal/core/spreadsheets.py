"""What organizers download and open in Excel: never a formula, and accents that survive.

Spreadsheets run a CSV cell that starts with = + - @ (or a tab or carriage return) as a
formula, so such text gets a leading quote in CSV. In an .xlsx file every text cell is
written typed as text, so it is never a formula and keeps its exact value, quote-free.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from portal.core.forms import without_control_characters

#: Excel reads a CSV as UTF-8 (accents intact) only when it begins with this mark.
CSV_BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """The value as a CSV cell no spreadsheet runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(value) for value in values]


def xlsx_row(sheet, values: Iterable[Any]) -> list[Any]:
    """A row for an openpyxl write-only sheet: text typed as text (openpyxl would otherwise
    store text beginning with = as a formula), numbers and dates as they are."""
    from openpyxl.cell import WriteOnlyCell

    row = []
    for value in values:
        if isinstance(value, str):
            # What an XML file cannot hold (kept by an older version, or a header), left out:
            # a single one makes Excel call the whole file damaged.
            value = without_control_characters(value)
        cell = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            cell.data_type = "s"
        elif isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd hh:mm"  # shown as the CSV writes it, sortable as a date
        row.append(cell)
    return row


def csv_chunks(header: list[str], rows: Iterable[Iterable[Any]], *, rows_per_chunk: int = 200) -> Iterator[str]:
    """A CSV for Excel as text chunks to stream: the BOM, the header, then the rows a chunk
    at a time (memory stays flat whatever the number of rows), no cell a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield CSV_BOM
    writer.writerow(csv_row(header))
    for count, row in enumerate(rows, 1):
        writer.writerow(csv_row(row))
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
