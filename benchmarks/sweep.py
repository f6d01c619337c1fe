"""What does a merge request's parameter sweep cost, and what do more jobs buy, under gitlab-ci-local?

Sets a baked project up as benchmarks/ci_pipeline.py does and runs main's `train` pipeline
(untimed). Then, N times each (2 by default), on a new branch with values no run used before:
(0) the single-configuration merge-request pipeline (train, report, comment): the baseline;
(J) the 2×2 sweep of sweep.yaml (jobs sweep, sweep-run, sweep-report, sweep-comment), its runs
    shared by J = 1, 2 and 4 `sweep-run` jobs (`parallel:` set on the branch; every run trains);
(R) the same sweep again with nothing changed: every run comes back from the run-cache.
Reported as ratios against (0). A run that did not do the work it claims stops the benchmark.

    .venv/bin/python -m benchmarks.sweep [--runs N]
"""

import argparse
import platform
import re
import sys
import tempfile
from functools import partial
from importlib.metadata import version
from pathlib import Path

import yaml

from benchmarks.ci_pipeline import MR_JOBS, commit_leaves, set_up_project
from benchmarks.measure import Results, Timings, comparison_table
from harness.gitlab import BOT, GITLAB_CI_LOCAL, PROJECT_ID, PROJECT_PATH, TOKEN, LocalGitLab
from harness.gitlab_api import GitLabApi
from harness.project import TEMPLATE, ran_stages, run
from harness.s3 import LocalS3

SWEEP_JOBS = ("sweep", "sweep-run", "sweep-report", "sweep-comment")
JOB_COUNTS = (1, 2, 4)
BASELINE = "(0) one configuration: train, report, comment"
REPEAT = "(R) the same sweep again, 2 jobs: every run restored"


def sweep_name(jobs: int) -> str:
    return f"({jobs}) 2×2 sweep over {jobs} sweep-run job{'s' if jobs > 1 else ''}"


def commit_sweep(gitlab: LocalGitLab, branch: str, leaves: int, jobs: int) -> None:
    """sweep.yaml's 2×2 as baked (learning_rate 0.05 and 0.2) but with max_leaf_nodes values no run
    used before, and `parallel:` for `jobs` jobs."""
    spec = yaml.safe_load((gitlab.project / "sweep.yaml").read_text())
    boosting = "train.hist_gradient_boosting"
    spec["parameters"] = {f"{boosting}.learning_rate": [0.05, 0.2], f"{boosting}.max_leaf_nodes": [leaves, leaves + 1]}
    (gitlab.project / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    ci_file = gitlab.project / ".gitlab-ci.yml"
    parallel = f"  parallel: {jobs}\n" if jobs > 1 else ""
    ci_file.write_text(re.sub(r"  parallel: \d+ .*\n", parallel, ci_file.read_text()))
    gitlab.git("commit", "--quiet", "-am", f"Sweep from {leaves} leaves over {jobs} jobs")
    gitlab.push(branch)


def timed_sweep(gitlab: LocalGitLab, timings: Timings, name: str, branch: str, jobs: int, trained: bool) -> None:
    variables = {"CI_MERGE_REQUEST_LABELS": "sweep"}
    result = timings.time(
        name, lambda: gitlab.pipeline(*SWEEP_JOBS, merge_request=True, source_branch=branch, variables=variables)
    )
    logs = [result.job_log(f"sweep-run: [{i}/{jobs}]" if jobs > 1 else "sweep-run") for i in range(1, jobs + 1)]
    stages = [stage for log in logs for stage in ran_stages(log)]
    problems = [f"exit code {result.returncode}"] if result.returncode != 0 else []
    if sum(log.count("sweep: sweep-") for log in logs) != 4:
        problems.append("the jobs did not run 4 experiments between them")
    if sorted(stages) != sorted(["train", "evaluate"] * 4 if trained else []):
        problems.append(f"the sweep ran the stages {stages}")
    if problems:
        sys.exit(f"{name}, branch {branch}: {'; '.join(problems)}\n{result.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="times each measurement is taken (2)")
    args = parser.parse_args()
    results, timings = Results(__spec__.name), Timings()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as workdir, LocalS3() as endpoint:
        print("setting up the project and main's pipeline (untimed) ...", file=sys.stderr)
        project, jobs_venv = set_up_project(Path(workdir), endpoint, "breast_cancer")
        with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT}) as api:
            gitlab = LocalGitLab(project, jobs_venv, endpoint, api)
            if gitlab.pipeline("train").returncode != 0:
                sys.exit("main's pipeline failed")
            # As baked; every commit below takes the next values. breast_cancer's trees stop at 20 leaves,
            # so these retrain at the default's cost, the learning rate telling the sweep's models apart.
            leaves = 31
            for number in range(1, args.runs + 1):
                print(f"round {number}/{args.runs} ...", file=sys.stderr)
                branch = f"single-{number}"
                gitlab.git("switch", "--quiet", "-c", branch, "main")
                commit_leaves(gitlab, branch, leaves := leaves + 2)
                single = partial(gitlab.pipeline, *MR_JOBS, merge_request=True, source_branch=branch)
                if timings.time(BASELINE, single).returncode != 0:
                    sys.exit("the single-configuration pipeline failed")
                for jobs in JOB_COUNTS:
                    branch = f"sweep-{number}-{jobs}"
                    gitlab.git("switch", "--quiet", "-c", branch, "main")
                    commit_sweep(gitlab, branch, leaves := leaves + 2, jobs)
                    timed_sweep(gitlab, timings, sweep_name(jobs), branch, jobs, trained=True)
                    if jobs == 2:
                        timed_sweep(gitlab, timings, REPEAT, branch, jobs, trained=False)
        versions = {
            "Python": platform.python_version(),
            "DVC": run([str(jobs_venv / "bin" / "dvc"), "--version"], project).stdout.strip(),
            "gitlab-ci-local": run([str(GITLAB_CI_LOCAL), "--version"], TEMPLATE).stdout.strip(),
            "moto": version("moto"),
        }

    base = timings.median(BASELINE)
    rows = [(f"{name} / (0)", f"{timings.median(name) / base:.2f}", "", None) for name in map(sweep_name, JOB_COUNTS)]
    rows.append((f"{REPEAT} / (0)", f"{timings.median(REPEAT) / base:.2f}", "", None))
    notes = [
        "Project: dataset breast_cancer, hist_gradient_boosting. Each round uses max_leaf_nodes values no run "
        "used before, so (0) and every (J) train; (R) repeats the 2-job sweep on the same commit. Main's `train` "
        "pipeline ran first, untimed.",
        "gitlab-ci-local `--force-shell-executor --shell-isolation`, S3 from moto on loopback; its jobs of one "
        "stage run at once, on this machine's cores: more jobs than cores cannot go faster here, while GitLab "
        "gives each job a machine of its own. Each run's exit code and stages were checked.",
    ]
    title = "A merge request's parameter sweep under gitlab-ci-local"
    results.write(title, versions, notes, [timings.table(), comparison_table(rows)])


if __name__ == "__main__":
    main()
