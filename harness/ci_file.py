"""A baked project's .gitlab-ci.yml as GitLab reads it, without a GitLab.

GitLab's CI schema (check-jsonschema's vendored copy, offline) checks the structure;
gitlab-ci-local checks what the schema cannot (stages, `needs:`) and evaluates `rules:` the way
GitLab does, for the pipeline a scenario's variables describe.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import yaml

from harness.gitlab import GITLAB_CI_LOCAL, PROJECT_ID, merge_request_variables
from harness.project import VENV_BIN, project_env, run

PROJECT_URL = "https://gitlab.example.com/ml/demo"
CI_FILE = ".gitlab-ci.yml"
HEADER_END = "\n---\n"  # after a `spec:` header (doc/ci/yaml/_index.md, "Header keywords")
INPUT = re.compile(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]")
# Predefined variables the scenarios override (gitlab-ci-local warns on stdout otherwise).
OVERRIDDEN = "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_COMMIT_TAG,CI_COMMIT_REF_NAME,CI_OPEN_MERGE_REQUESTS"
OVERRIDDEN += ",CI_MERGE_REQUEST_IID,CI_PROJECT_ID,CI_COMMIT_REF_PROTECTED"


# Kinds of pipeline, as the variables GitLab sets for them (gitlab-ci-local sets CI_COMMIT_BRANCH to
# the checked-out branch and CI_PIPELINE_SOURCE to push unless told otherwise).
def merge_request(event_type: str = "detached", labels: str = "", source: str = PROJECT_ID, runs_in: str = PROJECT_ID):
    variables = merge_request_variables("feature", event_type=event_type, source_project=source, runs_in=runs_in)
    return {"variables": {**variables, "CI_MERGE_REQUEST_LABELS": labels}, "unset": ["CI_COMMIT_BRANCH"]}


def branch(name: str, protected: bool = False) -> dict:
    variables = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": name, "CI_COMMIT_REF_NAME": name}
    return {"variables": {**variables, "CI_COMMIT_REF_PROTECTED": str(protected).lower()}, "unset": []}


def tag(name: str, **variables: str) -> dict:
    values = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": name, "CI_COMMIT_REF_NAME": name, **variables}
    return {"variables": values, "unset": ["CI_COMMIT_BRANCH"]}  # GitLab leaves it unset for tags


def check_jsonschema(ci_file: Path) -> subprocess.CompletedProcess:
    """Validate against GitLab's CI schema as vendored in check-jsonschema (no network needed). A
    file with a `spec:` header is two YAML documents, which check-jsonschema does not read: each
    is validated on its own (the schema has `spec` among the top-level keys)."""
    args = [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci"]
    header, body = split_header(ci_file.read_text(encoding="utf-8"))
    if header is None:
        return subprocess.run([*args, ci_file.name], cwd=ci_file.parent, capture_output=True, text=True)
    with tempfile.TemporaryDirectory() as parts:
        for name, part in (("header.yml", header), ("body.yml", body)):
            (Path(parts) / name).write_text(part, encoding="utf-8")
        return subprocess.run([*args, "header.yml", "body.yml"], cwd=parts, capture_output=True, text=True)


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


def load(project: Path, inputs: dict[str, str] | None = None) -> dict:
    """The configuration with its local includes merged in as GitLab merges them: the included
    files first, in order, then .gitlab-ci.yml over them, mappings merged key by key; `inputs`
    are the pipeline's (Run pipeline), each file's `spec:inputs` interpolated first."""
    main = read_config(project / CI_FILE, inputs)
    merged: dict = {}
    for entry in main.pop("include", []):
        merged = deep_merge(merged, read_config(project / entry["local"], entry.get("inputs")))
    return deep_merge(merged, main)


def read_config(path: Path, inputs: dict[str, str] | None = None) -> dict:
    """One configuration file as GitLab reads it: a `spec:` header's inputs (given, else their
    default) put where the rest says `$[[ inputs.NAME ]]` (always inside a quoted string here)."""
    header, body = split_header(path.read_text(encoding="utf-8"))
    if header is None:
        return yaml.safe_load(body)
    values = {}
    for name, spec in yaml.safe_load(header)["spec"]["inputs"].items():
        if name not in (inputs or {}) and "default" not in (spec or {}):
            raise ValueError(f"{path.name}: the input {name} has no default and was not given")
        values[name] = str((inputs or {}).get(name, (spec or {}).get("default")))
    unknown = set(inputs or {}) - set(values)
    if unknown:
        raise ValueError(f"{path.name}: unknown inputs {sorted(unknown)}")
    return yaml.safe_load(INPUT.sub(lambda found: values[found.group(1)], body))


def split_header(text: str) -> tuple[str | None, str]:
    """(the `spec:` header, or None; the configuration after it)."""
    first, separator, rest = text.partition(HEADER_END)
    if separator and "spec" in (yaml.safe_load(first) or {}):
        return first, rest
    return None, text


def included_files(project: Path) -> list[str]:
    config = read_config(project / CI_FILE)
    return [CI_FILE] + [entry["local"] for entry in config.get("include", [])]


def deep_merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        both_mappings = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = deep_merge(merged[key], value) if both_mappings else value
    return merged


# GitLab's predefined variables that only a running job has (doc/ci/variables/predefined_variables.md,
# "Availability: Job-only"): they are unknown when GitLab creates the pipeline.
JOB_ONLY_VARIABLES = {
    *("CI_BUILDS_DIR", "CI_CONCURRENT_ID", "CI_CONCURRENT_PROJECT_ID", "CI_DEPLOY_PASSWORD", "CI_DEPLOY_USER"),
    *("CI_JOB_ID", "CI_JOB_STATUS", "CI_JOB_TIMEOUT", "CI_JOB_TOKEN", "CI_JOB_URL", "CI_JOB_STARTED_AT"),
    *("CI_PIPELINE_ID", "CI_PIPELINE_URL", "CI_PROJECT_DIR", "CI_REGISTRY_PASSWORD", "CI_REGISTRY_USER"),
    *("CI_REPOSITORY_URL", "CI_RUNNER_DESCRIPTION", "CI_RUNNER_EXECUTABLE_ARCH", "CI_RUNNER_ID"),
    *("CI_RUNNER_REVISION", "CI_RUNNER_SHORT_TOKEN", "CI_RUNNER_TAGS", "CI_RUNNER_VERSION", "CI_SERVER"),
    "CI_TRIGGER_SHORT_TOKEN",
}
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def tags_unknown_at_creation(config: dict) -> dict[str, list[str]]:
    """Each job's `tags:` entries that name a variable GitLab does not know when it creates the
    pipeline, which is when it expands them once (lib/gitlab/ci/pipeline/seed/build.rb,
    `evaluate_runner_tags`; an unknown variable stays as written and no runner matches). Known
    then: the configuration's `variables:` (the job's and the global ones, whose values are checked
    in turn), and the predefined variables that are not job-only."""
    unknown: dict[str, list[str]] = {}
    for name, job in config.items():
        if not isinstance(job, dict) or "tags" not in job:
            continue
        defined = {**variable_values(config.get("variables")), **variable_values(job.get("variables"))}
        bad = [tag for tag in job["tags"] if not known_at_creation(str(tag), defined, set())]
        if bad:
            unknown[name] = bad
    return unknown


def variable_values(variables: dict | None) -> dict[str, str]:
    return {
        key: str(value.get("value", "") if isinstance(value, dict) else value)
        for key, value in (variables or {}).items()
    }


def known_at_creation(text: str, defined: dict[str, str], seen: set[str]) -> bool:
    for match in VARIABLE.finditer(text):
        name = match.group(1) or match.group(2)
        if name in defined:
            if name in seen or not known_at_creation(defined[name], defined, seen | {name}):
                return False
        elif name in JOB_ONLY_VARIABLES or not name.startswith(("CI_", "GITLAB_")):
            return False  # job-only, or a CI/CD variable the project may not have
    return True


def resolved(config: dict, name: str) -> dict:
    """Job `name` with its `extends:` merged in, as GitLab merges them: the bases first, in order,
    then the job's own keys (lib/gitlab/ci/config/extendable/entry.rb)."""
    job = config[name]
    bases = job.get("extends", [])
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged = deep_merge(merged, resolved(config, base))
    return deep_merge(merged, job)


def interruptible_jobs(config: dict) -> set[str]:
    """The jobs that are interruptible: their own (or extended) `interruptible:`, else `default:`'s."""
    default = (config.get("default") or {}).get("interruptible", False)
    jobs = [name for name, job in config.items() if isinstance(job, dict) and not name.startswith(".")]
    return {
        name
        for name in jobs
        if "script" in resolved(config, name) and resolved(config, name).get("interruptible", default)
    }
