"""Run a baked project's .gitlab-ci.yml on this machine with gitlab-ci-local (shell executor).

`LocalGitLab` plays the parts GitLab would: a bare repository as `origin` (reached through a
git URL rewrite, so jobs see a realistic https remote), MR and fork pipeline variables, CI/CD
variables for credentials, a loopback double of the one GitLab API call the pipeline makes
itself (the token preflight), and the strict `cml` stand-in first on PATH.
"""

import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .conftest import TEMPLATE, VENV_BIN, project_env, run

GITLAB_CI_LOCAL = TEMPLATE / "node_modules" / ".bin" / "gitlab-ci-local"
STAND_INS = TEMPLATE / "tests" / "stand_ins"
PROJECT_URL = "https://gitlab.example.com/ml/demo"
PROJECT_ID = "4242"
TOKEN = "glpat-valid-test-token"


def create_jobs_venv(project: Path, path: Path) -> Path:
    """The environment the jobs' `uv pip install -r requirements.lock -e .` targets, as the image
    would have it after a cache restore: the locked dependencies, installed once."""
    env = {key: value for key, value in project_env(project).items() if key != "PYTHONPATH"}
    run([str(VENV_BIN / "uv"), "venv", "--quiet", "--python", str(VENV_BIN / "python"), str(path)], project, env)
    env["VIRTUAL_ENV"] = str(path)
    run([str(VENV_BIN / "uv"), "pip", "install", "--quiet", "-r", "requirements.lock"], project, env)
    return path


class ProjectsApi(BaseHTTPRequestHandler):
    """GET /api/v4/projects/<id> answers 200 only for the valid token, like GitLab."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        ok = self.path.startswith("/api/v4/projects/") and self.headers.get("PRIVATE-TOKEN") == TOKEN
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": 4242}' if ok else b'{"message": "401 Unauthorized"}')

    def log_message(self, *args):
        pass


class GitLabApiDouble:
    def __enter__(self) -> str:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), ProjectsApi)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}/api/v4"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@dataclass
class PipelineRun:
    returncode: int
    output: str
    project: Path

    def job_log(self, job: str) -> str:
        """The job's lines, without the job-name column (padded to the longest job name)."""
        prefix = f"{job} "
        lines = [line[len(prefix) :].lstrip(" ") for line in self.output.splitlines() if line.startswith(prefix)]
        return "\n".join(lines)

    def artifact(self, job: str, path: str) -> Path:
        return self.project / ".gitlab-ci-local" / "artifacts" / job / path


@dataclass
class LocalGitLab:
    project: Path
    jobs_venv: Path
    s3_endpoint: str
    api_url: str
    origin: Path = field(init=False)
    cml_log: Path = field(init=False)

    def __post_init__(self):
        self.origin = self.project.parent / "origin.git"
        self.cml_log = self.project.parent / "cml-calls.jsonl"
        env = self.env()
        run(["git", "init", "--quiet", "--bare", str(self.origin)], self.project.parent, env)
        run(["git", "remote", "add", "origin", PROJECT_URL], self.project, env)
        self.push("main")
        run(["git", "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"], self.project, env)

    def url_rewrite(self) -> dict[str, str]:
        """git config, as environment, that sends the https project URL to the bare repository.

        Jobs and this harness get it; gitlab-ci-local itself must not, as it derives the CI_PROJECT_*
        variables from the remote's URL."""
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{self.origin}.insteadOf",
            "GIT_CONFIG_VALUE_0": PROJECT_URL,
        }

    def env(self, rewrite: bool = True) -> dict[str, str]:
        """The runner's environment: jobs see the jobs venv and the `cml` stand-in on PATH."""
        env = project_env(self.project)
        del env["PYTHONPATH"]  # the jobs install the project themselves (`uv pip install -e .`)
        env["PATH"] = os.pathsep.join([str(STAND_INS), str(self.jobs_venv / "bin"), str(VENV_BIN), env["PATH"]])
        env["VIRTUAL_ENV"] = str(self.jobs_venv)
        if rewrite:
            env.update(self.url_rewrite())
        return env

    def git(self, *args: str) -> str:
        return run(["git", *args], self.project, self.env()).stdout.strip()

    def push(self, branch: str) -> None:
        self.git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        self.git("fetch", "--quiet", "origin")

    def origin_head(self, branch: str) -> str:
        return run(["git", "rev-parse", branch], self.origin, self.env()).stdout.strip()

    def pipeline(
        self,
        *jobs: str,
        merge_request: bool = False,
        fork: bool = False,
        credentials: bool = True,
        source_branch: str = "",
        variables: dict | None = None,
    ) -> PipelineRun:
        values = {
            "CI_PROJECT_ID": PROJECT_ID,
            "CI_API_V4_URL": self.api_url,
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
            "CML_STAND_IN_LOG": str(self.cml_log),
            "DVC_LOCK_PUSH_URL": PROJECT_URL,
            **self.url_rewrite(),
        }
        if credentials:
            values.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", REPO_TOKEN=TOKEN)
        unset = []
        if merge_request:
            values.update(
                CI_PIPELINE_SOURCE="merge_request_event",
                CI_MERGE_REQUEST_IID="1",
                CI_MERGE_REQUEST_PROJECT_ID=PROJECT_ID,
                CI_MERGE_REQUEST_SOURCE_PROJECT_ID="9999" if fork else PROJECT_ID,
                CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=source_branch,
                CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
            )
            unset.append("CI_COMMIT_BRANCH")  # real GitLab leaves it unset in MR pipelines
        else:
            values["CI_PIPELINE_SOURCE"] = "push"
        values.update(variables or {})
        args = [str(GITLAB_CI_LOCAL), "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source"]
        args += [f"--variable={key}={value}" for key, value in values.items()]
        args += [f"--unset-variable={key}" for key in unset]
        args += ["--ignore-predefined-vars", "CI_PIPELINE_SOURCE,CI_PROJECT_ID,CI_API_V4_URL", *jobs]
        result = run(args, self.project, self.env(rewrite=False), check=False)
        return PipelineRun(result.returncode, result.stdout + result.stderr, self.project)

    def cml_calls(self) -> list[dict]:
        if not self.cml_log.exists():
            return []
        return [json.loads(line) for line in self.cml_log.read_text().splitlines()]
