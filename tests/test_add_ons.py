"""Every add-on combination, baked: the exact file tree, GitLab's schema on the merged
configuration, and the jobs each kind of pipeline lists (gitlab-ci-local resolves the includes).
What the add-ons do when they run is proven once each, by the end-to-end tests."""

import itertools
import json

import pytest
import yaml

from harness.ci_file import (
    CI_FILE,
    add_origin,
    branch,
    check_jsonschema,
    list_json,
    load,
    merge_request,
    read_config,
    split_header,
    tag,
    tags_unknown_at_creation,
)
from harness.project import TEMPLATE, bake_cli, bake_defaults, run

QUESTIONS = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
PACKAGE = "src/tumour_classifier"
PROJECT = "{{cookiecutter.project_slug}}"
CORE_FILES = {
    *(".cookiecutter.json", ".dvc/.gitignore", ".dvc/config", ".dvc/plots/confusion_counts.json", ".dvcignore"),
    *(".gitignore", CI_FILE, ".pre-commit-config.yaml", "README.md", "dvc.yaml", "params.yaml", "pyproject.toml"),
    *("ci/gitlab_api.py", "ci/pipeline.sh", "ci/report_comment.py", "requirements.lock"),
    *("data/.gitignore", "data/README.md", "data/raw/.gitignore", "data/raw/dataset.csv.dvc", "models/.gitignore"),
    "reports/evaluation/.gitignore",
    *(f"{PACKAGE}/{name}.py" for name in ("__init__", "config", "evaluate", "model_file", "predict", "prepare")),
    *(f"{PACKAGE}/{name}.py" for name in ("compare", "report", "train")),
    *(f"tests/{name}.py" for name in ("__init__", "conftest", "test_compare", "test_evaluate", "test_model_file")),
    *(f"tests/{name}.py" for name in ("test_predict", "test_prepare", "test_report", "test_train")),
    *(f"tests/{name}.py" for name in ("crafted", "test_stage_imports", "test_stage_params")),
}
ADD_ON_FILES = {
    "parameter_sweeps": {
        "ci/sweeps.gitlab-ci.yml",
        "ci/sweeps.sh",
        "sweep.yaml",
        f"{PACKAGE}/sweep.py",
        "tests/test_sweep.py",
    },
    "model_registry": {"ci/model-registry.gitlab-ci.yml", "ci/registry.sh", ".gto", f"{PACKAGE}/registry.py"}
    | {"tests/test_registry.py"},
    "mlflow_mirror": {"ci/mlflow-mirror.gitlab-ci.yml", "ci/mlflow_mirror.py", "ci/mlflow-requirements.txt"},
}
RUNNER_EXAMPLES = {
    f"ci/runners/{path.name}" for path in (TEMPLATE / "{{cookiecutter.project_slug}}/ci/runners").iterdir()
}
RUNNER_FILES = {
    "gitlab": set(),
    "tagged": {"ci/runner-tag.gitlab-ci.yml", *RUNNER_EXAMPLES},
    "gitlab-hosted": {"ci/runner-tag.gitlab-ci.yml"},
    "cml": {"ci/cloud-runner.gitlab-ci.yml", "ci/cloud_runner.py", "ci/vm-startup.sh"},
}
SWEEP_JOBS = {"sweep", "sweep-run: [1/2]", "sweep-run: [2/2]", "sweep-report", "sweep-comment"}

# Every add-on combination the pre-generation hook accepts, on the usual runners; then each other
# runner with the defaults (runners and add-ons touch different jobs).
ADD_ONS = [
    {"parameter_sweeps": sweeps, "model_registry": registry, "mlflow_mirror": mirror}
    for sweeps, registry, mirror in itertools.product([True, False], repeat=3)
    if registry or not mirror
]
DEFAULTS = {key: QUESTIONS[key] for key in ADD_ON_FILES}
COMBINATIONS = [{**add_ons, "training_runner": "gitlab"} for add_ons in ADD_ONS]
COMBINATIONS += [{**DEFAULTS, "training_runner": runner} for runner in QUESTIONS["training_runner"][1:]]


def name(answers: dict) -> str:
    chosen = [key for key in ADD_ON_FILES if answers[key]]
    return "+".join([answers["training_runner"], *chosen]) or "core"


@pytest.fixture(scope="module", params=COMBINATIONS, ids=map(name, COMBINATIONS))
def baked(request, tmp_path_factory):
    answers = request.param
    project = bake_defaults(tmp_path_factory.mktemp("add-ons"), *(f"{key}={value}" for key, value in answers.items()))
    add_origin(project)
    return answers, project


