"""The generated .gitlab-ci.yml (and the template's own) as GitLab would read it, without a GitLab.

GitLab's CI schema (check-jsonschema's vendored copy, offline) checks the structure; gitlab-ci-local
checks what the schema cannot (stages, `needs:`) and evaluates `rules:` the way GitLab does. As
gitlab-ci-local ignores `workflow:rules`, those are copied into a probe job's `rules:` and evaluated
there. The rest are the static properties a reviewer would otherwise check by eye.
"""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from harness.ci_file import (
    CI_FILE,
    add_origin,
    branch,
    check_jsonschema,
    gitlab_ci_local,
    included_files,
    list_json,
    load,
    merge_request,
    tag,
)
from harness.project import TEMPLATE, bake_defaults, project_env, run

QUESTIONS = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
# Top-level keys of a GitLab CI file that are not jobs.
GLOBAL_KEYS = {"default", "include", "stages", "variables", "workflow", "image", "services", "cache"}
GLOBAL_KEYS |= {"before_script", "after_script", "spec"}
SCRIPT_KEYS = ("before_script", "script", "after_script")

VARIANTS = {
    **{f"dataset-{name}": {"dataset": name} for name in QUESTIONS["dataset"]},
    **{f"python-{version}": {"python_version": version} for version in QUESTIONS["python_version"]},
    "custom-endpoint": {"s3_endpoint_url": "https://minio.example.com:9000", "s3_bucket": "ml-data"},
    "cyrillic-name": {"project_name": "Классификатор опухолей", "author_name": "Анна Петрова"},
}

# Pipeline kinds, as the variables GitLab sets for them (harness.ci_file).
MERGE_REQUEST = merge_request()
BRANCH_PUSH = branch("main")

WORKFLOW_SCENARIOS = {
    "branch-push-without-merge-request": (BRANCH_PUSH, "on_success"),
    # The MR pipeline of the same commit covers it: no duplicate pipeline.
    "branch-push-with-open-merge-request": (
        {"variables": {**BRANCH_PUSH["variables"], "CI_OPEN_MERGE_REQUESTS": "ml/demo!1"}, "unset": []},
        "never",
    ),
    "merge-request-event": (MERGE_REQUEST, "on_success"),
    # The model registry's tags (GTO) start a pipeline (tests/test_tag_pipelines.py: its jobs) ...
    "version-tag-push": (tag("model@v0.1.0"), "on_success"),
    "stage-tag-push": (tag("model#production#3"), "on_success"),
    "unassignment-tag-push": (tag("model#staging!#4"), "on_success"),
    # ... and no other tag does.
    "tag-push": (tag("v1.0.0"), "never"),
    "tag-push-of-another-artifact": (tag("data@v1.0.0"), "never"),
}


def jobs(config: dict, hidden: bool = True) -> dict[str, dict]:
    """Jobs, and (hidden) the `.templates` they extend, which carry settings for them."""
    return {
        name: job
        for name, job in config.items()
        if name not in GLOBAL_KEYS and isinstance(job, dict) and (hidden or not name.startswith("."))
    }


def script_lines(config: dict) -> list[str]:
    lines = []
    for job in [config.get("default", {}), *jobs(config).values()]:
        for key in SCRIPT_KEYS:
            value = job.get(key, [])
            lines += [value] if isinstance(value, str) else value
    return lines


@pytest.fixture(scope="module")
def default_project(tmp_path_factory) -> Path:
    project = bake_defaults(tmp_path_factory.mktemp("default-bake"))
    add_origin(project)
    return project


@pytest.fixture(scope="module")
def config(default_project) -> dict:
    return load(default_project)


# --- Validity of every variant -------------------------------------------------------------------


@pytest.mark.parametrize("answers", VARIANTS.values(), ids=VARIANTS.keys())
def test_generated_ci_file_is_valid_for_gitlab(bake, answers):
    project = bake(**answers)
    schema = check_jsonschema(project / CI_FILE)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    assert "ok -- validation done" in schema.stdout

    add_origin(project)
    listing = gitlab_ci_local(project, "--list").stdout
    listed = [line.split()[0] for line in listing.splitlines()[1:] if line.strip()]
    assert listed == ["test", "train", "register", "promote"], listing  # comment is MR-only

    if "python_version" in answers:  # the jobs run on the Python the project was made for
        assert load(project)["variables"]["PYTHON_IMAGE"] == f"python:{answers['python_version']}"


# A mistake of each kind the checks are used for, and the check and message that catch it.
BROKEN = {
    "schema": (lambda config: config["comment"].update(when="sometimes"), "schema", "sometimes"),
    "missing-needs": (lambda config: config["comment"].update(needs=["trian"]), "list", "[trian]"),
    "undeclared-stage": (lambda config: config["comment"].update(stage="publish"), "list", "stage:publish"),
}


