"""The model registry's pipelines: which jobs each tag creates (gitlab-ci-local's rules engine, with
the variables GitLab sets for a tag push), and real runs under gitlab-ci-local against the loopback
S3 remote and GitLab: the manual register and promote jobs push tags with REPO_TOKEN; a version
tag's pipeline publishes that commit's model without running a stage; a stage tag's pipeline
deploys to the environment named after the stage, whatever a pipeline or project variable says;
an unassignment stops that environment; a deploy run again once its tag is out of date refuses.
The runner's checkout holds the pipeline's tag alone, as GitLab's does."""

import json
import uuid
from pathlib import Path

import pytest
import yaml

from harness.ci_file import CI_FILE, branch, gitlab_ci_local, listed_jobs, load, split_header
from harness.gitlab import BOT, GITLAB_CI_LOCAL, JOB_TOKEN, PROJECT_ID, PROJECT_PATH, TOKEN, LocalGitLab, PipelineRun
from harness.gitlab_api import GitLabApi
from harness.job_states import Pipeline
from harness.project import bake_defaults, commit_first_model, file_md5, locked_md5, project_env, ran_stages, run
from harness.s3 import s3_env

MODEL = "models/model.skops"
# Tags as GTO 1.10.1 writes them (`gto check-ref` reads each), and tags of anything else.
TAG_JOBS = {
    "registration": ("model@v0.1.0", {}, {"publish"}),
    "assignment-staging": ("model#staging#2", {}, {"deploy-staging"}),
    "assignment-production": ("model#production#13", {}, {"deploy-production"}),
    "unassignment": ("model#staging!#4", {}, {"stop-staging"}),
    "deregistration": ("model@v0.1.0!", {}, {"withdraw"}),
    "artifact-deprecation": ("model@deprecated", {}, {"withdraw"}),
    "stage-not-in-gto": ("model#qa#5", {}, set()),
    "release-tag": ("v1.0", {}, set()),
    "prerelease-version": ("model@v1.0.0-rc1", {}, set()),
}


@pytest.fixture(scope="module")
def listed_project(tmp_path_factory) -> Path:
    """The default bake with a GitLab-like `origin`, so gitlab-ci-local derives realistic variables."""
    project = bake_defaults(tmp_path_factory.mktemp("tag-rules"))
    env = project_env(project)
    run(["git", "remote", "add", "origin", "https://gitlab.example.com/ml/demo.git"], project, env)
    run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], project, env)
    return project


def created_jobs(project: Path, tag: str, variables: dict) -> set[str]:
    values = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": tag, "CI_COMMIT_REF_NAME": tag, **variables}
    args = [str(GITLAB_CI_LOCAL), "--list-json", "--home", str(project.parent / "gcl-home")]
    args += ["--ignore-predefined-vars", "CI_PIPELINE_SOURCE,CI_COMMIT_TAG,CI_COMMIT_REF_NAME,CI_COMMIT_BRANCH"]
    args += [f"--variable={key}={value}" for key, value in values.items()]
    args += ["--unset-variable=CI_COMMIT_BRANCH"]  # GitLab leaves it unset in tag pipelines
    listing = json.loads(run(args, project, project_env(project)).stdout)
    return {job["name"] for job in listing if job["when"] != "never"}


@pytest.mark.parametrize(("tag", "variables", "expected"), TAG_JOBS.values(), ids=TAG_JOBS.keys())
def test_which_jobs_a_tag_pipeline_creates(listed_project, tag, variables, expected):
    """Other tags create none of the registry's jobs (the workflow rules start no pipeline for them
    at all: test_ci_config.py), and tag pipelines never test or train."""
    assert created_jobs(listed_project, tag, variables) == expected


def test_each_stage_of_gto_has_its_deploy_and_stop_jobs(listed_project):
    """.gto lists the stages; each has a deploy and a stop job whose environment is named in the job
    (no variable), one job at a time; the pipeline's `stage` input offers the same stages."""
    stages = yaml.safe_load((listed_project / ".gto").read_text())["stages"]
    config = load(listed_project)
    header, _ = split_header((listed_project / CI_FILE).read_text(encoding="utf-8"))
    assert yaml.safe_load(header)["spec"]["inputs"]["stage"]["options"] == stages
    for stage in stages:
        assert config[f"deploy-{stage}"]["environment"] == stage
        assert config[f"stop-{stage}"]["environment"] == {"name": stage, "action": "stop"}
        assert config[f"deploy-{stage}"]["resource_group"] == config[f"stop-{stage}"]["resource_group"] == stage
        assert created_jobs(listed_project, f"model#{stage}#1", {}) == {f"deploy-{stage}"}
        assert created_jobs(listed_project, f"model#{stage}!#2", {}) == {f"stop-{stage}"}


