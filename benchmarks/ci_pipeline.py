"""What does the run-cache save a merge-request pipeline under gitlab-ci-local?

Sets a baked project up as the `gitlab` fixture of tests/test_gitlab_pipeline.py does, runs main's
`train` pipeline (untimed), then times N times each (3 by default) the merge-request pipeline, jobs
train, report and comment, from start to end (the runner's checkout included):
(1) cold: a new branch with a max_leaf_nodes no run used before, so `train` and `evaluate` run;
(2) the pipeline of the dvc.lock commit the train job pushed: every stage restored, none run;
(3) the developer pulls that commit and changes max_leaf_nodes again: `train` and `evaluate` run.
Target: (2) / (1) at most 1/3. A run that did not do the work it claims stops the benchmark.
On breast_cancer the trees stop at 20 leaves: a max_leaf_nodes over 31 retrains the default's trees
at the default's cost (a new model file, the same predictions).

    .venv/bin/python -m benchmarks.ci_pipeline [--runs N] [--dataset NAME] [--leaves L]
"""

import argparse
import platform
import re
import sys
import tempfile
import uuid
from importlib.metadata import version
from pathlib import Path

from benchmarks.measure import Results, Timings, comparison_table
from harness.gitlab import BOT, GITLAB_CI_LOCAL, PROJECT_ID, PROJECT_PATH, TOKEN, LocalGitLab, create_jobs_venv
from harness.gitlab_api import GitLabApi
from harness.project import TEMPLATE, bake_cli, baked_project, ran_stages, run
from harness.s3 import LocalS3, s3_env

MR_JOBS = ("train", "report", "comment")
TARGET = 1 / 3
COLD = "(1) cold: a new max_leaf_nodes, `train` and `evaluate` run"
RESTORED = "(2) the train job's dvc.lock commit: every stage restored"
CHANGED = "(3) another max_leaf_nodes on the same branch"


def set_up_project(workdir: Path, endpoint: str, dataset: str) -> tuple[Path, Path]:
    """As the `gitlab` fixture leaves it: dvc.lock committed and the raw data pushed, the results
    not (so CI trains for real); returns the project and the jobs' venv."""
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    baked = bake_cli(workdir, f"s3_bucket={bucket}", f"dataset={dataset}")
    if baked.returncode != 0:
        sys.exit(f"cookiecutter failed\n{baked.stdout}\n{baked.stderr}")
    project = baked_project(workdir)
    env = s3_env(project, endpoint, bucket)
    run(["dvc", "repro", "--quiet"], project, env)
    run(["git", "add", "--all"], project, env)
    run(["git", "commit", "--quiet", "-m", "Add dvc.lock"], project, env)
    run(["dvc", "push", "--quiet", "data/raw/dataset.csv.dvc"], project, env)
    return project, create_jobs_venv(project, workdir / "jobs-venv")


def commit_leaves(gitlab: LocalGitLab, branch: str, count: int) -> str:
    """Commit max_leaf_nodes = count on the checked-out branch and push it; returns the pushed commit."""
    params = gitlab.project / "params.yaml"
    params.write_text(re.sub(r"max_leaf_nodes: \d+", f"max_leaf_nodes: {count}", params.read_text()))
    gitlab.git("commit", "--quiet", "-am", f"Try {count} leaves")
    gitlab.push(branch)
    return gitlab.head(branch)


def timed_pipeline(gitlab: LocalGitLab, timings: Timings, name: str, branch: str, expected_stages: list[str]) -> None:
    result = timings.time(name, lambda: gitlab.pipeline(*MR_JOBS, merge_request=True, source_branch=branch))
    train_log = result.job_log("train")
    problems = [f"exit code {result.returncode}"] if result.returncode != 0 else []
    if ran_stages(train_log) != expected_stages or (not expected_stages and "Running stage" in train_log):
        problems.append(f"the train job ran {ran_stages(train_log)}, not {expected_stages}")
    if not result.artifact("report", "report/report.md").is_file():
        problems.append("no report artifact")
    if problems:
        sys.exit(f"{name}, branch {branch}: {'; '.join(problems)}\n{result.output}")


