"""The model of GitLab's job processing (harness/job_states.py), rule by rule, each test naming the
GitLab source file whose rule it encodes."""

import pytest

from harness.job_states import Job, Pipeline

STAGES = ["test", "train", "report"]


def pipeline(*jobs: Job, **outcomes: str) -> Pipeline:
    return Pipeline(list(jobs), STAGES, outcomes)


def test_a_job_with_empty_needs_runs_at_once_and_its_needs_run_in_order():
    """status_collection.rb: no dependencies is success; atomic_processing_service.rb: a DAG job
    waits for its needs only."""
    run = pipeline(Job("train", "train", needs=[]), Job("report", "report", needs=["train"]))
    assert run.status == {"train": "success", "report": "success"}


def test_an_unplayed_manual_job_that_may_fail_skips_what_needs_it():
    """composite.rb: an allowed manual job is ignored, and a DAG job with an ignored need is skipped."""
    run = pipeline(
        Job("sweep", "train", "manual", allow_failure=True, needs=[]),
        Job("sweep-run", "train", needs=["sweep"]),
        Job("sweep-report", "report", needs=["sweep-run"]),
    )
    assert run.status == {"sweep": "manual", "sweep-run": "skipped", "sweep-report": "skipped"}


def test_an_unplayed_blocking_manual_job_keeps_what_needs_it_waiting():
    """composite.rb: a manual need without allow_failure is not complete, so the job stays created."""
    run = pipeline(Job("gate", "train", "manual", needs=[]), Job("after", "report", needs=["gate"]))
    assert run.status == {"gate": "manual", "after": "created"}


def test_always_runs_on_a_skipped_need():
    """process_build_service.rb: `always` accepts success, failed and skipped."""
    run = pipeline(
        Job("sweep", "train", "manual", allow_failure=True, needs=[]),
        Job("sweep-run", "train", needs=["sweep"]),
        Job("sweep-report", "report", "always", needs=["sweep-run"]),
    )
    assert run.status["sweep-report"] == "success"


def test_on_success_does_not_run_after_a_failure_but_always_does():
    """process_build_service.rb: `on_success` of a DAG job accepts success only."""
    run = pipeline(
        Job("train", "train", needs=[]),
        Job("report", "report", needs=["train"]),
        Job("clean-up", "report", "always", needs=["train"]),
        train="failed",
    )
    assert run.status == {"train": "failed", "report": "skipped", "clean-up": "success"}


def test_an_allowed_failure_counts_as_success_for_what_needs_it():
    """composite.rb: a failed job with allow_failure is success with warnings."""
    run = pipeline(
        Job("sweep-run", "train", allow_failure=True, needs=[]),
        Job("sweep-report", "report", needs=["sweep-run"]),
        **{"sweep-run": "failed"},
    )
    assert run.status == {"sweep-run": "failed", "sweep-report": "success"}


def test_a_job_without_needs_waits_for_the_earlier_stages_and_runs_after_skipped_ones():
    """atomic_processing_service.rb: without needs, the earlier stages; process_build_service.rb:
    a stage job's `on_success` also accepts skipped."""
    run = pipeline(
        Job("gate", "test", "manual", allow_failure=True, needs=[]),
        Job("skipped", "train", needs=["gate"]),
        Job("stage-job", "report"),
    )
    assert run.status == {"gate": "manual", "skipped": "skipped", "stage-job": "success"}


def test_on_failure_runs_only_after_a_failure():
    """process_build_service.rb: `on_failure` accepts failed only."""
    ok = pipeline(Job("train", "train"), Job("alert", "report", "on_failure"))
    failed = pipeline(Job("train", "train"), Job("alert", "report", "on_failure"), train="failed")
    assert (ok.status["alert"], failed.status["alert"]) == ("skipped", "success")


def test_playing_a_manual_job_resets_only_the_jobs_still_skipped():
    """reset_skipped_jobs_service.rb: the skipped dependents run; a job that already ran does not."""
    jobs = [
        Job("sweep", "train", "manual", allow_failure=True, needs=[]),
        Job("sweep-run: [1/2]", "train", needs=["sweep"]),
        Job("sweep-run: [2/2]", "train", needs=["sweep"]),
        Job("on-success", "report", needs=["sweep-run"]),
        Job("always", "report", "always", needs=["sweep-run"]),
    ]
    run = pipeline(*jobs)
    assert run.status["always"] == "success" and run.status["on-success"] == "skipped"
    run.outcomes["always"] = "failed"  # would show if it ran again
    run.play("sweep")
    assert run.status == {
        "sweep": "success",
        "sweep-run: [1/2]": "success",
        "sweep-run: [2/2]": "success",
        "on-success": "success",
        "always": "success",  # ran before the sweep, without its results, and stays so
    }
    assert run.order == ["always", "sweep", "sweep-run: [1/2]", "sweep-run: [2/2]", "on-success"]


