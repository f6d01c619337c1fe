"""What does the run-cache save a merge-request pipeline under gitlab-ci-local?

Sets a baked project up as the `gitlab` fixture of tests/test_gitlab_pipeline.py does, runs main's
`train` pipeline (untimed), then times N times each (3 by default) the merge-request pipeline (the
jobs the baked .gitlab-ci.yml has for it: train and comment, or train, report and comment before
the report moved into train) from start to end (the runner's checkout included):
(1) cold: a new branch with a max_leaf_nodes no run used before, so `train` and `evaluate` run;
(2) the pipeline of the dvc.lock commit the train job pushed: every stage restored, none run;
(3) the developer pulls that commit and changes max_leaf_nodes again: `train` and `evaluate` run.
Target: (2) / (1) at most 1/3. A run that did not do the work it claims stops the benchmark.
`--template-commit REV` also bakes the template as it was at REV (git archive) and measures it in
the same invocation, the two projects taking turns, so "before" and "after" share code and load.
On breast_cancer the trees stop at 20 leaves: a max_leaf_nodes over 31 retrains the default's trees
at the default's cost (a new model file, the same predictions).

    .venv/bin/python -m benchmarks.ci_pipeline [--runs N] [--dataset NAME] [--leaves L] [--template-commit REV]
"""

import argparse
import platform
import re
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from benchmarks.measure import Results, Timings, comparison_table
from harness.gitlab import BOT, GITLAB_CI_LOCAL, PROJECT_ID, PROJECT_PATH, TOKEN, LocalGitLab, create_jobs_venv
from harness.gitlab_api import GitLabApi
from harness.project import TEMPLATE, VENV_BIN, baked_project, project_env, ran_stages, run
from harness.s3 import LocalS3, s3_env

TARGET = 1 / 3
COLD = "(1) cold: a new max_leaf_nodes, `train` and `evaluate` run"
RESTORED = "(2) the train job's dvc.lock commit: every stage restored"
CHANGED = "(3) another max_leaf_nodes on the same branch"


def template_at(commit: str, directory: Path) -> Path:
    """The template as committed at `commit`, extracted into `directory` (its own hooks and
    cookiecutter.json come with it)."""
    directory.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=TEMPLATE, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    return directory


def bake(output_dir: Path, template: Path, *answers: str) -> Path:
    """harness.project.bake_cli, for any template directory."""
    output_dir.mkdir(parents=True, exist_ok=True)
    config = output_dir / "cookiecutter-config.yaml"
    config.write_text(f"cookiecutters_dir: {output_dir / 'cc'}\nreplay_dir: {output_dir / 'replay'}\n")
    args = [str(VENV_BIN / "cookiecutter"), "--no-input", "--config-file", str(config), "-o", str(output_dir)]
    env = project_env(output_dir)
    baked = subprocess.run([*args, str(template), *answers], env=env, capture_output=True, text=True)
    if baked.returncode != 0:
        sys.exit(f"cookiecutter failed ({template})\n{baked.stdout}\n{baked.stderr}")
    return baked_project(output_dir)


def merge_request_jobs(project: Path) -> tuple[str, ...]:
    """The merge-request critical path of the baked project's .gitlab-ci.yml."""
    ci = (project / ".gitlab-ci.yml").read_text()
    return ("train", "report", "comment") if re.search(r"^report:", ci, re.MULTILINE) else ("train", "comment")


def set_up_project(workdir: Path, endpoint: str, dataset: str, template: Path = TEMPLATE) -> tuple[Path, Path]:
    """As the `gitlab` fixture leaves it: dvc.lock committed and the raw data pushed, the results
    not (so CI trains for real); returns the project and the jobs' venv."""
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    project = bake(workdir, template, f"s3_bucket={bucket}", f"dataset={dataset}")
    env = s3_env(project, endpoint, bucket)
    run(["dvc", "repro", "--quiet"], project, env)
    run(["git", "add", "--all"], project, env)
    run(["git", "commit", "--quiet", "-m", "Add dvc.lock"], project, env)
    run(["dvc", "push", "--quiet", "data/raw/dataset.csv.dvc"], project, env)
    return project, create_jobs_venv(project, workdir / "jobs-venv")


