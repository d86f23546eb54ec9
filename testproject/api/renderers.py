"""CSV for the corporation reports, chosen with ``Accept: text/csv``."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from rest_framework.renderers import BaseRenderer

#: A cell starting with one of these is a formula in spreadsheet software.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """The cell's text, defused so a name like ``=HYPERLINK(...)`` stays text in a spreadsheet."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


class CSVRenderer(BaseRenderer):
    """Renders ``{"columns": [...], "rows": [[...], ...]}`` prepared by the view."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        columns: Sequence[str] = data["columns"]
        rows: Sequence[Sequence[Any]] = data["rows"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows([safe_cell(cell) for cell in row] for row in rows)
        return buffer.getvalue().encode(self.charset)
