"""Parameter sweeps in merge requests: sweep.yaml's combinations as DVC experiments spread over
the `sweep-run` jobs, pushed to the "GitLab" repository and the S3 remote, ranked in one comment.

gitlab-ci-local runs the jobs for real (DVC, moto, the bare repository, the CML stand-in posting
to the loopback GitLab API); which jobs a pipeline creates is GitLab's rules, evaluated by
gitlab-ci-local for merge requests with and without the label and for forks.
"""

import re
import uuid
from pathlib import Path

import pytest
import yaml

from harness.ci_file import add_origin, listed_jobs
from harness.gitlab import BOT, FORK_ID, PROJECT_ID, PROJECT_PATH, TOKEN, LocalGitLab, merge_request_variables
from harness.gitlab_api import GitLabApi
from harness.project import bake_defaults, commit_first_model, project_env, ran_stages, run
from harness.s3 import client as s3_client
from harness.s3 import s3_env

SWEEP_JOBS = ("sweep", "sweep-run", "sweep-report", "sweep-comment")
WATERMARK = '"CML watermark DVC parameter sweep")'
ROW = re.compile(r"^\| (?:\d+|–) \| `sweep-", re.MULTILINE)


def merge_request(labels: str = "", source_project: str = PROJECT_ID, runs_in: str = PROJECT_ID) -> dict:
    variables = merge_request_variables("feature", source_project=source_project, runs_in=runs_in)
    return {"variables": {**variables, "CI_MERGE_REQUEST_LABELS": labels}, "unset": ["CI_COMMIT_BRANCH"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    baked = bake_defaults(tmp_path_factory.mktemp("sweep-rules"))
    add_origin(baked)
    return baked


def sweep_plan(project: Path, kind: dict) -> dict[str, tuple[str, list[str]]]:
    jobs = listed_jobs(project, kind)
    return {
        name: (job["when"], [need["job"] for need in job.get("needs") or []])
        for name, job in jobs.items()
        if name.startswith("sweep")
    }


def test_a_labelled_merge_request_sweeps_and_others_only_offer_it(project):
    labelled = sweep_plan(project, merge_request("bug,sweep"))
    assert labelled == {
        "sweep": ("on_success", []),
        "sweep-run: [1/2]": ("on_success", ["sweep"]),
        "sweep-run: [2/2]": ("on_success", ["sweep"]),
        "sweep-report": ("on_success", ["sweep-run"]),
        "sweep-comment": ("on_success", ["sweep-report"]),
    }
    # Without the label the first job waits to be played, and every other one needs it.
    unlabelled = sweep_plan(project, merge_request("sweeping"))
    assert unlabelled["sweep"] == ("manual", []) and unlabelled["sweep-run: [1/2]"] == ("on_success", ["sweep"])
    assert listed_jobs(project, merge_request("sweeping"))["sweep"]["allow_failure"] is True  # not blocking


@pytest.mark.parametrize("runs_in", [FORK_ID, PROJECT_ID], ids=["runs-in-fork", "runs-in-parent"])
def test_forks_never_sweep(project, runs_in):
    plan = sweep_plan(project, merge_request("sweep", source_project=FORK_ID, runs_in=runs_in))
    assert all(when == "never" for when, _ in plan.values()), plan


def test_branch_pipelines_never_sweep(project):
    push = {"variables": {"CI_PIPELINE_SOURCE": "push"}, "unset": []}
    assert all(when == "never" for when, _ in sweep_plan(project, push).values())


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        (
            {"train.hist_gradient_boosting.leaves": [1, 2]},
            "'train.hist_gradient_boosting.leaves' is not a key of params.yaml",
        ),
        (
            {"train.hist_gradient_boosting.max_leaf_nodes": []},
            "'train.hist_gradient_boosting.max_leaf_nodes' needs a non-empty list",
        ),
        ({"train.hist_gradient_boosting": [1]}, "'train.hist_gradient_boosting' is a section of params.yaml"),
        ({"seed": list(range(17))}, "the sweep has 17 combinations, over max_runs (16)"),
        (
            {"train.random_forest.n_estimators": [10, 20]},
            "no stage reads train.random_forest.n_estimators with the values swept (dvc.yaml's params)",
        ),
    ],
    ids=["unknown-parameter", "empty-list", "a-section", "over-the-cap", "read-by-no-stage"],
)
def test_a_bad_sweep_fails_in_one_line_before_anything_runs(project, sweep, message, tmp_path):
    spec = yaml.safe_load((project / "sweep.yaml").read_text())
    spec["parameters"] = sweep
    (project / "sweep.yaml").write_text(yaml.safe_dump(spec))
    try:
        checked = run(["python", "-m", "tumour_classifier.sweep", "check"], project, project_env(project), check=False)
    finally:
        run(["git", "checkout", "--", "sweep.yaml"], project, project_env(project))
    assert checked.returncode == 1
    assert (
        checked.stderr.count("\n") == 1 and checked.stderr.startswith("error: sweep.yaml") and message in checked.stderr
    )
    assert not (project / "sweep").exists()


