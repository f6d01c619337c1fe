"""Run a baked project's .gitlab-ci.yml on this machine with gitlab-ci-local (shell executor).

`LocalGitLab` plays the parts GitLab would, setting only the variables GitLab sets:
- a loopback GitLab API (`GitLabApi`, notes paged like GitLab) whose address is the instance's
  URL, so CML's stand-in and the jobs find it as they would on GitLab;
- bare repositories for the project and for a contributor's fork, reached through git URL
  rewrites of exactly the URL forms GitLab accepts (the plain project URL, and `oauth2:<token>@`
  with the valid REPO_TOKEN). Any other form (a job token, a wrong token) reaches the API double
  instead of a repository, so a push with it fails as a refused push would;
- the runner's checkout: a new shallow fetch (depth 1) of the pipeline's commit, with `origin`
  pointing at the project the pipeline runs in; for merged results and merge trains, a merge
  commit of the source into the target tip that exists in neither branch; for a tag pipeline,
  the tag alone (no other tag comes with it);
- CI/CD variables (S3 credentials and REPO_TOKEN) only where the pipeline runs in the project
  that holds them.
"""

import json
import os
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from .gitlab_api import GitLabApi
from .project import TEMPLATE, VENV_BIN, project_env, run

GITLAB_CI_LOCAL = TEMPLATE / "node_modules" / ".bin" / "gitlab-ci-local"
STAND_INS = Path(__file__).resolve().parent / "stand_ins"
PROJECT_ID, PROJECT_PATH = "4242", "ml/demo"
FORK_ID, FORK_PATH = "5151", "contributor/demo"
TOKEN = "glpat-valid-test-token"
BOT = {"id": 42, "username": "project_4242_bot"}
JOB_TOKEN = "glcbt-64_job-token-of-this-pipeline"


def create_jobs_venv(project: Path, path: Path) -> Path:
    """The environment the jobs' `uv pip install -r requirements.lock` targets, as the image
    would have it after a cache restore: the locked dependencies, installed once."""
    env = {key: value for key, value in project_env(project).items() if key != "PYTHONPATH"}
    run([str(VENV_BIN / "uv"), "venv", "--quiet", "--python", str(VENV_BIN / "python"), str(path)], project, env)
    env["VIRTUAL_ENV"] = str(path)
    run([str(VENV_BIN / "uv"), "pip", "install", "--quiet", "-r", "requirements.lock"], project, env)
    return path


def git_url_rewrites(*pairs: tuple[Path, str]) -> dict[str, str]:
    """git config, as environment: `url.<repository>.insteadOf <url>` for each pair."""
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (repository, url) in enumerate(pairs):
        env.update({f"GIT_CONFIG_KEY_{index}": f"url.{repository}.insteadOf", f"GIT_CONFIG_VALUE_{index}": url})
    return env


def merge_request_variables(
    source_branch: str,
    *,
    iid: str = "1",
    event_type: str = "detached",
    source_project: str = PROJECT_ID,
    runs_in: str = "",
    diff_base: str = "",
    source_sha: str = "",
    target_sha: str = "",
) -> dict[str, str]:
    """The variables GitLab sets in a merge request pipeline into `main` of PROJECT_ID (which also
    unsets CI_COMMIT_BRANCH). `runs_in`: CI_PROJECT_ID, when the caller does not set it itself.
    The two *_SHA variables exist only for merged results and merge trains."""
    values = {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": iid,
        "CI_MERGE_REQUEST_EVENT_TYPE": event_type,
        "CI_MERGE_REQUEST_PROJECT_ID": PROJECT_ID,
        "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": source_project,
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": source_branch,
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA": diff_base,
    }
    if runs_in:
        values["CI_PROJECT_ID"] = runs_in
    if event_type != "detached":
        values.update(CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=source_sha, CI_MERGE_REQUEST_TARGET_BRANCH_SHA=target_sha)
    return values


@dataclass
class PipelineRun:
    returncode: int
    output: str
    checkout: Path

    def job_log(self, job: str) -> str:
        """The job's lines, without the job-name column (padded to the longest job name)."""
        prefix = f"{job} "
        lines = [line[len(prefix) :].lstrip(" ") for line in self.output.splitlines() if line.startswith(prefix)]
        return "\n".join(lines)

    def artifact(self, job: str, path: str) -> Path:
        return self.checkout / ".gitlab-ci-local" / "artifacts" / job / path