def expected_jobs(answers: dict, kind: str) -> set[str]:
    """The jobs GitLab creates for this kind of pipeline (manual ones included), by the README."""
    cml = answers["training_runner"] == "cml"
    sweeps, registry, mirror = (answers[key] for key in ADD_ON_FILES)
    if kind == "default-branch":  # protected
        return (
            {"test", "train"}
            | ({"launch-runner", "remove-runner"} if cml else set())
            | ({"register", "promote"} if registry else set())
        )
    if kind == "merge-request":  # of an unprotected branch: no cloud machine unless allowed
        return {"test", "comment"} | (set() if cml else {"train"}) | (SWEEP_JOBS if sweeps else set())
    if kind == "version-tag":
        return {"publish"} | ({"mirror"} if mirror else set())
    return {"deploy-production"}  # stage-tag


KINDS = {
    "default-branch": branch("main", protected=True),
    "merge-request": merge_request(),
    "version-tag": tag("model@v0.1.0"),
    "stage-tag": tag("model#production#3"),
}


def test_the_bake_holds_exactly_the_chosen_files(baked):
    answers, project = baked
    expected = set(CORE_FILES) | RUNNER_FILES[answers["training_runner"]]
    for add_on, files in ADD_ON_FILES.items():
        expected |= files if answers[add_on] else set()
    assert set(run(["git", "ls-files"], project).stdout.splitlines()) == expected


def test_the_merged_configuration_passes_gitlabs_schema(baked, tmp_path):
    _, project = baked
    merged = tmp_path / CI_FILE
    merged.write_text(yaml.safe_dump(load(project)), encoding="utf-8")
    result = check_jsonschema(merged)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_runner_tag_uses_only_variables_gitlab_knows_when_it_creates_the_pipeline(baked):
    """GitLab expands `tags:` once, at the pipeline's creation: a job-only variable such as
    CI_PIPELINE_ID stays as written, and the job waits for a runner that never comes."""
    _, project = baked
    assert tags_unknown_at_creation(load(project)) == {}


def test_the_tag_check_finds_job_only_and_undeclared_variables():
    config = {
        "variables": {"SIZE": "large", "VIA_JOB_ONLY": "cml-$CI_JOB_ID"},
        "ok": {"tags": ["cml-$CI_PIPELINE_IID", "$SIZE", "${CI_PROJECT_ID}", "$LOCAL"], "variables": {"LOCAL": "x"}},
        "train": {"tags": ["cml-$CI_PIPELINE_ID", "$SIZE"]},
        "nested": {"tags": ["$VIA_JOB_ONLY"]},
        "undeclared": {"tags": ["$RUNNER_SIZE"]},
    }
    assert tags_unknown_at_creation(config) == {
        "train": ["cml-$CI_PIPELINE_ID"],
        "nested": ["$VIA_JOB_ONLY"],
        "undeclared": ["$RUNNER_SIZE"],
    }


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_pipeline_lists_exactly_the_expected_jobs(baked, kind):
    answers, project = baked
    if kind.endswith("tag") and not answers["model_registry"]:
        # gitlab-ci-local ignores workflow rules: without the registry, no rule lets a tag in.
        rules = load(project)["workflow"]["rules"]
        assert not any("CI_COMMIT_TAG" in rule.get("if", "") for rule in rules)
        return
    created = {job for job, when in list_json(project, KINDS[kind]).items() if when != "never"}
    assert created == expected_jobs(answers, kind)


def test_the_core_file_fits_a_screen_and_reads_without_the_add_ons(baked):
    """The loop is in .gitlab-ci.yml; each add-on's jobs are in its own included file."""
    _, project = baked
    core = read_config(project / CI_FILE)
    settings = {"workflow", "stages", "variables", "default", "include"}
    assert {job for job in core if not job.startswith(".")} - settings == {"test", "train", "comment"}
    _, jobs = split_header((project / CI_FILE).read_text(encoding="utf-8"))  # after Run pipeline's inputs
    assert len(jobs.splitlines()) <= 125


def test_the_mirror_without_the_registry_is_refused_before_anything_is_written(tmp_path):
    result = bake_cli(tmp_path, "model_registry=no", "mlflow_mirror=yes")
    assert result.returncode != 0
    assert "ERROR: mlflow_mirror mirrors the model registry's versions, so it needs model_registry=yes" in result.stderr
    assert not list(tmp_path.glob("*/.cookiecutter.json"))
