"""The generated pipeline, run end to end by gitlab-ci-local against moto's S3 server: a
default-branch pipeline, then a merge request that changes a training parameter, then the same
merge request pipeline again, and a merge request from a fork."""

import json
import re
import uuid

import boto3
import pytest

from .conftest import ran_stages, run, s3_env
from .gitlab import PROJECT_URL, GitLabApiDouble, LocalGitLab, create_jobs_venv

pytestmark = pytest.mark.slow


@pytest.fixture
def gitlab(bake, tmp_path, s3_endpoint):
    """A baked project as a developer leaves it after the README's first steps: dvc.lock
    committed, the raw data pushed, the pipeline's results not (so CI trains for real)."""
    bucket = f"ci-{uuid.uuid4().hex[:12]}"
    project = bake(dataset="wine", python_version="3.11", s3_bucket=bucket)
    env = s3_env(project, s3_endpoint, bucket)
    run(["dvc", "repro", "--quiet"], project, env)
    run(["git", "add", "--all"], project, env)
    run(["git", "commit", "--quiet", "-m", "Add dvc.lock"], project, env)
    run(["dvc", "push", "--quiet", "data/raw/dataset.csv.dvc"], project, env)

    jobs_venv = create_jobs_venv(project, tmp_path / "jobs-venv")
    with GitLabApiDouble() as api_url:
        yield LocalGitLab(project, jobs_venv, s3_endpoint, api_url)


def change_trees(gitlab: LocalGitLab, branch: str, count: int) -> str:
    gitlab.git("switch", "--quiet", "-c", branch)
    params_file = gitlab.project / "params.yaml"
    params_file.write_text(params_file.read_text().replace("n_estimators: 100", f"n_estimators: {count}"))
    gitlab.git("commit", "--quiet", "-am", f"Try {count} trees")
    gitlab.push(branch)
    return gitlab.git("rev-parse", "HEAD")


def test_main_then_merge_request_report_and_rerun(gitlab):
    main = gitlab.pipeline("train")
    assert main.returncode == 0, main.output
    assert ran_stages(main.job_log("train")) == ["prepare", "train", "evaluate"]
    assert "dvc.lock matches this commit." in main.job_log("train")

    commit = change_trees(gitlab, "fewer-trees", 10)
    mr_jobs = ("train", "report", "comment")
    mr = gitlab.pipeline(*mr_jobs, merge_request=True, source_branch="fewer-trees")
    assert mr.returncode == 0, mr.output
    # The parameter feeds `train` only: data preparation is restored, not rerun.
    assert ran_stages(mr.job_log("train")) == ["train", "evaluate"]

    # dvc.lock was reproduced and pushed back to the branch as a child of the MR's commit.
    pushed = gitlab.origin_head("fewer-trees")
    assert pushed != commit
    assert run(["git", "rev-parse", f"{pushed}^"], gitlab.origin, gitlab.env()).stdout.strip() == commit
    changed = run(["git", "diff", "--name-only", commit, pushed], gitlab.origin, gitlab.env()).stdout.split()
    assert changed == ["dvc.lock"]

    report = mr.artifact("report", "report/report.md").read_text()
    assert "| `train.random_forest.n_estimators` | 100 | 10 |" in report
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert re.search(rf"\| `{metric}` \| \d\.\d{{4}} \| \d\.\d{{4}} \| [+-]\d\.\d{{4}} \|", report), metric
    images = re.findall(r"!\[[^\]]*\]\(\./([^)]+)\)", report)
    assert {"roc.png", "precision_recall.png", "confusion_matrix.png", "feature_importance.png"} <= set(images)
    for image in images:
        assert mr.artifact("report", f"report/{image}").read_bytes()[:4] == b"\x89PNG", image

    [call] = gitlab.cml_calls()
    assert call["argv"][:3] == ["comment", "update", "report/report.md"]
    options = call["options"]
    assert options["driver"] == "gitlab" and options["repo"] == PROJECT_URL
    assert options["target"] == "pr/1" and options["publish-native"] is True and options["watermark-title"]
    assert call["markdown"] == report
    assert call["token_source"] == "REPO_TOKEN" and call["env"]["ITERATIVE_DO_NOT_TRACK"] == "1"

    # The same MR pipeline again: everything comes from the remote, nothing is retrained, and
    # the push is left to the branch's newer pipeline.
    again = gitlab.pipeline(*mr_jobs, merge_request=True, source_branch="fewer-trees")
    assert again.returncode == 0, again.output
    assert ran_stages(again.job_log("train")) == []
    assert "has moved on" in again.job_log("train")
    assert gitlab.origin_head("fewer-trees") == pushed
    assert [c["argv"][1] for c in gitlab.cml_calls()] == ["update", "update"]


def test_fork_merge_request_tests_but_never_pushes_or_comments(gitlab):
    commit = change_trees(gitlab, "fork-change", 20)
    fork = gitlab.pipeline(merge_request=True, fork=True, credentials=False, source_branch="fork-change")
    assert fork.returncode == 0, fork.output
    junit = fork.artifact("test", "junit.xml").read_text()
    assert re.search(r'<testsuite [^>]*tests="([1-9]\d*)"', junit) and 'failures="0"' in junit
    assert "The remote does not allow anonymous reads, so training is skipped" in fork.job_log("train")
    assert ran_stages(fork.job_log("train")) == []
    assert "Merge request from a fork: no comment is posted" in fork.job_log("comment")
    assert gitlab.cml_calls() == []
    assert gitlab.origin_head("fork-change") == commit


def test_fork_merge_request_trains_from_an_anonymously_readable_remote(gitlab):
    """Where the bucket allows anonymous reads, a fork's pipeline trains without credentials, and
    still never writes to the remote or the repository, nor comments."""
    bucket = json.loads((gitlab.project / ".cookiecutter.json").read_text())["s3_bucket"]
    s3 = boto3.client(
        "s3", endpoint_url=gitlab.s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    # Public-read ACLs (moto answers anonymous HEAD requests under ACLs, not under bucket policies).
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    for stored_object in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        s3.put_object_acl(Bucket=bucket, Key=stored_object["Key"], ACL="public-read")
    stored = s3.list_objects_v2(Bucket=bucket)["KeyCount"]

    commit = change_trees(gitlab, "fork-anonymous", 20)
    fork = gitlab.pipeline(
        "train", "report", "comment", merge_request=True, fork=True, credentials=False, source_branch="fork-anonymous"
    )
    assert fork.returncode == 0, fork.output
    train = fork.job_log("train")
    assert "the remote is read anonymously" in train
    assert ran_stages(train) == ["prepare", "train", "evaluate"], train
    assert "Merge request from a fork: results are not pushed to the remote." in train
    assert "warning: dvc.lock does not match" in train
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == stored
    assert gitlab.origin_head("fork-anonymous") == commit
    report = fork.artifact("report", "report/report.md").read_text()
    assert "| `train.random_forest.n_estimators` | 100 | 20 |" in report
    # main's results never reached the remote (only its raw data did): the report says so.
    assert "`origin/main` has no metrics yet" in report
    assert gitlab.cml_calls() == []
