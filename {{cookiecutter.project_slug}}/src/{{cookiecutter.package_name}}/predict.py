"""Predict from raw rows with the trained model (or one the registry's `fetch` downloaded).

    python -m {{cookiecutter.package_name}}.predict new_rows.csv                      # CSV on standard output
    python -m {{cookiecutter.package_name}}.predict new_rows.csv --out predictions.csv --model models/model.skops

The input has the model's columns, in any order, with or without the target; missing values are
fine. Its separator, decimal mark and encoding are detected as `prepare` detects them, and the
model's columns are read as training read them. The output is the input, each row as it was
written (`000123` stays `000123`, a date keeps its form, columns the model never saw included),
followed by `predicted_<target>` and, for a classification, `probability_<class>` for each class.
A category the model never saw, and text in a numeric column, are read as missing (as gradient
boosting treats a missing value), counted per column in a note on standard error. Rows are read,
predicted and written a block at a time, so memory stays bounded whatever the file's size;
`--out` is written beside itself as `<name>.partial` and renamed when complete, removed if the
run fails or is stopped. A file that lacks a model column, or has no rows, is refused in one line
before anything is written.
"""

import argparse
import csv
import io
import itertools
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv
from threadpoolctl import threadpool_limits

from .config import (
    SNIFF_BYTES,
    PipelineError,
    declared,
    head_lines,
    not_csv,
    run_main,
    sniff_decimal,
    sniff_encoding,
    sniff_separator,
)
from .model_file import load_model, model_columns

# The rows read, predicted and written at a time: about 2 MB of the file. Memory grows with it
# (2,000,000 rows of 30 numbers: 263 MB peak at 2 MB, 283 MB at 4, 326 MB at 8, of which 216 MB
# are the imports and the model); time does not, once blocks are predicted on one thread.
BLOCK_BYTES = 2 << 20
# The cells pandas' CSV parser, which `prepare` reads with, takes for a missing value: pyarrow's
# list and two more.
MISSING = frozenset(pyarrow.csv.ConvertOptions().null_values) | {"None", "<NA>"}
TRUE, FALSE = frozenset(pyarrow.csv.ConvertOptions().true_values), frozenset(pyarrow.csv.ConvertOptions().false_values)


class Rows:
    """A CSV file read a block of whole records at a time, as bytes: the header, then blocks of
    (each record's bytes as written, those records parsed). Records end at line breaks outside
    quotes; pyarrow parses each block (in C++). The separator, decimal mark and encoding are
    detected from the file's start as `prepare` detects them (`config.read_table`): UTF-8, or else
    Windows' Western encoding (cp1252, what a spreadsheet on Windows saves as "CSV")."""

    def __init__(self, path: Path, file):
        self.path, self.file = path, file
        head = file.read(SNIFF_BYTES)
        file.seek(0)
        problem = not_csv(head)
        if problem or b"\x00" in head:
            raise PipelineError(f"{path} {problem or 'is not UTF-8 or Windows text: save it as CSV UTF-8'}.")
        self.encoding = sniff_encoding(head).removesuffix("-sig")  # the header loses its byte-order mark
        lines = head_lines(head, self.encoding)
        if not "".join(lines).strip():
            raise PipelineError(f"{path} is empty: write the rows to predict there, a header row first.")
        self.sep = sniff_separator(lines)
        self.decimal = sniff_decimal(lines, self.sep)
        self.header_bytes = file.readline().rstrip(b"\r\n")
        header = self.text(self.header_bytes).removeprefix("\ufeff")
        self.header = [name.strip() for name in next(csv.reader([header], delimiter=self.sep))]

    def text(self, data: bytes) -> str:
        """`data` decoded; a file whose bytes are not UTF-8 is read as cp1252 from then on."""
        if self.encoding == "utf-8":
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                self.encoding = "cp1252"
        return data.decode(self.encoding, errors="replace")  # cp1252 leaves five bytes undefined

    def blocks(self) -> Iterator[list[bytes]]:
        """Each block's records, as written (without their line breaks; blank lines left out)."""
        while True:
            lines = self.file.readlines(BLOCK_BYTES)
            if not lines:
                break
            quotes = sum(line.count(b'"') for line in lines)
            while quotes % 2 and (more := self.file.readline()):  # a quoted cell goes on: read to its end
                lines.append(more)
                quotes += more.count(b'"')
            records = records_of(lines) if quotes else [line.rstrip(b"\r\n") for line in lines if not line.isspace()]
            lines = None  # held while the block is predicted otherwise
            if records:
                yield records

    def parse(self, records: list[bytes], types: dict) -> pd.DataFrame:
        """The records' cells of the columns in `types` (name: pyarrow type)."""
        data = b"\n".join(records)
        if self.encoding != "utf-8" or not data.isascii():
            data = self.text(data).encode("utf-8")  # pyarrow reads UTF-8 only
        try:
            table = pyarrow.csv.read_csv(
                io.BytesIO(data),
                read_options=pyarrow.csv.ReadOptions(column_names=self.header, use_threads=False),
                parse_options=pyarrow.csv.ParseOptions(delimiter=self.sep, newlines_in_values=b"\n" in data),
                convert_options=pyarrow.csv.ConvertOptions(
                    decimal_point=self.decimal,
                    column_types=types,
                    include_columns=list(types),
                    null_values=sorted(MISSING),
                    strings_can_be_null=True,
                ),
            )
        except pyarrow.ArrowInvalid as error:
            if "conversion error" in str(error):
                raise
            raise PipelineError(f"{self.path} is not a readable CSV file: {error}.") from error
        # pyarrow keeps freed memory for later use: give it back, or it adds up to a block's size several times
        pyarrow.default_memory_pool().release_unused()
        if table.num_rows != len(records):
            raise PipelineError(f"{self.path}: {table.num_rows} rows parsed from {len(records)} records.")
        return table.to_pandas()


