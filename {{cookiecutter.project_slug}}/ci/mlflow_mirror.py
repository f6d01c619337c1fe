"""Mirror a GTO model version into GitLab's model registry (or any MLflow 2.x tracking server).

    python ci/mlflow_mirror.py model@v1.2.0

Runs in the tag pipeline of a GTO version tag, in a checkout of the tagged commit whose model,
metrics and params DVC has restored, with the client of ci/mlflow-requirements.txt (installed apart
from the project's dependencies: that file says why). GitLab's registry speaks MLflow's 2.x REST
API; this script uses it the way
https://docs.gitlab.com/user/project/ml/experiment_tracking/mlflow_client/ describes:
- the registered model NAME (created when missing, described by dvc.yaml's artifact `desc`);
- its version X.Y.Z, named by the tag `gitlab.version` given to create_model_version (without it
  GitLab numbers versions itself);
- on GitLab every version is a run of its own, in the experiment `[model]NAME` that GitLab keeps for
  the model: the version's params (those its stages read, as dvc.lock records them), metrics (the
  evaluation's metrics.json), model file and links to the commit and the pipeline (and
  `gitlab.CI_JOB_ID`, which links it to the job in GitLab's UI) go into that run.
A plain MLflow server has no `[model]NAME` experiment and numbers versions 1, 2, ...: there the run is
created first, in an experiment NAME, and the version points at its model file and carries the same
`gitlab.version` tag, by which a second run finds it.

Nothing is created twice: a version whose run is complete is "already mirrored" (exit 0); a version
left half-way by an interrupted job gets what it misses.

Variables: MLFLOW_TRACKING_TOKEN (required: a personal, project or group access token with the `api`
scope and at least the Developer role; the job token cannot use the registry), MLFLOW_TRACKING_URI
(default: $CI_API_V4_URL/projects/$CI_PROJECT_ID/ml/mlflow), and GitLab's CI_COMMIT_SHA,
CI_PIPELINE_URL, CI_PROJECT_URL and CI_JOB_ID. Any failure is one `error:` line and exit 1.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

DVC_YAML = Path("dvc.yaml")
DVC_LOCK = Path("dvc.lock")
# MLflow's metric names: letters, digits, and _ - . space : / (mlflow.utils.validation).
NOT_IN_METRIC_NAMES = re.compile(r"[^\w\-. :/]")

# GTO's version tags (gto/constants.py): NAME@vSEMVER. Stage tags (NAME#stage#N), deregistrations
# (NAME@vX.Y.Z!) and deprecations (NAME@deprecated) are not versions.
SEMVER = (
    r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)
VERSION_TAG = re.compile(rf"(?P<name>[a-zA-Z0-9](?:[a-zA-Z0-9-/_]*[a-zA-Z0-9])?)@v(?P<version>{SEMVER})")

GITLAB_VERSION = "gitlab.version"  # GitLab names the version after this tag of create_model_version
COMPLETE = "mirror.complete"  # set on the version's run last: the run has everything
TOKEN_HELP = (
    "store a personal, project or group access token with the api scope and at least the Developer role "
    "(the job token cannot use the registry) as the masked CI/CD variable MLFLOW_TRACKING_TOKEN"
)
# MLflow's defaults retry a refused connection for about four minutes; a CI job should say so sooner
# (a 429's Retry-After is still waited for).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


class Fail(Exception):
    """One `error:` line on stderr, exit 1."""


def say(message: str) -> None:
    print(f"mlflow_mirror: {message}", flush=True)


# --- what to mirror --------------------------------------------------------------------------------


def parse_tag(tag: str) -> tuple[str, str]:
    match = VERSION_TAG.fullmatch(tag)
    if not match:
        raise Fail(f"{tag!r} is not a GTO version tag: expected NAME@vX.Y.Z, for example model@v1.2.0")
    return match["name"], match["version"]


def read(path: Path, parse, hint: str):
    """`parse` of the file's text, or one line saying what is wrong with it and what to do."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Fail(f"{path} is missing: {hint}") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise Fail(f"{path} does not parse: {one_line(str(exc))}") from None


def read_yaml(path: Path) -> dict:
    data = read(path, yaml.safe_load, "run this from the root of the project's checkout")
    return data if isinstance(data, dict) else {}