def test_a_report_of_no_runs_is_refused_in_one_line(project):
    """So that no "0 runs" comment is ever posted, whichever jobs GitLab runs."""
    report = run(["python", "-m", "tumour_classifier.sweep", "report"], project, project_env(project), check=False)
    assert report.returncode == 1 and report.stderr.count("\n") == 1, report.stderr
    assert report.stderr.startswith("error: sweep/results holds no results: no sweep run reached its end")
    assert not (project / "sweep" / "report" / "report.md").exists()


# --- The sweep, run ------------------------------------------------------------------------------


@pytest.fixture
def gitlab(bake, jobs_venv, s3_endpoint):
    """A project whose main has trained and pushed its results (as its pipeline would have)."""
    bucket = f"sweep-{uuid.uuid4().hex[:12]}"
    project = bake(s3_bucket=bucket)
    env = s3_env(project, s3_endpoint, bucket)
    commit_first_model(project, env)
    run(["dvc", "push", "--quiet", "--run-cache"], project, env)
    with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT}) as api:
        local = LocalGitLab(project, jobs_venv, s3_endpoint, api)
        local.bucket, local.s3_env = bucket, env
        yield local


def open_merge_request(gitlab: LocalGitLab, sweep: dict | None = None) -> None:
    gitlab.git("switch", "--quiet", "-c", "feature")
    if sweep is not None:
        (gitlab.project / "sweep.yaml").write_text(yaml.safe_dump(sweep), encoding="utf-8")
        gitlab.git("commit", "--quiet", "-am", "Sweep other values")
    gitlab.push("feature")


def commit_notes(gitlab: LocalGitLab, text: str) -> None:
    """A commit of the merge request's branch that changes nothing the pipeline depends on."""
    (gitlab.project / "NOTES.md").write_text(text)
    gitlab.git("add", "NOTES.md")
    gitlab.git("commit", "--quiet", "-m", "Notes")
    gitlab.push("feature")


def sweep_pipeline(gitlab: LocalGitLab):
    return gitlab.pipeline(
        *SWEEP_JOBS, merge_request=True, source_branch="feature", variables={"CI_MERGE_REQUEST_LABELS": "sweep"}
    )


def rows(gitlab: LocalGitLab) -> list[list[str]]:
    """The sweep comment's table rows as cells, backquotes removed: rank, name, values..., metrics..."""
    [note] = [note for note in gitlab.api.notes(1) if WATERMARK in note["body"]]
    lines = [line for line in note["body"].splitlines() if ROW.match(line)]
    return [[cell.strip().strip("`") for cell in line.strip("|").split(" | ")] for line in lines]


