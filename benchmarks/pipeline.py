"""Benchmark the baked project's DVC pipeline against running its stages directly.

Run from the template root: `.venv/bin/python -m benchmarks.pipeline [--runs N]` (or `make bench`);
N is 3 by default (5 took over 6 minutes on a shared 2-CPU machine).

Method
------
1. Bake the default project with the real `cookiecutter --no-input` command into a temporary
   directory, with an isolated `--config-file` (as `bake_cli` in tests/conftest.py does).
2. Run every command in the project with this venv's `bin/` first on PATH, PYTHONPATH=<project>/src
   and DVC_NO_ANALYTICS=1 (plus ITERATIVE_DO_NOT_TRACK=1, so DVCLive makes no network call).
   Python's bytecode goes to a private PYTHONPYCACHEPREFIX in the temporary directory: the venv
   is installed without `.pyc` files and may not be written to, and without a bytecode cache every
   process would recompile scikit-learn, pandas and matplotlib from source (measured separately,
   as "no bytecode cache"). One untimed warm-up run fills that cache and the OS file cache.
3. Each of N iterations times, with wall-clock `time.perf_counter` around each process:
   (a) cold `dvc repro`: dvc.lock, data/prepared, models, reports, .dvc/cache/runs and every
       .dvc/cache/files entry except the raw dataset's are deleted first;
   (b) no-op `dvc repro`, right after (a);
   (d) the same stages as plain processes, `python -m <pkg>.prepare`, `.train`, `.evaluate`, each
       timed on its own, from deleted outputs;
   (c) `dvc repro` after setting train.random_forest.n_estimators to a fresh value, 100 + the
       iteration number: never run before in this benchmark, so the run-cache cannot restore it
       (the run-cache is therefore not cleared for (c); DVC's output confirms train reran);
   (d) its direct counterpart: `train` + `evaluate` with the same n_estimators value;
   and the start-up costs: `dvc --version`, the bare import of the heavy libraries, and
   `import <pkg>.<stage>` for each stage (its imports without its work, which is guarded by
   `if __name__ == "__main__"`); for the first 3 iterations also the bare import without a
   bytecode cache.
   Each DVC measurement runs right next to its direct counterpart, DVC first in odd iterations
   and second in even ones, so drift in machine load hits both equally; besides the ratio of
   medians, the median of these paired ratios is reported. DVC's output is checked so each
   measurement is known to have run (or skipped) the stages it claims to.
4. Report the median, min and max wall time of each measurement and its median CPU time (user +
   system of the process and everything it waited for, which other load on the machine disturbs
   far less than wall time), and ratios of medians, as markdown tables on stdout and in
   benchmarks/results.md. The targets are judged on wall time.
"""

import argparse
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import yaml

from harness.project import bake_cli
from harness.project import project_env as baked_project_env

RESULTS_FILE = Path(__file__).resolve().parent / "results.md"
STAGES = ("prepare", "train", "evaluate")
STAGE_OUTPUTS = ("data/prepared", "models", "reports")
HEAVY_IMPORTS = "import sklearn.ensemble, pandas, matplotlib.pyplot, dvclive"
BASE_N_ESTIMATORS = 100
# 5 runs took over 6 minutes on the shared 2-CPU machine this was written on, so 3 by default.
DEFAULT_RUNS = 3
UNCACHED_IMPORT_RUNS = 3  # the slow no-bytecode import is context only: at most this many samples
COLD_OVERHEAD_TARGET = 1.15  # cold `dvc repro` may take at most 15% longer than the direct stages
NO_OP_TARGET_SECONDS = 1.0

Samples = dict[str, list[float]]


# --- environment and commands -------------------------------------------------------------------


def project_env(project: Path, pycache: Path, write_bytecode: bool = True) -> dict[str, str]:
    """The tests' environment for a baked project, with a private bytecode cache."""
    env = baked_project_env(project, PYTHONPYCACHEPREFIX=str(pycache))
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a command; on failure, stop the benchmark with its output."""
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"`{shlex.join(args)}` exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system, the command and the processes it waited for) in
    seconds, and the command's combined output."""
    cpu_start, wall_start = children_cpu_seconds(), time.perf_counter()
    result = run(args, cwd, env)
    wall = time.perf_counter() - wall_start
    return wall, children_cpu_seconds() - cpu_start, result.stdout + result.stderr


def bake_default_project(workdir: Path, pycache: Path) -> Path:
    """Bake with the real `cookiecutter` command and an isolated config; return the project path."""
    output = workdir / "baked"
    output.mkdir()
    result = bake_cli(output, env=project_env(workdir, pycache))
    if result.returncode != 0:
        sys.exit(f"cookiecutter failed\n{result.stdout}\n{result.stderr}")
    (project,) = [path for path in output.iterdir() if (path / "dvc.yaml").is_file()]
    return project