def artifact(name: str) -> tuple[Path, str]:
    """The model file and description of dvc.yaml's artifact NAME (what GTO versions)."""
    declared = read_yaml(DVC_YAML).get("artifacts") or {}
    entry = declared.get(name)
    if not isinstance(entry, dict) or not entry.get("path"):
        raise Fail(f"dvc.yaml declares no artifact {name!r} (artifacts: {', '.join(declared) or 'none'})")
    path = Path(entry["path"])
    if not path.is_file():
        raise Fail(f"{path} is missing: restore the tagged commit's model first (dvc pull {path})")
    return path, str(entry.get("desc") or "")


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def params() -> dict[str, str]:
    """The params the stages read, flattened (`train.hist_gradient_boosting.max_iter`), as dvc.lock
    records them for the tagged model: DVC's own reading of dvc.yaml's `params:` (the one
    `dvc.api.params_show` gives the stages), so `train.${train.estimator}` is the chosen
    estimator's section only, without DVC in this job."""
    read = {}
    for stage in (read_yaml(DVC_LOCK).get("stages") or {}).values():
        read.update((stage.get("params") or {}).get("params.yaml") or {})
    return {key: param_value(value) for key, value in flatten(read).items()}


def param_value(value) -> str:
    if value is None or isinstance(value, bool | list):
        return json.dumps(value)  # null, true, [..]: the way params.yaml spells them
    return str(value)


def metrics() -> dict[str, float]:
    """The metrics file of dvc.yaml's evaluate stage, flattened (`baseline.f1`,
    `recall_per_class.<class>`); a class name's characters that MLflow refuses in a metric name
    become `_`."""
    declared = ((read_yaml(DVC_YAML).get("stages") or {}).get("evaluate") or {}).get("metrics") or []
    if not declared:
        raise Fail("dvc.yaml's evaluate stage declares no metrics file")
    path = Path(next(iter(declared[0])) if isinstance(declared[0], dict) else declared[0])
    data = read(path, json.loads, "restore the tagged commit's metrics first (dvc pull)")
    flat = flatten(data) if isinstance(data, dict) else {}
    found = {
        NOT_IN_METRIC_NAMES.sub("_", k): float(v)
        for k, v in flat.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if not found:
        raise Fail(f"{path} holds no numeric metric")
    return found


def git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def commit(tag: str) -> str:
    """The commit being mirrored; refuses a checkout that is not the tag's commit."""
    head = os.environ.get("CI_COMMIT_SHA") or git("rev-parse", "HEAD")
    tagged = git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}" + "^{commit}")
    if tagged and head and tagged != head:
        raise Fail(f"the checkout is {head[:12]}, not {tag}'s commit {tagged[:12]}: check out the tag first")
    return head or tagged


# --- where to ------------------------------------------------------------------------------------


