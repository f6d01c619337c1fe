"""Which estimator should be the default: what does each score, and what does it cost?

Bakes a project per bundled dataset (breast_cancer, penguins, wine, digits) and one whose raw data
is generated: 300,000 rows x 30 features, 6 of them text categories, 5% of the values missing.
For each, after one untimed `dvc repro`, every run takes the three estimators in turn, each with
its baked hyper-parameters and from no outputs, no dvc.lock, no run-cache:
  - a cold `dvc repro` (wall time), then the test-set scores from metrics.json: balanced
    accuracy, accuracy, and the baseline's balanced accuracy;
  - the `train` stage again, on its own: `dvc repro --single-item --force train`.
N runs of each on the bundled data (3 by default), M on the generated data (1 by default).

    .venv/bin/python -m benchmarks.estimators [--runs N] [--large-runs M]
"""

import argparse
import json
import platform
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.data_size import cached_files, measured
from benchmarks.measure import Results, remove_outputs
from harness.project import CommandFailed, bake_defaults, project_env, ran_stages, run, use_generated_data

DATASETS = ["breast_cancer", "penguins", "wine", "digits"]
ESTIMATORS = ["hist_gradient_boosting", "random_forest", "linear"]
LARGE, LARGE_ROWS, LARGE_FEATURES, LARGE_CATEGORICAL, LARGE_MISSING = "generated 300k", 300_000, 30, 6, 0.05
STAGES = ["prepare", "train", "evaluate"]


class Project:
    """A baked project, its data in the cache, and the timed commands run in it."""

    def __init__(self, path: Path, generated: bool = False):
        self.path, self.env = path, project_env(path)
        if generated:
            use_generated_data(path, LARGE_ROWS, LARGE_FEATURES, categorical=LARGE_CATEGORICAL, missing=LARGE_MISSING)
        self.data_cache = cached_files(path)

    def use_estimator(self, name: str) -> None:
        params = self.path / "params.yaml"
        params.write_text(re.sub(r"^(  estimator: )\w+", rf"\g<1>{name}", params.read_text(), count=1, flags=re.M))

    def forget_results(self) -> None:
        """No outputs, no dvc.lock, no run-cache, nothing cached since the data."""
        remove_outputs(self.path)
        (self.path / "dvc.lock").unlink(missing_ok=True)
        shutil.rmtree(self.path / ".dvc" / "cache" / "runs", ignore_errors=True)
        for path in cached_files(self.path) - self.data_cache:
            path.unlink()

    def repro(self, *args: str) -> float:
        seconds, _, output = measured(["dvc", "repro", *args], self.path, self.env)
        expected = [args[-1]] if args else STAGES
        if ran_stages(output) != expected:
            raise CommandFailed(f"dvc repro {' '.join(args)} should have run {expected}\n{output}")
        return seconds

    def measure(self, estimator: str) -> dict:
        self.use_estimator(estimator)
        self.forget_results()
        repro = self.repro()
        metrics = json.loads((self.path / "reports/evaluation/metrics.json").read_text())
        train = self.repro("--single-item", "--force", "train")  # dvc.lock and the cache hold its model
        scores = (metrics["balanced_accuracy"], metrics["accuracy"], metrics["baseline"]["balanced_accuracy"])
        return {"scores": scores, "train": train, "repro": repro}


def table(samples: dict[tuple[str, str], list[dict]]) -> str:
    lines = [
        "| dataset | estimator | balanced accuracy | accuracy | baseline balanced accuracy "
        "| train (s), median | repro (s), median | runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (dataset, estimator), runs in samples.items():
        balanced, accuracy, baseline = runs[-1]["scores"]
        if any(run["scores"] != runs[-1]["scores"] for run in runs):
            balanced, accuracy = f"{balanced:.4f} (varies)", f"{accuracy:.4f} (varies)"
        else:
            balanced, accuracy = f"{balanced:.4f}", f"{accuracy:.4f}"
        train, repro = (statistics.median(run[key] for run in runs) for key in ("train", "repro"))
        lines.append(
            f"| {dataset} | {estimator} | {balanced} | {accuracy} | {baseline:.4f} "
            f"| {train:.2f} | {repro:.2f} | {len(runs)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs on each bundled dataset (3)")
    parser.add_argument("--large-runs", type=int, default=1, help="runs on the generated 300k rows (1)")
    args = parser.parse_args()
    results, samples = Results(__spec__.name), {}
    with tempfile.TemporaryDirectory(prefix="bench-estimators-") as workdir:
        projects = {}
        for dataset in [*DATASETS, LARGE]:  # all baked first: others edit the template while this runs
            print(f"{dataset}: baking ...", file=sys.stderr)
            answers = [f"dataset={dataset}"] if dataset != LARGE else []
            (Path(workdir) / dataset).mkdir()
            projects[dataset] = Project(bake_defaults(Path(workdir) / dataset, *answers), generated=dataset == LARGE)
        for dataset, project in projects.items():
            bundled = dataset != LARGE
            project.forget_results()
            project.repro()  # untimed: the OS file cache, the project's bytecode
            runs = args.runs if bundled else args.large_runs
            for number in range(1, runs + 1):
                for estimator in ESTIMATORS:
                    print(f"{dataset}: run {number}/{runs}, {estimator} ...", file=sys.stderr)
                    samples.setdefault((dataset, estimator), []).append(project.measure(estimator))
        dvc_version = run(["dvc", "--version"], project.path, project.env).stdout.strip()
        sklearn_version = run(["python", "-c", "import sklearn; print(sklearn.__version__)"], project.path).stdout

    notes = [
        "Projects: one bake per bundled dataset (`dataset=NAME`); the generated data (`use_generated_data`: "
        f"`make_classification`, {LARGE_ROWS:,} rows x {LARGE_FEATURES} features, {LARGE_CATEGORICAL} of them "
        f"text categories, {LARGE_MISSING:.0%} missing, 2 classes) replaces the default bake's. Each estimator "
        "with its baked hyper-parameters; only `train.estimator` changes.",
        "Scores: the test set's, from metrics.json (the last run's; `(varies)` if runs disagreed); the baseline "
        "always predicts the most frequent training class.",
        "repro: a cold `dvc repro` (no outputs, no dvc.lock, no run-cache). train: right after it, "
        "`dvc repro --single-item --force train` (forced: dvc.lock and the cache already hold its model): the "
        "stage's process (imports, reading the prepared data, fit, saving the model) plus DVC's own second or so.",
        "All five projects are baked first, from the template as it was at the start. Each run takes the three "
        "estimators in turn, so drift in the machine's load hits all three; one untimed `dvc repro` per project first.",
    ]
    versions = {"Python": platform.python_version(), "DVC": dvc_version, "scikit-learn": sklearn_version.strip()}
    results.write("Which estimator as the default", versions, notes, [table(samples)])


if __name__ == "__main__":
    main()