def package_name(project: Path) -> str:
    (package,) = [path.name for path in (project / "src").iterdir() if (path / "__init__.py").is_file()]
    return package


# --- workspace state ----------------------------------------------------------------------------


def remove_stage_outputs(project: Path) -> None:
    """Delete what the stages write (not dvc.lock), so the direct run starts from nothing too."""
    for name in STAGE_OUTPUTS:
        shutil.rmtree(project / name, ignore_errors=True)


def reset_for_cold_dvc(project: Path, raw_cache_entry: Path) -> None:
    """Outputs, dvc.lock, the run-cache and every cached object except the raw dataset's go."""
    remove_stage_outputs(project)
    (project / "dvc.lock").unlink(missing_ok=True)
    shutil.rmtree(project / ".dvc/cache/runs", ignore_errors=True)
    for path in (project / ".dvc/cache/files").rglob("*"):
        if path.is_file() and path != raw_cache_entry:
            path.unlink()


def raw_data_cache_entry(project: Path) -> Path:
    """The DVC 3 cache path of data/raw/dataset.csv, read from its .dvc file."""
    md5 = yaml.safe_load((project / "data/raw/dataset.csv.dvc").read_text())["outs"][0]["md5"]
    return project / ".dvc/cache/files/md5" / md5[:2] / md5[2:]


def set_n_estimators(project: Path, base_params: str, value: int) -> None:
    """Write params.yaml as baked, with train.random_forest.n_estimators set to `value`."""
    text, count = re.subn(r"(?m)^(\s+n_estimators:\s*)\d+", rf"\g<1>{value}", base_params, count=1)
    if count != 1:
        sys.exit("params.yaml has no train.random_forest.n_estimators line to change")
    (project / "params.yaml").write_text(text)


def expect(output: str, ran: tuple[str, ...], skipped: tuple[str, ...], what: str) -> None:
    """Stop if DVC did not run (and skip) exactly the stages this measurement is about."""
    problems = [f"stage {s} did not run" for s in ran if f"Running stage '{s}'" not in output]
    problems += [f"stage {s} was not skipped" for s in skipped if f"Stage '{s}' didn't change" not in output]
    if "Restored stage" in output:
        problems.append("a stage was restored from the run-cache")
    if problems:
        sys.exit(f"{what}: {'; '.join(problems)}\n{output}")


# --- one iteration ------------------------------------------------------------------------------