def records_of(lines: list[bytes]) -> list[bytes]:
    """The records `lines` hold, without their line breaks and blank lines: a line break inside
    quotes (an even number of them before it) continues the record."""
    records, pending = [], b""
    for line in lines:
        pending += line
        if pending.count(b'"') % 2 == 0:
            if not pending.isspace():
                records.append(pending.rstrip(b"\r\n"))
            pending = b""
    if pending and not pending.isspace():
        records.append(pending.rstrip(b"\r\n"))
    return records


class Reading:
    """The model's columns taken from the file's text as training took them, and what was read as missing."""

    def __init__(self, model):
        self.columns = model_columns(model)
        categorical = self.columns["categorical"]
        encoder = model.named_steps["columns"].named_transformers_.get("categorical") if categorical else None
        self.known = {
            name: {value for value in values if isinstance(value, str)}
            for name, values in zip(categorical, getattr(encoder, "categories_", []), strict=False)
        }
        self.as_category: dict[str, dict[str, str | None]] = {name: {} for name in categorical}
        self.unseen: dict[str, Counter] = {name: Counter() for name in categorical}
        self.not_numbers: dict[str, Counter] = {name: Counter() for name in self.columns["numeric"]}

    def frame(self, rows: Rows, records: list[bytes]) -> pd.DataFrame:
        """The records as the model takes them; what was read as missing is counted."""
        numeric, categorical = self.columns["numeric"], self.columns["categorical"]
        text = dict.fromkeys(categorical, pyarrow.string())
        try:
            found = rows.parse(records, {**dict.fromkeys(numeric, pyarrow.float64()), **text})
        except pyarrow.ArrowInvalid:  # a cell that is not a number (`Rows.parse`): read them as text, then count
            found = rows.parse(records, {**dict.fromkeys(numeric, pyarrow.string()), **text})
            for name in numeric:
                cells = found[name].str.replace(",", ".", regex=False) if rows.decimal == "," else found[name]
                numbers = pd.to_numeric(cells, errors="coerce")
                wrong = numbers.isna() & found[name].notna()
                self.not_numbers[name].update(found[name][wrong])
                found[name] = numbers.astype(float)
        for name in categorical:
            cells = found[name]
            mapping = self.as_category[name]
            for value in set(cells.dropna().unique()) - mapping.keys():
                mapping[value] = self.category(name, value, rows.decimal)
            categories = cells.map(mapping)
            unseen = categories.isna() & cells.notna()
            if unseen.any():
                self.unseen[name].update(cells[unseen])
            found[name] = categories.where(categories.notna(), np.nan)
        return found[numeric + categorical]

    def category(self, name: str, value: str, decimal: str) -> str | None:
        """The category the model knows `value` by: training read the column with a CSV reader and
        took each cell as text (`model_file.as_model_input`), so "07" may be known as "07" (a text
        column), "7" (read as a number) or "7.0" (numbers with a blank); "true" as "True". None for
        a category the model never saw."""
        known = self.known.get(name, set())
        forms = [value, value.strip()]
        try:
            number = float(value.replace(decimal, "."))
        except ValueError:
            pass
        else:
            forms += [str(int(number))] if number.is_integer() else []
            forms.append(str(number))
        forms += ["True"] if value in TRUE else ["False"] if value in FALSE else []
        return next((form for form in forms if form in known), None)

    def notes(self) -> list[str]:
        notes = []
        for name, counts in self.unseen.items():
            if counts:
                notes.append(f"'{name}': {counts.total()} rows of categories the model never saw ({examples(counts)})")
        for name, counts in self.not_numbers.items():
            if counts:
                notes.append(f"'{name}': {counts.total()} cells that are not numbers ({examples(counts)})")
        return notes


