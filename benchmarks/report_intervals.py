"""What do the verdict's intervals cost the merge-request report on a large test set?

Bakes the default project, replaces its data by 1,000,000 generated rows (20 numeric columns, 2
classes; `prepare.test_size` 0.25: 250,000 test rows), commits the first model (the report's
base), then trains a change (`learning_rate` 0.05). The report of that change against its base
runs N times (3 by default) in one invocation, taking turns with the report as it was before
the intervals (the package of --before, 58956f6 by default, as the package `before` beside the
baked one, on the same outputs): wall time and peak RSS of the `report` command (its process
tree), and of the report job's three commands (`dvc params diff`, `dvc metrics diff`, `report`).
Also the predictions file's size per 100,000 test rows: this run's (2 classes) and files written
for 10 classes and for a regression. Targets: the report at most 1.5x before (the 2.1 s of
`data_size_results.md` was the three commands), its peak RSS under 1 GB.

    .venv/bin/python -m benchmarks.report_intervals [--runs N] [--before REV]
"""

import argparse
import platform
import sys
import tempfile
from pathlib import Path

from benchmarks.data_size import Samples, measured
from benchmarks.measure import Results, comparison_table
from harness.project import (
    TEMPLATE,
    bake_defaults,
    commit_first_model,
    package_name,
    project_env,
    run,
    set_params,
    use_generated_data,
)

ROWS, TEST_SIZE, BEFORE = 1_000_000, 0.25, "58956f6"
RATIO_TARGET, RSS_TARGET_MB = 1.5, 1024
PACKAGE_SOURCE = "{{cookiecutter.project_slug}}/src/{{cookiecutter.package_name}}"
SIZES = """
import numpy as np
from {package}.compare import write_predictions
rng = np.random.default_rng(0)
n = 100_000
names = [str(k) for k in range(10)]
p = rng.dirichlet(np.ones(10), n)
write_predictions("ten.parquet", "x", np.array(names)[rng.integers(0, 10, n)], np.array(names)[p.argmax(1)], p, names)
values = rng.normal(size=n) * 1000
write_predictions("regression.parquet", "x", values, values + rng.normal(size=n) * 100)
"""


def prepare_project(workdir: Path, before: str) -> tuple[Path, dict]:
    """The baked project with its base committed and the change trained; the package as it was at
    `before` beside today's, as the package `before`."""
    project = bake_defaults(workdir)
    env = project_env(project)
    print("generating and training the base ...", file=sys.stderr)
    use_generated_data(project, ROWS, features=20)
    set_params(project, **{"prepare.test_size": TEST_SIZE})
    commit_first_model(project, env, "The base: 1,000,000 generated rows")
    print("training the change ...", file=sys.stderr)
    set_params(project, **{"train.hist_gradient_boosting.learning_rate": 0.05})
    run(["dvc", "repro", "--quiet"], project, env)
    listed = run(["git", "ls-tree", "--name-only", f"{before}:{PACKAGE_SOURCE}"], TEMPLATE).stdout.split()
    (project / "src" / "before").mkdir()
    for name in listed:
        old = run(["git", "show", f"{before}:{PACKAGE_SOURCE}/{name}"], TEMPLATE).stdout
        (project / "src" / "before" / name).write_text(old.replace("{{cookiecutter.package_name}}", "before"))
    return project, env


def report_commands(package: str, output: str) -> list[list[str]]:
    return [
        ["dvc", "params", "diff", "HEAD", "--md", "--no-path"],
        ["dvc", "metrics", "diff", "HEAD", "--all", "--md", "--no-path", "--precision", "4"],
        ["python", "-m", f"{package}.report", "--base", "HEAD", "--output", output],
    ]


def measure_once(project: Path, env: dict, samples: Samples, package: str) -> None:
    output = project / f"out-{package}"
    output.mkdir(exist_ok=True)
    params, metrics, report = report_commands(package, output.name)
    total_seconds = total_peak = 0.0
    for command, name in ((params, "params.md"), (metrics, "metrics.md"), (report, None)):
        seconds, peak, text = measured(command, project, env)
        if name:
            (output / name).write_text(text)
        else:
            samples.add(package, "`report`", seconds, peak)
        total_seconds, total_peak = total_seconds + seconds, max(total_peak, peak)
    samples.add(package, "the report job's three commands", total_seconds, total_peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each report (3)")
    parser.add_argument("--before", default=BEFORE, help=f"template commit of the report before ({BEFORE})")
    args = parser.parse_args()
    results, samples = Results(__spec__.name), Samples()
    with tempfile.TemporaryDirectory(prefix="bench-report-intervals-") as workdir:
        project, env = prepare_project(Path(workdir), args.before)
        packages = ("before", package_name(project))
        for package in packages:  # untimed: the OS file cache, bytecode
            measure_once(project, env, Samples(), package)
        for number in range(1, args.runs + 1):
            print(f"run {number}/{args.runs} ...", file=sys.stderr)
            for package in packages if number % 2 else packages[::-1]:
                measure_once(project, env, samples, package)
        first_line = (project / f"out-{packages[1]}" / "report.md").read_text().split("\n\n")[1]
        predictions = project / "reports/evaluation/predictions.parquet"
        run(["python", "-c", SIZES.format(package=package_name(project))], project, env)
        sizes = {
            "2 classes (this run's, float32 probabilities)": predictions.stat().st_size / (ROWS * TEST_SIZE / 1e5),
            "10 classes (generated)": (project / "ten.parquet").stat().st_size,
            "regression (generated)": (project / "regression.parquet").stat().st_size,
        }
        dvc_version = run(["dvc", "--version"], project, env).stdout.strip()

    table = samples.table().replace("| before |", f"| before ({args.before}) |")
    table = table.replace(f"| {packages[1]} |", "| with intervals |")
    ratio = samples.seconds(packages[1], "`report`") / samples.seconds("before", "`report`")
    job = "the report job's three commands"
    job_ratio = samples.seconds(packages[1], job) / samples.seconds("before", job)
    peak = samples.peak(packages[1], "`report`")
    checks = comparison_table(
        [
            ("`report` with intervals / before", f"{ratio:.2f}", f"≤ {RATIO_TARGET}", ratio <= RATIO_TARGET),
            ("the report job's three commands, with / before", f"{job_ratio:.2f}", "", None),
            ("`report` peak RSS with intervals", f"{peak:.0f} MB", f"< {RSS_TARGET_MB} MB", peak < RSS_TARGET_MB),
        ]
    )
    size_lines = ["| predictions file | KB per 100,000 test rows |", "|---|---:|"]
    size_lines += [f"| {name} | {size / 1024:.0f} |" for name, size in sizes.items()]
    notes = [
        f"Project: the default bake, {ROWS:,} generated rows (`make_classification`, 20 numeric columns, 2 "
        f"classes), `prepare.test_size` {TEST_SIZE}: {int(ROWS * TEST_SIZE):,} test rows; the base commit's model "
        "against a change of `learning_rate` (0.1 to 0.05), both in the local DVC cache.",
        "Before: the template's package at that commit (its report: DVC's metrics table, no intervals), installed "
        "beside the baked one and run on the same outputs. Peak RSS is the largest of its process tree. "
        "Runs take turns.",
        f"The report's first sentence in the last run: {first_line}",
    ]
    versions = {"Python": platform.python_version(), "DVC": dvc_version}
    results.write(
        "The report's intervals on 250,000 test rows", versions, notes, [table, checks, "\n".join(size_lines)]
    )


if __name__ == "__main__":
    main()
