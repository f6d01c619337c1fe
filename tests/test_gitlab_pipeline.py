"""The generated pipeline, run by gitlab-ci-local against moto's S3 server and a loopback GitLab,
on every kind of pipeline GitLab runs: branch, merge request (detached, merged results, merge
train), and a fork's merge request running in the fork or in the target project. Each test says
what was pushed where (S3 objects, branches of the bare repositories) and what was posted."""

import re
import uuid

import pytest

from harness.gitlab import BOT, FORK_PATH, GITLAB_CI_LOCAL, JOB_TOKEN, PROJECT_ID, PROJECT_PATH, TOKEN, LocalGitLab
from harness.gitlab_api import GitLabApi
from harness.project import commit_first_model, ran_stages, run
from harness.s3 import client as s3_client
from harness.s3 import s3_env

pytestmark = pytest.mark.slow
MR_JOBS = ("train", "comment")
WATERMARK = '"CML watermark DVC model report")'


@pytest.fixture
def gitlab(bake, jobs_venv, s3_endpoint):
    """A baked project as a developer leaves it after the README's first steps: dvc.lock
    committed, the raw data pushed, the pipeline's results not (so CI trains for real)."""
    bucket = f"ci-{uuid.uuid4().hex[:12]}"
    project = bake(s3_bucket=bucket)
    env = s3_env(project, s3_endpoint, bucket)
    commit_first_model(project, env)
    run(["dvc", "push", "--quiet", "data/raw/dataset.csv.dvc"], project, env)
    with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT}) as api:
        local = LocalGitLab(project, jobs_venv, s3_endpoint, api)
        local.bucket, local.s3_env = bucket, env
        yield local


def push_main_results(gitlab: LocalGitLab) -> None:
    """What main's pipeline leaves in the remote (its results and run-cache), pushed from the
    developer's clone: quicker than that pipeline, which the first test runs for real."""
    run(["dvc", "push", "--quiet", "--run-cache"], gitlab.project, gitlab.s3_env)


