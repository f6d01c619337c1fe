"""What does DVC cost on top of the stages' own work?

Bakes the default project and times, N runs each (3 by default): a cold `dvc repro` against the three
stages run directly (their `cmd:` lines in dvc.yaml, PYTHONPATH=src), a no-op `dvc repro`, and
`dvc repro` after a training-parameter change against `train` + `evaluate` run directly. DVC and
direct runs alternate, DVC first in odd runs, so drift in the machine's load hits both. Targets:
cold DVC / direct at most 1.15, a no-op under 1 s.

With `--template-commit REV`, also each stage's `cmd:` line run directly on every bundled dataset,
baked from the template at REV (before) and from the working tree (after), taking turns: no stage
should be slower after.

    .venv/bin/python -m benchmarks.pipeline [--runs N] [--template-commit REV] [--datasets NAME ...]
"""

import argparse
import platform
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.ci_pipeline import bake, template_at
from benchmarks.measure import Results, Timings, comparison_table, remove_outputs
from harness.project import TEMPLATE, CommandFailed, bake_cli, baked_project, project_env, ran_stages, run

STAGES = ["prepare", "train", "evaluate"]
# max_leaf_nodes as baked. Changed to more, on breast_cancer (its trees stop at 20 leaves), it grows
# the same trees: a change that retrains at the default's cost.
BASE_LEAVES = 31
COLD_TARGET, NO_OP_TARGET = 1.15, 1.0
COLD_DVC, COLD_DIRECT = "cold `dvc repro` (3 stages)", "the 3 stages run directly"
NO_OP = "no-op `dvc repro`"
CHANGE_DVC, CHANGE_DIRECT = "`dvc repro` after a max_leaf_nodes change", "`train` + `evaluate` run directly"
DATASETS = ["breast_cancer", "penguins", "wine", "digits"]


class Project:
    """The baked project, and the commands each measurement runs in it."""

    def __init__(self, path: Path):
        self.path = path
        self.env = project_env(path)
        self.params = (path / "params.yaml").read_text()
        self.baked_cache = cached_files(path)

    def set_leaves(self, count: int) -> None:
        (self.path / "params.yaml").write_text(re.sub(r"max_leaf_nodes: \d+", f"max_leaf_nodes: {count}", self.params))

    def dvc_repro(self, expected_stages: list[str]) -> None:
        """Stops the benchmark unless DVC ran exactly these stages (none restored from the run-cache)."""
        result = run(["dvc", "repro"], self.path, self.env)
        if ran_stages(result.stdout + result.stderr) != expected_stages:
            raise CommandFailed(f"dvc repro should have run {expected_stages}\n{result.stdout}\n{result.stderr}")

    def direct(self, stages: list[str]) -> None:
        """The stages' `cmd:` lines of dvc.yaml, run one after the other without DVC."""
        commands = yaml_stages(self.path)
        for stage in stages:
            run(shlex.split(commands[stage]["cmd"]), self.path, self.env)

    def remove_outputs(self) -> None:
        remove_outputs(self.path)

    def forget_results(self) -> None:
        """Back to the state as baked: no outputs, no dvc.lock, nothing cached but the raw data."""
        self.remove_outputs()
        (self.path / "dvc.lock").unlink(missing_ok=True)
        # The run-cache goes as a whole: DVC fails on a run's folder left empty.
        shutil.rmtree(self.path / ".dvc" / "cache" / "runs", ignore_errors=True)
        for path in cached_files(self.path) - self.baked_cache:
            path.unlink()


def cached_files(project: Path) -> set[Path]:
    return {path for path in (project / ".dvc" / "cache").rglob("*") if path.is_file()}


def measure_once(project: Project, timings: Timings, run_number: int) -> None:
    fresh_leaves = BASE_LEAVES + run_number  # no run used it before, so the run-cache cannot restore it

    def cold_dvc() -> None:
        project.forget_results()
        project.set_leaves(BASE_LEAVES)
        timings.time(COLD_DVC, lambda: project.dvc_repro(STAGES))
        timings.time(NO_OP, lambda: project.dvc_repro([]))

    def cold_direct() -> None:
        project.remove_outputs()
        project.set_leaves(BASE_LEAVES)
        timings.time(COLD_DIRECT, lambda: project.direct(STAGES))

    # DVC skips `prepare` here even after a direct run: that rewrites data/prepared byte for byte.
    def change_dvc() -> None:
        project.set_leaves(fresh_leaves)
        timings.time(CHANGE_DVC, lambda: project.dvc_repro(["train", "evaluate"]))

    def change_direct() -> None:
        project.set_leaves(fresh_leaves)
        timings.time(CHANGE_DIRECT, lambda: project.direct(["train", "evaluate"]))

    for dvc, direct in ((cold_dvc, cold_direct), (change_dvc, change_direct)):
        for measure in (dvc, direct) if run_number % 2 else (direct, dvc):
            measure()


