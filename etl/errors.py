"""The one exception the ETL raises for unusable input; the CLI prints it without a traceback."""
from __future__ import annotations


class ETLError(Exception):
    """Input that stops a run. The message names file, column, row and rule where known."""

    def __init__(self, file: str, *, rule: str, message: str,
                 column: str | None = None, row: int | None = None) -> None:
        self.file, self.column, self.row, self.rule = file, column, row, rule
        where = [f"file {file}"]
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}")
        super().__init__(f"{', '.join(where)}: {message} (rule: {rule})")
