"""`make demo`: the whole story on one machine, offline.

1. bake the default project into build/demo/ (cookiecutter, no questions asked);
2. start a local S3 server (moto, 127.0.0.1) as the project's DVC remote;
3. train locally: `dvc repro`, commit dvc.lock, `dvc push`, print the metrics and plots;
4. run the project's GitLab pipeline for the default branch with gitlab-ci-local;
5. open a merge request that changes a training parameter and run its pipeline: the report
   (markdown and PNG charts) lands in build/demo/report/, and the comment job calls CML.

CML itself cannot be installed here, so step 5 posts through the strict stand-in the tests use:
the real posting happens only on GitLab. The S3 server is stopped at the end.
"""

import json
import shutil
import sys
from pathlib import Path

from harness.gitlab import BOT, PROJECT_ID, PROJECT_PATH, TOKEN, LocalGitLab, create_jobs_venv
from harness.gitlab_api import GitLabApi
from harness.project import TEMPLATE, bake_cli, run
from harness.s3 import LocalS3, s3_env

SCRATCH = TEMPLATE / "build" / "demo"
BRANCH = "fewer-leaves"


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def said(run, job: str) -> str:
    """The last line a job's own commands printed (gitlab-ci-local marks them with '> ')."""
    lines = [line[2:] for line in run.job_log(job).splitlines() if line.startswith("> ")]
    return lines[-1] if lines else "(no output)"


def show_metrics(project: Path) -> None:
    """The top-level scores on one line, then each section of them (baseline, recall per class)."""
    metrics = json.loads((project / "reports/evaluation/metrics.json").read_text())
    scores = {name: value for name, value in metrics.items() if not isinstance(value, dict)}
    print("   " + "  ".join(f"{name}={value:.3f}" for name, value in scores.items()))
    for section, values in metrics.items():
        if isinstance(values, dict):
            print(f"   {section}: " + "  ".join(f"{name}={value:.3f}" for name, value in values.items()))


def main() -> int:
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.mkdir(parents=True)

    step(f"Bake the default project into {SCRATCH.relative_to(TEMPLATE)}/")
    baked = bake_cli(SCRATCH)
    if baked.returncode != 0:
        print(baked.stderr, file=sys.stderr)
        return 1
    project = next(path for path in SCRATCH.iterdir() if (path / "dvc.yaml").exists())
    answers = json.loads((project / ".cookiecutter.json").read_text())
    print(f"   {project}")

    with LocalS3() as endpoint:
        step(f"Local S3 server on {endpoint}, bucket s3://{answers['s3_bucket']}/{answers['s3_prefix']}")
        env = s3_env(project, endpoint, answers["s3_bucket"])

        step("Train locally: dvc repro, commit dvc.lock, dvc push")
        print(run(["dvc", "repro"], project, env).stdout.rstrip().replace("\n", "\n   "))
        run(["git", "add", "--all"], project, env)
        run(["git", "commit", "--quiet", "-m", "Train the first model"], project, env)
        print("   " + run(["dvc", "push"], project, env).stdout.strip())
        show_metrics(project)
        plots = sorted(p.relative_to(project) for p in (project / "reports/evaluation/plots").rglob("*.*"))
        print("   plots: " + ", ".join(map(str, plots)))

        step("Prepare the jobs' Python environment (uv, from requirements.lock)")
        jobs_venv = create_jobs_venv(project, SCRATCH / "jobs-venv")

        with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT}) as api:
            gitlab = LocalGitLab(project, jobs_venv, endpoint, api)
            step("Default-branch pipeline (gitlab-ci-local): test, train")
            main_run = gitlab.pipeline("test", "train")
            print(f"   train: {said(main_run, 'train')}")
            if main_run.returncode != 0:
                print(main_run.output, file=sys.stderr)
                return 1

            step(f"Merge request '{BRANCH}': max_leaf_nodes 31 -> 10; pipeline: train (and its report), comment")
            gitlab.git("switch", "--quiet", "-c", BRANCH)
            params = project / "params.yaml"
            params.write_text(params.read_text().replace("max_leaf_nodes: 31", "max_leaf_nodes: 10"))
            gitlab.git("commit", "--quiet", "-am", "Try 10 leaves")
            gitlab.push(BRANCH)
            gitlab.git("switch", "--quiet", "main")
            mr = gitlab.pipeline("train", "comment", merge_request=True, source_branch=BRANCH)
            for job in ("train", "comment"):
                print(f"   {job}: {said(mr, job)}")
            if mr.returncode != 0:
                print(mr.output, file=sys.stderr)
                return 1
            [note] = api.notes(1)

        report_dir = SCRATCH / "report"
        shutil.copytree(mr.artifact("train", "report"), report_dir)
        step(f"The merge request report: {report_dir}/report.md")
        print((report_dir / "report.md").read_text())
        print(f"   images: {', '.join(sorted(p.name for p in report_dir.glob('*.png')))}")
        [call] = gitlab.cml_calls()
        print("   comment job ran: cml " + " ".join(call["argv"]))
        print(f"   posted as note {note['id']} by @{note['author']['username']} on the local GitLab API double")
        print("   (CML stand-in: the real comment is posted only on GitLab)")
    print("\n== Stopped the local S3 server.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
