"""Stage `prepare`: check the raw table, decide what it holds, split it into train and test sets.

What it decides is written to `summary.json` beside the split (dvc.yaml: `data/prepared`) and
printed: the task (classification or regression, from `data.task`), the classes and the positive
one, which columns are numeric or categorical features and which are left out (`data.drop`, and
columns that look like IDs, dates or free text), and a profile of the data for the merge-request
report. Every problem of the file is found before anything is written and reported in one line, so
a bad file leaves no partial output.
"""

from pathlib import Path

import pandas as pd

from .config import (
    SUMMARY,
    TEST,
    TRAIN,
    PipelineError,
    param,
    read_csv,
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


def test_size(params: dict) -> float:
    value = param(params, "prepare.test_size")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise PipelineError(
            f"params.yaml: prepare.test_size must be a number between 0 and 1 (exclusive), got {value!r}."
        )
    return float(value)


def declared(params: dict) -> dict:
    """data.* of params.yaml, checked: target, task, drop, positive_class."""
    data = param(params, "data")
    target, task = data.get("target"), data.get("task", "auto")
    drop, positive = data.get("drop") or [], data.get("positive_class")
    if not isinstance(target, str) or not target:
        raise PipelineError(f"params.yaml: data.target must be the name of the label column, got {target!r}.")
    if task not in TASKS:
        raise PipelineError(f"params.yaml: data.task must be one of {', '.join(TASKS)}, got {task!r}.")
    if not isinstance(drop, list) or not all(isinstance(name, str) for name in drop):
        raise PipelineError(f"params.yaml: data.drop must be a list of column names, got {drop!r}.")
    return {"target": target, "task": task, "drop": drop, "positive_class": positive}


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
    sample = column.dropna().head(100)
    if sample.empty:
        return False
    parsed = pd.to_datetime(sample.astype(str), errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def column_roles(frame: pd.DataFrame, target: str, drop: list[str]) -> tuple[list, list, dict]:
    """(numeric features, categorical features, {left-out column: why})."""
    numeric, categorical, ignored = [], [], {name: "listed in data.drop" for name in drop}
    for name in frame.columns:
        if name == target or name in ignored:
            continue
        column = frame[name]
        values = column.dropna()
        if values.empty:
            continue  # reported as a problem by `problems`
        whole = pd.api.types.is_integer_dtype(column) or not pd.api.types.is_numeric_dtype(column)
        if looks_like_date(column):
            ignored[name] = "dates"
        elif pd.api.types.is_bool_dtype(column):
            categorical.append(name)
        elif whole and len(frame) > 10 and column.nunique() == len(frame):
            ignored[name] = "unique in every row (an ID?)"
        elif pd.api.types.is_numeric_dtype(column):
            numeric.append(name)
        elif values.nunique() > max(TEXT_UNIQUE_SHARE * len(values), MAX_AUTO_CLASSES):
            ignored[name] = "free text (most values differ)"
        else:
            categorical.append(name)
    return numeric, categorical, ignored


def problems(frame: pd.DataFrame, data: dict, task: str, min_rows: int) -> list[str]:
    """Everything wrong with the table for this task, each a phrase saying how to fix it."""
    target, found = data["target"], []
    if target not in frame.columns:
        found.append(f"no target column '{target}' (rename your label column or set data.target in params.yaml)")
    unknown = [repr(name) for name in data["drop"] if name not in frame.columns]
    if unknown:
        found.append(f"data.drop names columns the file does not have: {', '.join(unknown)}")
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


def prepare(params: dict, raw: Path, prepared: Path) -> None:
    """The raw table (a CSV file) split into train and test sets, and its summary, in `prepared`."""
    data = declared(params)
    fraction, random_state = test_size(params), seed(params)
    frame = read_csv(raw)
    target = data["target"]
    task, why = decide_task(frame[target].dropna(), data["task"]) if target in frame.columns else ("", "")
    found = problems(frame, data, task, min_rows=max(4, round(2 / min(fraction, 1 - fraction))))
    if found:
        raise PipelineError(f"{raw}: " + "; ".join(found) + ".")
    numeric, categorical, ignored = column_roles(frame, target, data["drop"])
    unlabelled = int(frame[target].isna().sum())
    labelled = frame.dropna(subset=[target])
    summary = {"target": target, "task": task, "numeric": numeric, "categorical": categorical, "ignored": ignored}
    if task == "classification":
        summary["classes"] = sorted(as_plain(label) for label in labelled[target].unique())
        if len(summary["classes"]) == 2:
            summary["positive_class"] = positive_class(labelled[target], data["positive_class"])
    summary["data"] = profile(frame, target, task)
    from sklearn.model_selection import train_test_split  # here: a bad file is told before its second of import

    stratify = labelled[target] if task == "classification" else None
    try:
        train, test = train_test_split(labelled, test_size=fraction, random_state=random_state, stratify=stratify)
    except ValueError as error:
        raise PipelineError(f"prepare.test_size={fraction} cannot split {len(labelled)} rows: {error}") from error

    print(f"prepare: task {task} ({why}; data.task in params.yaml chooses)")
    if "positive_class" in summary:
        print(f"prepare: positive class {summary['positive_class']!r} (data.positive_class chooses)")
    if unlabelled:
        print(f"prepare: {unlabelled} rows without a value of '{target}' are left out")
    guessed = {name: why for name, why in ignored.items() if why != "listed in data.drop"}
    if guessed:
        listed = ", ".join(f"'{name}' ({why})" for name, why in guessed.items())
        print(
            f"prepare: warning: not used as features: {listed}; add them to data.drop in params.yaml to say so, "
            "or turn them into features in your data (a date into year or weekday, say)."
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