def test_a_blocking_manual_job_holds_the_later_stages_until_played():
    """atomic_processing_service.rb with composite.rb: a manual job without allow_failure is not
    complete, so a stage job after it waits; played, it runs."""
    run = pipeline(Job("train", "train", "manual", needs=[]), Job("report", "report"))
    assert run.status == {"train": "manual", "report": "created"}
    run.play("train")
    assert run.status["report"] == "success"


def test_only_a_waiting_manual_job_can_be_played():
    run = pipeline(Job("train", "train", needs=[]))
    with pytest.raises(ValueError, match="train is success, not a manual job"):
        run.play("train")


def test_from_listing_drops_an_optional_need_of_a_job_not_created():
    """GitLab drops `needs: optional: true` on a job the pipeline lacks (and refuses a required one)."""
    listed = {
        "train": {"stage": "train", "when": "never", "allow_failure": False, "needs": []},
        "report": {
            "stage": "report",
            "when": "on_success",
            "allow_failure": False,
            "needs": [{"job": "train", "optional": True}],
        },
        "test": {"stage": "test", "when": "on_success", "allow_failure": False},
    }
    run = Pipeline.from_listing(listed, STAGES)
    assert run.status == {"test": "success", "report": "success"}
    listed["report"]["needs"][0]["optional"] = False
    with pytest.raises(ValueError, match="report needs train"):
        Pipeline.from_listing(listed, STAGES)


def test_a_cancelled_need_skips_even_an_always_job():
    """composite.rb: a cancelled need (not allowed to fail) makes the status `canceled`;
    process_build_service.rb: `always` accepts success, failed and skipped, so the job is skipped."""
    run = pipeline(
        Job("launch", "test", needs=[]),
        Job("train", "train", needs=["launch"]),
        Job("clean-up", "report", "always", needs=["launch", "train"]),
        train="canceled",
    )
    assert run.status == {"launch": "success", "train": "canceled", "clean-up": "skipped"}


def test_a_cancelled_job_allowed_to_fail_counts_as_success():
    """composite.rb with has_status.rb: PASSED_WITH_WARNINGS_STATUSES are failed and canceled."""
    run = pipeline(
        Job("sweep-run", "train", allow_failure=True, needs=[]),
        Job("sweep-report", "report", needs=["sweep-run"]),
        **{"sweep-run": "canceled"},
    )
    assert run.status["sweep-report"] == "success"


@pytest.mark.parametrize(
    ("outcome", "report"),
    [("failed:3", "success"), ("failed:1", "skipped"), ("failed", "skipped"), ("canceled", "skipped")],
)
def test_allow_failure_exit_codes_allow_only_a_failure_with_a_listed_code(outcome, report):
    """entry/job.rb `static_allow_failure`: `allow_failure: {exit_codes: [3]}` is stored as false;
    build.rb `conditionally_allow_failure!` allows the failure once its exit code is listed."""
    run = pipeline(
        Job("deploy", "train", needs=[], allow_failure_exit_codes=(3,)),
        Job("after", "report", needs=["deploy"]),
        deploy=outcome,
    )
    assert run.status["after"] == report


def test_a_manual_job_allowed_to_fail_by_exit_code_blocks_what_needs_it():
    """composite.rb: only `allow_failure: true` makes an unplayed manual job ignored; exit codes
    leave it false (entry/job.rb), so it blocks."""
    run = pipeline(Job("gate", "train", "manual", needs=[], allow_failure_exit_codes=(3,)), Job("after", "report"))
    assert run.status == {"gate": "manual", "after": "created"}


def test_auto_cancel_stops_only_the_interruptible_jobs_not_finished():
    """workflow:auto_cancel:on_new_commit interruptible (doc/ci/yaml/_index.md): a newer pipeline
    cancels the older one's interruptible jobs that have not finished; a running job that is not
    interruptible runs on, and what needs it then runs as usual."""
    jobs = [
        Job("test", "test", needs=[], interruptible=True),
        Job("train", "train", needs=[]),
        Job("comment", "report", needs=["train"], interruptible=True),
        Job("clean-up", "report", "always", needs=["train"]),
    ]
    run = pipeline(*jobs, train="running")
    run.auto_cancel()
    assert run.status == {"test": "success", "train": "running", "comment": "canceled", "clean-up": "created"}
    run.finish("train", "failed")
    assert run.status["clean-up"] == "success"


def test_from_listing_reads_exit_codes_as_not_allowed_to_fail():
    """gitlab-ci-local lists `allow_failure: {exit_codes: [3]}` as that mapping."""
    listed = {"deploy": {"stage": "train", "when": "on_success", "allow_failure": {"exit_codes": [3]}, "needs": []}}
    run = Pipeline.from_listing(listed, STAGES, {"deploy": "failed:1"})
    assert run.jobs["deploy"].allow_failure is False and run.jobs["deploy"].allow_failure_exit_codes == (3,)
    assert run.composite(["deploy"], dag=True) == "failed"