@dataclass
class LocalGitLab:
    """`project` is the developer's clone (remotes `origin` and `fork`); pipelines run elsewhere."""

    project: Path
    jobs_venv: Path
    s3_endpoint: str
    api: GitLabApi
    origin: Path = field(init=False)
    fork: Path = field(init=False)
    cml_log: Path = field(init=False)
    runs: count = field(init=False, default_factory=count)

    def __post_init__(self):
        self.origin = self.project.parent / "origin.git"
        self.fork = self.project.parent / "fork.git"
        self.cml_log = self.project.parent / "cml-calls.jsonl"
        bare_init = ["git", "init", "--quiet", "--bare", "--initial-branch=main"]  # HEAD: the default branch
        run([*bare_init, str(self.origin)], self.project.parent, self.env())
        run(["git", "remote", "add", "origin", self.url(PROJECT_PATH)], self.project, self.env())
        run(["git", "remote", "add", "fork", self.url(FORK_PATH)], self.project, self.env())
        self.push("main")
        # The contributor forked now: the fork's main stays at this commit.
        run(["git", "clone", "--quiet", "--bare", str(self.origin), str(self.fork)], self.project.parent, self.env())
        for bare in (self.origin, self.fork):  # GitLab serves any reachable commit by SHA
            run(["git", "config", "uploadpack.allowAnySHA1InWant", "true"], bare, self.env())

    def url(self, path: str, credentials: str = "") -> str:
        return self.api.url.replace("://", f"://{credentials}@" if credentials else "://") + f"/{path}"

    def url_rewrite(self) -> dict[str, str]:
        """git config, as environment, sending the URL forms GitLab accepts to the bare repositories."""
        rewrites = []
        for bare, path in ((self.origin, PROJECT_PATH), (self.fork, FORK_PATH)):
            rewrites += [(bare, self.url(path)), (bare, self.url(path) + ".git")]
            rewrites.append((bare, self.url(path, f"oauth2:{TOKEN}") + ".git"))
        return git_url_rewrites(*rewrites)

    def env(self, rewrite: bool = True) -> dict[str, str]:
        """The runner's environment: jobs see the jobs venv and the `cml` stand-in on PATH.

        gitlab-ci-local itself gets no rewrite (rewrite=False): it derives the CI_PROJECT_*
        variables from the remote's URL."""
        env = project_env(self.project)
        del env["PYTHONPATH"]  # the jobs set it themselves
        env["PATH"] = os.pathsep.join([str(STAND_INS), str(self.jobs_venv / "bin"), str(VENV_BIN), env["PATH"]])
        env["VIRTUAL_ENV"] = str(self.jobs_venv)
        env["GIT_TERMINAL_PROMPT"] = "0"  # a refused push fails instead of asking for a password
        if rewrite:
            env.update(self.url_rewrite())
        return env

    def git(self, *args: str) -> str:
        return run(["git", *args], self.project, self.env()).stdout.strip()

    def push(self, branch: str, remote: str = "origin") -> None:
        self.git("push", "--quiet", remote, f"HEAD:refs/heads/{branch}")
        self.git("fetch", "--quiet", remote)

    def head(self, branch: str, repository: Path | None = None) -> str:
        """The branch's commit in a bare repository (the project's unless given), or ''."""
        found = run(["git", "rev-parse", "--verify", "--quiet", branch], repository or self.origin, self.env(), False)
        return found.stdout.strip()

    def pipeline(
        self,
        *jobs: str,
        branch: str = "main",
        merge_request: bool = False,
        source_branch: str = "",
        event_type: str = "detached",
        fork: str = "",
        credentials: bool | None = None,
        variables: dict | None = None,
        sha: str = "",
        tag: str = "",
        inputs: dict | None = None,
    ) -> PipelineRun:
        """One pipeline. `fork`: "" (same project), "runs_in_fork" or "runs_in_parent" (a
        maintainer ran the fork's merge request pipeline in this project). `sha`: an older commit
        of the source branch (a retried pipeline) instead of its tip. `tag`: the pipeline of a tag
        push (a tag of the developer's clone is pushed to the project first). `inputs`: the
        pipeline's inputs (Run pipeline's form, for the `spec:inputs` of .gitlab-ci.yml)."""
        in_fork = fork == "runs_in_fork"
        number = next(self.runs)
        here_path, here_id = (FORK_PATH, FORK_ID) if in_fork else (PROJECT_PATH, PROJECT_ID)
        values = {
            "CI_SERVER_URL": self.api.url,
            "CI_SERVER_PROTOCOL": self.api.url.split("://")[0],
            "CI_API_V4_URL": self.api.api_url,
            "CI_PROJECT_ID": here_id,
            "CI_PROJECT_PATH": here_path,
            "CI_PROJECT_URL": self.url(here_path),
            "CI_REPOSITORY_URL": self.url(here_path, f"gitlab-ci-token:{JOB_TOKEN}") + ".git",
            "CI_DEFAULT_BRANCH": "main",
            "CI_PIPELINE_ID": str(1000 + number),  # instance-wide, known to jobs only
            "CI_PIPELINE_IID": str(number + 1),  # the project's count, known when GitLab creates the pipeline
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
            "CML_STAND_IN_LOG": str(self.cml_log),
            **self.url_rewrite(),
        }
        if credentials if credentials is not None else not in_fork:
            values.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", REPO_TOKEN=TOKEN)
        unset = []
        source_repo, source_url = (self.fork, FORK_PATH) if fork else (self.origin, PROJECT_PATH)
        if merge_request:
            self.git("fetch", "--quiet", "--multiple", "origin", "fork")  # the pipelines' own pushes too
            source_sha, target_sha = sha or self.head(source_branch, source_repo), self.head("main")
            values.update(
                merge_request_variables(
                    source_branch,
                    event_type=event_type,
                    source_project=FORK_ID if fork else PROJECT_ID,
                    diff_base=self.git("merge-base", source_sha, target_sha),
                    source_sha=source_sha,
                    target_sha=target_sha,
                ),
                CI_MERGE_REQUEST_PROJECT_URL=self.url(PROJECT_PATH),
                CI_MERGE_REQUEST_SOURCE_PROJECT_URL=self.url(source_url),
            )
            unset.append("CI_COMMIT_BRANCH")  # GitLab leaves it unset in merge request pipelines
            checkout = self.checkout(source_repo, source_sha, values["CI_PROJECT_URL"], event_type, target_sha)
        elif tag:
            if self.head(f"refs/tags/{tag}", self.project):  # a tag of the developer's (else CI pushed it)
                self.git("push", "--quiet", "origin", f"refs/tags/{tag}")
            values.update(CI_PIPELINE_SOURCE="push", CI_COMMIT_TAG=tag, CI_COMMIT_REF_NAME=tag)
            unset.append("CI_COMMIT_BRANCH")  # GitLab leaves it unset in tag pipelines
            checkout = self.checkout(self.origin, "", values["CI_PROJECT_URL"], tag=tag)
        else:
            values.update(CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH=branch, CI_COMMIT_REF_NAME=branch)
            checkout = self.checkout(self.origin, self.head(branch), values["CI_PROJECT_URL"])
        values["CI_COMMIT_SHA"] = run(["git", "rev-parse", "HEAD"], checkout, self.env()).stdout.strip()
        if merge_request:  # what GET .../merge_requests/:iid says: the branch's tip, its newest pipeline's commit
            tip = self.head(source_branch, source_repo)
            self.api.set_merge_request(int(values["CI_MERGE_REQUEST_IID"]), tip, "" if sha else values["CI_COMMIT_SHA"])
        values.update(variables or {})
        args = [str(GITLAB_CI_LOCAL), "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source"]
        args += [f"--variable={key}={value}" for key, value in values.items()]
        args += [f"--unset-variable={key}" for key in unset]
        args += [f"--input={key}={value}" for key, value in (inputs or {}).items()]
        predefined = [key for key in [*values, *unset] if key.startswith("CI_")]
        args += ["--ignore-predefined-vars", ",".join(predefined), *jobs]
        result = run(args, checkout, self.env(rewrite=False), check=False)
        return PipelineRun(result.returncode, result.stdout + result.stderr, checkout)

    def checkout(
        self, repository: Path, sha: str, origin_url: str, event_type="detached", target_sha="", tag=""
    ) -> Path:
        """What the runner clones: a shallow fetch of the commit (or GitLab's merge commit, or the tag)."""
        path = self.project.parent / f"checkout-{next(self.runs)}"
        env = self.env()
        run(["git", "init", "--quiet", str(path)], self.project.parent, env)
        run(["git", "remote", "add", "origin", origin_url], path, env)
        if tag:
            ref = f"refs/tags/{tag}"
            run(["git", "fetch", "--quiet", "--no-tags", "--depth=1", str(repository), f"+{ref}:{ref}"], path, env)
            run(["git", "checkout", "--quiet", "-B", "pipeline", f"{ref}^0"], path, env)
        elif event_type == "detached":
            run(["git", "fetch", "--quiet", "--depth=1", str(repository), sha], path, env)
            run(["git", "checkout", "--quiet", "-B", "pipeline", sha], path, env)
        else:  # GitLab's refs/merge-requests/<iid>/merge: the source merged into the target tip
            run(["git", "fetch", "--quiet", str(self.origin), target_sha], path, env)
            run(["git", "checkout", "--quiet", "-B", "pipeline", target_sha], path, env)
            run(["git", "fetch", "--quiet", str(repository), sha], path, env)
            run(["git", "merge", "--quiet", "--no-ff", "--no-edit", sha], path, env)
        run(["git", "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"], path, env)
        return path

    def cml_calls(self) -> list[dict]:
        if not self.cml_log.exists():
            return []
        return [json.loads(line) for line in self.cml_log.read_text().splitlines()]
