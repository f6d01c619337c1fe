"""Parameters, paths and data loading shared by the pipeline stages.

dvc.yaml is the map of the pipeline, and the one place its paths and params are written: each
stage's `cmd:` passes the stage its paths (`python -m {{cookiecutter.package_name}}.train data/prepared models/model.skops`),
and the stage reads the params.yaml keys its `params:` lists (`stage_params`, as DVC reads them); it
validates only those. Code outside the stages (predict, the report, the sweep) finds the stages'
outputs where dvc.yaml declares them (`declared`). Problems are raised as `PipelineError` with one
sentence saying what is wrong and how to fix it; `run` turns that into a clean exit instead of a
traceback.
"""

from __future__ import annotations

import argparse
import codecs
import csv as csvlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported by the functions that read or write tables: the report needs none
    import pandas as pd

PIPELINE_FILE = Path("dvc.yaml")
PARAMS_FILE = Path("params.yaml")
# What the directories that dvc.yaml passes the stages hold, by name. prepare's output (Parquet,
# not CSV: train and evaluate read typed columns back instead of parsing text again) and what it
# found and decided (task, classes, column roles, a profile of the data), which train, evaluate,
# predict and the merge-request report read instead of deciding again:
TRAIN, TEST, SUMMARY = "train.parquet", "test.parquet", "summary.json"
# evaluate's output: the metrics and the plots' data.
METRICS, PLOT_DATA = "metrics.json", Path("plots/sklearn")
# Also evaluate's: the scores that look too good to be true, a list of
# {"check", "columns", "message", ...} (empty when none does), which the report shows.
WARNINGS = "warnings.json"

# The metrics evaluate writes that are better lower (all others are better higher): the sweep's
# direction and the report's margins over the baseline follow from this one set.
LOWER_IS_BETTER = {"rmse", "mae"}
# The one metric a verdict rests on, per task: the report's first sentence, the sweep's default
# ranking and the merge-request gate use it; the other metrics are context beside it.
HEADLINE = {"classification": "balanced_accuracy", "regression": "rmse"}
# evaluate's test-row predictions (Parquet, beside the metrics): what the report's intervals use.
PREDICTIONS = "predictions.parquet"


def task_of(metrics: dict) -> str:
    """The task a metrics.json was written for (evaluate writes `rmse` for a regression only)."""
    return "regression" if "rmse" in metrics else "classification"


def score_names(metrics: dict) -> list[str]:
    """The names of a metrics.json's scores, in the order evaluate wrote them (the headline first)."""
    return [name for name, value in metrics.items() if isinstance(value, int | float) and not isinstance(value, bool)]


FROM_ROOT = "; run the pipeline from the project root."


class PipelineError(Exception):
    """A problem in the inputs that the user can fix; the message says how."""


def read_yaml_mapping(path: Path, *, mapping_of: str, missing_hint: str) -> dict:
    """A YAML file that must hold a mapping (`mapping_of`: of what); each way it can be wrong is one
    sentence naming the file, a missing one followed by `missing_hint`.

    Parsed as DVC parses params.yaml, dvc.yaml and `-S` values, with ruamel.yaml (YAML 1.2,
    installed with DVC): PyYAML would read `1e-3` as text and `no` as false, and a stage or a sweep
    would then run with values other than those DVC records in dvc.lock."""
    from ruamel.yaml import YAML, YAMLError

    try:
        mapping = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise PipelineError(f"{path} is missing{missing_hint}") from error
    except YAMLError as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(mapping, dict):
        raise PipelineError(f"{path} must be a mapping {mapping_of}.")
    return mapping


def load_params(path: Path = PARAMS_FILE) -> dict:
    """All of params.yaml, including keys no stage reads (the sweep checks its keys against it)."""
    return read_yaml_mapping(path, mapping_of="of parameter names to values", missing_hint=FROM_ROOT)


