"""Stage `prepare`: check the raw table, decide what it holds, split it into train and test sets.

What it decides is written to `summary.json` beside the split (dvc.yaml: `data/prepared`) and
printed: the task (classification or regression, from `data.task`), the classes and the positive
one, which columns are numeric or categorical features and which are left out (`data.drop`, and
columns that look like IDs, dates or free text), and a profile of the data for the merge-request
report. Every problem of the file is found before anything is written and reported in one line, so
a bad file leaves no partial output.
"""

import codecs
import difflib
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .config import (
    SUMMARY,
    TEST,
    TRAIN,
    PipelineError,
    checked,
    param,
    read_table,
    reading_said,
    run,
    seed,
    write_json,
    write_parquet,
)

TASKS = ("auto", "classification", "regression")
# `auto` calls a numeric target with at most this many distinct whole numbers a class label.
MAX_AUTO_CLASSES = 20
# A text column whose distinct values are more than this share of its rows is an ID or free text.
TEXT_UNIQUE_SHARE = 0.5
# data.csv's keys (null: detected) and data.columns' lists (see `column_roles`).
CSV_KEYS, COLUMN_LISTS = ("sep", "decimal", "encoding"), ("numeric", "categorical", "keep")
# A text column is read as numbers when at least this share of its filled cells are numbers, or
# when all its other cells are ways of writing "missing" (below): the rest become missing values.
NUMBER_SHARE = 0.9
MISSING_MARKERS = {"?", "-", "--", ".", "n/a", "na", "n.a.", "nan", "none", "null", "missing", "unknown", "#n/a"}
# A column of whole numbers numbers the rows (an ID) when nearly every value differs (a repeat or
# two allowed) and the values fill at least this share of the range between the smallest and the
# largest: 1, 2, 3, ... with gaps. A quantity (a population, a floor area, an income) is spread
# over a range far wider than its count of rows, even when no two rows share a value.
ID_UNIQUE_SHARE, ID_RANGE_SHARE = 0.95, 0.5
# A date has two numbers joined by - / . or : ("2024-01-31", "31/01/2024 10:00") or a month's name
# and a number ("Jan 5, 2024"); a month alone ("Jan", "may"), an ordinal ("1st"), a year or a number
# with a decimal comma ("18,7") is not.
JOINED_NUMBERS, DIGITS = re.compile(r"\d\s*[-/.:]\s*\d"), re.compile(r"\d")
MONTH = re.compile(r"(?i)\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b")


def test_size(params: dict) -> float:
    value = param(params, "prepare.test_size")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise PipelineError(
            f"params.yaml: prepare.test_size must be a number between 0 and 1 (exclusive), got {value!r}."
        )
    return float(value)


def declared(params: dict) -> dict:
    """data.* of params.yaml, checked: target, task, drop, positive_class, csv, na_values, columns.
    Every problem is found before one is raised, all in one sentence."""
    data, found = param(params, "data"), []
    if not isinstance(data, dict):
        raise PipelineError(f"params.yaml: data must be a mapping (target, task, ...), got {data!r}.")
    target, task = data.get("target"), data.get("task", "auto")
    drop, positive = data.get("drop") or [], data.get("positive_class")
    if not isinstance(target, str) or not target:
        found.append(f"data.target must be the name of the label column, got {target!r}")
    if task not in TASKS:
        found.append(f"data.task must be one of {', '.join(TASKS)}, got {task!r}")
    if not names_list(drop):
        found.append(f"data.drop must be a list of column names, got {drop!r}")
    csv, na_values, columns = reading_options(data, found)
    if found:
        raise PipelineError("params.yaml: " + "; ".join(found) + ".")
    return {
        "target": target,
        "task": task,
        "drop": drop,
        "positive_class": positive,
        "csv": csv,
        "na_values": na_values,
        "columns": columns,
    }


def names_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


