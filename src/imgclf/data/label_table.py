"""Reading a label file: a CSV or TSV with a file column, a label column (several labels
per row with a delimiter) and an optional validation column. Pure functions: rows in,
checked rows out, one-line errors for files that cannot be right."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from imgclf.errors import UserError

TRUE = {"true", "1", "yes", "y", "t", "valid", "is_valid"}
FALSE = {"false", "0", "no", "n", "f", "train", ""}
# Characters that, in a label of a file read without label_delim, suggest several labels.
DELIMITER_HINTS = (" ", ";", "|", ",")


@dataclass(frozen=True)
class LabelRow:
    """One row: its file name (suffix added), its labels (empty: none), whether it is a
    validation image (None: no validation column) and its line in the file."""

    name: str
    labels: tuple[str, ...]
    valid: bool | None
    line: int


def read_label_table(
    path: Path,
    file_column: str,
    label_column: str,
    label_delim: str | None = None,
    suffix: str = "",
    valid_column: str | None = None,
) -> list[LabelRow]:
    """The rows of `path` (tab-separated for .tsv/.tab, else comma), checked: the columns
    exist, no file is named twice, the validation column holds booleans."""
    with open(existing(path), newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=table_delimiter(path))
        columns = list(reader.fieldnames or [])
        for setting, column in (
            ("file_column", file_column),
            ("label_column", label_column),
            ("valid_column", valid_column),
        ):
            if column is not None and column not in columns:
                raise UserError(
                    f"{path.name} has no column {column!r} (data.{setting}); its columns: "
                    f"{', '.join(columns) or 'none'}"
                )
        rows = [
            parse_row(
                record,
                reader.line_num,
                file_column,
                label_column,
                label_delim,
                suffix,
                valid_column,
                path.name,
            )
            for record in reader
        ]
    check_unique(rows, path.name)
    return rows


def existing(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"label file {path} does not exist (data.labels)")
    return path


def table_delimiter(path: Path) -> str:
    """Tab for .tsv/.tab files, else comma."""
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


def header_columns(path: Path) -> list[str]:
    """The column names of a label file (file column and label column first by default)."""
    with open(existing(path), newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f, delimiter=table_delimiter(path)), [])
    if len(header) < 2:
        raise UserError(f"{path.name} needs a file column and a label column; its header: {header}")
    return [column.strip() for column in header]


def parse_row(record, line, file_column, label_column, label_delim, suffix, valid_column, source):
    name = (record.get(file_column) or "").strip()
    if not name:
        raise UserError(f"{source} line {line}: empty {file_column!r}")
    text = (record.get(label_column) or "").strip()
    parts = text.split(label_delim) if label_delim else [text]
    labels = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))  # in order, once
    valid = None
    if valid_column is not None:
        flag = (record.get(valid_column) or "").strip().lower()
        if flag not in TRUE | FALSE:
            raise UserError(
                f"{source} line {line}: {valid_column}={flag!r} is not true/false (data.valid_column)"
            )
        valid = flag in TRUE
    return LabelRow(name + (suffix or ""), labels, valid, line)


def check_unique(rows: list[LabelRow], source: str) -> None:
    seen: dict[str, int] = {}
    twice = []
    for row in rows:
        if row.name in seen:
            twice.append(f"{row.name} (lines {seen[row.name]} and {row.line})")
        seen.setdefault(row.name, row.line)
    if twice:
        shown = ", ".join(twice[:3]) + (f" and {len(twice) - 3} more" if len(twice) > 3 else "")
        raise UserError(f"{source} names {len(twice)} files twice: {shown}; one row per file")


def delimiter_hint(rows: list[LabelRow], label_delim: str | None) -> str | None:
    """Without label_delim, a warning when labels look like several joined ones (each is
    then one class of its own, perhaps not what was meant)."""
    if label_delim:
        return None
    for hint in DELIMITER_HINTS:
        joined = sorted({row.labels[0] for row in rows if row.labels and hint in row.labels[0]})
        if joined:
            return (
                f"{len(joined)} labels contain {hint!r} (e.g. {joined[0]!r}); each is one class. "
                f"If they are several labels, set data.label_delim={hint!r}"
            )
    return None