def experiment_refs(gitlab: LocalGitLab) -> dict[str, str]:
    listed = run(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"], gitlab.origin, gitlab.env())
    return {line.split()[0].rsplit("/", 1)[-1]: line.split()[1] for line in listed.stdout.splitlines()}


def s3_keys(gitlab: LocalGitLab) -> set[str]:
    pages = s3_client(gitlab.s3_endpoint).get_paginator("list_objects_v2").paginate(Bucket=gitlab.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


@pytest.mark.slow
def test_a_two_by_two_sweep_over_two_jobs_is_ranked_pushed_and_can_be_applied(gitlab, tmp_path):
    open_merge_request(gitlab)
    commit_notes(gitlab, "The branch's first commit.\n")  # so that neither sweep runs on main's commit
    first = sweep_pipeline(gitlab)
    assert first.returncode == 0, first.output
    table = rows(gitlab)
    assert len(table) == 4 and [row[0] for row in table] == ["1", "2", "3", "4"]
    assert {(row[2], row[3]) for row in table} == {("0.05", "7"), ("0.05", "31"), ("0.2", "7"), ("0.2", "31")}
    scores = [float(row[4].strip("*")) for row in table]
    assert scores == sorted(scores, reverse=True)  # balanced_accuracy, maximized
    for i in (1, 2):  # each job trained its own half (prepare came back from main's run-cache)
        log = first.job_log(f"sweep-run: [{i}/2]")
        assert log.count("sweep: sweep-") == 2 and ran_stages(log) == ["train", "evaluate"] * 2

    refs = experiment_refs(gitlab)
    assert set(refs) == {row[1] for row in table}
    keys = s3_keys(gitlab)
    for name, commit in refs.items():  # every experiment's model is in the remote
        lock = yaml.safe_load(run(["git", "show", f"{commit}:dvc.lock"], gitlab.origin, gitlab.env()).stdout)
        md5 = lock["stages"]["train"]["outs"][0]["md5"]
        assert f"dvc/files/md5/{md5[:2]}/{md5[2:]}" in keys, name

    # The same sweep on the branch's next commit: every run comes back from the remote's run-cache,
    # under the same names and a new baseline.
    commit_notes(gitlab, "The branch's next commit.\n")
    again = sweep_pipeline(gitlab)
    assert again.returncode == 0, again.output
    for i in (1, 2):
        assert ran_stages(again.job_log(f"sweep-run: [{i}/2]")) == [], again.job_log(f"sweep-run: [{i}/2]")
    assert [row[1] for row in rows(gitlab)] == [row[1] for row in table]  # one comment, edited
    note = gitlab.api.notes(1)[0]["body"]
    assert "4 of 4 successful runs came back from the run-cache" in note

    # A fresh clone (of main) takes up the best run with the comment's own commands; the name
    # alone now names two experiments, neither on the clone's commit.
    best = table[0][1]
    clone = tmp_path / "clone"
    env = {**gitlab.env(), **{key: value for key, value in gitlab.s3_env.items() if key.startswith("AWS")}}
    # From the bare repository itself: DVC's own git client does not follow the test's URL rewrites.
    run(["git", "clone", "--quiet", str(gitlab.origin), str(clone)], tmp_path, env)
    by_name = run(["dvc", "exp", "pull", "origin", best], clone, env, check=False)
    assert by_name.returncode != 0 and "Ambiguous name" in by_name.stdout + by_name.stderr
    package_env = {**env, "PYTHONPATH": "src"}  # the checkout's own package, as `pip install -e .` gives it
    ambiguous = run(["python", "-m", "tumour_classifier.sweep", "ref", best], clone, package_env, check=False)
    assert ambiguous.returncode == 1 and ambiguous.stderr.count("\n") == 1
    assert f"error: {best} was run on 2 commits" in ambiguous.stderr and "use the full ref" in ambiguous.stderr
    [(pull, ref)] = re.findall(r"Take the best: `(dvc exp pull origin (\S+)) && dvc exp apply \2`", note)
    tip = gitlab.head("feature")
    assert ref == f"refs/exps/{tip[:2]}/{tip[2:]}/{best}"
    assert f"Any other run: `refs/exps/{tip[:2]}/{tip[2:]}/<experiment>`." in note
    run(pull.split(), clone, env)
    run(["dvc", "exp", "apply", ref], clone, env)
    expected = run(["git", "show", f"{ref}:dvc.lock"], gitlab.origin, gitlab.env()).stdout
    assert (clone / "dvc.lock").read_text() == expected
    assert "Data and pipelines are up to date" in run(["dvc", "status"], clone, env).stdout
    other = table[1][1]  # a name made by one sweep only resolves
    run(["git", "update-ref", "-d", f"refs/exps/{tip[:2]}/{tip[2:]}/{other}"], gitlab.origin, gitlab.env())
    resolved = run(["python", "-m", "tumour_classifier.sweep", "ref", other], clone, package_env).stdout.strip()
    assert resolved.startswith("refs/exps/") and resolved.endswith(f"/{other}") and tip[2:] not in resolved


@pytest.mark.slow
def test_a_failed_run_is_a_row_and_the_others_stand(gitlab):
    spec = yaml.safe_load((gitlab.project / "sweep.yaml").read_text())
    spec["parameters"] = {"train.hist_gradient_boosting.max_leaf_nodes": [10, -1]}
    open_merge_request(gitlab, spec)
    result = sweep_pipeline(gitlab)
    assert result.returncode == 0, result.output  # the failed job is an allowed failure
    logs = [result.job_log(f"sweep-run: [{i}/2]") for i in (1, 2)]
    [failed_job] = [log for log in logs if "max_leaf_nodes=-1" in log]
    assert "error: 1 of 1 sweep runs failed" in failed_job and "WARN 1" in failed_job
    table = {row[2]: row for row in rows(gitlab)}
    assert set(table) == {"10", "-1"}
    assert table["10"][0] == "1" and table["-1"][0] == "–"
    assert table["-1"][3].startswith(
        "failed: error: params.yaml: train.hist_gradient_boosting.max_leaf_nodes must not be"
    )
    assert set(experiment_refs(gitlab)) == {table["10"][1]}  # the failed run made no experiment


@pytest.mark.slow
def test_the_local_command_runs_the_sweep_through_dvcs_queue_and_prints_the_table(bake, s3_endpoint):
    project = bake(s3_bucket=f"local-{uuid.uuid4().hex[:12]}")
    env = s3_env(project, s3_endpoint, f"local-{uuid.uuid4().hex[:12]}")
    commit_first_model(project, env)
    spec = yaml.safe_load((project / "sweep.yaml").read_text())
    spec["parameters"] = {"train.hist_gradient_boosting.max_leaf_nodes": [10, -1]}
    (project / "sweep.yaml").write_text(yaml.safe_dump(spec))
    local = run(["python", "-m", "tumour_classifier.sweep", "local", "--jobs", "2"], project, env, check=False)
    assert local.returncode == 1 and "error: 1 of 2 sweep runs failed" in local.stderr
    lines = [line for line in local.stdout.splitlines() if ROW.match(line)]
    cells = [[cell.strip().strip("`") for cell in line.strip("|").split(" | ")] for line in lines]
    assert [(row[0], row[2]) for row in cells] == [("1", "10"), ("–", "-1")]
    assert cells[-1][3].startswith(
        "failed: error: params.yaml: train.hist_gradient_boosting.max_leaf_nodes must not be"
    )
    queued = run(["dvc", "exp", "list", "--name-only"], project, env).stdout.split()
    assert cells[0][1] in queued  # the run is an experiment, to apply or push
