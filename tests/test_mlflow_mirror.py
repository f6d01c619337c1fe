"""ci/mlflow_mirror.py, the optional mirror of a GTO version into GitLab's model registry, against a
real MLflow 2.x server on 127.0.0.1 (GitLab's registry implements MLflow's 2.x REST API), and against
GitLab's registry as harness.mlflow.GitLabRegistry plays it over a second such server (versions named
by their `gitlab.version` tag, each its own run in the experiment `[model]NAME`, token required).

The project is baked and trained (`dvc repro`) once; the script runs from the client venv of
ci/mlflow-requirements.txt, as the CI job runs it, with the variables GitLab sets in a tag pipeline.
What is checked goes through MLflow's REST API, not the script's own client.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.mlflow import GitLabRegistry, MlflowServer, Rest, client_venv, server_venv
from harness.project import bake_defaults, commit_first_model, project_env, run

pytestmark = pytest.mark.slow

TOKEN = "glpat-mirror-test-token-0123"
PROJECT_URL = "https://gitlab.example.com/ml/demo"
PIPELINE_URL = f"{PROJECT_URL}/-/pipelines/314"
JOB_ID = "2718"


@pytest.fixture(scope="session")
def venvs(tmp_path_factory) -> tuple[Path, Path]:
    """(client venv, server venv), built once for the session; xdist's workers share them."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return client_venv(root / "venvs"), server_venv(root / "venvs")


@pytest.fixture(scope="module")
def servers(venvs, tmp_path_factory):
    """Two MLflow servers, started side by side: a plain one, and GitLab's backend."""
    plain, backend = (MlflowServer(venvs[1], tmp_path_factory.mktemp(name)).start() for name in ("mlflow", "gitlab"))
    with plain as plain_url, backend as backend_url:
        yield plain_url, backend_url


@pytest.fixture(scope="module")
def mlflow_url(servers) -> str:
    """A plain MLflow server: no token needed, versions numbered 1, 2, ..."""
    return servers[0]


@pytest.fixture(scope="module")
def gitlab(servers):
    """GitLab's registry of project 4242 (harness.mlflow.GitLabRegistry) over a server of its own."""
    with GitLabRegistry(servers[1], TOKEN) as registry:
        yield registry


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A baked project, trained and committed, its version v0.1.0 tagged as GTO tags it. Its
    params.yaml has a key no stage reads, which the mirror leaves out as it does the estimators
    not chosen: it logs what dvc.lock says the stages read."""
    project = bake_defaults(tmp_path_factory.mktemp("mirror-bake"), "mlflow_mirror=yes")
    with (project / "params.yaml").open("a", encoding="utf-8") as params:
        params.write("notes:\n  owner: the data team   # read by no stage\n")
    commit_first_model(project, project_env(project))
    run(["git", "tag", "-a", "model@v0.1.0", "-m", "Registering artifact model version v0.1.0"], project)
    return project


def head(project: Path) -> str:
    return run(["git", "rev-parse", "HEAD"], project).stdout.strip()


def mirror(project: Path, venv: Path, tag: str, *, ci: bool = True, **variables: str) -> subprocess.CompletedProcess:
    """`python ci/mlflow_mirror.py TAG` in the client venv, with a tag pipeline's variables (`ci`),
    MLFLOW_TRACKING_TOKEN and what `variables` adds; a variable given as "" is left unset."""
    env = {key: value for key, value in project_env(project).items() if not key.startswith("MLFLOW_")}
    env.pop("PYTHONPATH")  # the job's venv has only the client: nothing of the project's
    if ci:
        env.update(
            CI_COMMIT_TAG=tag,
            CI_COMMIT_SHA=head(project),
            CI_PIPELINE_URL=PIPELINE_URL,
            CI_PROJECT_URL=PROJECT_URL,
            CI_JOB_ID=JOB_ID,
            CI_JOB_TOKEN="glcbt-64_job-token",
        )
    env.update({"MLFLOW_TRACKING_TOKEN": TOKEN, **variables})
    env = {key: value for key, value in env.items() if value != ""}
    python = str(venv / "bin" / "python")
    return subprocess.run(
        [python, "ci/mlflow_mirror.py", tag], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess, start: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and TOKEN not in output, output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert line.startswith(start), line
    return line


def expected_params(project: Path) -> dict[str, str]:
    """params.yaml flattened, without the estimators that train.estimator did not choose (nor notes)."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    chosen = params["train"]["estimator"]

    def spelled(value) -> str:  # as params.yaml spells them
        return json.dumps(value) if value is None or isinstance(value, bool | list) else str(value)

    def flat(tree: dict, prefix: str) -> dict[str, str]:
        found = {}
        for key, value in tree.items():
            found |= flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": spelled(value)}
        return found

    chosen_section = {"estimator": chosen, chosen: params["train"][chosen]}
    return (
        {"seed": str(params["seed"])}
        | flat(params["data"], "data.")
        | flat(params["prepare"], "prepare.")
        | flat(chosen_section, "train.")
    )