def settings() -> tuple[str, str]:
    """The tracking URI and the token, both checked before anything is sent."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN", "").strip()
    if not token:
        raise Fail(f"MLFLOW_TRACKING_TOKEN is not set: {TOKEN_HELP}")
    if token == os.environ.get("CI_JOB_TOKEN"):
        raise Fail(f"MLFLOW_TRACKING_TOKEN is the job token, which the registry refuses: {TOKEN_HELP}")
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip().rstrip("/")
    if not uri:
        api, project = os.environ.get("CI_API_V4_URL"), os.environ.get("CI_PROJECT_ID")
        if not (api and project):
            raise Fail("MLFLOW_TRACKING_URI is not set (GitLab's: <GitLab URL>/api/v4/projects/<project ID>/ml/mlflow)")
        uri = f"{api.rstrip('/')}/projects/{project}/ml/mlflow"
    if urlsplit(uri).scheme not in ("http", "https"):
        raise Fail(f"MLFLOW_TRACKING_URI must be an http(s) URL of the registry, not {shown(uri)!r}")
    return uri, token


def shown(uri: str) -> str:
    """The URI without user or password, for messages."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def registry_error(exc: Exception, uri: str, token: str) -> str:
    """One line for a failed request, without the token."""
    message = one_line(str(exc).replace(token, "[MASKED]"), limit=0)
    if status := re.search(r"too many (\d+) error responses", message):
        return f"the MLflow registry at {shown(uri)} kept answering HTTP {status[1]}: try again later"
    if re.search(r"Failed to establish a new connection|Max retries exceeded|timed out|NameResolutionError", message):
        reason = re.search(r"\[Errno -?\d+\] ([^\"'()]+)", message)
        return (
            f"cannot reach the MLflow registry at {shown(uri)} ({reason[1].strip() if reason else 'no answer'}): "
            "check MLFLOW_TRACKING_URI"
        )
    # GitLab answers a refused token with {"message": "401 Unauthorized"}, which MLflow files as INTERNAL_ERROR
    message = one_line(message.removeprefix("INTERNAL_ERROR: "))
    answered = f"the MLflow registry at {shown(uri)} answered: {message}"
    if re.search(r"\b40[13]\b|Unauthorized|Forbidden|UNAUTHENTICATED|PERMISSION_DENIED", message):
        return f"{answered}. Check the token: {TOKEN_HELP}"
    # GitLab's answer also when the token's user cannot see the project
    if re.search(r"\b404\b|ENDPOINT_NOT_FOUND", message):
        return f"{answered}. Check MLFLOW_TRACKING_URI, and that the token's user is a member of the project"
    return answered


def one_line(text: str, limit: int = 400) -> str:
    """`text` on one line, cut at `limit` characters (0: not cut)."""
    text = " ".join(text.split())
    return text if not limit or len(text) <= limit else text[: limit - 3] + "..."


# --- the mirror ----------------------------------------------------------------------------------


