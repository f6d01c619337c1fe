"""The train job's push when the network fails, when GitLab cancels the job (`interruptible: true`
makes that routine), and when two pipelines push at once: the remote ends complete, and no
run-cache entry names outputs the remote lacks.

The train job's steps come from the generated .gitlab-ci.yml and run with bash in new clones of
a baked project, against an S3 server of each test's own behind a loopback proxy that cuts,
refuses or slows connections (harness/faulty_proxy.py).

What DVC 3.67.1 does, measured against moto:
- `dvc push --run-cache` uploads the run-cache entries first, then the outputs (a directory's
  files before its listing). Cut off in between, it leaves entries whose outputs the remote does
  not hold; if the pipeline was cancelled for a newer commit, nothing ever pushes those outputs.
  (The first test.)
- `dvc repro --pull`, given a run-cache entry whose outputs it cannot fetch, warns ("Missing
  cache files") and runs the stage: no wrong result, but a retrain. (The first test.)
- It exits 0 when a run-cache entry failed to upload: the error is only logged.
  (test_s3_policy.py, with a key that may not write the run-cache.)
- moto kept no object of a request cut mid-body (S3 checks Content-Length likewise): an object in
  the remote is whole, and the next push sends only the missing ones. (`DvcRemote.damaged`.)
- botocore's retries follow AWS_RETRY_MODE and AWS_MAX_ATTEMPTS under DVC (default: legacy mode,
  5 attempts per request); dvc-s3 has no retry setting of its own (read_timeout and
  connect_timeout only).
So the train job pushes with `retry_push dvc push && retry_push dvc push --run-cache`: outputs
first, each push tried three times, and one `error:` line when it cannot finish.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

from harness.ci_job import Checkout, error_lines, s3_vars
from harness.dvc_remote import DvcRemote
from harness.faulty_proxy import FaultyProxy
from harness.project import project_env, ran_stages, run
from harness.s3 import S3Process

pytestmark = pytest.mark.slow

BUCKET = "tumour-classifier-dvc"  # the defaults'
BRANCHES = ("leaves-10", "leaves-15")  # trained_project's


@pytest.fixture(scope="module")
def origin(trained_project):
    """The project as GitLab holds it."""
    return trained_project


@pytest.fixture
def proxy():
    """An S3 server of this test's own, with the bucket, behind a proxy with no faults yet."""
    with S3Process(BUCKET) as s3, FaultyProxy(s3.endpoint) as proxy:
        yield proxy


def push_main(origin, proxy, tmp_path, *targets: str) -> DvcRemote:
    """What the developer pushed from main (`dvc push`, as the README says): the raw data and
    main's results, or just `targets`."""
    run(["dvc", "push", "--quiet", *targets], origin, project_env(origin, **s3_vars(proxy.endpoint, tmp_path)))
    return DvcRemote(proxy.upstream_url, BUCKET)


def checkout(origin, branch, proxy, tmp_path) -> Checkout:
    return Checkout.clone(origin, branch, tmp_path, s3_vars(proxy.endpoint, tmp_path))


def assert_complete(remote: DvcRemote, checkout: Checkout) -> None:
    """Everything its dvc.lock and .dvc files name is in the remote, whole, and every run-cache
    entry's outputs are."""
    assert remote.missing_of(checkout.path) == []
    assert remote.incomplete_run_cache() == {}
    assert remote.damaged() == []


def assert_restored_without_running(origin, branch, proxy, tmp_path) -> None:
    """A fresh clone of `branch` (dvc.lock still main's) gets every stage back from the remote."""
    clone = checkout(origin, branch, proxy, tmp_path)
    result = run(["dvc", "repro", "--pull"], clone.path, clone.env)
    assert ran_stages(result.stdout) == [], result.stdout
    assert "Stage 'train' is cached - skipping run" in result.stdout, result.stdout


