"""What do 2,000,000 rows cost `predict`, in memory and time, against `predict` before it read and
wrote a block at a time?

Bakes the default project (breast_cancer, the default `hist_gradient_boosting`) and trains it
(`dvc repro`); writes 2,000,000 raw rows to score (the bundled table's rows drawn with
replacement, its 30 feature columns as the file writes them, no target). `predict --out` runs N
times (3 by default) in one invocation, taking turns with `predict` as it was before (`predict.py`
and its `config.py` of --before, 58956f6 by default: the whole file read with pyarrow, the whole
result written at once; run from the same baked package with the same model and file): wall time
and peak RSS (its process tree). Both outputs' predictions are compared once. Targets: peak RSS under 300 MB,
at most 1.2x the time before.

    .venv/bin/python -m benchmarks.predict_rows [--runs N] [--rows R] [--before REV]
"""

import argparse
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.data_size import measured
from benchmarks.measure import Results, comparison_table
from harness.project import TEMPLATE, bake_defaults, package_name, project_env, run

ROWS, BEFORE = 2_000_000, "58956f6"
RSS_TARGET_MB, RATIO_TARGET = 300, 1.2
SOURCE = "{{cookiecutter.project_slug}}/src/{{cookiecutter.package_name}}"
# The rows to score: the bundled table's rows drawn with replacement, without the target.
ROWS_TO_SCORE = """
import numpy as np, pyarrow.csv as csv
table = csv.read_csv("data/raw/dataset.csv").drop_columns(["target"])
picked = np.random.default_rng(0).integers(0, table.num_rows, {rows})
csv.write_csv(table.take(picked), "rows.csv")
"""
SAME = """
import pandas as pd
columns = ["predicted_target", "probability_0", "probability_1"]
before, after = (pd.read_csv(path, usecols=columns, engine="pyarrow") for path in ("before.csv", "blocks.csv"))
print((before["predicted_target"] == after["predicted_target"]).mean(), (before - after).abs().max().max())
"""
MODULES = {"predict_before": "before", "predict": "blocks"}


def prepare_project(workdir: Path, before: str, rows: int) -> tuple[Path, dict]:
    """The baked project trained, the rows to score, and the predict of `before` beside today's, with
    the config module of `before` (how it read a CSV file) and today's model_file (how it loads)."""
    project = bake_defaults(workdir)
    env = project_env(project)
    run(["dvc", "repro", "--quiet"], project, env)
    run(["python", "-c", ROWS_TO_SCORE.format(rows=rows)], project, env)
    package = package_name(project)
    for module, text in (("predict", "from .config import"), ("config", "")):
        old = run(["git", "show", f"{before}:{SOURCE}/{module}.py"], TEMPLATE).stdout
        old = old.replace("{{cookiecutter.package_name}}", package)
        if text:
            old = old.replace(text, "from .config_before import")
        (project / "src" / package / f"{module}_before.py").write_text(old)
    return project, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each predict (3)")
    parser.add_argument("--rows", type=int, default=ROWS, help=f"rows to score ({ROWS:,})")
    parser.add_argument("--before", default=BEFORE, help=f"template commit of predict before ({BEFORE})")
    args = parser.parse_args()
    results = Results(__spec__.name)
    samples: dict[str, list[tuple[float, float]]] = {module: [] for module in MODULES}
    with tempfile.TemporaryDirectory(prefix="bench-predict-rows-") as workdir:
        project, env = prepare_project(Path(workdir), args.before, args.rows)
        package = package_name(project)
        size_mb = (project / "rows.csv").stat().st_size / 1e6
        for number in range(args.runs + 1):  # the first, untimed: the OS file cache, bytecode
            print(f"run {number}/{args.runs} ...", file=sys.stderr)
            for module in list(MODULES) if number % 2 else reversed(MODULES):
                out = f"{MODULES[module]}.csv"
                seconds, peak, _ = measured(
                    ["python", "-m", f"{package}.{module}", "rows.csv", "--out", out], project, env
                )
                if number:
                    samples[module].append((seconds, peak))
        same, largest = run(["python", "-c", SAME], project, env).stdout.split()
        dvc_version = run(["dvc", "--version"], project, env).stdout.strip()

    def median(module: str, index: int) -> float:
        return statistics.median(sample[index] for sample in samples[module])

    lines = [
        "| predict | median (s) | min (s) | max (s) | peak RSS, median (MB) | runs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for module, label in (("predict_before", f"before ({args.before})"), ("predict", "a block at a time")):
        seconds = [sample[0] for sample in samples[module]]
        lines.append(
            f"| {label} | {median(module, 0):.2f} | {min(seconds):.2f} | {max(seconds):.2f} "
            f"| {median(module, 1):.0f} | {len(seconds)} |"
        )
    ratio = median("predict", 0) / median("predict_before", 0)
    peak = median("predict", 1)
    checks = comparison_table(
        [
            ("`predict` peak RSS", f"{peak:.0f} MB", f"< {RSS_TARGET_MB} MB", peak < RSS_TARGET_MB),
            ("`predict` time, blocks / before", f"{ratio:.2f}", f"≤ {RATIO_TARGET}", ratio <= RATIO_TARGET),
            ("`predict` peak RSS, blocks / before", f"{peak / median('predict_before', 1):.2f}", "", None),
        ]
    )
    notes = [
        f"Project: the default bake (breast_cancer, `hist_gradient_boosting`) trained by `dvc repro`; {args.rows:,} "
        f"rows to score ({size_mb:.0f} MB of CSV: the bundled rows drawn with replacement, 30 numeric columns).",
        f"Before: predict.py and config.py of the template at {args.before}, run from the same package and model. "
        "Each run writes `--out`; peak RSS is the largest of its process tree. Runs take turns, "
        "one untimed round first.",
        f"The same predictions: {float(same):.0%} of labels equal, probabilities within {float(largest):.1e}.",
    ]
    versions = {"Python": platform.python_version(), "DVC": dvc_version}
    results.write(f"`predict` on {args.rows:,} rows", versions, notes, ["\n".join(lines), checks])


if __name__ == "__main__":
    main()