class Mirror:
    def __init__(self, client, tag: str, name: str, version: str, sha: str):
        from mlflow.exceptions import MlflowException

        self.client, self.tag, self.name, self.version = client, tag, name, version
        self.error = MlflowException
        pipeline, project = os.environ.get("CI_PIPELINE_URL"), os.environ.get("CI_PROJECT_URL")
        links = {
            "gto.tag": tag,
            "git.commit": sha,
            "git.commit_url": f"{project}/-/commit/{sha}" if project and sha else "",
            "ci.pipeline_url": pipeline,
        }
        self.links = {key: value for key, value in links.items() if value}
        run_tags = {
            **self.links,
            "mlflow.source.git.commit": sha,
            "gitlab.CI_JOB_ID": os.environ.get("CI_JOB_ID"),  # GitLab links the version to the job
        }
        self.run_tags = {key: value for key, value in run_tags.items() if value}
        self.description = f"GTO version {tag} of commit {sha or 'unknown'}" + (
            f", published by pipeline {pipeline}" if pipeline else ""
        )

    def missing(self, exc) -> bool:
        return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"

    def ensure_model(self, description: str) -> None:
        try:
            self.client.get_registered_model(self.name)
        except self.error as exc:
            if not self.missing(exc):
                raise
            self.client.create_registered_model(self.name, description=description or None)
            say(f"created the registered model {self.name!r}")

    def find_version(self, gitlab: bool):
        if gitlab:  # GitLab finds versions by their SemVer name
            try:
                return self.client.get_model_version(self.name, self.version)
            except self.error as exc:
                if not self.missing(exc):
                    raise
                return None
        # MLflow numbers versions itself: ours is the one with our version tag
        found = self.client.search_model_versions(f"name='{self.name}'")
        return next((mv for mv in found if mv.tags.get(GITLAB_VERSION) == self.version), None)

    def fill(self, run_id: str, model: Path, params: dict, metrics: dict, fresh: bool) -> None:
        """Log what the run misses: params, metrics, tags, the model file; then mark it complete."""
        from mlflow.entities import Metric, Param, RunTag

        data = self.client.get_run(run_id).data
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items() if k not in data.metrics],
            params=[Param(k, v) for k, v in params.items() if k not in data.params],
            tags=[RunTag(k, v) for k, v in self.run_tags.items()],
        )
        if fresh or model.name not in self.artifacts(run_id):
            self.client.log_artifact(run_id, str(model))  # GitLab: at the root, no artifact_path
        # log_batch, not set_tag: GitLab ignores a duplicate there, set_tag refuses it
        self.client.log_batch(run_id, tags=[RunTag(COMPLETE, "true")])
        with contextlib.redirect_stdout(io.StringIO()):  # its "View run" links are MLflow UI URLs, not GitLab's
            self.client.set_terminated(run_id)

    def artifacts(self, run_id: str) -> set[str]:
        """The run's artifacts, or none known: then the model is uploaded again."""
        if self.client.get_run(run_id).info.artifact_uri.startswith(("http://", "https://")):
            # GitLab's runs keep their files in the model version's package (.../packages/ml_models/
            # ID/files/), which MLflow 2.x's HTTP artifact repository cannot list (ValueError).
            return set()
        try:
            return {entry.path for entry in self.client.list_artifacts(run_id)}
        except self.error:
            return set()

    def run(self, model: Path, description: str, params: dict, metrics: dict) -> str:
        self.ensure_model(description)
        # GitLab keeps an experiment `[model]NAME` for each model; a plain MLflow server does not.
        gitlab = self.client.get_experiment_by_name(f"[model]{self.name}") is not None
        existing = self.find_version(gitlab)
        if existing is not None:
            if not existing.run_id:
                raise Fail(f"version {self.version} of {self.name!r} exists without a run: delete it or mirror by hand")
            if self.client.get_run(existing.run_id).data.tags.get(COMPLETE) == "true":
                return f"{self.tag} is already mirrored (model {self.name!r}, version {self.version}): nothing to do"
            self.fill(existing.run_id, model, params, metrics, fresh=False)
            return f"completed version {self.version} of {self.name!r}, which an earlier job left half-mirrored"

        version_tags = {GITLAB_VERSION: self.version, **self.links}
        if gitlab:
            created = self.client.create_model_version(
                self.name, source="", tags=version_tags, description=self.description, await_creation_for=0
            )
            if not created.run_id:
                raise Fail(f"the registry created version {self.version} of {self.name!r} without a run to log into")
            say(f"created version {self.version} of {self.name!r}")
            self.fill(created.run_id, model, params, metrics, fresh=True)
        else:
            run_id, fresh = self.plain_mlflow_run()
            self.fill(run_id, model, params, metrics, fresh=fresh)
            artifact_uri = self.client.get_run(run_id).info.artifact_uri
            self.client.create_model_version(
                self.name,
                source=f"{artifact_uri}/{model.name}",
                run_id=run_id,
                tags=version_tags,
                description=self.description,
                await_creation_for=0,
            )
            say(f"created version {self.version} of {self.name!r} (run {run_id})")
        return (
            f"mirrored {self.tag}: model {self.name!r} version {self.version} with {len(params)} params, "
            f"{len(metrics)} metrics and {model}"
        )

    def plain_mlflow_run(self) -> tuple[str, bool]:
        """The run of this tag in the experiment NAME: an interrupted job's, or a new one."""
        experiment = self.client.get_experiment_by_name(self.name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(self.name)
        earlier = self.client.search_runs([experiment_id], filter_string=f"tags.`gto.tag` = '{self.tag}'")
        if earlier:
            return earlier[0].info.run_id, False
        return self.client.create_run(experiment_id, tags=self.run_tags, run_name=self.tag).info.run_id, True


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise Fail("usage: python ci/mlflow_mirror.py NAME@vX.Y.Z (a GTO version tag, e.g. $CI_COMMIT_TAG)")
    tag = argv[1]
    name, version = parse_tag(tag)
    uri, token = settings()
    model, description = artifact(name)
    values = (params(), metrics())
    sha = commit(tag)

    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ["MLFLOW_TRACKING_URI"] = uri  # the artifact upload reads it from the environment
    try:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise Fail(
            "the MLflow client is missing: pip install -r ci/mlflow-requirements.txt (not into the project's venv)"
        ) from None
    logging.getLogger("mlflow").setLevel(logging.WARNING)

    import requests

    try:
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        say(Mirror(client, tag, name, version, sha).run(model, description, *values))
    except (MlflowException, requests.RequestException) as exc:
        raise Fail(registry_error(exc, uri, token)) from None
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Fail as failure:
        print(f"error: {failure}", file=sys.stderr)
        sys.exit(1)
