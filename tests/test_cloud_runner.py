"""`training_runner=cml`: the launch job's checks, its bounded wait and the clean-up, against the
loopback GitLab API double and the strict CML 0.20.6 and leo stand-ins (harness/stand_ins).

No cloud machine boots here: the CML stand-in plays the machine's part as far as GitLab can see
it (a runner registered with CML's settings, then online). What only a real cloud account would
show (terraform talking to AWS, the VM's set-up under systemd) is not tested here.
"""

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.gitlab import BOT, PROJECT_ID, PROJECT_PATH, STAND_INS, TOKEN, LocalGitLab
from harness.gitlab_api import GitLabApi
from harness.project import bake_defaults, commit_first_model, run
from harness.s3 import s3_env

MAINTAINER = {"id": 43, "username": "project_4242_runner_bot", "access_level": 40}
RUNNER_TOKEN = "glpat-runner-registration-token"  # CLOUD_RUNNER_TOKEN's: Maintainer, protected
PIPELINE, IID = "1000", "7"  # CI_PIPELINE_ID (jobs only) and CI_PIPELINE_IID (known at the pipeline's creation)
OIDC = {"AWS_ROLE_ARN": "arn:aws:iam::1:role/ci", "AWS_WEB_IDENTITY_TOKEN_FILE": "/token"}
CLOUD_KEY = {"TRAIN_CLOUD_AWS_ACCESS_KEY_ID": "AKIDCLOUD", "TRAIN_CLOUD_AWS_SECRET_ACCESS_KEY": "cloud-secret"}
AWS = {**CLOUD_KEY, "TRAIN_CLOUD_AWS_SECURITY_GROUP": "sg-1"}
S3_KEY = {"AWS_ACCESS_KEY_ID": "AKIDS3", "AWS_SECRET_ACCESS_KEY": "s3-secret"}  # the other jobs' key


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return bake_defaults(tmp_path_factory.mktemp("cml"), "training_runner=cml")


def cloud_runner(project: Path, api: GitLabApi | None, *args: str, **variables: str):
    """`python3 ci/cloud_runner.py ARGS` as the CML image's jobs run it."""
    env = {"PATH": f"{STAND_INS}{os.pathsep}{os.environ['PATH']}", "HOME": variables.pop("HOME", str(project))}
    if api is not None:
        env.update(
            CI_API_V4_URL=api.api_url, CI_PROJECT_ID=PROJECT_ID, REPO_TOKEN=TOKEN, CLOUD_RUNNER_TOKEN=RUNNER_TOKEN
        )
    env.update({"CI_PIPELINE_ID": PIPELINE, "CI_PIPELINE_IID": IID, "TRAIN_CLOUD": "aws", **variables})
    command = [sys.executable, "ci/cloud_runner.py", *args]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize(
    ("user", "variables", "expected"),
    [
        (MAINTAINER, AWS, []),
        (
            MAINTAINER,
            {**S3_KEY, "TRAIN_CLOUD_AWS_SECURITY_GROUP": "sg-1"},  # the S3 key is not the cloud key
            ["TRAIN_CLOUD_AWS_ACCESS_KEY_ID, TRAIN_CLOUD_AWS_SECRET_ACCESS_KEY not set"],
        ),
        (MAINTAINER, {**AWS, "TRAIN_CLOUD": "gcp"}, ["GOOGLE_APPLICATION_CREDENTIALS_DATA not set"]),
        (MAINTAINER, {**AWS, "TRAIN_CLOUD": "openstack"}, ["TRAIN_CLOUD is 'openstack'"]),
        (MAINTAINER, {**AWS, "TRAIN_CLOUD_AWS_SECURITY_GROUP": ""}, ["TRAIN_CLOUD_AWS_SECURITY_GROUP is not set"]),
        (BOT, AWS, ["CLOUD_RUNNER_TOKEN's user is not a Maintainer"]),
        (
            {**MAINTAINER, "scopes": ["read_api", "write_repository"]},
            AWS,
            ["CLOUD_RUNNER_TOKEN has the scopes read_api"],
        ),
        (MAINTAINER, {**AWS, "CLOUD_RUNNER_TOKEN": ""}, ["CLOUD_RUNNER_TOKEN is not set: "]),
        (MAINTAINER, {**AWS, "REPO_TOKEN": RUNNER_TOKEN}, ["CLOUD_RUNNER_TOKEN is the same token as REPO_TOKEN"]),
        (
            BOT,
            {**OIDC, "TRAIN_CLOUD_AWS_SECURITY_GROUP": "sg"},
            ["TRAIN_CLOUD_PERMISSION_SET is not set", "not a Maintainer"],
        ),
    ],
    ids=[
        *("ready", "no-keys", "gcp-no-keys", "unknown-cloud", "no-security-group", "developer", "no-api-scope"),
        *("no-runner-token", "repo-token-reused", "oidc"),
    ],
)
def test_preflight_names_each_missing_piece_in_one_line(project, user, variables, expected):
    """The runner is registered with CLOUD_RUNNER_TOKEN (Maintainer, protected), never with REPO_TOKEN,
    which every job of every branch reads (a Developer's token)."""
    with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT, RUNNER_TOKEN: user}) as api:
        result = cloud_runner(project, api, "preflight", **variables)
    errors = error_lines(result)
    assert result.returncode == (1 if expected else 0), result.stderr
    assert len(errors) == len(expected) and all(part in line for part, line in zip(expected, errors, strict=True))