def preview(project: Path, *inputs: str, check: bool = True):
    """The configuration as gitlab-ci-local interpolates it for a pipeline run with these inputs."""
    return gitlab_ci_local(project, "--preview", *(f"--input={value}" for value in inputs), check=check)


def test_the_registry_jobs_take_their_choices_from_the_pipelines_inputs(listed_project):
    """GitLab.com's new projects allow no pipeline variables (neither at Run pipeline nor on a
    manual job: app/services/ci/play_build_service.rb); pipeline inputs are not variables, so they
    still reach register and promote (GitLab 17.11+, doc/ci/inputs/_index.md)."""

    def choices(config: dict) -> tuple:
        return config["register"]["variables"]["BUMP"], *map(config["promote"]["variables"].get, ("VERSION", "STAGE"))

    chosen = yaml.safe_load(preview(listed_project, "bump=patch", "version=v1.2.0", "stage=production").stdout)
    assert choices(chosen) == ("patch", "v1.2.0", "production")
    pushed = yaml.safe_load(preview(listed_project).stdout)  # a pipeline of a push: the defaults
    assert choices(pushed) == ("minor", "", "staging")
    for wrong, message in [
        ("stage=prod", "`stage` input: `prod` cannot be used because it is not in the list of allowed options"),
        ("version=latest", "`version` input: `latest` does not match required regex"),
        ("bump=huge", "`bump` input: `huge` cannot be used"),
    ]:
        refused = preview(listed_project, wrong, check=False)
        assert refused.returncode != 0 and message in refused.stdout + refused.stderr, wrong


@pytest.mark.parametrize(("test", "register"), [("success", "manual"), ("failed", "skipped")])
def test_register_waits_to_be_played_only_on_a_commit_whose_tests_passed(listed_project, test, register):
    """register needs test: a failed test job makes GitLab skip it (harness/job_states.py), so no
    version is made of a commit whose tests failed, even though its model trained."""
    config = load(listed_project)
    pipeline = Pipeline.from_listing(listed_jobs(listed_project, branch("main")), config["stages"], {"test": test})
    assert (pipeline.status["train"], pipeline.status["register"]) == ("success", register)


# --- Real runs -----------------------------------------------------------------------------------


@pytest.fixture
def gitlab(bake, jobs_venv, s3_endpoint):
    """A baked project whose first model was trained, committed and pushed (data and results)."""
    bucket = f"tags-{uuid.uuid4().hex[:12]}"
    project = bake(s3_bucket=bucket)
    env = s3_env(project, s3_endpoint, bucket)
    commit_first_model(project, env)
    run(["dvc", "push", "--quiet"], project, env)
    with GitLabApi(PROJECT_ID, PROJECT_PATH, {TOKEN: BOT}) as api:
        local = LocalGitLab(project, jobs_venv, s3_endpoint, api)
        local.s3_env = {**env, **local.url_rewrite()}  # the developer's shell: S3 and origin
        yield local


def registry(gitlab: LocalGitLab, *args: str) -> str:
    """The registry command in the developer's clone."""
    package = json.loads((gitlab.project / ".cookiecutter.json").read_text())["package_name"]
    return run(["python", "-m", f"{package}.registry", *args], gitlab.project, gitlab.s3_env).stdout


def tag_commit(gitlab: LocalGitLab, tag: str) -> str:
    return gitlab.head(f"refs/tags/{tag}^0")


def configs_holding(result: PipelineRun, secret: str) -> list[Path]:
    """The git configurations of the pipeline's checkouts (the runner reuses them) that hold `secret`."""
    configs = [path for path in result.checkout.rglob("config") if path.parent.name == ".git"]
    assert configs  # the checkouts are there to look at
    return [path for path in configs if secret in path.read_text(encoding="utf-8", errors="replace")]


@pytest.mark.slow
def test_register_job_then_the_version_tag_publishes_without_running_a_stage(gitlab):
    # BUMP as a pipeline variable, where the project still allows them (it outranks the input's value).
    main = gitlab.pipeline("register", variables={"BUMP": "major"})  # the first version is v0.1.0 all the same
    assert main.returncode == 0, main.output
    register = main.job_log("register")
    assert "Registered model v0.1.0" in register and "Pushed the tag model@v0.1.0 to origin." in register
    assert tag_commit(gitlab, "model@v0.1.0") == gitlab.head("main")
    assert TOKEN not in main.output and JOB_TOKEN not in main.output
    assert configs_holding(main, TOKEN) == []  # the push URL was never written to .git/config

    published = gitlab.pipeline(tag="model@v0.1.0")  # every job the tag's pipeline creates
    assert published.returncode == 0, published.output
    publish = published.job_log("publish")
    assert "Pipeline: tag 'model@v0.1.0'." in publish
    assert ran_stages(published.output) == [] and published.job_log("train") == ""
    md5_in_lock = locked_md5((published.checkout / "dvc.lock").read_text(), MODEL)
    assert f"{MODEL}: md5 {md5_in_lock}, as dvc.lock names it." in publish
    assert file_md5(published.artifact("publish", MODEL)) == md5_in_lock
    for kept in ("reports/evaluation/metrics.json", "reports/evaluation/plots", "params.yaml", "dvc.lock"):
        assert published.artifact("publish", kept).exists(), kept