class Bench:
    """A baked project and the measurements taken in it."""

    def __init__(self, project: Path, pycache: Path):
        self.project = project
        self.pycache = pycache
        self.env = project_env(project, pycache)
        self.package = package_name(project)
        self.base_params = (project / "params.yaml").read_text()
        self.raw_cache_entry = raw_data_cache_entry(project)
        self.wall: Samples = defaultdict(list)
        self.cpu: Samples = defaultdict(list)

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name].append(wall)
        self.cpu[name].append(cpu)

    def record(self, name: str, args: list[str], env: dict[str, str] | None = None) -> str:
        wall, cpu, output = timed(args, self.project, env or self.env)
        self.add(name, wall, cpu)
        return output

    def dvc_repro(self, name: str) -> str:
        return self.record(name, ["dvc", "repro"])

    def direct_stages(self, stages: tuple[str, ...], total_name: str, per_stage: bool) -> None:
        """Run stages as separate `python -m` processes, stopping at the first failure (like `&&`)."""
        total_wall = total_cpu = 0.0
        for stage in stages:
            wall, cpu, _ = timed(["python", "-m", f"{self.package}.{stage}"], self.project, self.env)
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu
            if per_stage:
                self.add(f"direct {stage}", wall, cpu)
        self.add(total_name, total_wall, total_cpu)

    def restore_params(self, n_estimators: int = BASE_N_ESTIMATORS) -> None:
        set_n_estimators(self.project, self.base_params, n_estimators)

    def cold_and_no_op_dvc(self) -> None:
        """(a) cold `dvc repro`, then (b) a no-op one right after it."""
        self.restore_params()
        reset_for_cold_dvc(self.project, self.raw_cache_entry)
        expect(self.dvc_repro("dvc cold"), STAGES, (), "cold dvc repro")
        expect(self.dvc_repro("dvc no-op"), (), STAGES, "no-op dvc repro")

    def direct_all(self) -> None:
        """(d) the three stages as plain processes, from no outputs (dvc.lock is left alone)."""
        self.restore_params()
        remove_stage_outputs(self.project)
        self.direct_stages(STAGES, "direct all", per_stage=True)

    def param_change_dvc(self, n_estimators: int) -> None:
        """(c) `dvc repro` after an n_estimators change: prepare is skipped, train and evaluate rerun.

        dvc.lock is the one the cold run wrote; a direct run in between regenerates data/prepared
        byte for byte, so DVC still skips prepare (checked by `expect`).
        """
        self.restore_params(n_estimators)
        output = self.dvc_repro("dvc param change")
        expect(output, ("train", "evaluate"), ("prepare",), "param-change dvc repro")

    def param_change_direct(self, n_estimators: int) -> None:
        """(d) the direct counterpart of (c): train and evaluate with the same n_estimators."""
        self.restore_params(n_estimators)
        self.direct_stages(("train", "evaluate"), "direct train+evaluate", per_stage=False)

    def startup_costs(self, number: int) -> None:
        self.record("dvc --version", ["dvc", "--version"])
        self.record("import", ["python", "-c", HEAVY_IMPORTS])
        for stage in STAGES:  # the stage module's imports alone: its work is guarded by __name__
            self.record(f"import {stage}", ["python", "-c", f"import {self.package}.{stage}"])
        if number <= UNCACHED_IMPORT_RUNS:
            # A cache directory that is never written to: every module is compiled from source.
            uncached = project_env(self.project, self.pycache.with_name("no-pycache"), write_bytecode=False)
            self.record("import, no bytecode cache", ["python", "-c", HEAVY_IMPORTS], env=uncached)

    def iteration(self, number: int) -> None:
        """Each DVC measurement next to its direct counterpart, DVC first in odd iterations only."""
        n_estimators = BASE_N_ESTIMATORS + number  # fresh each iteration: no run-cache hit possible
        pairs: list[tuple[Callable[[], None], Callable[[], None]]] = [
            (self.cold_and_no_op_dvc, self.direct_all),
            (partial(self.param_change_dvc, n_estimators), partial(self.param_change_direct, n_estimators)),
        ]
        for dvc, direct in pairs:
            for measure in (dvc, direct) if number % 2 else (direct, dvc):
                measure()
        self.startup_costs(number)

    def warm_up(self) -> None:
        """One untimed DVC and direct run: fills the bytecode cache and the OS file cache."""
        reset_for_cold_dvc(self.project, self.raw_cache_entry)
        run(["dvc", "repro"], self.project, self.env)
        for stage in STAGES:
            run(["python", "-m", f"{self.package}.{stage}"], self.project, self.env)
        run(["python", "-c", HEAVY_IMPORTS], self.project, self.env)


# --- report -------------------------------------------------------------------------------------

ROWS = [
    ("dvc cold", "(a) cold `dvc repro` (3 stages)"),
    ("direct all", "(d) direct prepare + train + evaluate"),
    ("dvc no-op", "(b) no-op `dvc repro`"),
    ("dvc param change", "(c) `dvc repro` after n_estimators change (train + evaluate)"),
    ("direct train+evaluate", "(d) direct train + evaluate"),
    ("direct prepare", "direct `prepare`"),
    ("direct train", "direct `train`"),
    ("direct evaluate", "direct `evaluate`"),
    ("dvc --version", "`dvc --version` (DVC CLI start-up)"),
    ("import", f'`python -c "{HEAVY_IMPORTS}"`'),
    ("import prepare", '`python -c "import <pkg>.prepare"` (the stage\'s imports only)'),
    ("import train", '`python -c "import <pkg>.train"`'),
    ("import evaluate", '`python -c "import <pkg>.evaluate"`'),
    ("import, no bytecode cache", "same import, no bytecode cache (compiled from source)"),
]


def median(samples: Samples, name: str) -> float:
    return statistics.median(samples[name])


def measurement_table(wall: Samples, cpu: Samples) -> str:
    lines = [
        "| Measurement | wall median (s) | wall min (s) | wall max (s) | CPU median (s) | runs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in ROWS:
        values = wall[name]
        lines.append(
            f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} "
            f"| {median(cpu, name):.2f} | {len(values)} |"
        )
    return "\n".join(lines)


def paired_ratio(samples: Samples, dvc: str, direct: str) -> float:
    """Median over iterations of DVC time / direct time measured next to it (robust to drift)."""
    return statistics.median(a / b for a, b in zip(samples[dvc], samples[direct], strict=True))


def verdict(met: bool) -> str:
    return "yes" if met else "no"


