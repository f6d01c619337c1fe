"""The least-privilege policy the baked README gives for the CI key is enough for everything the
pipeline does, and a key with less fails with one line naming what it lacks.

moto's S3 server, in a process of its own, checks every request against IAM the way AWS does
(`S3Process.enforce`), with users holding exactly the README's policy (its JSON, as rendered),
that policy without `s3:PutObject`, or nothing.
"""

import copy
import json
import re
from types import SimpleNamespace

import pytest

from harness.ci_job import Checkout, error_lines, s3_vars
from harness.dvc_remote import DvcRemote
from harness.gitlab import PROJECT_ID, merge_request_variables
from harness.project import project_env, ran_stages, run
from harness.s3 import S3Process

pytestmark = pytest.mark.slow

BUCKET = "tumour-classifier-dvc"  # the defaults'
REMOTE = f"the DVC remote 'storage' (s3://{BUCKET}/dvc)"


def readme_policy(project) -> dict:
    """The JSON policy of the README's "The S3 remote" section, exactly as written there."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The S3 remote") :]
    section = section[: section.index("\n## ")]
    [policy] = re.findall(r"```json\n(.*?)```", section, re.DOTALL)
    return json.loads(policy)


def without_put(policy: dict) -> dict:
    read_only = copy.deepcopy(policy)
    for statement in read_only["Statement"]:
        if isinstance(statement["Action"], list):
            statement["Action"] = [action for action in statement["Action"] if action != "s3:PutObject"]
    assert read_only != policy
    return read_only


@pytest.fixture(scope="module")
def origin(trained_project):
    """The project as GitLab holds it."""
    return trained_project


@pytest.fixture(scope="module")
def s3(origin, tmp_path_factory):
    """IAM enforced, and main pushed with the README's key (`dvc push`, as the README says).
    `keys`: CI/CD variables for `ci` (the README's policy), `reader` (that policy without
    s3:PutObject), `files-only` (s3:PutObject on the outputs' folder only, not the run-cache's)
    and `nobody` (no policy); `remote`: the DVC remote, read with the `ci` key."""
    tmp = tmp_path_factory.mktemp("keys")
    policy = readme_policy(origin)
    files_only = without_put(policy)
    files_only["Statement"].append(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/dvc/files/*"}
    )
    with S3Process(BUCKET) as server:
        users = {"ci": policy, "reader": without_put(policy), "files-only": files_only, "nobody": None}
        keys = {
            name: {**s3_vars(server.endpoint, tmp), **server.key_for(name, grants)} for name, grants in users.items()
        }
        server.enforce()
        ci = keys["ci"]
        run(["dvc", "push", "--quiet"], origin, project_env(origin, **ci))
        yield SimpleNamespace(
            keys=keys,
            remote=DvcRemote(
                server.endpoint,
                BUCKET,
                aws_access_key_id=ci["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=ci["AWS_SECRET_ACCESS_KEY"],
            ),
        )


def test_the_readme_policy_is_enough_for_train_report_and_restore(origin, s3, tmp_path):
    """The train job (pull, `dvc repro --pull`, push of the results and the run-cache), the
    report job of a merge request (main's metrics and plots read from the remote), and a fresh
    clone's `dvc repro --pull`, all with the README's key."""
    assert readme_policy(origin)["Statement"] == [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{BUCKET}/dvc/*"},
    ]
    job = Checkout.clone(origin, "leaves-10", tmp_path, s3.keys["ci"])
    train = job.job("train")
    assert train.returncode == 0, train.stdout + train.stderr
    assert ran_stages(train.stdout) == ["train", "evaluate"], train.stdout
    assert s3.remote.missing_of(job.path) == [] and s3.remote.incomplete_run_cache() == {}

    main = run(["git", "rev-parse", "main"], origin).stdout.strip()
    merge_request = merge_request_variables("leaves-10", runs_in=PROJECT_ID, diff_base=main)
    steps = job.steps("train")  # in a merge request, the steps after training build the report
    report = job.run(steps[steps.index("is_merge_request || exit 0") :], **merge_request, CI_COMMIT_BRANCH="")
    assert report.returncode == 0, report.stdout + report.stderr
    main_accuracy = json.loads((origin / "reports/evaluation/metrics.json").read_text())["accuracy"]
    assert f"{main_accuracy:.4f}".rstrip("0") in (job.path / "report/metrics.md").read_text()
    assert (job.path / "report/report.md").is_file()

    clone = Checkout.clone(origin, "leaves-10", tmp_path, s3.keys["ci"])
    restored = run(["dvc", "repro", "--pull"], clone.path, clone.env)
    assert ran_stages(restored.stdout) == [] and "Stage 'train' is cached" in restored.stdout, restored.stdout


def test_a_read_only_key_trains_but_its_push_fails_in_one_line(origin, s3, tmp_path):
    before = s3.remote.keys()
    job = Checkout.clone(origin, "leaves-15", tmp_path, s3.keys["reader"])
    result = job.job("train")
    assert "Running stage 'train'" in result.stdout  # the pulls worked
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = error_lines(result)
    assert line.startswith(f"error: 'dvc push' was refused by {REMOTE}: the CI key needs s3:PutObject on")
    assert f"arn:aws:s3:::{BUCKET}/dvc/*" in line and "README, 'The S3 remote'" in line
    assert "attempt" not in result.stdout  # a refusal is not retried
    assert s3.remote.keys() == before


def test_a_key_without_the_policy_stops_before_training(origin, s3, tmp_path):
    job = Checkout.clone(origin, "leaves-15", tmp_path, s3.keys["nobody"])
    result = job.job("train")
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = error_lines(result)
    assert line.startswith(f"error: cannot read {REMOTE}: access denied:")
    assert f"s3:ListBucket on arn:aws:s3:::{BUCKET} and s3:GetObject" in line
    assert "Running stage" not in result.stdout


def test_a_run_cache_entry_refused_fails_the_push(origin, s3, tmp_path):
    """DVC 3.67.1 exits 0 when it could not upload a run-cache entry (it only logs the error), so
    `retry_push` reads DVC's output too. From main's workspace, whose outputs are in the remote and
    whose run-cache entries are not, with a key that may write the outputs' folder only."""
    before = s3.remote.keys()
    env = project_env(origin, **s3.keys["files-only"])
    dvc_own = run(["dvc", "push", "--run-cache"], origin, env)
    assert "ERROR: failed to transfer" in dvc_own.stderr, dvc_own.stderr  # and yet exit 0
    job = Checkout(origin, "main", s3.keys["files-only"])
    result = job.run(["retry_push dvc push --run-cache"])
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = error_lines(result)
    assert line.startswith(f"error: 'dvc push --run-cache' was refused by {REMOTE}: the CI key needs s3:PutObject")
    assert s3.remote.keys() == before
