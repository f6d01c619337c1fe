"""How long until the merge-request comment, and what is the time spent on?

A budget of the merge-request critical path, before (3 jobs: train, report, comment; the template
at --template-commit, 6a20f9e by default) and after (2 jobs: train, comment; the working tree),
for a cold pipeline (a new max_leaf_nodes: `train` and `evaluate` run; an empty uv cache) and an
all-restored one (the train job's dvc.lock commit: every stage from the run-cache; the uv cache
restored). Measured here:
- each job's commands under gitlab-ci-local (`--timestamps`: the time at each command), N runs of
  each of the four pipelines, the two templates taking turns (ci_pipeline.py's set-up and checks);
- a `git clone --depth 20` of the project (GitLab's default depth) from a local bare repository;
- `pip install uv==<pinned>` (the python image has no uv), `uv venv` + `uv pip install -r
  requirements.lock` into a fresh venv with an empty and with a filled UV_CACHE_DIR, and the uv
  cache's zip archive (GitLab's cache format): its size and the time to unzip it.
Estimated (not measurable here; sources and assumptions in the results file): runner start-up,
image pulls, the cache download. The sum is an estimated time to comment on GitLab.com's small
hosted runners (2 vCPU, like this machine). Target: all-restored after ≤ 1/2 of before.

And where a job's bytecode is best compiled: at install (UV_COMPILE_BYTECODE=1) or at first
import (`--bytecode-only` measures that alone).

    .venv/bin/python -m benchmarks.latency_budget [--runs N] [--template-commit REV] [--bytecode-only]
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

from benchmarks.ci_pipeline import COLD, RESTORED, Subject, checked_pipeline, merge_request, subjects_of, versions_of
from benchmarks.measure import Results, Timings, comparison_table, remove_outputs
from harness.gitlab import LocalGitLab, PipelineRun
from harness.project import TEMPLATE, VENV_BIN, bake_defaults, project_env, run
from harness.s3 import LocalS3

TARGET = 1 / 2
GIT_DEPTH = 20
# Estimates, each with its source (the results file repeats them).
RUNNER_START_S = 30.0
RUNNER_START_SOURCE = (
    "assumption: GitLab.com runs each job in a newly provisioned VM (docs.gitlab.com/ee/ci/runners/hosted_runners/); "
    "no published start-up figure was found, 30 s per job assumed"
)
PULL_MB_PER_S = 50.0  # compressed bytes per second, download + decompress + extract on 2 vCPU
PULL_SOURCE = "assumption: 50 MB/s of compressed layers (download, gunzip and extract on 2 vCPU), every job (a new VM)"
CACHE_MB_PER_S = 100.0
CACHE_SOURCE = "assumption: 100 MB/s from GitLab.com's cache bucket (GCS) to the runner VM"
IMAGES_MB = {
    "python:3.13": (
        412.9,
        "412.9 MB compressed, linux/amd64 (docker-library/repo-info, repos/python/remote/3.13.md, build of 2026-08-25)",
    ),
    "iterativeai/cml:0-dvc3-base1": (
        1000.0,
        "estimate ~1 GB compressed: no published figure found (Docker Hub is not reachable here); its Dockerfile "
        "(iterative/cml, Dockerfile at 04161c8) adds to Ubuntu 20.04 build-essential, golang-go, Node 16, "
        "terraform, python3-dev, the DVC 3 deb and cairo/pango -dev packages for vega-cli",
    ),
}
PYTHON_IMAGE, CML_IMAGE = IMAGES_MB

# Each command of a job, by what it does (the first pattern that matches).
CATEGORIES = [
    ("install (a no-op here: preinstalled venv)", r"uv pip install|command -v uv|VIRTUAL_ENV|source ci/pipeline\.sh"),
    ("dvc repro --pull (pull, run-cache or the stages)", r"dvc repro"),
    ("dvc push (outputs, run-cache)", r"dvc push"),
    ("commit the reproduced dvc.lock", r"dvc_lock"),
    (
        "diffs and report",
        r"report_base|params diff|metrics diff|\.report |PRODUCTION|production|mkdir -p report|test -f reports"
        r"|configure_remote|is_merge_request",
    ),
    ("posting (CML stand-in, report_comment.py)", r"cml|report_comment|skip_unless"),
    ("other commands", r"."),
]
SETUP = "workspace set-up (gitlab-ci-local: copy, artifacts)"
LINE = re.compile(r"^\[[\d:]+ +([\d.]+) (ms|s|m|min|h)\] (\S+) +(.*)$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


class TimestampedGitLab(LocalGitLab):
    """LocalGitLab whose gitlab-ci-local prints each line's time since its job started."""

    def env(self, rewrite: bool = True) -> dict[str, str]:
        env = super().env(rewrite)
        if not rewrite:
            env["GCL_TIMESTAMPS"] = "true"
        return env

    def pipeline(self, *jobs: str, **kwargs) -> PipelineRun:
        result = super().pipeline(*jobs, **kwargs)
        result.timestamped = result.output
        # The plain lines job_log and the checks expect: "<job> <text>".
        result.output = "\n".join(
            f"{match[3]} {match[4]}" if (match := LINE.match(line)) else line for line in result.output.splitlines()
        )
        return result