def reading_options(data: dict, found: list[str]) -> tuple[dict, list, dict]:
    """(data.csv, data.na_values, data.columns) of params.yaml, each problem added to `found`."""
    csv, na_values, columns = data.get("csv") or {}, data.get("na_values") or [], data.get("columns") or {}
    if not isinstance(csv, dict) or set(csv) - set(CSV_KEYS):
        found.append(f"data.csv takes {', '.join(CSV_KEYS)} (each null to detect it), got {csv!r}")
        csv = {}
    for key in ("sep", "decimal"):
        if csv.get(key) is not None and (not isinstance(csv[key], str) or len(csv[key]) != 1):
            found.append(f"data.csv.{key} must be one character (or null to detect it), got {csv[key]!r}")
    encoding = csv.get("encoding")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except (LookupError, TypeError):
            found.append(f"data.csv.encoding {encoding!r} is not an encoding Python knows (utf-8, cp1252, latin-1...)")
    if not names_list(na_values):
        found.append(f"data.na_values must be a list of texts that mean a missing value, got {na_values!r}")
        na_values = []
    if not isinstance(columns, dict) or set(columns) - set(COLUMN_LISTS):
        found.append(f"data.columns takes the lists {', '.join(COLUMN_LISTS)}, got {columns!r}")
        columns = {}
    columns = {kind: columns.get(kind) or [] for kind in COLUMN_LISTS}
    for kind, names in columns.items():
        if not names_list(names):
            found.append(f"data.columns.{kind} must be a list of column names, got {names!r}")
            columns[kind] = []
    twice = sorted(set(columns["numeric"]) & set(columns["categorical"]))
    if twice:
        found.append(f"data.columns lists {', '.join(twice)} as both numeric and categorical")
    return csv, na_values, columns


SPLITS = ("random", "time")


def split_settings(params: dict) -> tuple[str, str | None]:
    """(prepare.split, data.time_column), checked together: every problem at once, before the file is read."""
    split, time_column = param(params, "prepare").get("split", "random"), param(params, "data").get("time_column")
    found = []
    if split not in SPLITS:
        found.append(f"prepare.split must be one of {', '.join(SPLITS)}, got {split!r}")
    if time_column is not None and (not isinstance(time_column, str) or not time_column):
        found.append(f"data.time_column must be the name of a column of dates (or null), got {time_column!r}")
    elif split == "time" and time_column is None:
        found.append("prepare.split is time but data.time_column is not set (name the column of dates to order by)")
    if found:
        raise PipelineError("params.yaml: " + "; ".join(found) + ".")
    return split, time_column


def as_times(column: pd.Series) -> pd.Series:
    """A column as points in time to order rows by: dates (text in any format pandas reads), or
    numbers that count time (years, periods) as they are. A value that is neither is missing.

    Text is read in one format for the whole column, month or day first, whichever reads more of
    it (01/03 and 30/03 are then both March), and value by value only if that reads more still."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return column
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column
    text, best = column.astype("string"), None
    with warnings.catch_warnings():  # "Could not infer format": then it is read value by value
        warnings.simplefilter("ignore", UserWarning)
        for how in ({"dayfirst": False}, {"dayfirst": True}, {"format": "mixed"}):
            parsed = pd.to_datetime(text, errors="coerce", utc=True, **how)
            if best is None or parsed.notna().sum() > best.notna().sum():
                best = parsed
            if best.notna().sum() == text.notna().sum():
                break  # every value read: the slower ways cannot read more
    return best


def time_problems(frame: pd.DataFrame, time_column: str | None, times: pd.Series | None) -> list[str]:
    """What is wrong with data.time_column in this file (`times`: that column `as_times`), each a
    phrase saying how to fix it."""
    if time_column is None:
        return []
    if times is None:
        return [f"data.time_column '{time_column}' is not a column of the file (name the column of dates)"]
    bad = frame[time_column][times.isna()]
    if bad.empty:
        return []
    shown = ", ".join(repr(as_plain(value)) for value in bad.head(3))
    return [
        f"data.time_column '{time_column}' holds {len(bad)} values that are not dates ({shown}"
        f"{', ...' if len(bad) > 3 else ''}): fix them, or name another column"
    ]


def moment(value) -> str:
    """A point in time as summary.json and the report show it: 2019-01-01, not 2019-01-01 00:00:00+00:00."""
    text = str(value if isinstance(value, pd.Timestamp) else as_plain(value))
    return text.removesuffix("+00:00").removesuffix(" 00:00:00")


def time_split(labelled: pd.DataFrame, times: pd.Series, time_column: str, fraction: float) -> tuple:
    """(train, test, how): the latest `fraction` of the rows by `times` (`time_column` read by
    `as_times`) are the test set, rows of one time on one side (the test side, unless that would
    leave no training rows)."""
    times = times.loc[labelled.index].reset_index(drop=True).sort_values(kind="stable")
    first_test = times.iloc[len(times) - math.ceil(fraction * len(times))]
    cut = int(times.searchsorted(first_test, side="left") or times.searchsorted(first_test, side="right"))
    if cut == len(times):
        raise PipelineError(f"data.time_column '{time_column}' holds a single time; the time split needs several.")
    how = {"method": "time", "test_size": fraction, "time_column": time_column}
    how |= {"train_until": moment(times.iloc[cut - 1]), "test_from": moment(times.iloc[cut])}
    order = times.index.to_numpy()
    return labelled.iloc[order[:cut]], labelled.iloc[order[cut:]], how


def as_plain(value):
    """A NumPy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value


