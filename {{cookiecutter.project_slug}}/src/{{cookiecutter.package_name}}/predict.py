"""Predict from raw rows with the trained model (or one the registry's `fetch` downloaded).

    python -m {{cookiecutter.package_name}}.predict new_rows.csv                      # CSV on standard output
    python -m {{cookiecutter.package_name}}.predict new_rows.csv --out predictions.csv --model models/model.skops

The input has the columns of the training data, in any order, without the target or with it;
missing values and unseen categories are fine (the model's own preprocessing handles them).
Columns the model was trained without (the target, data.drop, IDs) are copied through, so an ID
stays beside its prediction. The output is the input plus `predicted_<target>` and, for a
classification, `probability_<class>` for each class. A file whose columns do not match the
training schema is refused in one line naming the columns, and nothing is written.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

from .config import PipelineError, declared, read_csv, run_main
from .model_file import as_model_input, load_model, model_columns, threads_for


def check_columns(frame: pd.DataFrame, columns: dict, source: Path) -> None:
    known = {name for names in columns.values() for name in names}
    needed = columns["numeric"] + columns["categorical"]
    missing = [name for name in needed if name not in frame.columns]
    unknown = [str(name) for name in frame.columns if name not in known]
    not_numbers = [
        name
        for name in columns["numeric"]
        if name in frame.columns and pd.to_numeric(frame[name], errors="coerce").isna().sum() > frame[name].isna().sum()
    ]
    found = []
    if missing:
        found.append(f"missing columns {', '.join(missing)}")
    if unknown:
        found.append(f"columns the model was not trained with: {', '.join(unknown)}")
    if not_numbers:
        found.append(f"text in numeric columns {', '.join(not_numbers)}")
    if found:
        raise PipelineError(f"{source} does not match the model's training data: " + "; ".join(found) + ".")


def predictions(model, frame: pd.DataFrame) -> pd.DataFrame:
    columns = model_columns(model)
    target = columns["left_out"][0]  # train.py lists the target first
    rows = as_model_input(frame, columns)
    for name in columns["numeric"]:
        rows[name] = pd.to_numeric(rows[name])
    features = rows[columns["numeric"] + columns["categorical"]]
    found = {f"predicted_{target}": model.predict(features)}
    if hasattr(model, "predict_proba"):
        for label, values in zip(model.classes_, model.predict_proba(features).T, strict=True):
            found[f"probability_{label}"] = values.round(6)
    return frame.assign(**found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="CSV file of rows to predict")
    parser.add_argument("--model", type=Path, help="model file (default: the train stage's, in dvc.yaml)")
    parser.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    args = parser.parse_args(argv)
    args.model = args.model or declared("train")[0]
    if not args.model.is_file():
        raise PipelineError(f"{args.model} is missing; run `dvc repro` or `dvc pull`, or pass --model.")
    model = load_model(args.model)
    frame = read_csv(args.input)
    check_columns(frame, model_columns(model), args.input)
    with threads_for(len(frame)):
        result = predictions(model, frame)
    if args.out is None:
        result.to_csv(sys.stdout, index=False)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".partial")
    result.to_csv(partial, index=False)
    partial.replace(args.out)  # a cut run leaves no half-written output
    print(f"predict: {len(result)} rows to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