def job_steps(output: str, job: str) -> dict[str, float]:
    """Seconds per category of the job's commands, from gitlab-ci-local's --timestamps lines."""
    marks = []  # (seconds since the job started, command or None for the end)
    for line in output.splitlines():
        match = LINE.match(line)
        if not match or match[3] != job:
            continue
        seconds, text = float(match[1]) * UNITS[match[2]], match[4]
        if text.startswith("$ "):
            marks.append((seconds, text[2:]))
        elif text.startswith("finished in"):
            marks.append((seconds, None))
    steps = defaultdict(float)
    if not marks:
        return steps
    steps[SETUP] = marks[0][0]
    for (start, command), (end, _) in zip(marks, marks[1:], strict=False):
        category = next(name for name, pattern in CATEGORIES if re.search(pattern, command))
        steps[category] += end - start
    steps["job total"] = marks[-1][0]
    return steps


def timed(action, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return seconds


def du_mb(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 1e6


def measure_clone(subject: Subject, branch: str, runs: int, scratch: Path) -> tuple[list[float], float]:
    """`git clone --depth 20` of the branch from the project's bare repository; the clone's .git size."""
    url = f"file://{subject.gitlab.origin}"
    target = scratch / "clone"

    def clone():
        shutil.rmtree(target, ignore_errors=True)
        run(["git", "clone", "--quiet", f"--depth={GIT_DEPTH}", "--branch", branch, url, str(target)], scratch)

    seconds = timed(clone, runs)
    return seconds, du_mb(target / ".git")


def measure_installs(project: Path, runs: int, scratch: Path, uv_version: str) -> dict[str, object]:
    """pip install uv; uv venv + uv pip install from an empty and from a filled cache; the cache's zip."""
    env = {key: value for key, value in project_env(project).items() if key != "PYTHONPATH"}
    python = str(VENV_BIN / "python")
    uv = str(VENV_BIN / "uv")
    cache, venv, zipped = scratch / "uv-cache", scratch / "venv", scratch / "uv-cache.zip"

    def fresh_venv_with_pip():
        shutil.rmtree(venv, ignore_errors=True)
        run([python, "-m", "venv", str(venv)], project, env)

    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--no-cache-dir", f"uv=={uv_version}"]
    pip_uv = []
    for _ in range(runs):
        fresh_venv_with_pip()
        pip_uv += timed(lambda: run(pip, project, env), 1)

    def install(empty_cache: bool):
        if empty_cache:
            shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(venv, ignore_errors=True)
        install_env = {**env, "UV_CACHE_DIR": str(cache), "VIRTUAL_ENV": str(venv)}
        run([uv, "venv", "--quiet", "--python", python, str(venv)], project, install_env)
        run([uv, "pip", "install", "--quiet", "-r", "requirements.lock"], project, install_env)

    cold = [timed(lambda: install(True), 1)[0] for _ in range(runs)]
    warm = [timed(lambda: install(False), 1)[0] for _ in range(runs)]
    # GitLab Runner's cache archive is a zip of the cache paths (relative to the project).
    zipped.unlink(missing_ok=True)
    zip_seconds = timed(lambda: run(["zip", "-q", "-r", str(zipped), cache.name], scratch), 1)
    restored = scratch / "restored"

    def unzip():
        shutil.rmtree(restored, ignore_errors=True)
        run(["unzip", "-q", "-d", str(restored), str(zipped)], scratch)

    unzip_seconds = timed(unzip, runs)
    # What a test job that runs `uv cache prune --ci` uploads: only wheels built from source.
    pruned, pruned_zip = scratch / "uv-cache-pruned", scratch / "uv-cache-pruned.zip"
    shutil.rmtree(pruned, ignore_errors=True)
    shutil.copytree(cache, pruned, symlinks=True)
    run([uv, "cache", "prune", "--ci"], project, {**env, "UV_CACHE_DIR": str(pruned)})
    pruned_zip.unlink(missing_ok=True)
    run(["zip", "-q", "-r", str(pruned_zip), pruned.name], scratch)

    def unzip_pruned():
        shutil.rmtree(restored, ignore_errors=True)
        run(["unzip", "-q", "-d", str(restored), str(pruned_zip)], scratch)

    def install_pruned():
        shutil.rmtree(cache, ignore_errors=True)
        shutil.copytree(pruned, cache, symlinks=True)
        install(False)

    return {
        "pruned unzip": timed(unzip_pruned, runs),
        "pruned zip MB": pruned_zip.stat().st_size / 1e6,
        "install pruned": [timed(install_pruned, 1)[0] for _ in range(runs)],
        "pip install uv": pip_uv,
        "install cold": cold,
        "install warm": warm,
        "zip": zip_seconds,
        "unzip": unzip_seconds,
        "cache MB": du_mb(cache),
        "zip MB": zipped.stat().st_size / 1e6,
        "venv MB": du_mb(venv),
    }


BYTECODE_MODES = {"at install (UV_COMPILE_BYTECODE=1)": "1", "at first import": ""}
BYTECODE_STEPS = [
    "install",
    "first `dvc status`",
    "`dvc status` again",
    "first cold `dvc repro`",
    "cold `dvc repro` again",
]


def measure_bytecode(runs: int, scratch: Path) -> dict[tuple[str, str], list[float]]:
    """Bytecode compiled by `uv pip install` (UV_COMPILE_BYTECODE=1: every module of every
    package, on every core) or by Python when a module is first imported (only the modules a job
    imports, written beside them for the job's later processes). A CI job starts from a fresh venv,
    so either way it pays once per job. Per run and mode, taking turns: a fresh venv and the
    install from a filled uv cache, then in the default bake: `dvc status` twice (the all-restored
    train job's Python is DVC alone), then a cold `dvc repro` twice (a cold train job's stages)."""
    (scratch / "bytecode").mkdir()
    project = bake_defaults(scratch / "bytecode")
    uv, python = str(VENV_BIN / "uv"), str(VENV_BIN / "python")
    cache, venv = scratch / "bytecode-uv-cache", scratch / "bytecode-venv"
    base = {key: value for key, value in project_env(project).items() if key != "PYTHONPATH"}
    install_env = {**base, "UV_CACHE_DIR": str(cache), "VIRTUAL_ENV": str(venv)}
    job_env = {**project_env(project), "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{base['PATH']}"}

    def install(compile_bytecode: str) -> None:
        shutil.rmtree(venv, ignore_errors=True)
        run([uv, "venv", "--quiet", "--python", python, str(venv)], project, install_env)
        env = {**install_env, "UV_COMPILE_BYTECODE": compile_bytecode} if compile_bytecode else install_env
        run([uv, "pip", "install", "--quiet", "-r", "requirements.lock"], project, env)

    def cold_repro() -> None:
        remove_outputs(project)
        shutil.rmtree(project / ".dvc" / "cache" / "runs", ignore_errors=True)
        run(["dvc", "repro", "--quiet"], project, job_env)

    def status() -> None:
        run(["dvc", "status", "--quiet"], project, job_env, check=False)  # exit 1: changed stages

    install("")  # untimed: fills the uv cache, as a restored cache would be
    found: dict[tuple[str, str], list[float]] = defaultdict(list)
    for number in range(runs):
        modes = list(BYTECODE_MODES.items())
        for mode, value in modes if number % 2 == 0 else modes[::-1]:
            print(f"bytecode {mode}: run {number + 1}/{runs} ...", file=sys.stderr)
            actions = [lambda value=value: install(value), status, status, cold_repro, cold_repro]
            for step, action in zip(BYTECODE_STEPS, actions, strict=True):
                found[mode, step] += timed(action, 1)
    return found


def bytecode_table(found: dict[tuple[str, str], list[float]]) -> str:
    """Medians per step and mode, and what a job pays: all restored (install + DVC's first start)
    and cold (+ the first `dvc repro`)."""
    modes = list(BYTECODE_MODES)
    lines = ["| Step (in a fresh venv) | " + " | ".join(f"compiled {mode} (s)" for mode in modes) + " |"]
    lines.append("|---|" + "---:|" * len(modes))
    for step in BYTECODE_STEPS:
        lines.append(f"| {step} | " + " | ".join(f"{median(found[mode, step]):.2f}" for mode in modes) + " |")
    restored = {mode: median(found[mode, "install"]) + median(found[mode, "first `dvc status`"]) for mode in modes}
    cold = {mode: restored[mode] + median(found[mode, "first cold `dvc repro`"]) for mode in modes}
    lines.append(
        "| **all-restored job: install + first `dvc status`** | "
        + " | ".join(f"**{restored[m]:.2f}**" for m in modes)
        + " |"
    )
    lines.append(
        "| **cold job: install + first `dvc status` + first `dvc repro`** | "
        + " | ".join(f"**{cold[m]:.2f}**" for m in modes)
        + " |"
    )
    return "\n".join(lines)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (3)")
    parser.add_argument("--template-commit", default="6a20f9e", help="the 'before' template (6a20f9e: 3 jobs)")
    parser.add_argument("--dataset", default="breast_cancer")
    parser.add_argument(
        "--bytecode-only",
        action="store_true",
        help="only where a job's bytecode is compiled (writes latency_budget_bytecode_results.md)",
    )
    args = parser.parse_args()
    if args.bytecode_only:
        results = Results(f"{__spec__.name}_bytecode")
        with tempfile.TemporaryDirectory(prefix="bench-bytecode-") as workdir:
            table = bytecode_table(measure_bytecode(args.runs, Path(workdir)))
        versions = {"uv": run([str(VENV_BIN / "uv"), "--version"], TEMPLATE).stdout.split()[1]}
        results.write("Latency budget: bytecode at install or at first import", versions, [BYTECODE_NOTE], [table])
        return
    results, timings = Results(__spec__.name), Timings()
    # steps[(label, scenario)][job][category] = [seconds per run]
    steps = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as workdir, LocalS3() as endpoint, ExitStack() as stack:
        workdir = Path(workdir)
        print("setting up both projects and main's pipelines (untimed) ...", file=sys.stderr)
        subjects = subjects_of(stack, workdir, endpoint, args.dataset, args.template_commit, TimestampedGitLab)
        scenarios = {COLD: "cold", RESTORED: "all restored"}

        def timed_pipeline(subject: Subject, branch: str, name: str, expected: list[str]) -> None:
            if name not in scenarios:  # (3) is ci_pipeline's question, not the budget's
                return
            key = (subject.label, scenarios[name])
            result = checked_pipeline(subject, branch, expected, lambda action: timings.time(" ".join(key), action))
            for job in subject.jobs:
                for category, seconds in job_steps(result.timestamped, job).items():
                    steps[key][job][category].append(seconds)

        for number in range(1, args.runs + 1):
            for subject in subjects:
                print(f"{subject.label}: merge request {number}/{args.runs} ...", file=sys.stderr)
                merge_request(subject, number, 31 + number, 31 + args.runs + number, timed_pipeline)
        after = subjects[-1]
        print("clone, installs, the uv cache ...", file=sys.stderr)
        clone_s, clone_mb = measure_clone(after, f"bench-{args.runs}", args.runs, workdir)
        uv_version = re.search(r'UV_VERSION: "([^"]+)"', (after.gitlab.project / ".gitlab-ci.yml").read_text())[1]
        installs = measure_installs(after.gitlab.project, args.runs, workdir, uv_version)
        bytecode = bytecode_table(measure_bytecode(args.runs, workdir))
        versions = versions_of(after)
        versions["uv"] = run([str(VENV_BIN / "uv"), "--version"], workdir).stdout.split()[1]

    sections = [budget(subjects, steps, timings, clone_s, clone_mb, installs, args.runs), BYTECODE_NOTE, bytecode]
    results.write(
        "Latency budget: time to the merge-request comment",
        versions,
        notes(subjects, args, clone_mb, installs, uv_version),
        sections,
    )


BYTECODE_NOTE = (
    "Bytecode: the default bake's requirements.lock installed into a fresh venv from a filled uv cache, with "
    "UV_COMPILE_BYTECODE=1 or without, the two taking turns; then, in that venv, `dvc status` twice (the first "
    "compiles what DVC imports, if the install did not) and a cold `dvc repro` twice (the first compiles what "
    "the stages import). The project's own modules (PYTHONPATH=src) are compiled at first import either way."
)


def notes(subjects, args, clone_mb, installs, uv_version) -> list[str]:
    return [
        f"Before: template commit {args.template_commit} (jobs {', '.join(subjects[0].jobs)}); after: the working "
        f"tree (jobs {', '.join(subjects[-1].jobs)}). Default bake, dataset {args.dataset}; each template has its "
        "own bake, bucket and API double, and they took turns. Cold: a new max_leaf_nodes (`train` and `evaluate` "
        "run) and an empty uv cache in every job; all restored: the train job's dvc.lock commit (every stage from "
        "the run-cache) and the uv cache restored in every Python job.",
        "Measured lines are medians of the runs on this machine (2 cores, like GitLab.com's small runner, but "
        "shared with other work: read the load averages). Job commands come from gitlab-ci-local `--timestamps` "
        "(time since the job started at each command), S3 on loopback, a preinstalled jobs venv (so the install "
        "line there is a no-op; the real installs are measured apart).",
        f"Clone: `git clone --depth {GIT_DEPTH}` of the merge request's branch from a local bare repository "
        f"({clone_mb:.1f} MB of .git; the transfer over the internet is not included). Install: `uv venv` + "
        f"`uv pip install -r requirements.lock` (uv {uv_version} is the CI's pin, UV_VERSION) into a fresh venv, "
        f"from this machine's package index (cold) or a filled cache (warm): cache {installs['cache MB']:.0f} MB, "
        f"its zip {installs['zip MB']:.0f} MB (zip took {median(installs['zip']):.1f} s: an upload in the `test` "
        f"job, not on this path), the venv {installs['venv MB']:.0f} MB. `pip install uv=={uv_version}` runs in "
        "every Python job (the python image has no uv), here into a fresh venv with --no-cache-dir.",
        f"Runner start-up: {RUNNER_START_SOURCE}.",
        f"Image pulls, {PULL_SOURCE}: {PYTHON_IMAGE} {IMAGES_MB[PYTHON_IMAGE][1]}; {CML_IMAGE} "
        f"{IMAGES_MB[CML_IMAGE][1]}.",
        f"uv cache download: the zip's size at {CACHE_SOURCE.removeprefix('assumption: ')} (an assumption).",
        "Not in the budget: queueing for a runner, artifact uploads and downloads between jobs (the report and "
        "reports/evaluation are kilobytes), the network between a real runner, S3 and GitLab (here loopback).",
    ]


def budget(subjects, steps, timings, clone_s, clone_mb, installs, runs) -> str:
    """The budget table: one row per line, one column per (layout, scenario)."""
    columns = [(subject, scenario) for subject in subjects for scenario in ("cold", "all restored")]
    rows: dict[str, tuple[str, list[float]]] = {}

    def add(line: str, source: str, values: list[float]) -> None:
        rows[line] = (source, values)

    python_jobs = [[job for job in subject.jobs if job != "comment"] for subject, _ in columns]
    n_jobs = [len(subject.jobs) for subject, _ in columns]
    restored = [scenario == "all restored" for _, scenario in columns]
    est = "estimated"
    add("runner start-up (per job)", est, [RUNNER_START_S * n for n in n_jobs])
    python_pull = IMAGES_MB[PYTHON_IMAGE][0] / PULL_MB_PER_S
    add(f"pull {PYTHON_IMAGE} (per Python job)", est, [python_pull * len(jobs) for jobs in python_jobs])
    add(f"pull {CML_IMAGE} (comment job)", est, [IMAGES_MB[CML_IMAGE][0] / PULL_MB_PER_S for _ in columns])
    add(f"clone --depth {GIT_DEPTH} (per job)", "measured", [median(clone_s) * n for n in n_jobs])
    # A template whose test job prunes the cache (`uv cache prune --ci`) restores the pruned one.
    prunes = [subject.prunes_uv_cache for subject, _ in columns]
    zip_mb = [installs["pruned zip MB"] if p else installs["zip MB"] for p in prunes]
    add(
        "uv cache download (per Python job, restored)",
        est,
        [mb / CACHE_MB_PER_S * len(j) * r for mb, j, r in zip(zip_mb, python_jobs, restored, strict=True)],
    )
    unzips = [median(installs["pruned unzip"] if p else installs["unzip"]) for p in prunes]
    add(
        "uv cache unzip (per Python job, restored)",
        "measured",
        [unzip * len(j) * r for unzip, j, r in zip(unzips, python_jobs, restored, strict=True)],
    )
    add(
        "pip install uv (per Python job)",
        "measured",
        [median(installs["pip install uv"]) * len(j) for j in python_jobs],
    )
    cold, warm, after_prune = (median(installs[key]) for key in ("install cold", "install warm", "install pruned"))
    add(
        "uv venv + uv pip install (per Python job: cold / restored cache, whole or pruned)",
        "measured",
        [
            ((after_prune if p else warm) if r else cold) * len(j)
            for j, r, p in zip(python_jobs, restored, prunes, strict=True)
        ],
    )
    categories = [SETUP, *(name for name, _ in CATEGORIES)]
    for category in categories:
        add(
            category,
            "measured (gitlab-ci-local)",
            [
                sum(median(steps[(subject.label, scenario)][job][category]) for job in subject.jobs)
                for subject, scenario in columns
            ],
        )
    lines = [
        "| Line | source | " + " | ".join(f"{subject.label}, {scenario} (s)" for subject, scenario in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for line, (source, values) in rows.items():
        lines.append(f"| {line} | {source} | " + " | ".join(f"{value:.1f}" for value in values) + " |")
    measured = [sum(v[i] for s, v in rows.values() if s.startswith("measured")) for i in range(len(columns))]
    estimated = [sum(v[i] for s, v in rows.values() if s == est) for i in range(len(columns))]
    total = [m + e for m, e in zip(measured, estimated, strict=True)]
    lines.append("| **measured here** | | " + " | ".join(f"**{v:.1f}**" for v in measured) + " |")
    lines.append("| **estimated** | | " + " | ".join(f"**{v:.1f}**" for v in estimated) + " |")
    lines.append("| **estimated time to comment** | | " + " | ".join(f"**{v:.1f}**" for v in total) + " |")
    whole = [median(timings.seconds[f"{subject.label} {scenario}"]) for subject, scenario in columns]
    lines.append("| whole pipeline under gitlab-ci-local | measured | " + " | ".join(f"{v:.1f}" for v in whole) + " |")
    table = "\n".join(lines)

    per_job = ["| Layout, scenario | job | job total under gitlab-ci-local (s) |", "|---|---|---:|"]
    for subject, scenario in columns:
        for job in subject.jobs:
            total_job = median(steps[(subject.label, scenario)][job]["job total"])
            per_job.append(f"| {subject.label}, {scenario} | {job} | {total_job:.1f} |")

    index = {(subject.label, scenario): i for i, (subject, scenario) in enumerate(columns)}
    before, after = subjects[0].label, subjects[-1].label
    ratio = total[index[(after, "all restored")]] / total[index[(before, "all restored")]]
    ratio_cold = total[index[(after, "cold")]] / total[index[(before, "cold")]]
    under = [whole[index[(label, "all restored")]] / whole[index[(label, "cold")]] for label in (before, after)]
    comparisons = comparison_table(
        [
            ("estimated time to comment, all restored: after / before", f"{ratio:.2f}", "≤ 0.50", ratio <= TARGET),
            ("estimated time to comment, cold: after / before", f"{ratio_cold:.2f}", "", None),
            (f"gitlab-ci-local, {before}: all restored / cold", f"{under[0]:.2f}", "≤ 0.33", under[0] <= 1 / 3),
            (f"gitlab-ci-local, {after}: all restored / cold", f"{under[1]:.2f}", "≤ 0.33", under[1] <= 1 / 3),
        ]
    )
    install = [
        "| Install measurement | median (s) | min (s) | max (s) | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("pip install uv", "install cold", "install warm", "unzip"):
        values = installs[name]
        install.append(f"| {name} | {median(values):.2f} | {min(values):.2f} | {max(values):.2f} | {len(values)} |")
    install.append(
        f"| clone --depth {GIT_DEPTH} | {median(clone_s):.2f} | {min(clone_s):.2f} | {max(clone_s):.2f} | {runs} |"
    )
    return "\n\n".join([table, comparisons, "\n".join(install), "\n".join(per_job), timings.table()])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