def decide_task(labels: pd.Series, task: str) -> tuple[str, str]:
    """(task, why): `auto` reads a text or a few whole numbers as classes, other numbers as a quantity."""
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    distinct = labels.nunique()
    if task != "auto":
        return task, "set in params.yaml"
    if not numeric:
        return "classification", "the target is not numeric"
    if distinct <= MAX_AUTO_CLASSES and (labels % 1 == 0).all():
        return "classification", f"the target has {distinct} distinct whole numbers"
    return "regression", f"the target is numeric with {distinct} distinct values"


def looks_like_date(column: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    sample = column.dropna().head(100).astype(str)
    if sample.empty or not all(date_shaped(value) for value in sample):
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def date_shaped(value: str) -> bool:
    return bool(JOINED_NUMBERS.search(value) or (DIGITS.search(value) and MONTH.search(value)))


def looks_like_id(column: pd.Series) -> bool:
    """Numbers the rows (see ID_UNIQUE_SHARE): whole numbers, nearly all different, filling their range."""
    values = column.dropna()
    if len(values) <= 10 or pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return False
    numbers = values.to_numpy(dtype=float)
    if not np.isfinite(numbers).all() or not np.array_equal(numbers, np.floor(numbers)):
        return False
    distinct = values.nunique()
    return distinct >= ID_UNIQUE_SHARE * len(values) and distinct >= ID_RANGE_SHARE * (values.max() - values.min() + 1)


def numbers_from_text(frame: pd.DataFrame, declared: dict, decimal: str) -> dict[str, list[str]]:
    """Text columns that hold numbers (see NUMBER_SHARE), and data.columns.numeric, made numeric in
    place: {column: its cells that are no number, now missing}. Categorical columns stay text."""
    stray = {}
    for name in frame.columns:
        column = frame[name]
        if name in declared["categorical"] or pd.api.types.is_numeric_dtype(column) and name not in declared["numeric"]:
            continue
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
            continue
        # Each distinct value parsed once (a category column has few); a column whose first
        # thousand distinct values are mostly no numbers is text, without parsing the rest.
        distinct = pd.Series(column.dropna().unique()).astype(str)
        if name not in declared["numeric"] and as_numbers(distinct.head(1000), decimal).notna().mean() < 0.5:
            continue
        numbers = as_numbers(distinct, decimal)
        counts = column.value_counts().reindex(distinct.to_numpy(), fill_value=0).to_numpy()
        others = distinct[numbers.isna().to_numpy()]
        share = counts[numbers.notna().to_numpy()].sum() / max(counts.sum(), 1)
        markers = set(others.str.strip().str.lower()) <= MISSING_MARKERS and share >= 0.5
        if name in declared["numeric"] or share >= NUMBER_SHARE or markers:
            frame[name] = as_numbers(column.astype("str"), decimal).where(column.notna())
            if len(others):
                stray[name] = list(others)
    return stray


def as_numbers(text: pd.Series, decimal: str) -> pd.Series:
    """Text as numbers (surrounding spaces ignored), NaN where a cell is no number."""
    text = text.str.strip()
    return pd.to_numeric(text.str.replace(decimal, ".", regex=False) if decimal != "." else text, errors="coerce")


def whole_labels(frame: pd.DataFrame, target: str) -> None:
    """A class label read as 0.0/1.0 (a blank turned the column into floats) as the whole number it is."""
    labels = frame[target]
    if labels.dtype.kind == "f" and labels.dropna().size and (labels.dropna() % 1 == 0).all():
        frame[target] = labels.astype("Int64")


def column_roles(
    frame: pd.DataFrame, target: str, drop: list[str], declared: dict | None = None
) -> tuple[list, list, dict]:
    """(numeric features, categorical features, {left-out column: why}). data.columns comes first:
    a column it lists as numeric or categorical is that, one it lists under keep is never left out;
    the rest is guessed, and the guess is printed so it can be corrected there."""
    declared = declared or dict.fromkeys(COLUMN_LISTS, [])
    numeric, categorical, ignored = [], [], {name: "listed in data.drop" for name in drop}
    for name in frame.columns:
        if name == target or name in ignored:
            continue
        column = frame[name]
        values = column.dropna()
        if values.empty:
            continue  # reported as a problem by `problems`
        is_number = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if name in declared["numeric"]:
            numeric.append(name)
        elif name in declared["categorical"]:
            categorical.append(name)
        elif name in declared["keep"]:
            (numeric if is_number else categorical).append(name)
        elif looks_like_date(column):
            ignored[name] = "dates"
        elif pd.api.types.is_bool_dtype(column):
            categorical.append(name)
        elif looks_like_id(column):
            ignored[name] = "numbers the rows (an ID?)"
        elif not is_number and len(frame) > 10 and values.nunique() == len(frame):
            ignored[name] = "unique in every row (an ID?)"
        elif is_number:
            numeric.append(name)
        elif values.nunique() > max(TEXT_UNIQUE_SHARE * len(values), MAX_AUTO_CLASSES):
            ignored[name] = "free text (most values differ)"
        else:
            categorical.append(name)
    return numeric, categorical, ignored


def missing_target(frame: pd.DataFrame, target: str) -> str:
    """No column named `target`: the columns there are, and the closest name."""
    names = [str(name) for name in frame.columns]
    by_case = [name for name in names if name.casefold() == target.casefold()]
    closest = by_case or difflib.get_close_matches(target, names, n=1, cutoff=0.6)
    shown = ", ".join(repr(name) for name in names[:30]) + (f" and {len(names) - 30} more" if len(names) > 30 else "")
    hint = f"; the closest is {closest[0]!r}" if closest else ""
    if len(names) == 1 and any(mark in names[0] for mark in ";\t|"):
        hint += " (one column: set data.csv.sep in params.yaml to the file's separator)"
    return (
        f"no target column '{target}' (the file has {shown}{hint}; "
        "rename your label column or set data.target in params.yaml)"
    )


def infinite(frame: pd.DataFrame) -> str | None:
    """The columns with infinite values (a spreadsheet's `inf`), which no estimator takes."""
    numbers = frame.select_dtypes("number")
    counts = np.isinf(numbers.astype(float)).sum()
    named = [f"{name} ({count})" for name, count in counts.items() if count]
    if not named:
        return None
    return (
        f"infinite values in {', '.join(named)} (leave those cells empty, or list how they are written, "
        "such as inf, in data.na_values)"
    )


def problems(frame: pd.DataFrame, data: dict, task: str, min_rows: int) -> list[str]:
    """Everything wrong with the table for this task, each a phrase saying how to fix it."""
    target, found = data["target"], []
    if target not in frame.columns:
        found.append(missing_target(frame, target))
    unknown = [repr(name) for name in data["drop"] if name not in frame.columns]
    if unknown:
        found.append(f"data.drop names columns the file does not have: {', '.join(unknown)}")
    listed = {name for names in data["columns"].values() for name in names}
    unknown = [repr(name) for name in sorted(listed) if name not in frame.columns]
    if unknown:
        found.append(f"data.columns names columns the file does not have: {', '.join(unknown)}")
    if infinite(frame):
        found.append(infinite(frame))
    empty = [str(name) for name in frame.columns if name != target and frame[name].isna().all()]
    if empty:
        found.append(f"columns with no value at all: {', '.join(empty)} (add them to data.drop)")
    if target not in frame.columns:
        return found
    features = [name for name in frame.columns if name not in (target, *data["drop"], *empty)]
    if not features:
        found.append(f"no feature columns besides '{target}'")
    labels = frame[target].dropna()
    counts = labels.value_counts()
    if len(counts) < 2:
        found.append(f"target '{target}' needs at least two different values, found {len(counts)}")
    elif task == "classification":
        single = [repr(as_plain(label)) for label, count in counts.items() if count < 2]
        if single:
            hint = " (is it a quantity? set data.task: regression)" if len(counts) > MAX_AUTO_CLASSES else ""
            more = f" and {len(single) - 10} more" if len(single) > 10 else ""
            found.append(f"classes with a single row, which cannot be split: {', '.join(single[:10])}{more}{hint}")
        positive = data["positive_class"]
        if positive is not None and len(counts) != 2:
            found.append(f"data.positive_class is set but '{target}' has {len(counts)} classes (it is for two)")
        elif positive is not None and str(positive) not in {str(label) for label in counts.index}:
            labels_found = ", ".join(repr(as_plain(label)) for label in counts.index)
            found.append(f"data.positive_class {positive!r} is not a value of '{target}' ({labels_found})")
    else:
        if not pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels):
            found.append(f"target '{target}' is not numeric, as a regression needs (or set data.task: classification)")
        if data["positive_class"] is not None:
            found.append("data.positive_class is set but the task is regression (remove it)")
    if len(labels) < min_rows:
        found.append(f"{len(labels)} rows with a target value are too few to split (at least {min_rows})")
    return found