@dataclass
class Subject:
    """One baked template (the working tree, or a commit) with its own remote, API and runner."""

    label: str
    gitlab: LocalGitLab
    jobs: tuple[str, ...]
    prunes_uv_cache: bool  # its test job keeps only what PyPI cannot give again in the uv cache


def open_subject(
    stack: ExitStack, label: str, workdir: Path, endpoint: str, dataset: str, template: Path, runner=LocalGitLab
) -> Subject:
    """Bake, set up and run main's `train` pipeline (untimed): main's results and run-cache reach the remote."""
    project, jobs_venv = set_up_project(workdir, endpoint, dataset, template)
    api = stack.enter_context(GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT}))
    gitlab = runner(project, jobs_venv, endpoint, api)
    main_pipeline = gitlab.pipeline("train")
    trained = ran_stages(main_pipeline.job_log("train")) == ["prepare", "train", "evaluate"]
    if main_pipeline.returncode != 0 or not trained:
        sys.exit(f"{label}: main's pipeline failed or did not train\n{main_pipeline.output}")
    prunes = "uv cache prune --ci" in (project / ".gitlab-ci.yml").read_text(encoding="utf-8")
    return Subject(label, gitlab, merge_request_jobs(project), prunes)


def commit_leaves(gitlab: LocalGitLab, branch: str, count: int) -> str:
    """Commit max_leaf_nodes = count on the checked-out branch and push it; returns the pushed commit."""
    params = gitlab.project / "params.yaml"
    params.write_text(re.sub(r"max_leaf_nodes: \d+", f"max_leaf_nodes: {count}", params.read_text()))
    gitlab.git("commit", "--quiet", "-am", f"Try {count} leaves")
    gitlab.push(branch)
    return gitlab.head(branch)


def checked_pipeline(subject: Subject, branch: str, expected_stages: list[str], time=None):
    """The merge-request pipeline of `branch` (timed by `time`, a Timings.time bound to a name,
    if given); stops the benchmark unless it passed, trained `expected_stages` and left a report."""
    action = lambda: subject.gitlab.pipeline(*subject.jobs, merge_request=True, source_branch=branch)  # noqa: E731
    result = time(action) if time else action()
    train_log = result.job_log("train")
    problems = [f"exit code {result.returncode}"] if result.returncode != 0 else []
    if ran_stages(train_log) != expected_stages or (not expected_stages and "Running stage" in train_log):
        problems.append(f"the train job ran {ran_stages(train_log)}, not {expected_stages}")
    if not result.artifact(subject.jobs[-2], "report/report.md").is_file():
        problems.append("no report artifact")
    if problems:
        sys.exit(f"{subject.label}, branch {branch}: {'; '.join(problems)}\n{result.output}")
    return result


def merge_request(subject: Subject, number: int, leaves: int, later_leaves: int, run_pipeline) -> None:
    """(1), (2) and (3) on a new branch; run_pipeline(subject, branch, name, expected_stages)."""
    gitlab, branch = subject.gitlab, f"bench-{number}"
    gitlab.git("switch", "--quiet", "-c", branch, "main")
    ours = commit_leaves(gitlab, branch, leaves)  # a value no run used before: nothing to restore
    run_pipeline(subject, branch, COLD, ["train", "evaluate"])
    if gitlab.head(branch) == ours:
        sys.exit(f"{subject.label}: the train job pushed no dvc.lock commit to {branch}")
    run_pipeline(subject, branch, RESTORED, [])
    gitlab.git("fetch", "--quiet", "origin")
    gitlab.git("merge", "--quiet", "--ff-only", f"origin/{branch}")
    commit_leaves(gitlab, branch, later_leaves)
    run_pipeline(subject, branch, CHANGED, ["train", "evaluate"])


