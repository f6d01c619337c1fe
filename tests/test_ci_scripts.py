"""The jobs' steps from the generated .gitlab-ci.yml (with the guards of ci/pipeline.sh), run with
bash in a baked project on their failure and skip paths.

Faster than a gitlab-ci-local pipeline: the environment is built here with exactly the CI_*
variables a job would get. What a failing job must leave is one `error: ...` line saying what to
fix (no stack trace), and nothing posted or pushed on the paths that must skip.
"""

import subprocess
import uuid
from pathlib import Path

import pytest

from harness.ci_file import load
from harness.gitlab import FORK_ID, PROJECT_ID, merge_request_variables
from harness.project import project_env, run
from harness.s3 import s3_env

# What the runner's environment must not leak into a job: tokens CML would pick up, CML_* options.
NOT_INHERITED = ("REPO_TOKEN", "repo_token", "GITHUB_TOKEN", "GITLAB_TOKEN", "BITBUCKET_TOKEN", "VIRTUAL_ENV")


def ci_env(base: dict[str, str], tmp: Path, **variables: str) -> dict[str, str]:
    """A job's environment: `base` (project_env or s3_env) without inherited tokens, plus CI variables.

    AWS configuration files are pointed at nothing, so the machine's ~/.aws cannot change retries,
    credentials or endpoints."""
    env = {key: value for key, value in base.items() if key not in NOT_INHERITED and not key.startswith("CML_")}
    env.update(AWS_CONFIG_FILE=str(tmp / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-creds"))
    env.update(variables)
    return env


def run_job(project: Path, job: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The job's steps as GitLab Runner runs them: one `bash -eo pipefail` shell, ci/pipeline.sh
    sourced first (the install steps are left out: this suite's venv has the dependencies)."""
    steps = load(project)[job]["script"]
    script = "\n".join(["source ci/pipeline.sh", *steps])
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=180
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def assert_one_line_error(result: subprocess.CompletedProcess, start: str) -> str:
    """Exit 1 with a single `error:` line starting with `start`, and no stack trace."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    [line] = error_lines(result)
    assert line.startswith(start), line
    return line


# --- train --------------------------------------------------------------------------------------

DEFAULT_BRANCH = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}
# A fork's merge request pipeline running in the fork: CI_PROJECT_ID is the fork's.
FORK_MERGE_REQUEST = merge_request_variables("fork-change", source_project=FORK_ID, runs_in=FORK_ID)
REMOTE_UNREADABLE = "error: cannot read the DVC remote 'storage'"


def new_bucket() -> str:
    return f"ci-{uuid.uuid4().hex[:12]}"


def job_checkout(project: Path, tmp: Path) -> Path:
    """The job's working copy, as a runner clones it: no DVC cache and no data (both git-ignored).

    In the baked project itself the post-generation hook left the raw data in the workspace and the
    DVC cache, so `dvc pull` would succeed without reading the remote at all."""
    checkout = tmp / "job" / project.name
    run(["git", "clone", "--quiet", str(project), str(checkout)], tmp, project_env(project))
    assert not (checkout / ".dvc/cache").exists() and not (checkout / "data/raw/dataset.csv").exists()
    return checkout


def in_checkout(env: dict[str, str], checkout: Path) -> dict[str, str]:
    return {**env, "PYTHONPATH": str(checkout / "src")}


def test_train_without_credentials_on_default_branch_fails(bake, tmp_path):
    project = bake()
    result = run_job(project, "train", ci_env(project_env(project), tmp_path, **DEFAULT_BRANCH))
    line = assert_one_line_error(result, "error: AWS_ACCESS_KEY_ID is not set")
    assert "AWS_SECRET_ACCESS_KEY" in line and "not protected" in line
    assert not (project / ".dvc/config.local").exists()  # stopped before touching DVC


def test_train_without_credentials_in_fork_merge_request_skips(bake, tmp_path):
    project = bake()
    result = run_job(project, "train", ci_env(project_env(project), tmp_path, **FORK_MERGE_REQUEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "training is skipped" in result.stdout
    assert result.stderr == ""
    assert not (project / "dvc.lock").exists()


@pytest.mark.slow
def test_train_with_unreachable_endpoint_fails_clearly(bake, tmp_path, closed_port):
    bucket = new_bucket()
    # A committed endpoint that the CI variable overrides: the override is what gets used (and fails).
    checkout = job_checkout(bake(s3_bucket=bucket, s3_endpoint_url="https://minio.example.com"), tmp_path)
    endpoint = f"http://127.0.0.1:{closed_port}"
    env = ci_env(
        project_env(checkout),
        tmp_path,
        **DEFAULT_BRANCH,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=endpoint,
    )
    result = run_job(checkout, "train", env)
    assert_one_line_error(result, f"{REMOTE_UNREADABLE} (s3://{bucket}/dvc)")
    assert "ERROR: " in result.stderr  # DVC's own account of the cause comes first
    assert endpoint in (checkout / ".dvc/config.local").read_text()  # the override was what failed


@pytest.mark.slow
def test_train_when_data_was_never_pushed_says_so(bake, tmp_path, s3_endpoint):
    bucket = new_bucket()
    checkout = job_checkout(bake(s3_bucket=bucket), tmp_path)
    env = ci_env(s3_env(checkout, s3_endpoint, bucket), tmp_path, **DEFAULT_BRANCH)  # an empty bucket
    result = run_job(checkout, "train", env)
    line = assert_one_line_error(result, f"{REMOTE_UNREADABLE} (s3://{bucket}/dvc)")
    assert "'dvc push'" in line
    assert "ERROR: " in result.stderr  # DVC's own account of the cause comes first
    assert not (checkout / "dvc.lock").exists()  # nothing was trained


@pytest.mark.slow
def test_train_with_stale_dvc_lock_on_default_branch_fails(bake, tmp_path, s3_endpoint):
    """params.yaml changed and committed without reproducing: the default branch must not accept it."""
    bucket = new_bucket()
    project = bake(dataset="wine", s3_bucket=bucket)
    env = ci_env(s3_env(project, s3_endpoint, bucket), tmp_path, **DEFAULT_BRANCH)
    run(["dvc", "repro", "--quiet"], project, env)
    run(["git", "add", "--all"], project, env)
    run(["git", "commit", "--quiet", "-m", "Add dvc.lock"], project, env)
    run(["dvc", "push", "--quiet"], project, env)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("max_leaf_nodes: 31", "max_leaf_nodes: 4"))
    run(["git", "commit", "--quiet", "-am", "Try 4 leaves, forgetting dvc repro"], project, env)

    checkout = job_checkout(project, tmp_path)
    env = in_checkout(env, checkout)
    result = run_job(checkout, "train", env)
    line = assert_one_line_error(result, "error: dvc.lock does not match params.yaml and the code of this commit")
    assert "run 'dvc repro --pull'" in line and "commit dvc.lock" in line
    assert run(["git", "status", "--porcelain", "--", "dvc.lock"], checkout, env).stdout.strip() == "M dvc.lock"
    # Only the stages that read the changed parameter ran; data preparation came from the remote.
    assert "Running stage 'train'" in result.stdout and "Running stage 'prepare'" not in result.stdout
    # The same commit on other branches: a feature branch before its merge request only warns (its
    # merge request pipeline commits dvc.lock); a protected branch fails like the default branch.
    feature = run_job(checkout, "train", {**env, "CI_COMMIT_BRANCH": "feature"})
    assert feature.returncode == 0, feature.stdout + feature.stderr
    assert "warning: dvc.lock does not match" in feature.stdout and "open a merge request" in feature.stdout
    protected = {**env, "CI_COMMIT_BRANCH": "release-1", "CI_COMMIT_REF_PROTECTED": "true"}
    assert_one_line_error(run_job(checkout, "train", protected), "error: dvc.lock does not match")
    # A merge request of this project without REPO_TOKEN: the fix, and which token fits which GitLab.
    merge_request = {**env, **merge_request_variables("feature", runs_in=PROJECT_ID)}
    del merge_request["CI_COMMIT_BRANCH"]
    line = assert_one_line_error(run_job(checkout, "train", merge_request), "error: dvc.lock does not match")
    assert "REPO_TOKEN is not set" in line and "on GitLab.com Free a bot account's personal access token" in line


# --- registry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "variables", "start"),
    [
        ("register", {"REPO_TOKEN": ""}, "error: REPO_TOKEN is not set: the registry's tags are pushed with it"),
        (
            "promote",
            {"REPO_TOKEN": "glpat-x", "VERSION": ""},
            "error: no version to promote; run a pipeline with the inputs version",
        ),
    ],
    ids=["register-without-repo-token", "promote-without-version"],
)
def test_registry_jobs_stop_before_tagging(bake, tmp_path, job, variables, start):
    project = bake()
    result = run_job(project, job, ci_env(project_env(project), tmp_path, **DEFAULT_BRANCH, **variables))
    assert_one_line_error(result, start)
    assert run(["git", "tag"], project).stdout == ""


# --- comment ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        (FORK_MERGE_REQUEST, "This pipeline runs in the fork, without the target project's REPO_TOKEN"),
        ({**FORK_MERGE_REQUEST, "CI_PROJECT_ID": PROJECT_ID}, "No report was built in this pipeline"),
    ],
    ids=["fork-running-in-the-fork", "no-report"],
)
def test_comment_skips_with_one_line_where_nothing_can_be_posted(bake, tmp_path, variables, says):
    project = bake()
    result = run_job(project, "comment", ci_env(project_env(project), tmp_path, REPO_TOKEN="glpat-x", **variables))
    assert result.returncode == 0, result.stdout + result.stderr
    assert says in result.stdout and result.stderr == ""
    assert "0.20.6" not in result.stdout  # stopped before `cml --version`