def s3_keys(gitlab: LocalGitLab) -> set[str]:
    pages = s3_client(gitlab.s3_endpoint).get_paginator("list_objects_v2").paginate(Bucket=gitlab.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def run_cache_entries(gitlab: LocalGitLab) -> set[str]:
    return {key for key in s3_keys(gitlab) if key.startswith("dvc/runs/")}


def change_leaves(gitlab: LocalGitLab, branch: str, count: int, remote: str = "origin", start: str = "main") -> str:
    """A new branch from `start` (the developer's local branch) with max_leaf_nodes changed, pushed."""
    gitlab.git("switch", "--quiet", "-c", branch, start)
    params_file = gitlab.project / "params.yaml"
    params_file.write_text(re.sub(r"max_leaf_nodes: \d+", f"max_leaf_nodes: {count}", params_file.read_text()))
    gitlab.git("commit", "--quiet", "-am", f"Try {count} leaves")
    gitlab.push(branch, remote)
    gitlab.git("switch", "--quiet", "main")
    return gitlab.head(branch, gitlab.fork if remote == "fork" else gitlab.origin)


def commit_on_main(gitlab: LocalGitLab, path: str, text: str) -> str:
    (gitlab.project / path).write_text(text, encoding="utf-8")
    gitlab.git("commit", "--quiet", "-am", f"Change {path}")
    gitlab.push("main")
    return gitlab.head("main")


def report_notes(gitlab: LocalGitLab) -> list[dict]:
    return [note for note in gitlab.api.notes(1) if WATERMARK in note["body"]]


def assert_only_dvc_lock_added(gitlab: LocalGitLab, branch: str, parent: str) -> None:
    pushed = gitlab.head(branch)
    assert run(["git", "rev-parse", f"{pushed}^"], gitlab.origin, gitlab.env()).stdout.strip() == parent
    changed = run(["git", "diff", "--name-only", parent, pushed], gitlab.origin, gitlab.env()).stdout.split()
    assert changed == ["dvc.lock"]


def test_branch_then_detached_merge_request_report_comment_and_rerun(gitlab):
    main = gitlab.pipeline("train")
    assert main.returncode == 0, main.output
    assert ran_stages(main.job_log("train")) == ["prepare", "train", "evaluate"]
    assert "Pipeline: branch 'main'." in main.job_log("train")
    assert "dvc.lock matches this commit." in main.job_log("train")
    assert len(run_cache_entries(gitlab)) == 3  # one per stage: any later pipeline can restore them
    # main's model becomes v0.1.0, in production: the merge request's report compares with it too.
    registry = ["python", "-m", "tumour_classifier.registry"]
    env = {**gitlab.env(), **gitlab.s3_env, "PYTHONPATH": str(gitlab.project / "src")}
    run([*registry, "register"], gitlab.project, env)
    run([*registry, "promote", "v0.1.0", "production"], gitlab.project, env)

    commit = change_leaves(gitlab, "fewer-leaves", 10)
    mr = gitlab.pipeline(*MR_JOBS, merge_request=True, source_branch="fewer-leaves")
    assert mr.returncode == 0, mr.output
    train = mr.job_log("train")
    assert "merge request !1 (detached) from a branch of this project into 'main', running in the target" in train
    assert ran_stages(train) == ["train", "evaluate"]  # the parameter feeds `train` only
    assert len(run_cache_entries(gitlab)) == 5
    assert_only_dvc_lock_added(gitlab, "fewer-leaves", commit)

    report = mr.artifact("train", "report/report.md").read_text()
    base = gitlab.head("main")[:8]
    assert f"vs `main` at `{base}`" in report
    assert re.search(r"\| train\.hist_gradient_boosting\.max_leaf_nodes +\| 31 +\| 10 +\|", report), report
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):  # both sides, the change and its interval
        assert re.search(rf"\| {metric} \| 0\.\d+ \| 0\.\d+ \| [-+][\d.]+ \([-+][\d.]+ to [-+][\d.]+\) \|", report), (
            metric
        )
    images = re.findall(r"!\[[^\]]*\]\(\./([^)]+)\)", report)
    assert set(images) == {"roc.png", "precision_recall.png", "confusion_matrix.png", "feature_importance.png"}
    production = report[report.index("### Against the model in production (`model@v0.1.0`)") :]
    assert re.search(r"\| accuracy +\| 0\.\d+ +\| 0\.\d+ +\|", production), report

    [note] = report_notes(gitlab)
    assert note["author"]["id"] == BOT["id"] and "### Metrics (test set)" in note["body"]
    assert len(gitlab.api.uploads) == 4  # --native: the images went to GitLab, never elsewhere
    assert "0.20.6" in mr.job_log("comment")  # `cml --version`

    # The pipeline of the pushed dvc.lock commit: every stage comes from the remote, and the one
    # comment is edited in place.
    tip = gitlab.pipeline(*MR_JOBS, merge_request=True, source_branch="fewer-leaves")
    assert tip.returncode == 0, tip.output
    assert ran_stages(tip.job_log("train")) == [] and "dvc.lock matches this commit." in tip.job_log("train")
    assert [n["id"] for n in report_notes(gitlab)] == [note["id"]]
    # A retry of the first commit's pipeline: nothing is retrained, and its push is refused by the
    # lease, as the branch has moved on.
    pushed = gitlab.head("fewer-leaves")
    retry = gitlab.pipeline("train", merge_request=True, source_branch="fewer-leaves", sha=commit)
    assert retry.returncode == 0, retry.output
    assert ran_stages(retry.job_log("train")) == []
    assert f"'fewer-leaves' has moved on since {commit[:8]}" in retry.job_log("train")
    assert gitlab.head("fewer-leaves") == pushed and len(run_cache_entries(gitlab)) == 5
    for secret in (TOKEN, JOB_TOKEN):
        assert secret not in mr.output + tip.output + retry.output