def subjects_of(
    stack: ExitStack, workdir: Path, endpoint: str, dataset: str, before: str, runner=LocalGitLab
) -> list[Subject]:
    """The working tree ("after") and, with `before`, the template at that commit ("before" first)."""
    head = run(["git", "rev-parse", "--short", "HEAD"], TEMPLATE).stdout.strip()
    subjects = [open_subject(stack, f"after ({head})", workdir / "after", endpoint, dataset, TEMPLATE, runner)]
    if before:
        template = template_at(before, workdir / "before-template")
        label = f"before ({before})"
        subjects.insert(0, open_subject(stack, label, workdir / "before", endpoint, dataset, template, runner))
    return subjects


def versions_of(subject: Subject) -> dict[str, str]:
    return {
        "Python": platform.python_version(),
        "DVC": run([str(subject.gitlab.jobs_venv / "bin" / "dvc"), "--version"], subject.gitlab.project).stdout.strip(),
        "gitlab-ci-local": run([str(GITLAB_CI_LOCAL), "--version"], TEMPLATE).stdout.strip(),
        "moto": version("moto"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="merge requests, each timed three times (3)")
    parser.add_argument("--dataset", default="breast_cancer", help="the bundled dataset to bake (breast_cancer)")
    parser.add_argument("--leaves", type=int, default=31, help="merge requests use max_leaf_nodes from this + 1 (31)")
    parser.add_argument("--template-commit", default="", help="also measure the template at this commit (e.g. 6a20f9e)")
    args = parser.parse_args()
    results, timings = Results(__spec__.name), Timings()
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as workdir, LocalS3() as endpoint, ExitStack() as stack:
        print("setting up the project(s) and main's pipeline (untimed) ...", file=sys.stderr)
        subjects = subjects_of(stack, Path(workdir), endpoint, args.dataset, args.template_commit)

        def timed(subject: Subject, branch: str, name: str, expected: list[str]) -> None:
            checked_pipeline(subject, branch, expected, lambda action: timings.time(f"{subject.label} {name}", action))

        for number in range(1, args.runs + 1):
            for subject in subjects:  # taking turns: drift in the machine's load hits both
                print(f"{subject.label}: merge request {number}/{args.runs} ...", file=sys.stderr)
                merge_request(subject, number, args.leaves + number, args.leaves + args.runs + number, timed)
        versions = versions_of(subjects[-1])

    rows = []
    for subject in subjects:
        cold = timings.median(f"{subject.label} {COLD}")
        restored, changed = (timings.median(f"{subject.label} {name}") / cold for name in (RESTORED, CHANGED))
        rows += [
            (f"{subject.label} (2) / (1)", f"{restored:.2f}", "≤ 0.33", restored <= TARGET),
            (f"{subject.label} (3) / (1)", f"{changed:.2f}", "", None),
        ]
    if len(subjects) == 2:
        for name in (COLD, RESTORED):
            after, before = (timings.median(f"{subject.label} {name}") for subject in reversed(subjects))
            rows.append((f"{name[:3]} after / before", f"{after / before:.2f}", "", None))
    jobs = "; ".join(f"{subject.label}: {', '.join(subject.jobs)}" for subject in subjects)
    notes = [
        f"Project: dataset {args.dataset}, hist_gradient_boosting; merge request i sets max_leaf_nodes to "
        f"{args.leaves} + i for (1) and {args.leaves} + {args.runs} + i for (3). Main's `train` pipeline ran "
        "first, untimed.",
        f"Merge-request jobs: {jobs}."
        + (" Each template has its own bake, bucket and API double; they took turns." if len(subjects) == 2 else ""),
        "gitlab-ci-local `--force-shell-executor --shell-isolation` (every job a fresh workspace, an empty "
        "DVC cache), S3 from moto on loopback. Each run's exit code, the train job's stages and the report "
        "artifact were checked; (2) ran no stage.",
        "Not included: image pulls, runner start-up, cache and artifact transfers, per-job installs (one "
        "preinstalled jobs venv). They add about the same seconds to (1) and (2): on GitLab (2)/(1) is nearer 1 "
        "(latency_budget.py estimates them).",
    ]
    title = "The run-cache in a merge-request pipeline under gitlab-ci-local"
    results.write(title, versions, notes, [timings.table(), comparison_table(rows)])


if __name__ == "__main__":
    main()