def stage_by_stage(workdir: Path, commit: str, datasets: list[str], runs: int) -> str:
    """Each stage's `cmd:` line, run directly, before (the template at `commit`) and after (the
    working tree) on each dataset: a table of medians and after / before."""
    templates = {"before": template_at(commit, workdir / "template-before"), "after": TEMPLATE}
    seconds: dict[tuple[str, str, str], list[float]] = {}
    for dataset in datasets:
        projects = {
            version: bake(workdir / f"{version}-{dataset}", template, f"dataset={dataset}")
            for version, template in templates.items()
        }
        for number in range(runs + 1):  # the first untimed: the OS file cache, the projects' bytecode
            print(f"stage by stage, {dataset}: run {number}/{runs} ...", file=sys.stderr)
            for version in list(projects)[:: 1 if number % 2 else -1]:
                project, env = projects[version], project_env(projects[version])
                remove_outputs(project)
                stages = yaml_stages(project)
                for stage in STAGES:
                    started = time.perf_counter()
                    run(shlex.split(stages[stage]["cmd"]), project, env)
                    if number:
                        seconds.setdefault((dataset, stage, version), []).append(time.perf_counter() - started)
    lines = [
        f"Each stage's `cmd:` line run directly, before (template {commit}) and after (this working tree), "
        f"taking turns; medians of {runs} runs after one untimed:",
        "",
        "| dataset | stage | before (s) | after (s) | after / before |",
        "|---|---|---:|---:|---:|",
    ]
    for dataset in datasets:
        for stage in STAGES:
            before, after = (statistics.median(seconds[dataset, stage, v]) for v in ("before", "after"))
            lines.append(f"| {dataset} | `{stage}` | {before:.2f} | {after:.2f} | {after / before:.2f} |")
    return "\n".join(lines)


def yaml_stages(project: Path) -> dict:
    return yaml.safe_load((project / "dvc.yaml").read_text())["stages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (3)")
    parser.add_argument("--template-commit", default="", help="also time each stage against the template at REV")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=DATASETS, help="for --template-commit")
    args = parser.parse_args()
    runs = args.runs
    results, timings = Results(__spec__.name), Timings()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as workdir:
        baked = bake_cli(Path(workdir))
        if baked.returncode != 0:
            sys.exit(f"cookiecutter failed\n{baked.stdout}\n{baked.stderr}")
        project = Project(baked_project(Path(workdir)))
        print("warming up (untimed) ...", file=sys.stderr)  # the OS file cache, the project's bytecode
        project.dvc_repro(STAGES)
        project.direct(STAGES)
        for number in range(1, runs + 1):
            print(f"run {number}/{runs} ...", file=sys.stderr)
            measure_once(project, timings, number)
        dvc_version = run(["dvc", "--version"], project.path, project.env).stdout.strip()
        stage_table = (
            stage_by_stage(Path(workdir), args.template_commit, args.datasets, runs) if args.template_commit else ""
        )

    cold = timings.median(COLD_DVC) / timings.median(COLD_DIRECT)
    no_op = timings.median(NO_OP)
    change = timings.median(CHANGE_DVC) / timings.median(CHANGE_DIRECT)
    comparisons = comparison_table(
        [
            ("cold DVC / direct", f"{cold:.3f}", f"≤ {COLD_TARGET}", cold <= COLD_TARGET),
            ("no-op `dvc repro`", f"{no_op:.2f} s", f"< {NO_OP_TARGET:.0f} s", no_op < NO_OP_TARGET),
            ("after a max_leaf_nodes change: DVC / direct", f"{change:.3f}", "", None),
        ]
    )
    notes = [
        "Project: the default bake (breast_cancer, hist_gradient_boosting); one untimed DVC and direct run first.",
        f"DVC and direct runs alternate, DVC first in odd runs; the change sets max_leaf_nodes to "
        f"{BASE_LEAVES} + the run's number, a value no run used before (the trees stop at 20 leaves: "
        "the default's trees, retrained at its cost).",
    ]
    versions = {"Python": platform.python_version(), "DVC": dvc_version}
    sections = [timings.table(), comparisons, *([stage_table] if stage_table else [])]
    results.write("DVC's cost on top of the stages' own work", versions, notes, sections)


if __name__ == "__main__":
    main()