def examples(counts: Counter, shown: int = 5) -> str:
    common = counts.most_common(shown)
    listed = ", ".join(f"{value!r} ×{count}" if count > 1 else repr(value) for value, count in common)
    return listed + (f" and {len(counts) - shown} more" if len(counts) > shown else "")


def check_header(header: list[str], columns: dict, new: list[str], source: Path) -> list[str]:
    """The columns the model never saw, which are copied through; a missing model column refuses."""
    needed = columns["numeric"] + columns["categorical"]
    missing = [name for name in needed if name not in header]
    clashing = [name for name in new if name in header]
    found = []
    if missing:
        found.append(f"it lacks columns the model needs: {', '.join(missing)} (add them; empty cells are fine)")
    if clashing:
        found.append(f"it has columns predict adds: {', '.join(clashing)} (rename or remove them)")
    if found:
        raise PipelineError(f"{source} cannot be predicted: " + "; ".join(found) + ".")
    known = {name for names in columns.values() for name in names}
    return [name for name in header if name not in known]


def cell(value: str, sep: str) -> str:
    """A value written as a CSV cell: quoted when it holds the separator, a quote or a line break."""
    if any(character in value for character in (sep, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def predicted(model, rows: pd.DataFrame, sep: str) -> pd.Series:
    """Each row's added cells (the prediction, then each class's probability) as one text."""
    probabilities = model.predict_proba(rows) if hasattr(model, "predict_proba") else None
    # a classifier predicts the class of highest probability: take it from them, not predict again
    labels = model.predict(rows) if probabilities is None else model.classes_[probabilities.argmax(axis=1)]
    text = pd.Series(labels).astype(str).map(lambda label: cell(label, sep))
    if probabilities is not None:
        for values in probabilities.round(6).T:
            text = text + sep + pd.Series(values).astype(str)
    return text


def added_names(model, target: str) -> list[str]:
    names = [f"predicted_{target}"]
    return names + [f"probability_{label}" for label in model.classes_] if hasattr(model, "predict_proba") else names


def predict(model, source: Path, out: Path | None) -> tuple[int, list[str]]:
    """Write `source`'s rows with their predictions to `out` (standard output if None): (rows, notes).
    Nothing is written for a file that cannot be predicted: its header and first rows are read first."""
    columns = model_columns(model)
    target = columns["left_out"][0]  # train.py lists the target first
    new = added_names(model, target)
    with open(source, "rb") as file:
        rows = Rows(source, file)
        copied = check_header(rows.header, columns, new, source)
        reading = Reading(model)
        blocks = rows.blocks()
        first = next(blocks, None)
        if first is None:
            raise PipelineError(f"{source} has a header but no rows: nothing to predict.")
        sep = rows.sep.encode()
        total = 0
        with nullcontext(sys.stdout.buffer) if out is None else written_when_complete(out) as output:
            for records in itertools.chain([first], blocks):
                # One OpenMP thread: between a block's many short parallel steps (one per tree) and
                # while the next block is read, idle OpenMP threads spin, and took 3-4x the CPU time
                # of the prediction on two cores (500,000 rows: 25 s of CPU against 6 s).
                with threadpool_limits(1, user_api="openmp"):
                    added = predicted(model, reading.frame(rows, records), rows.sep)
                added = added.str.encode(rows.encoding, errors="replace")  # the file's own encoding, once read
                if not total:
                    names = [cell(name, rows.sep).encode(rows.encoding, errors="replace") for name in new]
                    output.write(sep.join([rows.header_bytes, *names]) + b"\n")
                output.writelines(record + sep + cells + b"\n" for record, cells in zip(records, added, strict=True))
                total += len(records)
    notes = reading.notes()
    if notes:
        notes = ["read as missing: " + "; ".join(notes)]
    if copied:
        notes.insert(0, f"copied through, not used by the model: {', '.join(copied)}")
    return total, notes


@contextmanager
def written_when_complete(out: Path):
    """A binary file for `out`, written as `<out>.partial` and renamed to `out` when complete; the
    partial file is removed if anything fails or the run is stopped (Ctrl-C, SIGTERM)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    stop = signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    try:
        with open(partial, "wb") as file:
            yield file
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="CSV file of rows to predict")
    parser.add_argument("--model", type=Path, help="model file (default: the train stage's, in dvc.yaml)")
    parser.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    args = parser.parse_args(argv)
    args.model = args.model or declared("train")[0]
    if not args.model.is_file():
        raise PipelineError(f"{args.model} is missing; run `dvc repro` or `dvc pull`, or pass --model.")
    if not args.input.is_file():
        raise PipelineError(f"{args.input} is missing.")
    model = load_model(args.model)
    total, notes = predict(model, args.input, args.out)
    for note in notes:
        print(f"predict: {note}", file=sys.stderr)
    if args.out is not None:
        print(f"predict: {total} rows to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