def positive_class(labels: pd.Series, declared_class):
    """The label that counts as positive in a binary task: the declared one, else the rarer one."""
    counts = labels.value_counts()
    if declared_class is None:
        return as_plain(counts.index[-1]) if counts.iloc[0] != counts.iloc[-1] else as_plain(sorted(counts.index)[-1])
    return next(as_plain(label) for label in counts.index if str(label) == str(declared_class))


def profile(frame: pd.DataFrame, target: str, task: str) -> dict:
    """What the merge-request report compares when the data changes: small, no row data."""
    labels = frame[target].dropna()
    if task == "classification":
        target_summary = {str(as_plain(k)): int(v) for k, v in labels.value_counts().sort_index().items()}
    else:
        described = labels.astype(float).describe()
        target_summary = {key: round(float(described[key]), 6) for key in ("mean", "std", "min", "50%", "max")}
    missing = frame.isna().mean()
    return {
        "rows": len(frame),
        "columns": [str(name) for name in frame.columns],
        "missing": {str(name): round(float(share), 4) for name, share in missing.items() if share > 0},
        "target": target_summary,
    }


def split_rows(labelled, target, task, split, times, time_column, fraction, random_state) -> tuple:
    """(train, test, how the rows were split): the latest rows by time, or a random share
    (stratified by class); a time split that leaves a class out of the training rows is refused."""
    if split == "time":
        train, test, how = time_split(labelled, times, time_column, fraction)
        unseen = set(labelled[target]) - set(train[target]) if task == "classification" else set()
        if unseen:
            classes = ", ".join(sorted(repr(as_plain(label)) for label in unseen))
            raise PipelineError(
                f"the time split leaves no training rows of class {classes} (all among the latest rows); "
                "use a smaller prepare.test_size, or prepare.split: random."
            )
        return train, test, how
    stratified = task == "classification"
    train, test = random_split(labelled[target].to_numpy(), fraction, random_state, stratified)
    how = {"method": "random", "test_size": fraction, "stratified": stratified}
    return labelled.iloc[train], labelled.iloc[test], how


