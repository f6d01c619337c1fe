"""Is permutation importance on a sample of the test rows ranked as stably as on all of them?

evaluate computes it on at most IMPORTANCE_ROWS test rows (its chart's title says how many). Bakes
the default project with generated data (300,000 rows x 30 columns, 6 text categories, 5% missing:
75,000 test rows), runs the pipeline, then computes the importances on all test rows with two
seeds, and on samples of several sizes with three seeds each. Stability is the Spearman rank
correlation with the all-rows ranking (seed 0), set beside that of the all-rows ranking with
another seed (the noise the method has on every row), and the share of the all-rows top 10 that
the sample's top 10 keeps. The bundled datasets' test sets (at most 450 rows) are all under
IMPORTANCE_ROWS: their sample is every row, so their ranking is the all-rows one.

    .venv/bin/python -m benchmarks.importance_sample [--sizes 1000 2000 5000 10000 20000]
"""

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.measure import Results
from harness.project import bake_defaults, package_name, project_env, run, use_generated_data

ROWS, FEATURES, CATEGORICAL, MISSING = 300_000, 30, 6, 0.05
TOP = 10

ANALYSIS = """
import json, sys, time
from pathlib import Path
import pandas as pd
from scipy.stats import spearmanr
import {package}.evaluate as evaluate
from {package}.config import SUMMARY, TEST, read_summary
from {package}.model_file import as_model_input, load_model, model_columns

summary = read_summary(Path("data/prepared") / SUMMARY)
model = load_model(Path("models/model.skops"))
columns = model_columns(model)
test = as_model_input(pd.read_parquet(Path("data/prepared") / TEST), columns)
features, labels = test[columns["numeric"] + columns["categorical"]], test[summary["target"]]

def importances(rows, seed):
    evaluate.IMPORTANCE_ROWS = rows
    start = time.perf_counter()
    values, _ = evaluate.importances(model, features, labels, random_state=seed)
    return values, time.perf_counter() - start

def top(values):
    return set(values.argsort()[-{top}:])

full, full_seconds = importances(len(labels), 0)
again, _ = importances(len(labels), 1)
found = {{"rows": len(labels), "all": {{"seconds": full_seconds, "spearman": [spearmanr(again, full).statistic],
         "top": [len(top(again) & top(full)) / {top}]}}}}
for size in {sizes}:
    runs = [importances(size, seed) for seed in (0, 1, 2)]
    found[size] = {{
        "seconds": sorted(seconds for _, seconds in runs)[1],
        "spearman": [spearmanr(values, full).statistic for values, _ in runs],
        "top": [len(top(values) & top(full)) / {top} for values, _ in runs],
    }}
print(json.dumps(found))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 2000, 5000, 10000, 20000])
    args = parser.parse_args()
    results = Results(__spec__.name)
    with tempfile.TemporaryDirectory(prefix="bench-importance-") as workdir:
        project = bake_defaults(Path(workdir))
        env = project_env(project)
        print("generating and running the pipeline ...", file=sys.stderr)
        use_generated_data(project, ROWS, FEATURES, categorical=CATEGORICAL, missing=MISSING)
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["train"]["estimator"] = "hist_gradient_boosting"
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        run(["dvc", "repro", "--quiet"], project, env)
        current = run(
            ["python", "-c", f"import {package_name(project)}.evaluate as e; print(e.IMPORTANCE_ROWS)"], project, env
        ).stdout.strip()
        print("permutation importances ...", file=sys.stderr)
        script = ANALYSIS.format(package=package_name(project), sizes=args.sizes, top=TOP)
        found = json.loads(run(["python", "-c", script], project, env).stdout.strip().splitlines()[-1])

    lines = [
        "| rows | seconds (median of seeds) | Spearman with all rows, seed 0 (seeds 0, 1, 2) | "
        f"top {TOP} kept (seeds 0, 1, 2) |",
        "|---|---:|---|---|",
    ]
    for size, row in found.items():
        if size == "rows":
            continue
        label = f"all {found['rows']:,} (seed 1)" if size == "all" else f"{int(size):,}"
        spearman = ", ".join(f"{value:.3f}" for value in row["spearman"])
        kept = ", ".join(f"{value:.0%}" for value in row["top"])
        lines.append(f"| {label} | {row['seconds']:.2f} | {spearman} | {kept} |")
    notes = [
        f"Data: {ROWS:,} generated rows × {FEATURES} columns ({CATEGORICAL} text categories, {MISSING:.0%} missing; "
        f"half of the columns informative), `hist_gradient_boosting` as baked; evaluate's IMPORTANCE_ROWS = {current}.",
        "Each importance: evaluate.importances (3 repeats a column, threads on every core) on a sample drawn with "
        "the seed; `all` is every test row.",
    ]
    results.write(
        "Permutation importance on a sample of the test rows",
        {"Python": platform.python_version()},
        notes,
        ["\n".join(lines)],
    )


if __name__ == "__main__":
    main()