def stage_params(*stages: str, root: Path | str = ".") -> dict:
    """The params.yaml values the stages read (every stage's, when none is named), nested as in
    params.yaml: the keys their `params:` in dvc.yaml lists, `${...}` resolved, so for train `seed`,
    `train.estimator` and the section `train.<that estimator>`, and nothing else.

    What `dvc.api.params_show(stages=..., deps=True)` gives (tests/test_stage_params.py compares the
    two), without importing DVC's API: 0.4-1 s a stage."""
    pipeline = read_yaml_mapping(Path(root) / PIPELINE_FILE, mapping_of="of stages", missing_hint=FROM_ROOT)
    values = load_params(Path(root) / PARAMS_FILE)
    defined = pipeline.get("stages") or {}
    unknown = [name for name in stages if name not in defined]
    if unknown:
        raise PipelineError(f"{PIPELINE_FILE} has no stage {', '.join(unknown)}; restore it from the template.")
    chosen = {name: stage for name, stage in defined.items() if not stages or name in stages}
    found: dict = {}
    for name, stage in chosen.items():
        for entry in stage.get("params") or []:
            if not isinstance(entry, str):
                raise PipelineError(
                    f"{PIPELINE_FILE}: stage '{name}' lists params of another file ({entry}); "
                    f"the stages read keys of {PARAMS_FILE} only."
                )
            selected = selection(values, interpolated(entry, values, name))
            if selected is not None:
                merge(found, selected)
    return found


# `${key}` in a `params:` entry, not `\${`: DVC's own pattern (dvc/parsing/interpolate.py).
INTERPOLATION = re.compile(r"(?<!\\)\$\{(?P<key>.*?)\}")


def interpolated(entry: str, values: dict, stage: str) -> str:
    """A dvc.yaml `params:` entry with each `${key}` replaced by that params.yaml value, as DVC does."""

    def text(match: re.Match) -> str:
        value = param(values, match["key"])
        if isinstance(value, dict | list) or value is None:
            raise PipelineError(
                f"{PIPELINE_FILE}: stage '{stage}' reads params '{entry}', but '{match['key']}' in "
                f"{PARAMS_FILE} is {value!r}, not a name or a number."
            )
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return INTERPOLATION.sub(text, entry).replace(r"\${", "${")


def selection(values: dict, dotted_key: str) -> dict | None:
    """`{"a": {"b": values["a"]["b"]}}` for "a.b", or None if params.yaml has no such key."""
    try:
        tree = param(values, dotted_key)
    except PipelineError:
        return None  # DVC leaves out a key the file does not have; the stage's own check names it
    for part in reversed(dotted_key.split(".")):
        tree = {part: tree}
    return tree


def merge(into: dict, tree: dict) -> None:
    """`tree`'s keys added to `into`, sections merged key by key."""
    for key, value in tree.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def declared(stage: str, field: str = "outs", pipeline: Path = PIPELINE_FILE) -> list[Path]:
    """The paths dvc.yaml lists under `field` (deps, outs, metrics) of `stage`, in its order:
    where code that is not a stage (predict, the report, the sweep) finds what a stage wrote."""
    pipeline_map = read_yaml_mapping(pipeline, mapping_of="of stages", missing_hint="; run this from the project root.")
    stages = pipeline_map.get("stages") or {}
    entries = (stages.get(stage) or {}).get(field) or []
    if not entries:
        raise PipelineError(f"{pipeline}: stage '{stage}' declares no {field}; restore it from the template.")
    return [Path(next(iter(entry)) if isinstance(entry, dict) else entry) for entry in entries]


def param(params: dict, dotted_key: str):
    """Return `params["a"]["b"]` for "a.b", or say which key is missing from params.yaml."""
    value = params
    for part in dotted_key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PipelineError(f"params.yaml has no '{dotted_key}'; add it (see the README).")
        value = value[part]
    return value


def seed(params: dict) -> int:
    value = param(params, "seed")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PipelineError(f"params.yaml: seed must be a non-negative integer, got {value!r}.")
    return value


# How a CSV file can be written, when params.yaml's `data.csv` leaves it to be detected (null).
SEPARATORS = (",", ";", "\t", "|")
SNIFF_BYTES = 1 << 16  # the start of the file that the separator, decimal mark and encoding are read from
# The first bytes of files people save as dataset.csv that are no CSV file, and what to do instead.
NOT_CSV = {
    b"PK\x03\x04": "is an Excel workbook (or another zip archive), not a CSV file: save it as CSV UTF-8",
    b"\xd0\xcf\x11\xe0": "is an Excel 97-2003 workbook, not a CSV file: save it as CSV UTF-8",
    b"PAR1": "is a Parquet file, not a CSV file: write it with pandas' to_csv",
    b"\x1f\x8b": "is compressed with gzip: decompress it (gunzip) first",
    b"%PDF": "is a PDF document, not a CSV file: export the table as CSV UTF-8",
    b"{\\rtf": "is a rich-text document, not a CSV file: save it as CSV UTF-8",
}
# A number written with a decimal comma, and with a decimal point (a cell of the sniffed lines).
COMMA_NUMBER, POINT_NUMBER = re.compile(r"[+-]?\d*,\d+"), re.compile(r"[+-]?\d*\.\d+")