def measure_merge_request(gitlab: LocalGitLab, timings: Timings, number: int, runs: int, leaves: int) -> None:
    branch = f"bench-{number}"
    gitlab.git("switch", "--quiet", "-c", branch, "main")
    ours = commit_leaves(gitlab, branch, leaves + number)  # values no run used before: nothing to restore
    timed_pipeline(gitlab, timings, COLD, branch, ["train", "evaluate"])
    if gitlab.head(branch) == ours:
        sys.exit(f"the train job pushed no dvc.lock commit to {branch}")
    timed_pipeline(gitlab, timings, RESTORED, branch, [])
    gitlab.git("fetch", "--quiet", "origin")
    gitlab.git("merge", "--quiet", "--ff-only", f"origin/{branch}")
    commit_leaves(gitlab, branch, leaves + runs + number)
    timed_pipeline(gitlab, timings, CHANGED, branch, ["train", "evaluate"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="merge requests, each timed three times (3)")
    parser.add_argument("--dataset", default="breast_cancer", help="the bundled dataset to bake (breast_cancer)")
    parser.add_argument("--leaves", type=int, default=31, help="merge requests use max_leaf_nodes from this + 1 (31)")
    args = parser.parse_args()
    results, timings = Results(__spec__.name), Timings()
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as workdir, LocalS3() as endpoint:
        print("setting up the project and main's pipeline (untimed) ...", file=sys.stderr)
        project, jobs_venv = set_up_project(Path(workdir), endpoint, args.dataset)
        with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT}) as api:
            gitlab = LocalGitLab(project, jobs_venv, endpoint, api)
            main_pipeline = gitlab.pipeline("train")  # main's results and run-cache reach the remote
            trained = ran_stages(main_pipeline.job_log("train")) == ["prepare", "train", "evaluate"]
            if main_pipeline.returncode != 0 or not trained:
                sys.exit(f"main's pipeline failed or did not train\n{main_pipeline.output}")
            for number in range(1, args.runs + 1):
                print(f"merge request {number}/{args.runs} ...", file=sys.stderr)
                measure_merge_request(gitlab, timings, number, args.runs, args.leaves)
        versions = {
            "Python": platform.python_version(),
            "DVC": run([str(jobs_venv / "bin" / "dvc"), "--version"], project).stdout.strip(),
            "gitlab-ci-local": run([str(GITLAB_CI_LOCAL), "--version"], TEMPLATE).stdout.strip(),
            "moto": version("moto"),
        }

    restored, changed = (timings.median(name) / timings.median(COLD) for name in (RESTORED, CHANGED))
    comparisons = comparison_table(
        [("(2) / (1)", f"{restored:.2f}", "≤ 0.33", restored <= TARGET), ("(3) / (1)", f"{changed:.2f}", "", None)]
    )
    notes = [
        f"Project: dataset {args.dataset}, hist_gradient_boosting; merge request i sets max_leaf_nodes to "
        f"{args.leaves} + i for (1) and {args.leaves} + {args.runs} + i for (3). Main's `train` pipeline ran "
        "first, untimed.",
        "gitlab-ci-local `--force-shell-executor --shell-isolation` (every job a fresh workspace, an empty "
        "DVC cache), S3 from moto on loopback. Each run's exit code, the train job's stages and the report "
        "artifact were checked; (2) ran no stage.",
        "Not included: image pulls, runner start-up, cache and artifact transfers, per-job installs (one "
        "preinstalled jobs venv). They add about the same seconds to (1) and (2): on GitLab (2)/(1) is nearer 1.",
    ]
    title = "The run-cache in a merge-request pipeline under gitlab-ci-local"
    results.write(title, versions, notes, [timings.table(), comparisons])


if __name__ == "__main__":
    main()
