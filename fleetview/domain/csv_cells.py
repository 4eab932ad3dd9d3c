"""CSV cells a spreadsheet will not run: a value from a cloud or a config that starts like a
formula (`=`, `+`, `-`, `@`, or a tab or carriage return before one) gets a leading `'`,
which spreadsheets read as "this is text". Every CSV FleetView writes goes through here:
`fleetview snapshot --format csv`, `fleetview audit export --format csv`, the fleet table's
export.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value` with a leading `'` when it is text a spreadsheet would take for a formula;
    anything else unchanged (numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows (as for csv.DictWriter) with every cell made safe."""
    return [{key: safe_cell(value) for key, value in row.items()} for row in rows]


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` (for DataFrame.to_csv) with every text cell made safe."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
            out[column] = out[column].map(safe_cell, na_action="ignore")
    return out