def version_with(rest: Rest, semver: str, model: str = "model") -> dict:
    [version] = [v for v in rest.versions(model) if {"key": "gitlab.version", "value": semver} in v.get("tags", [])]
    return version


def assert_complete_run(rest: Rest, run_id: str, project: Path) -> dict:
    """The run holds the params, metrics, model file and links of the project's HEAD."""
    run_ = rest.get("runs/get", run_id=run_id)["run"]
    assert run_["info"]["status"] == "FINISHED"
    assert {p["key"]: p["value"] for p in run_["data"]["params"]} == expected_params(project)
    metrics = json.loads((project / "reports/evaluation/metrics.json").read_text())
    flat = {
        f"{key}.{inner}": value
        for key, values in metrics.items()
        if isinstance(values, dict)
        for inner, value in values.items()
    }
    flat |= {
        key: value for key, value in metrics.items() if not isinstance(value, dict)
    }  # baseline.f1, recall_per_class.0
    assert {m["key"]: m["value"] for m in run_["data"]["metrics"]} == pytest.approx(flat)
    tags = {tag["key"]: tag["value"] for tag in run_["data"]["tags"]}
    sha = head(project)
    assert tags["gitlab.CI_JOB_ID"] == JOB_ID and tags["ci.pipeline_url"] == PIPELINE_URL
    assert tags["mlflow.source.git.commit"] == sha and tags["mirror.complete"] == "true"
    assert [entry["path"] for entry in rest.get("artifacts/list", run_id=run_id)["files"]] == ["model.skops"]
    assert rest.download(run_id, "model.skops") == (project / "models/model.skops").read_bytes()
    return run_


def counts(rest: Rest) -> tuple[int, int, int]:
    return len(rest.registered_models()), len(rest.versions("model")), len(rest.runs())


# --- a plain MLflow 2.x server ---------------------------------------------------------------------


def test_mirror_creates_the_model_and_version_with_params_metrics_file_and_links_once(project, venvs, mlflow_url):
    rest = Rest(mlflow_url)
    first = mirror(project, venvs[0], "model@v0.1.0", MLFLOW_TRACKING_URI=mlflow_url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "mirrored model@v0.1.0" in first.stdout
    assert "View run" not in first.stdout  # MLflow UI links, which mean nothing on GitLab

    [model] = [model for model in rest.registered_models() if model["name"] == "model"]
    assert model["description"].startswith("A machine learning project")  # dvc.yaml's artifact desc
    version = version_with(rest, "0.1.0")
    tags = {tag["key"]: tag["value"] for tag in version["tags"]}
    sha = head(project)
    assert tags["ci.pipeline_url"] == PIPELINE_URL and tags["git.commit"] == sha
    assert tags["gto.tag"] == "model@v0.1.0" and tags["git.commit_url"] == f"{PROJECT_URL}/-/commit/{sha}"
    assert PIPELINE_URL in version["description"] and sha in version["description"]
    assert version["source"].endswith("/model.skops")
    run_ = assert_complete_run(rest, version["run_id"], project)

    before = counts(rest)
    again = mirror(project, venvs[0], "model@v0.1.0", MLFLOW_TRACKING_URI=mlflow_url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "model@v0.1.0 is already mirrored" in again.stdout
    assert counts(rest) == before
    assert rest.get("runs/get", run_id=version["run_id"])["run"]["data"]["metrics"] == run_["data"]["metrics"]


def test_class_names_mlflow_refuses_in_metric_names_are_mirrored(project, venvs, mlflow_url, tmp_path):
    """A class such as the raw penguins' `Adelie Penguin (Pygoscelis adeliae)`: MLflow refuses
    parentheses in a metric name, so `recall_per_class.<class>` is logged with `_` for them."""
    copy = Path(shutil.copytree(project, tmp_path / "penguins"))
    (copy / "dvc.yaml").write_text((copy / "dvc.yaml").read_text().replace("  model:", "  penguin_model:", 1))
    run(["git", "commit", "--quiet", "-am", "Rename the artifact"], copy)
    run(["git", "tag", "-a", "penguin_model@v0.1.0", "-m", "Registering artifact penguin_model version v0.1.0"], copy)
    metrics = copy / "reports/evaluation/metrics.json"
    scores = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**scores, "recall_per_class": {"Adelie Penguin (Pygoscelis adeliae)": 0.9}}))
    done = mirror(copy, venvs[0], "penguin_model@v0.1.0", MLFLOW_TRACKING_URI=mlflow_url)
    assert done.returncode == 0, done.stdout + done.stderr
    rest = Rest(mlflow_url)
    version = version_with(rest, "0.1.0", model="penguin_model")
    logged = {m["key"]: m["value"] for m in rest.get("runs/get", run_id=version["run_id"])["run"]["data"]["metrics"]}
    assert logged["recall_per_class.Adelie Penguin _Pygoscelis adeliae_"] == 0.9


