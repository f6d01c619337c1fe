"""The generated ci/*.sh job scripts, run directly with bash in a baked project, on their failure paths.

Faster than a gitlab-ci-local pipeline: the environment is built here with exactly the CI_*
variables a job would get. What a failing job must leave is one `error: ...` line saying what to
fix (no stack trace), and nothing posted or pushed on the paths that must skip.
"""

import json
import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import project_env, run, s3_env
from .gitlab import PROJECT_ID, PROJECT_URL, STAND_INS, TOKEN, GitLabApiDouble

FORK_PROJECT_ID = "9999"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
# What the runner's environment must not leak into a job: tokens CML would pick up, CML_* options.
NOT_INHERITED = ("REPO_TOKEN", "repo_token", "GITHUB_TOKEN", "GITLAB_TOKEN", "BITBUCKET_TOKEN", "VIRTUAL_ENV")
TOKEN_MISSING = "error: REPO_TOKEN is not set: create a project access token"
TOKEN_REFUSED = "error: REPO_TOKEN was refused by"


def ci_env(base: dict[str, str], tmp: Path, **variables: str) -> dict[str, str]:
    """A job's environment: `base` (project_env or s3_env) without inherited tokens, plus CI variables.

    AWS configuration files are pointed at nothing, so the machine's ~/.aws cannot change retries,
    credentials or endpoints."""
    env = {key: value for key, value in base.items() if key not in NOT_INHERITED and not key.startswith("CML_")}
    env.update(AWS_CONFIG_FILE=str(tmp / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-creds"))
    env.update(variables)
    return env


def run_script(project: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", f"ci/{script}"], cwd=project, env=env, capture_output=True, text=True, timeout=180)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def assert_one_line_error(result: subprocess.CompletedProcess, start: str) -> str:
    """Exit 1 with a single `error:` line starting with `start`, and no stack trace."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    [line] = error_lines(result)
    assert line.startswith(start), line
    return line


@pytest.fixture
def closed_port():
    """A loopback port bound but not listening: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# --- comment.sh ---------------------------------------------------------------------------------


@pytest.fixture
def api_url():
    with GitLabApiDouble() as url:
        yield url


@pytest.fixture
def comment(bake, tmp_path, api_url):
    """Run ci/comment.sh as the comment job of a same-project MR pipeline; cml is the stand-in."""
    project = bake()
    cml_log = tmp_path / "cml-calls.jsonl"

    def _run(report: bool = True, **variables: str):
        if report:
            (project / "report").mkdir(exist_ok=True)
            (project / "report" / "roc.png").write_bytes(PNG)
            (project / "report" / "report.md").write_text("# Model report\n\n![ROC](./roc.png)\n", encoding="utf-8")
        env = ci_env(
            project_env(project),
            tmp_path,
            CI_PIPELINE_SOURCE="merge_request_event",
            CI_MERGE_REQUEST_IID="7",
            CI_MERGE_REQUEST_PROJECT_ID=PROJECT_ID,
            CI_MERGE_REQUEST_SOURCE_PROJECT_ID=PROJECT_ID,
            CI_PROJECT_ID=PROJECT_ID,
            CI_PROJECT_URL=PROJECT_URL,
            CI_API_V4_URL=api_url,
            CML_STAND_IN_LOG=str(cml_log),
            REPO_TOKEN=TOKEN,
        )
        env["PATH"] = f"{STAND_INS}{os.pathsep}{env['PATH']}"
        for name, value in variables.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        result = run_script(project, "comment.sh", env)
        calls = [json.loads(line) for line in cml_log.read_text().splitlines()] if cml_log.exists() else []
        return result, calls

    return _run


def test_comment_without_token_says_how_to_create_one(comment):
    result, calls = comment(REPO_TOKEN=None)
    line = assert_one_line_error(result, TOKEN_MISSING)
    assert "role Developer" in line and "not protected" in line
    assert calls == []


def test_comment_with_refused_token_stops_before_cml(comment, api_url):
    result, calls = comment(REPO_TOKEN="glpat-expired-token")
    line = assert_one_line_error(result, f"{TOKEN_REFUSED} {api_url} (HTTP 401)")
    assert "expired" in line
    assert "glpat-expired-token" not in result.stdout + result.stderr
    assert calls == []


def test_comment_with_unreachable_api_says_so_without_blaming_the_token(comment, closed_port):
    url = f"http://127.0.0.1:{closed_port}/api/v4"
    result, calls = comment(CI_API_V4_URL=url)
    assert_one_line_error(result, f"error: cannot reach the GitLab API at {url} to check REPO_TOKEN")
    assert TOKEN_REFUSED not in result.stderr
    assert calls == []


def test_comment_with_valid_token_updates_one_native_comment(comment):
    result, calls = comment()
    assert result.returncode == 0, result.stdout + result.stderr
    [call] = calls
    assert call["argv"][:3] == ["comment", "update", "report/report.md"]
    options = call["options"]
    assert options["driver"] == "gitlab" and options["repo"] == PROJECT_URL and options["target"] == "pr/7"
    assert options["publish-native"] is True and options["watermark-title"]
    assert [image["ref"] for image in call["images"]] == ["./roc.png"]
    assert call["token_source"] == "REPO_TOKEN" and call["warnings"] == []
    assert f"{PROJECT_URL}/-/merge_requests/7#note_" in result.stdout  # the stand-in's note URL
    assert TOKEN not in result.stdout + result.stderr


def test_comment_on_fork_merge_request_posts_nothing(comment):
    result, calls = comment(CI_MERGE_REQUEST_SOURCE_PROJECT_ID=FORK_PROJECT_ID, REPO_TOKEN=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Merge request from a fork: no comment is posted" in result.stdout
    assert calls == []


def test_comment_without_report_posts_nothing(comment):
    result, calls = comment(report=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No report was built in this pipeline" in result.stdout
    assert calls == []


# --- train.sh -----------------------------------------------------------------------------------

DEFAULT_BRANCH = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}
FORK_MERGE_REQUEST = {
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_MERGE_REQUEST_IID": "3",
    "CI_MERGE_REQUEST_PROJECT_ID": PROJECT_ID,
    "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": FORK_PROJECT_ID,
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "fork-change",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
}
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
    result = run_script(project, "train.sh", ci_env(project_env(project), tmp_path, **DEFAULT_BRANCH))
    line = assert_one_line_error(result, "error: AWS_ACCESS_KEY_ID is not set")
    assert "AWS_SECRET_ACCESS_KEY" in line and "not protected" in line
    assert not (project / ".dvc/config.local").exists()  # stopped before touching DVC


def test_train_without_credentials_in_fork_merge_request_skips(bake, tmp_path):
    project = bake()
    result = run_script(project, "train.sh", ci_env(project_env(project), tmp_path, **FORK_MERGE_REQUEST))
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
    result = run_script(checkout, "train.sh", env)
    assert_one_line_error(result, f"{REMOTE_UNREADABLE} (s3://{bucket}/dvc)")
    assert "ERROR: " in result.stderr  # DVC's own account of the cause comes first
    assert endpoint in (checkout / ".dvc/config.local").read_text()  # the override was what failed


@pytest.mark.slow
def test_train_when_data_was_never_pushed_says_so(bake, tmp_path, s3_endpoint):
    bucket = new_bucket()
    checkout = job_checkout(bake(s3_bucket=bucket), tmp_path)
    env = ci_env(s3_env(checkout, s3_endpoint, bucket), tmp_path, **DEFAULT_BRANCH)  # an empty bucket
    result = run_script(checkout, "train.sh", env)
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
    params.write_text(params.read_text().replace("n_estimators: 100", "n_estimators: 10"))
    run(["git", "commit", "--quiet", "-am", "Try 10 trees, forgetting dvc repro"], project, env)

    checkout = job_checkout(project, tmp_path)
    env = in_checkout(env, checkout)
    result = run_script(checkout, "train.sh", env)
    line = assert_one_line_error(result, "error: dvc.lock does not match params.yaml and the code of this commit")
    assert "run 'dvc repro --pull'" in line and "commit dvc.lock" in line
    assert run(["git", "status", "--porcelain", "--", "dvc.lock"], checkout, env).stdout.strip() == "M dvc.lock"
    # Only the stages that read the changed parameter ran; data preparation came from the remote.
    assert "Running stage 'train'" in result.stdout and "Running stage 'prepare'" not in result.stdout