@pytest.mark.slow
def test_promote_job_then_the_stage_tag_deploys_to_its_environment(gitlab):
    registry(gitlab, "register")
    # Pipeline inputs only, as on a project that allows no pipeline variables.
    promoted = gitlab.pipeline("promote", inputs={"version": "v0.1.0", "stage": "production"})
    assert promoted.returncode == 0, promoted.output
    assert "Pushed the tag model#production#1 to origin." in promoted.job_log("promote")
    assert TOKEN not in promoted.output
    assert configs_holding(promoted, TOKEN) == []

    # STAGE as a pipeline or project variable (promote's job variable, which older GitLab's users
    # set at Run pipeline) outranks anything a job sets: the deploy's environment must not depend on it.
    deployed = gitlab.pipeline(tag="model#production#1", variables={"STAGE": "staging"})
    assert deployed.returncode == 0, deployed.output
    deploy = deployed.job_log("deploy-production")
    # The checkout had this tag only; the registration tag fetched next names the version.
    assert "Deploying model v0.1.0 to the environment 'production'." in deploy
    assert (
        f"{MODEL}: md5 {locked_md5((deployed.checkout / 'dvc.lock').read_text(), MODEL)}, as dvc.lock names it."
        in deploy
    )
    assert file_md5(deployed.artifact("deploy-production", MODEL)) == locked_md5(
        (deployed.checkout / "dvc.lock").read_text(), MODEL
    )
    assert ran_stages(deployed.output) == [] and deployed.job_log("publish") == ""

    registry(gitlab, "unassign", "production")
    withdrawn = gitlab.pipeline(tag="model#production!#2")
    assert withdrawn.returncode == 0, withdrawn.output
    stop = withdrawn.job_log("stop-production")
    assert 'Stage "production" was unassigned from version "v0.1.0" of artifact "model"' in stop
    assert "The environment 'production' is stopped" in stop and withdrawn.job_log("deploy-production") == ""

    # The environment's re-deploy button runs the old deploy job again: production holds nothing now.
    again = gitlab.pipeline("deploy-production", tag="model#production#1")
    redeploy = again.job_log("deploy-production")
    assert "error: 'production' holds no version now, not v0.1.0 as model#production#1 said" in redeploy
    assert "Deploying model" not in redeploy and not again.artifact("deploy-production", MODEL).exists()
    assert again.returncode == 0 and "finished in" in redeploy and "WARN 3" in redeploy  # exit 3, allowed


@pytest.mark.slow
def test_a_stop_run_after_the_stage_was_assigned_again_keeps_the_environment(gitlab):
    """promote replaces a version with an unassignment and an assignment, two pipelines: the stop
    job of the first, run after the second tag exists, must not stop the environment."""
    registry(gitlab, "register")
    registry(gitlab, "promote", "v0.1.0", "staging")
    gitlab.git("commit", "--quiet", "--allow-empty", "-m", "Same model, next version")
    gitlab.push("main")
    registry(gitlab, "register")
    registry(gitlab, "promote", "v0.2.0", "staging")  # model#staging!#2, then model#staging#3
    stopped = gitlab.pipeline(tag="model#staging!#2")
    stop = stopped.job_log("stop-staging")
    assert "error: 'staging' holds model v0.2.0 again since model#staging!#2: the environment is not stopped." in stop
    assert "is stopped" not in stop and stopped.returncode == 0 and "WARN 3" in stop


def test_the_readme_says_where_the_choices_come_from_and_what_a_red_outdated_deploy_means(listed_project):
    """What no local run shows, said with GitLab's doc page for it: inputs work with pipeline
    variables off; GitLab fails an outdated deploy (red), unless the stage's resource group runs
    its jobs oldest first, which only the API sets."""
    readme = " ".join((listed_project / "README.md").read_text(encoding="utf-8").split())
    assert "Minimum role to use pipeline variables" in readme and "`ci/inputs/_index.md`" in readme
    assert "GitLab 17.11 and later" in readme and "Before 17.11" in readme
    assert "failed_outdated_deployment_job" in readme and "`ci/environments/deployment_safety.md`" in readme
    assert '--data "process_mode=oldest_first"' in readme and "`ci/resource_groups/_index.md`" in readme