def test_preflight_says_when_gitlab_cannot_be_reached(project, closed_port):
    env = {"CI_API_V4_URL": f"http://127.0.0.1:{closed_port}/api/v4", "CI_PROJECT_ID": PROJECT_ID}
    env.update(REPO_TOKEN=TOKEN, CLOUD_RUNNER_TOKEN=RUNNER_TOKEN)
    result = cloud_runner(project, None, "preflight", **AWS, **env)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: cannot reach the GitLab API at http://127.0.0.1:{closed_port}/api/v4 "
        "([Errno 111] Connection refused): retry the job, or check the runner's network."
    ]


def test_a_runner_that_never_comes_online_fails_the_launch_within_the_bound(project):
    with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT, RUNNER_TOKEN: MAINTAINER}) as api:
        api.add_runner(f"cml-{PIPELINE}-9", [f"cml-{IID}"], status="never_contacted")
        result = cloud_runner(project, api, "wait", "0.02")  # about a second
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: the cloud runner cml-{IID} did not come online within 0.02 minutes, so the train job will not "
        "start; see this job's log above (the VM's set-up), and check the cloud console for a machine tagged "
        f"gitlab_pipeline={PIPELINE}."
    ]


def test_remove_with_nothing_launched_says_so(project, tmp_path):
    with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT, RUNNER_TOKEN: MAINTAINER}) as api:
        recorded = cloud_runner(project, api, "record", "cml-never", HOME=str(tmp_path))
        removed = cloud_runner(project, api, "remove")
    assert recorded.returncode == 0 and not (project / "cloud_runner.env").exists()
    assert removed.returncode == 0 and "nothing to remove" in removed.stderr


# --- The jobs, run by gitlab-ci-local -----------------------------------------------------------


@pytest.fixture
def gitlab(bake, jobs_venv, s3_endpoint, tmp_path):
    """A cml project whose main branch breaks training (a negative max_leaf_nodes)."""
    bucket = f"cml-{uuid.uuid4().hex[:12]}"
    project = bake(s3_bucket=bucket, training_runner="cml")
    env = s3_env(project, s3_endpoint, bucket)
    commit_first_model(project, env)
    run(["dvc", "push", "--quiet"], project, env)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("max_leaf_nodes: 31", "max_leaf_nodes: -1"))
    run(["git", "commit", "--quiet", "-am", "Break training"], project, env)
    with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT, RUNNER_TOKEN: MAINTAINER}) as api:
        yield LocalGitLab(project, jobs_venv, s3_endpoint, api)


@pytest.mark.slow
def test_a_failed_train_job_leaves_no_runner_and_no_machine(gitlab, tmp_path):
    leo_log = tmp_path / "leo-calls.jsonl"
    variables = {
        **CLOUD_KEY,  # the pipeline's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are the S3 key
        "CI_COMMIT_REF_PROTECTED": "true",
        "CLOUD_RUNNER_TOKEN": RUNNER_TOKEN,  # protected: this pipeline runs on a protected branch
        "TRAIN_CLOUD_AWS_SECURITY_GROUP": "sg-0123",
        "HOME": str(tmp_path / "home"),
        "LEO_STAND_IN_LOG": str(leo_log),
    }
    result = gitlab.pipeline("launch-runner", "train", "remove-runner", variables=variables)
    assert result.returncode != 0  # the train job failed
    assert "train.hist_gradient_boosting.max_leaf_nodes must not be negative" in result.job_log("train")

    [launch] = [call for call in gitlab.cml_calls() if call["argv"][:2] == ["runner", "launch"]]
    assert launch["outcome"] == "launched"
    assert launch["startup_script"] == (gitlab.project / "ci" / "vm-startup.sh").read_text()
    # The machine's user data holds the cloud key, not the S3 key (which the train job gets from GitLab).
    [resource] = json.loads(Path(launch["tfstate"]).read_text())["resources"]
    user_data = base64.b64decode(resource["instances"][0]["attributes"]["startup_script"]).decode()
    assert (
        "export AWS_ACCESS_KEY_ID=AKIDCLOUD" in user_data and "export AWS_SECRET_ACCESS_KEY=cloud-secret" in user_data
    )
    assert "s3-secret" not in user_data and "testing" not in user_data
    options = launch["options"]
    # Labelled with the pipeline's IID (the first pipeline here), which GitLab also puts in the train job's tag.
    assert options["labels"] == "cml-1" and options["single"] is True
    assert launch["token_source"] == "--driver-token"  # CLOUD_RUNNER_TOKEN, not REPO_TOKEN
    assert options["cloud-image"] == "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
    # The launch job took "run untagged jobs" away from the new runner ...
    [locked] = gitlab.api.requests_to("PUT", r"/runners/\d+$")
    assert locked.form["run_untagged"] == "false"
    # ... and the clean-up unregistered it and deleted its machine (the id CML's state recorded).
    assert not [runner for runner in gitlab.api.runners() if "cml-1" in runner["tag_list"]]
    [destroyed] = [json.loads(line) for line in leo_log.read_text().splitlines()]
    assert destroyed["identifier"] == launch["tpi_id"]
    assert (destroyed["cloud"], destroyed["region"]) == ("aws", "us-east")
    assert "destroyed the machine" in result.job_log("remove-runner")
