"""A job's steps from a baked project's .gitlab-ci.yml, run with bash in a runner-like checkout
against an S3 server: quicker than a gitlab-ci-local pipeline, and a test can signal the steps
(GitLab cancelling the job) or run them part by part."""

import subprocess
from itertools import count
from pathlib import Path

from .ci_file import load
from .project import project_env, run

_checkouts = count()


def s3_vars(endpoint: str, tmp: Path) -> dict[str, str]:
    """The fake key and the endpoint, as CI/CD variables; no AWS configuration file can change
    retries or credentials."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
    }


class Checkout:
    """A working copy a job runs in, with a branch pipeline's variables for `branch` plus
    `variables`; `Checkout.clone` makes one as a runner does."""

    def __init__(self, path: Path, branch: str, variables: dict[str, str]):
        self.path = path
        pipeline = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": branch, "CI_DEFAULT_BRANCH": "main"}
        self.env = project_env(path, **pipeline, **variables)

    @classmethod
    def clone(cls, origin: Path, branch: str, tmp: Path, variables: dict[str, str]) -> "Checkout":
        """A new clone of `branch` of `origin`: no DVC cache, no data."""
        path = tmp / f"checkout-{next(_checkouts)}" / origin.name
        run(["git", "clone", "--quiet", "--branch", branch, str(origin), str(path)], tmp, project_env(origin))
        return cls(path, branch, variables)

    def steps(self, job: str) -> list[str]:
        return load(self.path)[job]["script"]

    def start(self, steps: list[str], **variables: str) -> subprocess.Popen:
        """The steps as GitLab Runner runs them: one `bash -eo pipefail` shell, ci/pipeline.sh sourced
        first (the install steps are left out: this suite's venv has the dependencies), in a process
        group of their own, which a cancel signals as a whole."""
        script = "\n".join(["source ci/pipeline.sh", *steps])
        return subprocess.Popen(
            ["bash", "-eo", "pipefail", "-c", script],
            cwd=self.path,
            env={**self.env, **variables},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def run(self, steps: list[str], **variables: str) -> subprocess.CompletedProcess:
        process = self.start(steps, **variables)
        stdout, stderr = process.communicate(timeout=600)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def job(self, job: str, **variables: str) -> subprocess.CompletedProcess:
        return self.run(self.steps(job), **variables)

    def train_until_push(self) -> list[str]:
        """The train job's steps before its push (credentials, `dvc repro --pull`), which must pass
        and train; returns the push step and the steps after it."""
        steps = self.steps("train")
        [push] = [index for index, step in enumerate(steps) if step.startswith("if results_to_push")]
        result = self.run(steps[:push])
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Running stage 'train'" in result.stdout, result.stdout
        return steps[push:]


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]