def test_a_job_interrupted_before_the_version_existed_is_finished_in_its_own_run(project, venvs, mlflow_url):
    """The job died after creating its run (one param logged): the retry fills that run and creates
    the version on it, without a second run."""
    rest = Rest(mlflow_url)
    run(["git", "tag", "model@v0.2.0"], project)
    found = rest.post("experiments/search", {"max_results": 1000, "filter": "name = 'model'"}).get("experiments")
    experiment = (
        found[0]["experiment_id"] if found else rest.post("experiments/create", {"name": "model"})["experiment_id"]
    )
    tags = [{"key": "gto.tag", "value": "model@v0.2.0"}]
    started = rest.post("runs/create", {"experiment_id": experiment, "run_name": "model@v0.2.0", "tags": tags})
    run_id = started["run"]["info"]["run_id"]
    rest.post("runs/log-parameter", {"run_id": run_id, "key": "seed", "value": "42"})
    runs = len(rest.runs())

    done = mirror(project, venvs[0], "model@v0.2.0", MLFLOW_TRACKING_URI=mlflow_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(rest.runs()) == runs
    assert version_with(rest, "0.2.0")["run_id"] == run_id
    assert_complete_run(rest, run_id, project)


# --- GitLab's registry -----------------------------------------------------------------------------


def test_on_gitlab_the_version_is_named_by_its_tag_and_logged_into_its_own_run(project, venvs, gitlab):
    """GitLab's way: the model's experiment `[model]model` holds the version's run, and nothing else
    is created; the URI defaults to the project's registry; model-versions/search is never needed."""
    rest = gitlab.mlflow
    gitlab.calls.clear()
    first = mirror(project, venvs[0], "model@v0.1.0", CI_API_V4_URL=gitlab.api_v4, CI_PROJECT_ID="4242")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "mirrored model@v0.1.0" in first.stdout

    version = version_with(rest, "0.1.0")
    assert PIPELINE_URL in version["description"]
    [experiment] = rest.post("experiments/search", {"max_results": 1000, "filter": "name = '[model]model'"})[
        "experiments"
    ]
    [run_] = rest.post("runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    assert run_["info"]["run_id"] == version["run_id"]
    assert_complete_run(rest, version["run_id"], project)
    assert not rest.post("experiments/search", {"max_results": 1000, "filter": "name = 'model'"}).get("experiments")
    assert ("GET", "/api/2.0/mlflow/model-versions/search") not in gitlab.calls

    before = counts(rest)
    again = mirror(project, venvs[0], "model@v0.1.0", CI_API_V4_URL=gitlab.api_v4, CI_PROJECT_ID="4242")
    assert "model@v0.1.0 is already mirrored" in again.stdout, again.stdout + again.stderr
    assert counts(rest) == before


def test_on_gitlab_a_half_mirrored_version_gets_what_it_misses(project, venvs, gitlab):
    """The job died after GitLab created the version (and its run) and one metric was logged: the
    retry logs the rest into the version's run, once. The run's artifact_uri is GitLab's package
    URL, which MLflow 2.x cannot list: the model is uploaded again rather than listed."""
    rest = gitlab.mlflow
    run(["git", "tag", "model@v0.3.0"], project)
    if not any(model["name"] == "model" for model in rest.registered_models()):
        gitlab.gitlab("POST", "/api/2.0/mlflow/registered-models/create", {"name": "model"}, {})
    tags = [{"key": "gitlab.version", "value": "0.3.0"}]
    created = gitlab.gitlab("POST", "/api/2.0/mlflow/model-versions/create", {"name": "model", "tags": tags}, {})
    run_id = created[1]["model_version"]["run_id"]
    rest.post("runs/log-metric", {"run_id": run_id, "key": "accuracy", "value": 0.5, "timestamp": 0, "step": 0})
    before = counts(rest)

    done = mirror(project, venvs[0], "model@v0.3.0", MLFLOW_TRACKING_URI=gitlab.uri)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed version 0.3.0" in done.stdout
    assert counts(rest) == before
    history = rest.get("metrics/get-history", run_id=run_id, metric_key="accuracy")["metrics"]
    assert [metric["value"] for metric in history] == [0.5]  # not logged again
    data = rest.get("runs/get", run_id=run_id)["run"]["data"]
    assert {p["key"]: p["value"] for p in data["params"]} == expected_params(project)
    assert [entry["path"] for entry in rest.get("artifacts/list", run_id=run_id)["files"]] == ["model.skops"]

    again = mirror(project, venvs[0], "model@v0.3.0", MLFLOW_TRACKING_URI=gitlab.uri)
    assert "already mirrored" in again.stdout, again.stdout + again.stderr


def test_on_gitlab_another_projects_registry_is_one_line(project, venvs, gitlab):
    elsewhere = mirror(project, venvs[0], "model@v0.1.0", CI_API_V4_URL=gitlab.api_v4, CI_PROJECT_ID="9999")
    line = assert_one_line_error(
        elsewhere, f"error: the MLflow registry at {gitlab.api_v4}/projects/9999/ml/mlflow answered: 404 Project Not"
    )
    assert line.endswith("Check MLFLOW_TRACKING_URI, and that the token's user is a member of the project")


def test_on_gitlab_a_refused_token_is_one_line_without_the_token(project, venvs, gitlab):
    refused = mirror(
        project, venvs[0], "model@v0.1.0", MLFLOW_TRACKING_URI=gitlab.uri, MLFLOW_TRACKING_TOKEN=TOKEN[::-1]
    )
    line = assert_one_line_error(refused, f"error: the MLflow registry at {gitlab.uri} answered: 401 Unauthorized.")
    assert "api scope" in line and TOKEN[::-1] not in refused.stdout + refused.stderr


# --- refusals before anything is sent --------------------------------------------------------------


def test_without_a_usable_token_or_a_registry_nothing_is_sent(project, venvs, gitlab):
    gitlab.calls.clear()
    no_token = mirror(project, venvs[0], "model@v0.1.0", MLFLOW_TRACKING_URI=gitlab.uri, MLFLOW_TRACKING_TOKEN="")
    line = assert_one_line_error(no_token, "error: MLFLOW_TRACKING_TOKEN is not set: store a personal, project")
    assert "api scope" in line
    job_token = mirror(project, venvs[0], "model@v0.1.0", MLFLOW_TRACKING_URI=gitlab.uri, CI_JOB_TOKEN=TOKEN)
    assert_one_line_error(job_token, "error: MLFLOW_TRACKING_TOKEN is the job token")
    no_uri = mirror(project, venvs[0], "model@v0.1.0", ci=False)
    assert_one_line_error(no_uri, "error: MLFLOW_TRACKING_URI is not set")
    assert gitlab.calls == []


@pytest.mark.parametrize(
    ("tag", "start"),
    [
        ("model#production#1", "error: 'model#production#1' is not a GTO version tag: expected NAME@vX.Y.Z"),
        ("model@v1.2", "error: 'model@v1.2' is not a GTO version tag"),
        ("model@v1.2.0!", "error: 'model@v1.2.0!' is not a GTO version tag"),
        ("other@v1.0.0", "error: dvc.yaml declares no artifact 'other' (artifacts: model)"),
    ],
)
def test_a_tag_that_is_not_a_version_of_a_declared_artifact_is_refused(project, venvs, tag, start):
    assert_one_line_error(mirror(project, venvs[0], tag, MLFLOW_TRACKING_URI="http://127.0.0.1:9"), start)


def test_a_checkout_that_is_not_the_tags_commit_is_refused(project, venvs):
    other = run(["git", "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "Another commit"], project).stdout.strip()
    run(["git", "tag", "model@v0.9.0", other], project)
    wrong = mirror(project, venvs[0], "model@v0.9.0", ci=False, MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    assert_one_line_error(wrong, f"error: the checkout is {head(project)[:12]}, not model@v0.9.0's commit {other[:12]}")


def test_an_unreachable_registry_is_one_line(project, venvs, closed_port):
    uri = f"http://127.0.0.1:{closed_port}"
    down = mirror(project, venvs[0], "model@v0.1.0", MLFLOW_TRACKING_URI=uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    assert_one_line_error(down, f"error: cannot reach the MLflow registry at {uri} (Connection refused)")