def ratio_table(wall: Samples, cpu: Samples) -> str:
    """Wall-time ratios decide the targets; CPU-time ratios are less disturbed by other load."""
    lines = [
        "| Comparison (wall time unless noted) | ratio of medians | median of paired ratios "
        "| difference of medians | CPU-time ratio of medians | target | met |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for label, dvc, direct, target in [
        ("cold DVC / direct", "dvc cold", "direct all", COLD_OVERHEAD_TARGET),
        ("param-change DVC / direct train + evaluate", "dvc param change", "direct train+evaluate", None),
    ]:
        ratio = median(wall, dvc) / median(wall, direct)
        target_cells = f"≤ {target:.2f} | {verdict(ratio <= target)}" if target else "– | –"
        lines.append(
            f"| {label} | {ratio:.2f} | {paired_ratio(wall, dvc, direct):.2f} "
            f"| {median(wall, dvc) - median(wall, direct):+.2f} s | {median(cpu, dvc) / median(cpu, direct):.2f} "
            f"| {target_cells} |"
        )
    no_op = median(wall, "dvc no-op")
    lines.append(
        f"| no-op `dvc repro` (absolute) | – | – | {no_op:.2f} s | – "
        f"| < {NO_OP_TARGET_SECONDS:.0f} s | {verdict(no_op < NO_OP_TARGET_SECONDS)} |"
    )
    return "\n".join(lines)


def stage_summary(wall: Samples, cpu: Samples) -> str:
    """Which stage dominates, and how much of each stage is only importing its libraries."""
    stages = {stage: median(wall, f"direct {stage}") for stage in STAGES}
    slowest = max(stages, key=stages.get)
    parts = "; ".join(
        f"{stage} {seconds:.2f} s wall, {median(cpu, f'direct {stage}'):.2f} s CPU "
        f"(its imports alone: {median(wall, f'import {stage}'):.2f} s wall, {median(cpu, f'import {stage}'):.2f} s CPU)"
        for stage, seconds in stages.items()
    )
    return (
        f"Direct stage medians: {parts}. `{slowest}` dominates "
        f"({stages[slowest] / sum(stages.values()):.0%} of the direct pipeline's wall time). "
        f"The bare import of sklearn.ensemble, pandas, matplotlib.pyplot and dvclive takes "
        f"{median(wall, 'import'):.2f} s ({median(wall, 'import, no bytecode cache'):.2f} s without a "
        f"bytecode cache); `dvc --version` takes {median(wall, 'dvc --version'):.2f} s."
    )


def report(wall: Samples, cpu: Samples, runs: int, machine: dict[str, str], elapsed: float) -> str:
    header = "\n".join(
        [
            "# Pipeline benchmark: `dvc repro` vs. running the stages directly",
            "",
            f"- Date: {machine['date']}",
            f"- Machine: `nproc` = {machine['nproc']}, load average at start {machine['load_start']}, "
            f"at end {machine['load_end']}",
            f"- Python {machine['python']}, DVC {machine['dvc']}",
            f"- Command: `{machine['command']}` ({runs} run(s) of each measurement, {elapsed / 60:.1f} min in total)",
            "- Project: the default bake (breast_cancer, random forest); bytecode cache warmed first.",
            "- (c) sets n_estimators to a fresh value each run (101, 102, ...), so the run-cache never "
            "restores it; the run-cache is not cleared for (c).",
            "- DVC and direct runs are interleaved pairwise, DVC first in odd runs, second in even ones.",
        ]
    )
    tables = [measurement_table(wall, cpu), ratio_table(wall, cpu), stage_summary(wall, cpu)]
    return "\n\n".join([header, *tables]) + "\n"


def machine_info(project: Path, env: dict[str, str]) -> dict[str, str]:
    return {
        "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": run(["nproc"], project, env).stdout.strip(),
        "python": platform.python_version(),
        "dvc": run(["dvc", "--version"], project, env).stdout.strip(),
        "command": shlex.join([os.path.relpath(sys.executable, Path.cwd()), "-m", __spec__.name, *sys.argv[1:]]),
        "load_start": load_average(),
    }


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help=f"runs of each measurement ({DEFAULT_RUNS})")
    runs = parser.parse_args().runs
    if runs < 1:
        parser.error("--runs must be at least 1")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        workdir = Path(tmp)
        pycache = workdir / "pycache"
        print(f"baking the default project into {workdir} ...", file=sys.stderr)
        bench = Bench(bake_default_project(workdir, pycache), pycache)
        machine = machine_info(bench.project, bench.env)
        print("warming up (untimed) ...", file=sys.stderr)
        bench.warm_up()
        for number in range(1, runs + 1):
            print(f"run {number}/{runs} ...", file=sys.stderr)
            bench.iteration(number)
    machine["load_end"] = load_average()

    text = report(bench.wall, bench.cpu, runs, machine, time.perf_counter() - started)
    print(text)
    RESULTS_FILE.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