def test_merged_results_commit_dvc_lock_on_the_source_tip(gitlab):
    """GitLab runs the MR on a merge commit in neither branch; the reproduced dvc.lock is pushed on
    the source branch's own tip, as it is true there too (main changed no dependency)."""
    push_main_results(gitlab)
    source = change_leaves(gitlab, "merged", 12)
    target = commit_on_main(gitlab, "data/README.md", "The data, described again.\n")  # main moves on
    for kind in ("merged_result", "merge_train"):
        mr = gitlab.pipeline(*MR_JOBS, merge_request=True, source_branch="merged", event_type=kind)
        train = mr.job_log("train")
        if kind == "merged_result":
            assert mr.returncode == 0, mr.output
            assert ran_stages(train) == ["train", "evaluate"]
            assert_only_dvc_lock_added(gitlab, "merged", source)
            report = mr.artifact("train", "report/report.md").read_text()
            assert f"vs `main` at `{target[:8]}`" in report  # CI_MERGE_REQUEST_TARGET_BRANCH_SHA
            assert len(report_notes(gitlab)) == 1
        else:  # the branch now carries a true dvc.lock: the train's merge commit does too
            assert mr.returncode == 0, mr.output
            assert ran_stages(train) == [] and "dvc.lock matches this commit." in train


def test_merged_results_and_merge_trains_refuse_a_dvc_lock_that_only_the_merge_makes_true(gitlab):
    """main changed what `prepare` depends on after the branch left it: the merge result's dvc.lock
    is not what the branch alone reproduces, so nothing is pushed and the job says to rebase."""
    push_main_results(gitlab)
    source = change_leaves(gitlab, "behind", 15)
    params_file = gitlab.project / "params.yaml"
    params_file.write_text(params_file.read_text().replace("test_size: 0.25", "test_size: 0.3"))
    run(["dvc", "repro", "--quiet"], gitlab.project, gitlab.s3_env)
    gitlab.git("commit", "--quiet", "-am", "Hold out 30%")
    gitlab.push("main")
    for kind, fix in (("merged_result", "rebase 'behind' onto 'main'"), ("merge_train", "to the train again")):
        mr = gitlab.pipeline("train", merge_request=True, source_branch="behind", event_type=kind)
        assert mr.returncode != 0, mr.output
        [error] = [line for line in mr.job_log("train").splitlines() if line.startswith("> error: ")]
        assert error.startswith("> error: dvc.lock does not match") and fix in error, error
        assert gitlab.head("behind") == source


def test_fork_merge_request_running_in_the_fork(gitlab):
    """No secrets; `origin` is the fork, whose main is stale. Where the bucket allows anonymous
    reads, it trains and reports against the target project's commit, and writes nothing."""
    push_main_results(gitlab)
    target = commit_on_main(gitlab, "data/README.md", "Main moved on after the fork.\n")  # same results
    assert gitlab.head("main", gitlab.fork) != target  # the fork never synced its main

    source = change_leaves(gitlab, "fork-change", 12, remote="fork")
    closed = gitlab.pipeline(*MR_JOBS, merge_request=True, source_branch="fork-change", fork="runs_in_fork")
    assert closed.returncode == 0, closed.output
    assert "does not allow anonymous reads, so training is skipped" in closed.job_log("train")
    assert "no comment is posted" in closed.job_log("comment")

    s3 = s3_client(gitlab.s3_endpoint)
    s3.put_bucket_acl(Bucket=gitlab.bucket, ACL="public-read")  # moto answers anonymous reads under ACLs
    stored = s3_keys(gitlab)
    for key in stored:
        s3.put_object_acl(Bucket=gitlab.bucket, Key=key, ACL="public-read")
    fork = gitlab.pipeline(*MR_JOBS, merge_request=True, source_branch="fork-change", fork="runs_in_fork")
    assert fork.returncode == 0, fork.output
    train = fork.job_log("train")
    assert "from a fork into 'main', running in the fork" in train
    assert ran_stages(train) == ["train", "evaluate"]
    assert "its results are not pushed to the remote" in train and "its author must run 'dvc repro --pull'" in train
    report = fork.artifact("train", "report/report.md").read_text()
    assert f"vs `main` at `{target[:8]}`" in report  # the target project's commit, not the fork's main
    assert "| train.hist_gradient_boosting.max_leaf_nodes" in report
    assert "runs in the fork, without the target project's REPO_TOKEN" in fork.job_log("comment")
    assert s3_keys(gitlab) == stored and gitlab.api.notes(1) == []
    assert gitlab.head("fork-change", gitlab.fork) == source and gitlab.head("fork-change") == ""