def test_dvc_own_push_order_leaves_entries_without_outputs_and_a_rerun_trains_again(origin, proxy, tmp_path):
    """DVC's own `dvc push --run-cache`, cut off: the run-cache entries arrive, the model does not.
    A rerun of the job is not fooled by them: DVC cannot fetch the outputs, so it trains again."""
    remote = push_main(origin, proxy, tmp_path)
    job = checkout(origin, "leaves-10", proxy, tmp_path)
    job.train_until_push()
    proxy.cut_upstream_after = 5_000  # each connection: requests and small files pass, the model never
    env = {**job.env, "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "2"}
    cut = run(["dvc", "push", "--run-cache"], job.path, env, check=False)
    assert cut.returncode == 1 and "failed to upload" in cut.stderr, cut.stdout + cut.stderr
    incomplete = remote.incomplete_run_cache()
    assert any("models/model.skops" in missing for missing in incomplete.values()), incomplete

    proxy.clear()
    rerun = checkout(origin, "leaves-10", proxy, tmp_path).job("train")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Missing cache files:\nname: models/model.skops" in rerun.stdout, rerun.stdout
    assert ran_stages(rerun.stdout) == ["train", "evaluate"], rerun.stdout
    assert_complete(remote, job)
    assert_restored_without_running(origin, "leaves-10", proxy, tmp_path)


def test_cut_push_fails_in_one_line_and_the_rerun_completes_the_remote(origin, proxy, tmp_path):
    """Every connection cut after 5 kB, for the whole job: three attempts, one error line, and no
    run-cache entry in the remote. The job run again sends the rest."""
    remote = push_main(origin, proxy, tmp_path)
    proxy.cut_upstream_after = 5_000  # the job's pulls still work: what comes back is not cut
    job = checkout(origin, "leaves-10", proxy, tmp_path)
    started = time.monotonic()
    result = job.job("train")
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 150  # bounded: three times botocore's three attempts
    [line] = error_lines(result)
    assert line.startswith(f"error: 'dvc push' failed 3 times against the DVC remote 'storage' (s3://{BUCKET}/dvc)")
    assert "run the job again" in line and "Traceback" not in result.stderr
    assert "'dvc push', attempt 2 of 3: ERROR: " in result.stdout
    assert "models/model.skops" in remote.missing_of(job.path)
    assert remote.run_cache() == {}  # pushed last, so nothing names the missing model
    assert remote.damaged() == []  # requests cut mid-body left nothing behind

    proxy.clear()
    rerun = checkout(origin, "leaves-10", proxy, tmp_path)
    result = rerun.job("train")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ran_stages(result.stdout) == ["train", "evaluate"]  # no entry to restore from
    assert_complete(remote, rerun)
    assert len(remote.run_cache()) == 2
    assert_restored_without_running(origin, "leaves-10", proxy, tmp_path)


def test_retry_push_outlasts_a_short_outage(origin, proxy, tmp_path):
    """Connections refused when the push starts, back before the second attempt: the push completes
    and says it retried. (The push step alone, in a copy of the developer's workspace.)"""
    workspace = tmp_path / "workspace"
    shutil.copytree(origin, workspace, symlinks=True)
    job = Checkout(workspace, "main", s3_vars(proxy.endpoint, tmp_path))  # outputs and cache are there
    proxy.refuse = True
    push = job.start(["retry_push dvc push", "retry_push dvc push --run-cache"])
    said = ""
    while not said.startswith("'dvc push', attempt") and (line := push.stdout.readline()):
        said = line
    proxy.clear()  # during the pause before the second attempt
    stdout, stderr = push.communicate(timeout=300)
    assert said.startswith("'dvc push', attempt 1 of 3: ERROR: "), said + stdout + stderr
    assert push.returncode == 0 and "attempt 2 of 3" not in stdout, stdout + stderr
    remote = DvcRemote(proxy.upstream_url, BUCKET)
    assert remote.missing_of(workspace) == [] and remote.incomplete_run_cache() == {}
    assert len(remote.run_cache()) == 3


def test_cancelled_train_job_then_rerun_completes_the_remote(origin, proxy, tmp_path):
    """GitLab cancels the job (a newer commit, `interruptible: true`) while it uploads: the runner
    sends SIGTERM to the job's processes. The remote then holds part of the results and no
    run-cache entry naming the rest; the job run again completes it."""
    remote = push_main(origin, proxy, tmp_path)
    job = checkout(origin, "leaves-10", proxy, tmp_path)
    push_steps = job.train_until_push()
    proxy.delay = 0.2  # a slow uplink: 16 kB at most every 0.2 s per connection
    before = proxy.sent_upstream
    push = job.start(push_steps)
    deadline = time.monotonic() + 60
    while proxy.sent_upstream < before + 20_000 and time.monotonic() < deadline:  # uploading
        time.sleep(0.05)
    os.killpg(push.pid, signal.SIGTERM)
    try:
        push.wait(timeout=10)
    except subprocess.TimeoutExpired:  # the runner's SIGKILL after its grace period
        os.killpg(push.pid, signal.SIGKILL)
        push.wait()
    assert push.returncode == -signal.SIGTERM, push.communicate()
    assert "models/model.skops" in remote.missing_of(job.path)  # cut off mid-push
    assert remote.incomplete_run_cache() == {}

    proxy.clear()
    rerun = checkout(origin, "leaves-10", proxy, tmp_path)
    result = rerun.job("train")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_complete(remote, rerun)
    assert_restored_without_running(origin, "leaves-10", proxy, tmp_path)


def test_two_pipelines_pushing_at_once_both_complete(origin, proxy, tmp_path):
    """Two merge requests' train jobs push to one remote at the same time. Only the raw data was
    pushed before, so both run `prepare` too and push the same prepared data and the same
    run-cache entry for it, besides their own models."""
    remote = push_main(origin, proxy, tmp_path, "data/raw/dataset.csv.dvc")
    jobs = [checkout(origin, branch, proxy, tmp_path) for branch in BRANCHES]
    push_steps = [job.train_until_push() for job in jobs]
    with FaultyProxy(proxy.upstream_url) as one, FaultyProxy(proxy.upstream_url) as other:
        pushes = []
        for job, steps, own in zip(jobs, push_steps, (one, other), strict=True):
            own.delay = 0.05  # uploads take long enough to overlap
            pushes.append(job.start(steps, AWS_ENDPOINT_URL_S3=own.endpoint))  # each job's traffic timed apart
        for push in pushes:
            stdout, stderr = push.communicate(timeout=300)
            assert push.returncode == 0, stdout + stderr
    assert one.first_sent < other.last_sent and other.first_sent < one.last_sent  # they overlapped
    for job in jobs:
        assert_complete(remote, job)
    assert len(remote.run_cache()) == 5  # prepare once, train and evaluate per branch
    for branch in BRANCHES:
        assert_restored_without_running(origin, branch, proxy, tmp_path)
