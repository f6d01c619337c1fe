"""Every kind of pipeline the generated .gitlab-ci.yml supports, processed as GitLab processes it:
gitlab-ci-local evaluates the rules for the variables GitLab sets in that kind of pipeline, and
the model of GitLab's job states (harness/job_states.py) says which of the created jobs run,
which wait to be played and which never run (skipped: gitlab-ci-local would run them all)."""

from pathlib import Path

import pytest

from harness.ci_file import add_origin, branch, listed_jobs, load, merge_request, tag
from harness.gitlab import FORK_ID, PROJECT_ID
from harness.job_states import Pipeline
from harness.project import bake_defaults

SWEEP = {"sweep", "sweep-run: [1/2]", "sweep-run: [2/2]", "sweep-report", "sweep-comment"}
REVIEW = {"test", "train", "comment"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    baked = bake_defaults(tmp_path_factory.mktemp("kinds"))
    add_origin(baked)
    return baked


def processed(project: Path, kind: dict, outcomes: dict | None = None) -> Pipeline:
    return Pipeline.from_listing(listed_jobs(project, kind), load(project)["stages"], outcomes)


# kind -> (the jobs that run, the manual jobs waiting to be played)
KINDS = {
    "default-branch": (branch("main"), {"test", "train"}, {"register", "promote"}),
    "feature-branch": (branch("feature"), {"test", "train"}, set()),
    "detached-merge-request": (merge_request(), REVIEW, {"sweep"}),
    "merged-results": (merge_request("merged_result"), REVIEW, {"sweep"}),
    "merge-train": (merge_request("merge_train"), REVIEW, {"sweep"}),
    "labelled-merge-request": (merge_request(labels="bug,sweep"), REVIEW | SWEEP, set()),
    "fork-in-fork": (merge_request(labels="sweep", source=FORK_ID, runs_in=FORK_ID), REVIEW, set()),
    "fork-in-parent": (merge_request(labels="sweep", source=FORK_ID, runs_in=PROJECT_ID), REVIEW, set()),
    "registration": (tag("model@v0.1.0"), {"publish"}, set()),
    "assignment-staging": (tag("model#staging#2"), {"deploy-staging"}, set()),
    "assignment-production": (tag("model#production#3"), {"deploy-production"}, set()),
    "unassignment-staging": (tag("model#staging!#4"), {"stop-staging"}, set()),
    "unassignment-production": (tag("model#production!#5"), {"stop-production"}, set()),
    "deregistration": (tag("model@v0.1.0!"), {"withdraw"}, set()),
    "artifact-deprecation": (tag("model@deprecated"), {"withdraw"}, set()),
}


@pytest.mark.parametrize(("kind", "runs", "waiting"), KINDS.values(), ids=KINDS.keys())
def test_which_jobs_each_kind_of_pipeline_runs(project, kind, runs, waiting):
    pipeline = processed(project, kind)
    assert pipeline.ran() == runs
    assert pipeline.waiting() == waiting
    never = set(pipeline.status) - runs - waiting
    assert all(pipeline.status[name] == "skipped" for name in never), pipeline.status


def test_an_unlabelled_merge_request_posts_no_sweep_comment(project):
    """The sweep's report and comment never run without a sweep (today's `when: always` ran them
    on the skipped runs and posted "0 runs")."""
    pipeline = processed(project, merge_request())
    assert {pipeline.status[name] for name in SWEEP - {"sweep"}} == {"skipped"}


def test_a_sweep_played_later_is_ranked_and_posted(project):
    pipeline = processed(project, merge_request())
    pipeline.play("sweep")
    assert pipeline.order[-len(SWEEP) :] == [
        "sweep",
        "sweep-run: [1/2]",
        "sweep-run: [2/2]",
        "sweep-report",
        "sweep-comment",
    ]


def test_a_failed_sweep_run_is_still_ranked_and_posted(project):
    """A failed run is a row of the table: its job fails (allowed), the report and comment run."""
    pipeline = processed(project, merge_request(labels="sweep"), {"sweep-run: [2/2]": "failed"})
    assert pipeline.status["sweep-run: [2/2]"] == "failed"
    assert {"sweep-report", "sweep-comment"} <= pipeline.ran()


def test_a_label_added_after_the_pipeline_was_created_changes_nothing(project):
    """GitLab reads CI_MERGE_REQUEST_LABELS when it creates the pipeline: the pipeline created
    without the label still offers the manual job; the next one (a push, or Run pipeline) sweeps."""
    before = processed(project, merge_request(labels=""))
    after = processed(project, merge_request(labels="sweep"))
    assert before.waiting() == {"sweep"} and after.ran() >= SWEEP


# --- training_runner cml: the machine's jobs around train ------------------------------------------


@pytest.fixture(scope="module")
def cml_project(tmp_path_factory) -> Path:
    baked = bake_defaults(tmp_path_factory.mktemp("kinds-cml"), "training_runner=cml")
    add_origin(baked)
    return baked


def test_cml_removes_the_machine_whatever_happened_to_the_launch_or_the_train_job(cml_project):
    protected = branch("main", protected=True)
    assert processed(cml_project, protected).ran() == {"test", "launch-runner", "train", "remove-runner"}
    for failed in ("launch-runner", "train"):
        pipeline = processed(cml_project, protected, {failed: "failed"})
        assert "remove-runner" in pipeline.ran(), failed
    assert processed(cml_project, protected, {"launch-runner": "failed"}).status["train"] == "skipped"


def test_cml_merge_requests_without_cloud_training_still_run_the_comment_job(cml_project):
    """No train job in this pipeline: the comment's optional need is dropped, and it says so itself."""
    pipeline = processed(cml_project, merge_request())
    assert pipeline.ran() == {"test", "comment"} and "train" not in pipeline.status
