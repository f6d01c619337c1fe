"""How large do `random_forest`'s defaults make the model on a mid-size, noisy table, and what does
a cap cost in score?

Bakes the default project with `train.estimator: random_forest` and generated data shaped like
nycflights13's flights after dropping missing rows (327,000 rows: 245,250 training rows; 9
numbers and 3 text categories of 3, 16 and 100 values, like origin, carrier and dest; a two-class
target with 30% of its labels drawn at random, as noisy as a delay). For each setting of
`train.random_forest`: `dvc repro` (train and evaluate: wall time and
peak RSS of each stage's process tree), the model file's size, the test set's balanced accuracy, and
`predict` on 4 raw rows (wall time and peak RSS: loading the model is most of it). One run each:
sizes and scores do not vary between runs, and one forest takes minutes.

    .venv/bin/python -m benchmarks.forest_size [--settings NAME ...]
"""

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.data_size import measured
from benchmarks.measure import Results
from harness.project import bake_defaults, package_name, project_env, run

ROWS, NUMBERS, CATEGORIES, LABEL_NOISE = 327_000, 12, (3, 16, 100), 0.3
# name: train.random_forest besides n_estimators, which stays the baked one
SETTINGS = {
    "no cap (max_depth null, min_samples_leaf 1)": {"max_depth": None, "min_samples_leaf": 1},
    "min_samples_leaf 5": {"max_depth": None, "min_samples_leaf": 5},
    "min_samples_leaf 20": {"max_depth": None, "min_samples_leaf": 20},
    "max_depth 12": {"max_depth": 12, "min_samples_leaf": 1},
    "max_leaf_nodes 2000": {"max_depth": None, "min_samples_leaf": 1, "max_leaf_nodes": 2000},
    "max_leaf_nodes 5000": {"max_depth": None, "min_samples_leaf": 1, "max_leaf_nodes": 5000},
    "max_leaf_nodes 10000": {"max_depth": None, "min_samples_leaf": 1, "max_leaf_nodes": 10000},
}
GENERATE = """
import numpy as np, pyarrow as pa, pyarrow.csv as csv
from sklearn.datasets import make_classification
values, labels = make_classification({rows}, {numbers}, n_informative={numbers} // 2, flip_y={noise}, random_state=0)
columns = {{f"x{{i}}": values[:, i] for i in range({numbers} - {categorical})}}
for i, count in enumerate({categories}):
    column = values[:, {numbers} - {categorical} + i]
    bins = np.searchsorted(np.quantile(column, np.linspace(0, 1, count + 1)[1:-1]), column)
    columns[f"c{{i}}"] = np.array([f"k{{b:03d}}" for b in range(count)], dtype=object)[bins]
csv.write_csv(pa.table({{**columns, "late": np.where(labels == 1, "yes", "no")}}), "data/raw/dataset.csv")
"""


def set_forest(project: Path, forest: dict) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["target"] = "late"
    params["train"]["estimator"] = "random_forest"
    params["train"]["random_forest"] = {"n_estimators": params["train"]["random_forest"]["n_estimators"], **forest}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    args = parser.parse_args()
    results, found = Results(__spec__.name), {}
    with tempfile.TemporaryDirectory(prefix="bench-forest-size-") as workdir:
        project = bake_defaults(Path(workdir))
        env, package = project_env(project), package_name(project)
        baked = yaml.safe_load((project / "params.yaml").read_text())["train"]["random_forest"]
        generate = GENERATE.format(
            rows=ROWS, numbers=NUMBERS, noise=LABEL_NOISE, categorical=len(CATEGORIES), categories=CATEGORIES
        )
        run(["python", "-c", generate], project, env)
        run(["dvc", "add", "--quiet", "data/raw/dataset.csv"], project, env)
        set_forest(project, SETTINGS[args.settings[0]])
        run(["dvc", "repro", "--quiet", "prepare"], project, env)
        with open(project / "data/raw/dataset.csv") as raw:
            (project / "rows.csv").write_text("".join(raw.readline() for _ in range(5)))
        for name in args.settings:
            print(f"{name} ...", file=sys.stderr)
            set_forest(project, SETTINGS[name])
            train = measured(["dvc", "repro", "--single-item", "train"], project, env)
            evaluate = measured(["dvc", "repro", "--single-item", "evaluate"], project, env)
            predict = measured(["python", "-m", f"{package}.predict", "rows.csv"], project, env)
            metrics = json.loads((project / "reports/evaluation/metrics.json").read_text())
            size = (project / "models/model.skops").stat().st_size / 1e6
            found[name] = (size, metrics["balanced_accuracy"], metrics["baseline"]["balanced_accuracy"])
            found[name] += (train[0], train[1], evaluate[0], predict[0], predict[1])
            print(name, found[name], file=sys.stderr)
        sklearn = run(["python", "-c", "import sklearn; print(sklearn.__version__)"], project, env).stdout.strip()

    lines = [
        "| `train.random_forest` | model file (MB) | balanced accuracy | baseline | `train` (s) "
        "| `train` peak RSS (MB) "
        "| `evaluate` (s) | `predict` 4 rows (s) | `predict` peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (size, score, baseline, *measures) in found.items():
        seconds, peak, evaluate, predict, predict_peak = measures
        lines.append(
            f"| {name} | {size:.1f} | {score:.4f} | {baseline:.4f} | {seconds:.1f} | {peak:.0f} | {evaluate:.1f} "
            f"| {predict:.1f} | {predict_peak:.0f} |"
        )
    notes = [
        f"Data: {ROWS:,} generated rows (0.25 held out: 245,250 training rows), {NUMBERS - len(CATEGORIES)} numbers "
        f"and text categories of {', '.join(map(str, CATEGORIES))} values, {LABEL_NOISE:.0%} of labels drawn at random",
        f"Baked `train.random_forest`: {baked}; every setting keeps its n_estimators. Times and peaks: `dvc repro "
        "--single-item STAGE` (DVC and the stage; the largest RSS of its process tree), "
        "`python -m <package>.predict` on 4 raw rows",
    ]
    results.write(
        "Random forest: model size, memory and score by cap",
        {"Python": platform.python_version(), "scikit-learn": sklearn},
        notes,
        ["\n".join(lines)],
    )


if __name__ == "__main__":
    main()