@pytest.mark.parametrize(("breakage", "caught_by", "message"), BROKEN.values(), ids=BROKEN.keys())
def test_the_checks_catch_a_broken_ci_file(default_project, tmp_path, breakage, caught_by, message):
    """The two checks are not vacuous: each catches the kind of mistake it is used for."""
    broken = load(default_project)
    breakage(broken)
    probe = tmp_path / "broken"
    probe.mkdir()
    (probe / CI_FILE).write_text(yaml.safe_dump(broken, sort_keys=False, allow_unicode=True), encoding="utf-8")
    if caught_by == "schema":
        result = check_jsonschema(probe / CI_FILE)
    else:
        init_repo(probe)
        result = gitlab_ci_local(probe, "--list", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_template_repository_ci_file_is_valid():
    """The template's own pipeline (/.gitlab-ci.yml, which runs this suite) must exist and be valid."""
    ci_file = TEMPLATE / CI_FILE
    assert ci_file.is_file(), f"{ci_file} is missing: the template repository has no CI pipeline"
    schema = check_jsonschema(ci_file)
    assert schema.returncode == 0, schema.stdout + schema.stderr


# --- Which jobs each kind of pipeline creates ---------------------------------------------------


# The jobs of tag pipelines: tests/test_tag_pipelines.py.
def init_repo(path: Path) -> None:
    env = project_env(path)
    run(["git", "init", "--quiet", "--initial-branch", "main"], path, env)
    run(["git", "add", "--all"], path, env)
    run(["git", "commit", "--quiet", "--no-verify", "-m", "probe"], path, env)
    add_origin(path)


@pytest.fixture(scope="module")
def workflow_probe(config, tmp_path_factory) -> Path:
    """A repository whose one job `probe` has the generated file's workflow rules as its rules."""
    rules = config["workflow"]["rules"]
    repo = tmp_path_factory.mktemp("workflow-probe") / "repo"
    repo.mkdir()
    probe = {"probe": {"script": ["true"], "rules": rules}}
    (repo / "probe.yml").write_text(yaml.safe_dump(probe, sort_keys=False), encoding="utf-8")
    assert yaml.safe_load((repo / "probe.yml").read_text(encoding="utf-8"))["probe"]["rules"] == rules
    init_repo(repo)
    return repo


@pytest.mark.parametrize(("scenario", "expected"), WORKFLOW_SCENARIOS.values(), ids=WORKFLOW_SCENARIOS.keys())
def test_workflow_rules_create_one_pipeline_per_change(workflow_probe, scenario, expected):
    assert list_json(workflow_probe, scenario, "--file", "probe.yml") == {"probe": expected}


# --- Static properties --------------------------------------------------------------------------


def test_new_commits_cancel_every_job_of_the_older_pipeline(config):
    assert config["workflow"]["auto_cancel"]["on_new_commit"] == "interruptible"
    assert config["default"]["interruptible"] is True
    overrides = {name: job["interruptible"] for name, job in jobs(config).items() if "interruptible" in job}
    # Only the registry's jobs opt out: promote unassigns a version, then assigns another.
    assert {name for name, value in overrides.items() if not value} == {"register", "promote"}


def test_comment_image_is_pinned(config):
    assert config["comment"]["image"] == "$CML_IMAGE"
    image = config["variables"]["CML_IMAGE"]
    match = re.fullmatch(r"[a-z0-9./_-]+:([\w.-]+)(@sha256:[0-9a-f]{64})?", image)
    assert match, f"CML_IMAGE {image!r} has no tag"
    assert match.group(1) != "latest"


def test_no_job_hides_a_failure(config, default_project):
    lines = script_lines(config)
    assert any("ci/pipeline.sh" in line for line in lines)  # the guards were found
    scripts = sorted((default_project / "ci").glob("*.sh"))
    for text in [*lines, *(script.read_text(encoding="utf-8") for script in scripts)]:
        assert not re.search(r"\|\|\s*(true|:)\s*($|;|#)", text, re.MULTILINE), text


def test_steps_call_existing_scripts_and_guards(config, default_project):
    """Every `ci/` path a step names exists, and every guard a step calls is a function of
    ci/pipeline.sh (a typo would only show as "command not found" on GitLab)."""
    words = [shlex.split(line) for line in script_lines(config)]
    called = [word for line in words for word in line if word.startswith("ci/")]
    assert {"ci/pipeline.sh", "ci/report_comment.py", "ci/registry.sh", "ci/sweeps.sh"} <= set(called)
    for path in called:
        assert (default_project / path).is_file(), path
    shell = "".join(path.read_text() for path in (default_project / "ci").glob("*.sh"))
    guards = set(re.findall(r"^(\w+)\(\) \{", shell, re.MULTILINE))
    used = {line[0] for line in words if re.fullmatch(r"[a-z]+(_[a-z]+)+", line[0])}
    used |= {line[1] for line in words if line[0] in ("if", "test") and re.fullmatch(r"[a-z]+(_[a-z]+)+", line[1])}
    used |= set(re.findall(r"(?:\$\(|&& )([a-z]+(?:_[a-z]+)+)", " ".join(script_lines(config))))
    assert {"report_base", "production_version"} <= used
    assert used and used <= guards, used - guards


def test_dvc_and_cml_steps_are_in_the_ci_file(config):
    """Readers learn the pattern from .gitlab-ci.yml: the DVC and CML commands are its steps."""
    steps = {name: " ".join(job.get("script", [])) for name, job in jobs(config, hidden=False).items()}
    assert "dvc repro --pull" in steps["train"] and "dvc push --run-cache" in steps["train"]
    assert "dvc params diff" in steps["train"] and "dvc metrics diff" in steps["train"]
    deploy, stop = (" ".join(config[template]["script"]) for template in (".deploy", ".stop"))
    assert "dvc pull train evaluate" in steps["publish"] and "dvc pull train" in deploy
    assert 'gto check-ref "$CI_COMMIT_TAG"' in stop and 'gto check-ref "$CI_COMMIT_TAG"' in steps["withdraw"]
    [command] = [shlex.split(line) for line in config["comment"]["script"] if line.startswith("cml comment")]
    assert command[:3] == ["cml", "comment", "$mode"]
    assert "--native" in command  # images stay in GitLab, never on CML's public asset host
    assert command[command.index("--repo") + 1] == "$CI_PROJECT_URL"
    assert "cml --version" in config["comment"]["script"]


def test_artifacts_expire(config):
    """Every job says how long its artifacts stay, reports too (the JUnit report would otherwise
    follow whatever the instance's default is, "never" included)."""
    with_artifacts = {name: job["artifacts"] for name, job in jobs(config).items() if "artifacts" in job}
    assert with_artifacts, "no job keeps artifacts"
    for name, artifacts in with_artifacts.items():
        assert "expire_in" in artifacts, name
    assert config["test"]["artifacts"]["expire_in"] == "30 days"


def test_long_jobs_have_a_deliberate_timeout(config):
    """A project's default job timeout is 60 minutes (GitLab.com's too): training and sweep runs set
    their own, as long as GitLab.com's hosted runners allow (a runner's maximum still wins)."""
    assert config["train"]["timeout"] == config["sweep-run"]["timeout"] == "3 hours"


def test_caches_follow_the_lock_file_and_upload_once(default_project):
    """On the configuration as GitLab sees it, `extends` merged: every Python job restores the uv
    cache keyed on requirements.lock, and only one job uploads it."""
    expanded = yaml.safe_load(gitlab_ci_local(default_project, "--preview").stdout)
    caches = {name: job["cache"] for name, job in jobs(expanded, hidden=False).items() if "cache" in job}
    python_jobs = {"test", "train", "register", "promote", "publish", "withdraw"}
    python_jobs |= {f"{action}-{stage}" for action in ("deploy", "stop") for stage in ("staging", "production")}
    assert set(caches) == python_jobs | {"sweep", "sweep-run", "sweep-report"}
    for name, cache in caches.items():
        for entry in cache if isinstance(cache, list) else [cache]:
            assert entry["key"]["files"] == ["requirements.lock"], name
            assert entry["paths"] == [".cache/uv"], name
    uploaders = [name for name, cache in caches.items() if cache[0]["policy"] != "pull"]
    assert uploaders == ["test"]
    # What it uploads is only what PyPI cannot give again (693 MB of wheels become 31 MB):
    # unpacking the whole cache took longer than downloading it (benchmarks/latency_budget_results.md).
    assert expanded["test"]["script"][-1].startswith("uv cache prune --ci")


def test_no_secrets_in_the_ci_file(default_project):
    text = "".join((default_project / name).read_text(encoding="utf-8") for name in included_files(default_project))
    for secret in ("AKIA", "ASIA", "glpat-", "gldt-", "glptt-"):
        assert secret not in text
    assert not re.search(r"^\s*(AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|REPO_TOKEN)\s*:", text, re.MULTILINE)


def test_ci_scripts_are_valid_bash(default_project):
    scripts = sorted((default_project / "ci").glob("*.sh"))
    assert {script.name for script in scripts} == {"pipeline.sh", "registry.sh", "sweeps.sh"}
    for script in scripts:
        result = run(["bash", "-n", str(script)], default_project, check=False)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"