def test_fork_merge_request_run_by_a_maintainer_in_the_target_project(gitlab):
    """The target project's secrets: it trains, pushes results, posts the report, and never pushes
    dvc.lock (the branch is in the fork); the log says what the author must commit."""
    push_main_results(gitlab)
    source = change_leaves(gitlab, "fork-change", 8, remote="fork")
    before = run_cache_entries(gitlab)
    mr = gitlab.pipeline(*MR_JOBS, merge_request=True, source_branch="fork-change", fork="runs_in_parent")
    assert mr.returncode == 0, mr.output
    train = mr.job_log("train")
    assert "from a fork into 'main', running in the target project" in train
    assert ran_stages(train) == ["train", "evaluate"]
    assert len(run_cache_entries(gitlab) - before) == 2
    assert "The branch 'fork-change' lives in a fork" in train and "its author must run 'dvc repro --pull'" in train
    assert gitlab.head("fork-change", gitlab.fork) == source and gitlab.head("fork-change") == ""
    [note] = report_notes(gitlab)
    assert "| train.hist_gradient_boosting.max_leaf_nodes" in note["body"]
    assert FORK_PATH not in note["body"]


def test_every_push_error_but_a_moved_branch_fails_the_job_without_leaking_a_token(gitlab):
    push_main_results(gitlab)
    commit = change_leaves(gitlab, "guarded", 15)
    revoked = {"REPO_TOKEN": "glpat-revoked"}
    refused = gitlab.pipeline("train", merge_request=True, source_branch="guarded", variables=revoked)
    assert refused.returncode != 0
    assert "error: could not push dvc.lock to 'guarded'" in refused.job_log("train")
    assert "glpat-revoked" not in refused.output and JOB_TOKEN not in refused.output

    hook = gitlab.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'GitLab: You are not allowed to push code to protected branches.'\nexit 1\n")
    hook.chmod(0o755)
    protected = gitlab.pipeline("train", merge_request=True, source_branch="guarded")
    assert protected.returncode != 0
    train = protected.job_log("train")
    assert "You are not allowed to push code to protected branches" in train
    assert "error: could not push dvc.lock to 'guarded'" in train
    assert TOKEN not in protected.output and gitlab.head("guarded") == commit


def readme_commands(project, heading: str) -> list[str]:
    """The bash blocks of the baked README's section `heading`, as a user would paste them."""
    section = project.joinpath("README.md").read_text(encoding="utf-8").split(f"### {heading}\n")[1].split("\n## ")[0]
    return re.findall(r"```bash\n(.*?)```", section, re.DOTALL)


def test_the_readme_runs_a_branch_and_a_merge_request_pipeline_on_your_machine(gitlab):
    """The README's commands, pasted as they are: a branch pipeline, then a merge request's up to
    its report, with the user's keys in the variables file the README names."""
    variables = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    variables["AWS_ENDPOINT_URL_S3"] = gitlab.s3_endpoint
    lines = [f"{key}: {value}" for key, value in variables.items()]
    (gitlab.project / ".gitlab-ci-local-variables.yml").write_text("\n".join(lines) + "\n")
    branch_block, merge_request_block = readme_commands(gitlab.project, "Run the pipeline on your machine")
    env = {**gitlab.env(), "PATH": f"{GITLAB_CI_LOCAL.parent}:{gitlab.env()['PATH']}"}

    branch = run(["bash", "-eo", "pipefail", "-c", branch_block], gitlab.project, env, check=False)
    assert branch.returncode == 0, branch.stdout + branch.stderr
    assert "Running stage 'train'" in branch.stdout and "dvc.lock matches this commit." in branch.stdout

    gitlab.git("switch", "--quiet", "-c", "fewer-leaves")
    params_file = gitlab.project / "params.yaml"
    params_file.write_text(re.sub(r"max_leaf_nodes: \d+", "max_leaf_nodes: 7", params_file.read_text()))
    run(["dvc", "repro", "--quiet"], gitlab.project, gitlab.s3_env)
    gitlab.git("commit", "--quiet", "-am", "Try 7 leaves")
    merge_request = run(["bash", "-eo", "pipefail", "-c", merge_request_block], gitlab.project, env, check=False)
    assert merge_request.returncode == 0, merge_request.stdout + merge_request.stderr
    assert "Pipeline: merge request !1 (detached) from a branch of this project into 'main'" in merge_request.stdout
    assert "max_leaf_nodes" in merge_request.stdout  # the report, printed by the README's last line
