"""A baked project's .gitlab-ci.yml as GitLab reads it, without a GitLab.

GitLab's CI schema (check-jsonschema's vendored copy, offline) checks the structure;
gitlab-ci-local checks what the schema cannot (stages, `needs:`) and evaluates `rules:` the way
GitLab does, for the pipeline a scenario's variables describe.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from harness.gitlab import GITLAB_CI_LOCAL
from harness.project import VENV_BIN, project_env, run

PROJECT_URL = "https://gitlab.example.com/ml/demo"
CI_FILE = ".gitlab-ci.yml"
# Predefined variables the scenarios override (gitlab-ci-local warns on stdout otherwise).
OVERRIDDEN = "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_COMMIT_TAG,CI_COMMIT_REF_NAME,CI_OPEN_MERGE_REQUESTS"
OVERRIDDEN += ",CI_MERGE_REQUEST_IID,CI_PROJECT_ID,CI_COMMIT_REF_PROTECTED"


def check_jsonschema(ci_file: Path) -> subprocess.CompletedProcess:
    """Validate against GitLab's CI schema as vendored in check-jsonschema (no network needed)."""
    args = [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci"]
    return subprocess.run([*args, ci_file.name], cwd=ci_file.parent, capture_output=True, text=True)


def add_origin(repo: Path) -> None:
    """A fake GitLab remote, so gitlab-ci-local derives realistic project variables."""
    env = project_env(repo)
    if run(["git", "remote"], repo, env).stdout.split() == []:
        run(["git", "remote", "add", "origin", f"{PROJECT_URL}.git"], repo, env)
        run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], repo, env)
        run(["git", "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"], repo, env)


def gitlab_ci_local(repo: Path, *args: str, scenario: dict | None = None, check: bool = True):
    scenario = scenario or {"variables": {}, "unset": []}
    command = [str(GITLAB_CI_LOCAL), "--home", str(repo.parent / "gcl-home"), "--ignore-predefined-vars", OVERRIDDEN]
    command += [f"--variable={key}={value}" for key, value in scenario["variables"].items()]
    command += [f"--unset-variable={key}" for key in scenario["unset"]]
    return run([*command, *args], repo, project_env(repo), check=check)


def listed_jobs(repo: Path, scenario: dict, *args: str) -> dict[str, dict]:
    """Every job as gitlab-ci-local lists it for this kind of pipeline (`when` "never": not created)."""
    result = gitlab_ci_local(repo, "--list-json", *args, scenario=scenario)
    return {job["name"]: job for job in json.loads(result.stdout)}


def list_json(repo: Path, scenario: dict, *args: str) -> dict[str, str]:
    """Each job's `when` in this kind of pipeline ("never": not created)."""
    return {name: job["when"] for name, job in listed_jobs(repo, scenario, *args).items()}


def load(project: Path) -> dict:
    return yaml.safe_load((project / CI_FILE).read_text(encoding="utf-8"))