def read_table(path: Path, csv: dict | None = None, na_values=(), text=()) -> tuple[pd.DataFrame, dict]:
    """(the table, how it was read: {"sep", "decimal", "encoding", "detected": [those not declared]}).

    `csv` declares what is not to be detected (params.yaml's data.csv: sep, decimal, encoding;
    None detects it from the file's start); `na_values` are more ways a missing cell is written;
    `text` names columns read as text whatever they hold (data.columns.categorical: "007" stays
    "007"). A file that is no CSV, empty, header-only or unreadable is one sentence with the fix.
    Column names lose surrounding spaces (a header "default " is the column "default")."""
    import pandas as pd

    declared = {key: value for key, value in (csv or {}).items() if value is not None}
    try:
        with open(path, "rb") as file:
            head = file.read(SNIFF_BYTES)
    except FileNotFoundError as error:
        raise PipelineError(f"{path} is missing; run `dvc pull` or add your data (see the README).") from error
    problem = not_csv(head)
    if problem is None and b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        problem = "is not a text file: save your table as CSV UTF-8"
    if problem:
        raise PipelineError(f"{path} {problem}.")
    encoding = declared.get("encoding") or sniff_encoding(head)
    lines = head_lines(head, encoding)
    if not "".join(lines).strip():
        raise PipelineError(f"{path} is empty: write your table there, a header row first, then `dvc add` it.")
    sep = declared.get("sep") or sniff_separator(lines)
    how = {
        "sep": sep,
        "decimal": declared.get("decimal") or sniff_decimal(lines, sep),
        "encoding": encoding,
        "detected": [key for key in ("sep", "decimal", "encoding") if key not in declared],
    }
    options = {
        "sep": sep,
        "decimal": how["decimal"],
        "na_values": list(na_values),
        "dtype": dict.fromkeys(text, "str"),
    }
    try:
        try:
            frame = parse_csv(path, encoding, options)
        except UnicodeDecodeError as error:
            if "encoding" in declared or encoding != "utf-8":
                raise PipelineError(
                    f"{path} is not encoded as {encoding}: {error} (set data.csv.encoding in params.yaml to the "
                    "file's encoding, or save it as CSV UTF-8)."
                ) from error
            # Not UTF-8 past the start that was sniffed: a spreadsheet's Windows encoding, most likely.
            how["encoding"] = encoding = "cp1252" if decodes(path, "cp1252") else "latin-1"
            frame = parse_csv(path, encoding, options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise PipelineError(f"{path} is not a readable CSV file: {error}") from error
    frame.columns = [name.strip() if isinstance(name, str) else name for name in frame.columns]
    if frame.empty and len(frame.columns):
        raise PipelineError(f"{path} has a header but no rows: add the table's rows under it.")
    return frame, how


def parse_csv(path: Path, encoding: str, options: dict) -> pd.DataFrame:
    """The file parsed by pandas' own parser, each column's type inferred from all its rows at once
    (not chunk by chunk, which can mix numbers and text in one column).

    Not pyarrow's parser, though it uses both cores: on the 2-core machines this project targets it
    spent 2-3x the CPU time of pandas' parser and took 1.5x the memory (1M rows x 20: 3.2-4.8 s
    against 1.3-1.8 s CPU, 1,050 MB against 680 MB peak; 300,000 x 30 mixed: 1.2-1.9 s against
    0.6 s), and it reads dates as dates and leaves blanks in true/false columns as None, where the
    table's text is what the stages should see."""
    import pandas as pd

    return pd.read_csv(path, encoding=encoding, low_memory=False, **options)


def not_csv(head: bytes) -> str | None:
    """What a file starting with `head` is, when its first bytes say it is no CSV (NOT_CSV)."""
    return next((sentence for magic, sentence in NOT_CSV.items() if head.startswith(magic)), None)


def head_lines(head: bytes, encoding: str) -> list[str]:
    """The whole lines of a file's first SNIFF_BYTES, decoded: the last is left out when the read
    may have cut it off."""
    lines = head.decode(encoding, errors="replace").splitlines(keepends=True)
    return lines if len(head) < SNIFF_BYTES else lines[:-1]


def sniff_encoding(head: bytes) -> str:
    """UTF-8 (with or without its byte-order mark) if the file's start is UTF-8; UTF-16 by its mark;
    else Windows' Western encoding (cp1252), what a spreadsheet on Windows saves as "CSV"."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252" if decodes_bytes(head, "cp1252") else "latin-1"
    return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"


def decodes_bytes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def decodes(path: Path, encoding: str, block: int = 1 << 24) -> bool:
    """Whether the whole file decodes (cp1252 leaves five bytes undefined), a block at a time."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as file:
        try:
            while data := file.read(block):
                decoder.decode(data)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def sniff_separator(lines: list[str]) -> str:
    """The candidate that splits every line into as many fields as the header, the most fields
    winning (a `;` file with decimal commas splits into one field at `,` in its header)."""
    best, most = ",", 1
    for candidate in SEPARATORS:
        counts = [len(row) for row in csvlib.reader(lines, delimiter=candidate) if row]
        if counts and counts[0] > most and len(set(counts)) == 1:
            best, most = candidate, counts[0]
    return best


def sniff_decimal(lines: list[str], sep: str) -> str:
    """A comma when more numbers in the sniffed lines are written with one than with a point."""
    if sep == ",":
        return "."
    cells = [cell.strip() for row in list(csvlib.reader(lines, delimiter=sep))[1:] for cell in row]
    comma = sum(1 for cell in cells if COMMA_NUMBER.fullmatch(cell))
    return "," if comma > sum(1 for cell in cells if POINT_NUMBER.fullmatch(cell)) else "."


def reading_said(path: Path, how: dict) -> str:
    """What `read_table` used, for the stage's output."""
    sep = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "vertical bar"}.get(how["sep"], repr(how["sep"]))
    decimal = "comma" if how["decimal"] == "," else "point" if how["decimal"] == "." else repr(how["decimal"])
    declared = [key for key in ("sep", "decimal", "encoding") if key not in how["detected"]]
    source = f"{', '.join(declared)} from data.csv" if declared else "detected; data.csv in params.yaml sets them"
    return f"read {path}: {sep}-separated, decimal {decimal}, encoding {how['encoding']} ({source})"