def random_split(labels: np.ndarray, fraction: float, random_state: int, stratified: bool) -> tuple:
    """Row positions (train, test): scikit-learn's `train_test_split` with `stratify=labels` (or
    none), the same rows in the same order from the same seed (tests/test_prepare.py checks), drawn
    here because importing scikit-learn would be a second of this stage's time and it needs nothing
    else of it. Stratified: each class's share of the test rows as in the whole table, the rounding
    left over given to the classes with the largest remainders (ties drawn at random)."""
    rows = len(labels)
    tested = math.ceil(fraction * rows)
    rng = np.random.RandomState(random_state)
    if not stratified:
        order = rng.permutation(rows)
        return order[tested:], order[:tested]
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if min(tested, rows - tested) < len(classes):
        raise PipelineError(
            f"prepare.test_size={fraction} leaves {min(tested, rows - tested)} rows on one side of the split, "
            f"fewer than the {len(classes)} classes: each side needs a row of every class (change test_size)."
        )
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    to_train = likeliest_counts(counts, rows - tested, rng)
    to_test = likeliest_counts(counts - to_train, tested, rng)
    train, test = [], []
    for rows_of_class, kept, drawn in zip(members, to_train, to_test, strict=True):
        shuffled = rows_of_class[rng.permutation(len(rows_of_class))]
        train.append(shuffled[:kept])
        test.append(shuffled[kept : kept + drawn])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def likeliest_counts(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of `draws` rows each class gives: its share rounded down, then one more for the
    classes with the largest remainders (scikit-learn's `_approximate_mode`)."""
    share = counts / counts.sum() * draws
    given = np.floor(share)
    needed = int(draws - given.sum())
    remainder = share - given
    for value in np.sort(np.unique(remainder))[::-1]:
        if needed <= 0:
            break
        (tied,) = np.where(remainder == value)
        chosen = rng.choice(tied, size=min(len(tied), needed), replace=False)
        given[chosen] += 1
        needed -= len(chosen)
    return given.astype(int)


def time_hint(guessed: dict, split: str) -> str:
    """With a random split, what to set when a column of dates makes the rows a series over time."""
    dated = [name for name, why in guessed.items() if why == "dates"]
    if split != "random" or not dated:
        return ""
    return (
        f" If the rows are a series over time, set prepare.split: time and data.time_column: {dated[0]} to test "
        "on the latest rows: a random split tests on the neighbours of training rows, which flatters the score."
    )


def prepare(params: dict, raw: Path, prepared: Path) -> None:
    """The raw table (a CSV file) split into train and test sets, and its summary, in `prepared`."""
    data, fraction, random_state, (split, time_column) = checked(
        lambda: declared(params), lambda: test_size(params), lambda: seed(params), lambda: split_settings(params)
    )
    frame, how = read_table(raw, data["csv"], data["na_values"], text=data["columns"]["categorical"])
    print(f"prepare: {reading_said(raw, how)}")
    stray = numbers_from_text(frame, data["columns"], how["decimal"])
    target = data["target"]
    task, why = decide_task(frame[target].dropna(), data["task"]) if target in frame.columns else ("", "")
    if task == "classification":
        whole_labels(frame, target)
    found = problems(frame, data, task, min_rows=max(4, round(2 / min(fraction, 1 - fraction))))
    times = as_times(frame[time_column]) if time_column in frame.columns else None
    found += time_problems(frame, time_column, times)
    if found:
        raise PipelineError(f"{raw}: " + "; ".join(found) + ".")
    numeric, categorical, ignored = column_roles(frame, target, data["drop"], data["columns"])
    if ignored.get(time_column) == "dates":
        ignored[time_column] = "dates (data.time_column)"
    unlabelled = int(frame[target].isna().sum())
    labelled = frame.dropna(subset=[target])
    if labelled[target].dtype == "Int64":
        labelled = labelled.astype({target: "int64"})
    summary = {"target": target, "task": task, "numeric": numeric, "categorical": categorical, "ignored": ignored}
    if task == "classification":
        summary["classes"] = sorted(as_plain(label) for label in labelled[target].unique())
        if len(summary["classes"]) == 2:
            summary["positive_class"] = positive_class(labelled[target], data["positive_class"])
    summary["data"] = profile(frame, target, task)
    train, test, summary["split"] = split_rows(
        labelled, target, task, split, times, time_column, fraction, random_state
    )

    print(f"prepare: task {task} ({why}; data.task in params.yaml chooses)")
    if "positive_class" in summary:
        print(f"prepare: positive class {summary['positive_class']!r} (data.positive_class chooses)")
    if unlabelled:
        print(f"prepare: {unlabelled} rows without a value of '{target}' are left out")
    if stray:
        listed = "; ".join(
            f"'{name}' ({', '.join(map(repr, cells[:5]))}{' ...' if len(cells) > 5 else ''})"
            for name, cells in stray.items()
        )
        print(
            f"prepare: warning: read as numbers, with these cells missing: {listed}; list other ways your table "
            "writes a missing value in data.na_values, or a column in data.columns.categorical to keep it as text."
        )
    guessed = {name: why for name, why in ignored.items() if why != "listed in data.drop" and name != time_column}
    if guessed:
        listed = ", ".join(f"'{name}' ({why})" for name, why in guessed.items())
        print(
            f"prepare: warning: not used as features: {listed}; add them to data.drop in params.yaml to say so, "
            "list one in data.columns.keep (or numeric, categorical) to use it, "
            "or turn them into features in your data (a date into year or weekday, say)." + time_hint(guessed, split)
        )
    if split == "time":
        print(
            f"prepare: time split by '{time_column}': trained on rows up to {summary['split']['train_until']}, "
            f"tested on rows from {summary['split']['test_from']} on"
        )
    write_parquet(train, prepared / TRAIN)
    write_parquet(test, prepared / TEST)
    write_json(summary, prepared / SUMMARY)
    print(
        f"prepare: {len(train)} training rows, {len(test)} test rows; "
        f"{len(numeric)} numeric and {len(categorical)} categorical features"
    )


if __name__ == "__main__":
    run(prepare, "raw", "prepared")
