"""`training_runner`: where the train job runs, as GitLab would schedule it for each kind of pipeline.

(tests/test_add_ons.py: every choice passes GitLab's schema.) gitlab-ci-local evaluates the
rules and needs for a default-branch pipeline, a merge request pipeline and a fork's merge
request. What only a real cloud can show (a VM booting, CML's terraform) is not run here; the
launch command itself is checked against the strict CML stand-in in tests/test_cloud_runner.py.
"""

import shlex
from pathlib import Path

import pytest

from harness.ci_file import add_origin, branch, interruptible_jobs, listed_jobs, load, merge_request, tag
from harness.gitlab import FORK_ID, PROJECT_ID
from harness.job_states import Pipeline
from harness.project import bake_defaults

CHOICES = ["gitlab", "tagged", "gitlab-hosted", "cml"]


def scenario(base: dict, **variables: str) -> dict:
    return {"variables": {**base["variables"], **variables}, "unset": base["unset"]}


PROTECTED_BRANCH = branch("main", protected=True)
MERGE_REQUEST = scenario(merge_request(), CI_COMMIT_REF_PROTECTED="false")  # an unprotected branch, as most are
FORK_IN_FORK = merge_request(source=FORK_ID, runs_in=FORK_ID)
FORK_IN_PARENT = merge_request(source=FORK_ID, runs_in=PROJECT_ID)
ALL_BRANCHES = {"TRAIN_CLOUD_ON_UNPROTECTED_REFS": "true"}


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[str, Path]:
    baked = {}
    for choice in CHOICES:
        project = bake_defaults(tmp_path_factory.mktemp(choice), f"training_runner={choice}")
        add_origin(project)
        baked[choice] = project
    return baked


def plan(project: Path, kind: dict) -> dict[str, tuple[str, list[str]]]:
    """job -> (when, the jobs it needs) for the jobs this kind of pipeline creates."""
    jobs = listed_jobs(project, kind)
    return {
        name: (job["when"], sorted(need["job"] if isinstance(need, dict) else need for need in job.get("needs") or []))
        for name, job in jobs.items()
        if job["when"] != "never"
    }


@pytest.mark.parametrize("choice", ["gitlab", "tagged", "gitlab-hosted"])
def test_runner_choices_by_tag_change_only_where_the_train_job_runs(projects, choice):
    config = load(projects[choice])
    default = load(projects["gitlab"])
    train, default_train = config["train"], default["train"]
    if choice == "gitlab":
        assert "tags" not in train
    else:
        assert train["tags"] == ["$TRAINING_RUNNER_TAG"]
        expected_tag = {"tagged": "ml-training", "gitlab-hosted": "saas-linux-large-amd64"}[choice]
        assert config["variables"]["TRAINING_RUNNER_TAG"] == expected_tag
    assert {key: value for key, value in train.items() if key not in ("tags", "variables")} == {
        key: value for key, value in default_train.items() if key not in ("tags", "variables")
    }
    assert {name for name in config if name != "variables"} == {name for name in default if name != "variables"}
    for kind in (PROTECTED_BRANCH, MERGE_REQUEST, FORK_IN_FORK):
        assert plan(projects[choice], kind) == plan(projects["gitlab"], kind)


def test_tagged_runners_are_sized_per_job_on_kubernetes(projects):
    variables = load(projects["tagged"])["train"]["variables"]
    assert set(variables) == {"KUBERNETES_CPU_REQUEST", "KUBERNETES_MEMORY_REQUEST"}


def test_cml_launches_a_runner_for_a_protected_branch_and_cleans_up_after_the_train_job(projects):
    assert plan(projects["cml"], PROTECTED_BRANCH) == {
        "test": ("on_success", []),
        "launch-runner": ("on_success", []),
        "train": ("on_success", ["launch-runner"]),
        "remove-runner": ("always", ["launch-runner", "train"]),
        "register": ("manual", ["test", "train"]),
        "promote": ("manual", []),
    }


def test_cml_merge_requests_of_unprotected_branches_train_in_the_cloud_only_when_allowed(projects):
    jobs = plan(projects["cml"], MERGE_REQUEST)
    assert {name: jobs[name] for name in jobs if not name.startswith("sweep")} == {  # no machine, no train job
        "test": ("on_success", []),
        "comment": ("on_success", ["train"]),  # an optional need: it says there is no report
    }
    allowed = plan(projects["cml"], scenario(MERGE_REQUEST, **ALL_BRANCHES))
    assert allowed["launch-runner"] == ("on_success", []) and allowed["train"] == ("on_success", ["launch-runner"])
    assert allowed["remove-runner"] == ("always", ["launch-runner", "train"])


@pytest.mark.parametrize("fork", [FORK_IN_FORK, FORK_IN_PARENT], ids=["runs-in-fork", "runs-in-parent"])
def test_cml_never_launches_a_machine_for_a_fork(projects, fork):
    for kind in (fork, scenario(fork, CI_COMMIT_REF_PROTECTED="true", **ALL_BRANCHES)):
        jobs = plan(projects["cml"], kind)
        assert not {"launch-runner", "train", "remove-runner"} & set(jobs), jobs
        assert jobs["comment"] == ("on_success", ["train"])


def test_cml_train_job_runs_only_on_its_pipelines_runner_in_the_python_image(projects):
    config = load(projects["cml"])
    train, launch = config["train"], config["launch-runner"]
    launch_command = shlex.split(next(line for line in launch["script"] if line.startswith("cml runner launch")))
    labels = launch_command[launch_command.index("--labels") + 1]
    assert train["tags"] == [labels] == ["cml-$CI_PIPELINE_IID"]  # known when GitLab creates the pipeline
    assert train["extends"] == ".python" and "image" not in train  # the project's Python image, not CML's
    assert "--single" in launch_command and "--cloud-spot" not in launch_command
    timeout = launch_command[launch_command.index("--idle-timeout") + 1]
    assert timeout not in ("never", "0")
    # Stopped half-way, launch or clean-up would leave a machine running.
    assert config[".cml"]["interruptible"] is False
    assert launch["extends"] == config["remove-runner"]["extends"] == ".cml"


def test_cml_a_newer_commit_never_cancels_the_train_job_so_the_machine_is_always_removed(projects):
    """Auto-cancel cancels interruptible jobs only; a cancelled train job would make GitLab skip
    remove-runner (`when: always` does not accept `canceled`: harness/job_states.py)."""
    config = load(projects["cml"])
    listed = listed_jobs(projects["cml"], PROTECTED_BRANCH)
    run = Pipeline.from_listing(listed, config["stages"], {"train": "running"}, interruptible_jobs(config))
    run.auto_cancel()
    assert run.status["train"] == "running" and run.status["remove-runner"] == "created"
    run.finish("train", "failed")
    assert run.status["remove-runner"] == "success"


def test_tag_pipelines_launch_nothing(projects):
    jobs = plan(projects["cml"], tag("model@v0.1.0", CI_COMMIT_REF_PROTECTED="true"))
    assert not {"launch-runner", "train", "remove-runner"} & set(jobs), jobs