def checked(*checks: Callable[[], object]) -> list:
    """Each check's value (a check reads and validates params.yaml values, raising PipelineError),
    or one PipelineError naming every problem the checks found, so params.yaml is fixed in one go."""
    values, found = [], []
    for check in checks:
        try:
            values.append(check())
        except PipelineError as error:
            found.append(str(error).removeprefix("params.yaml: ").removesuffix("."))
            values.append(None)
    if found:
        raise PipelineError("params.yaml: " + "; ".join(found) + ".")
    return values


def read_summary(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise PipelineError(f"{path} is missing; run `dvc repro` (or `dvc pull`) first.") from error


def write_json(data, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Dictionary encoding only for columns that are not floats: floats seldom repeat, so pyarrow
    would build each one's dictionary only to give it up, and a table of them was written about 2.5x
    and read back 4-8x slower for it (1M rows x 20: 0.46 s against 0.17 s, 1.2 s against 0.15 s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    repeating = [str(name) for name, kind in frame.dtypes.items() if kind.kind != "f"]
    frame.to_parquet(path, index=False, use_dictionary=repeating)


def run_main(main: Callable[[], None]) -> None:
    """Run a command; report a PipelineError in one line and exit 1 instead of a traceback."""
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def run(stage: Callable[..., None], *paths: str) -> None:
    """Run the dvc.yaml stage named like the function `stage`: with the params that stage reads
    and the `paths` its `cmd:` passes, in that order (each is also a deps or outs entry there)."""
    parser = argparse.ArgumentParser(description=f"The stage `{stage.__name__}` of dvc.yaml.")
    for name in paths:
        parser.add_argument(name, type=Path)
    args = parser.parse_args()
    run_main(lambda: stage(stage_params(stage.__name__), **vars(args)))
