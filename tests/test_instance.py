"""The instance: the default answers rendered into a repository of its own, for GitLab's "Create from
template" and forks, which copy a project and cannot bake a cookiecutter.

`python -m tools.instance render` must leave one commit that `cruft check` accepts and `cruft update`
can move forward; `publish` pushes it to the instance project without force, only when it changed,
and never shows the token. The slow tests run the template's own `instance` job with gitlab-ci-local
as a default-branch push pipeline would, against a local bare repository standing behind the
instance project's URL (only the `oauth2:<token>@` form reaches it).
"""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from harness.gitlab import GITLAB_CI_LOCAL, PipelineRun, git_url_rewrites
from harness.project import TEMPLATE, VENV_BIN, project_env, run

HOST = "https://gitlab.example.com"
TEMPLATE_URL = f"{HOST}/ml/template"  # the template project's CI_PROJECT_URL
INSTANCE_URL = f"{HOST}/ml/instance"  # INSTANCE_REPO_URL
TOKEN = "glpat-instance-test-token"
JOB_TOKEN = "glcbt-64_job-token-of-this-pipeline"
FIRST_COMMIT = "Start project from the cookiecutter template"


def git(repository: Path, *args: str, env: dict | None = None) -> str:
    return run(["git", *args], repository, env or project_env(repository)).stdout.strip()


def template_repository(path: Path) -> Path:
    """The template as it would be committed (tracked and new files, edits included), as one commit
    in a repository of its own whose `origin` is the template project's URL. A clone would miss
    the uncommitted edits under test. Copies keep their times, so make sees requirements/dev.txt
    as old as it is."""
    listed = git(TEMPLATE, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in sorted(set(listed.split("\0")) - {""}):
        source = TEMPLATE / name
        if source.is_file():  # tracked but deleted in the working tree: gone
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, path / name, follow_symlinks=False)
    git(path, "init", "--quiet", "--initial-branch", "main")
    git(path, "add", "--all")
    git(path, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", "Template")
    git(path, "remote", "add", "origin", f"{TEMPLATE_URL}.git")
    git(path, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(path, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    return path


def instance_tool(cwd: Path, *args: str, env: dict | None = None, check: bool = True):
    """`python -m tools.instance ...` in `cwd` (a template checkout: it renders that one)."""
    env = env or {key: value for key, value in project_env(cwd).items() if key != "PYTHONPATH"}
    return run([sys.executable, "-m", "tools.instance", *args], cwd, env, check)


def fake_rendering(path: Path, template_commit: str, **files: str) -> Path:
    """What `publish` needs of a rendering: a clean repository with a .cruft.json."""
    path.mkdir(parents=True, exist_ok=True)
    (path / ".cruft.json").write_text(json.dumps({"template": TEMPLATE_URL, "commit": template_commit}))
    for name, text in files.items():
        (path / name).write_text(text)
    if not (path / ".git").exists():
        git(path, "init", "--quiet", "--initial-branch", "main")
    git(path, "add", "--all")
    git(path, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "Rendering")
    return path


def bare(path: Path, branch: str = "main") -> Path:
    git(path.parent, "init", "--quiet", "--bare", "--initial-branch", branch, str(path))
    return path


def publish_env(cwd: Path, instance: Path, token: str | None = TOKEN) -> dict[str, str]:
    env = {key: value for key, value in project_env(cwd).items() if key != "PYTHONPATH"}
    env.update(INSTANCE_REPO_URL=INSTANCE_URL, GIT_TERMINAL_PROMPT="0")
    env.update(git_url_rewrites((instance, f"{INSTANCE_URL.replace('://', f'://oauth2:{TOKEN}@')}.git")))
    if token is not None:
        env["INSTANCE_TOKEN"] = token
    return env


# --- render ------------------------------------------------------------------------------------


def test_render_is_one_commit_that_cruft_checks_and_updates(tmp_path):
    template = template_repository(tmp_path / "template")
    head = git(template, "rev-parse", "HEAD")
    instance = tmp_path / "build" / "instance"
    (instance / "stale").mkdir(parents=True)  # a previous rendering is replaced
    (instance / ".cruft.json").write_text("{}")
    instance_tool(template, "render", str(instance), "--template-url", f"{TEMPLATE_URL}.git")

    assert not (instance / "stale").exists()
    assert git(instance, "log", "--format=%s").splitlines() == [FIRST_COMMIT]
    assert git(instance, "status", "--porcelain") == ""
    tracked = git(instance, "ls-files").splitlines()
    assert {".cruft.json", ".cookiecutter.json", "data/raw/dataset.csv.dvc"} <= set(tracked)
    # A copy of the repository must carry the raw data: its one DVC cache object.
    assert [name for name in tracked if name.startswith(".dvc/cache/files/md5/")]
    cruft_state = json.loads((instance / ".cruft.json").read_text(encoding="utf-8"))
    assert (cruft_state["template"], cruft_state["commit"]) == (f"{TEMPLATE_URL}.git", head)
    assert (
        json.loads((instance / ".cookiecutter.json").read_text(encoding="utf-8"))["_template"] == f"{TEMPLATE_URL}.git"
    )

    # The recorded URL leads to the template (here through a rewrite to the local copy).
    env = project_env(instance, **git_url_rewrites((template, f"{TEMPLATE_URL}.git")))
    cruft = str(VENV_BIN / "cruft")
    assert "up to date" in run([cruft, "check"], instance, env).stdout

    readme = template / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nA line from a newer template.\n", encoding="utf-8")
    git(template, "commit", "--quiet", "--all", "-m", "Newer template")
    assert run([cruft, "check"], instance, env, check=False).returncode != 0
    run([cruft, "update", "--skip-apply-ask"], instance, env)
    assert "A line from a newer template." in (instance / "README.md").read_text(encoding="utf-8")
    assert json.loads((instance / ".cruft.json").read_text())["commit"] == git(template, "rev-parse", "HEAD")


# --- publish -----------------------------------------------------------------------------------


def test_publish_without_variables_says_so_and_passes(tmp_path):
    rendering = fake_rendering(tmp_path / "rendering", "a" * 40)
    env = publish_env(TEMPLATE, bare(tmp_path / "instance.git"), token=None)
    result = instance_tool(TEMPLATE, "publish", str(rendering), env=env)
    [line] = result.stdout.splitlines()
    assert "not published" in line and "INSTANCE_REPO_URL" in line and "INSTANCE_TOKEN" in line
    assert result.stderr == ""


def test_publish_replaces_the_tree_on_the_default_branch_without_force(tmp_path):
    instance = bare(tmp_path / "instance.git", branch="trunk")
    rendering = fake_rendering(tmp_path / "rendering", "1" * 40, kept="kept\n", dropped="dropped\n")
    env = publish_env(TEMPLATE, instance)
    instance_tool(TEMPLATE, "publish", str(rendering), env=env)
    assert git(instance, "for-each-ref", "--format=%(refname)") == "refs/heads/main"  # a new project: main
    git(instance, "branch", "-m", "main", "trunk")  # then its default branch, whatever its name
    first = git(instance, "rev-parse", "trunk")

    assert "nothing to push" in instance_tool(TEMPLATE, "publish", str(rendering), env=env).stdout
    assert git(instance, "rev-parse", "trunk") == first

    (rendering / "dropped").unlink()
    fake_rendering(rendering, "2" * 40)
    instance_tool(TEMPLATE, "publish", str(rendering), env=env)
    assert git(instance, "log", "--format=%s", "trunk").splitlines() == [
        "Render 22222222 of the template",
        "Render 11111111 of the template",
    ]
    assert git(instance, "ls-tree", "--name-only", "trunk").splitlines() == [".cruft.json", "kept"]
    assert git(instance, "for-each-ref", "--format=%(refname)") == "refs/heads/trunk"


def test_publish_refused_prints_one_error_line_without_the_token(tmp_path):
    instance = bare(tmp_path / "instance.git")
    hook = instance / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho 'GitLab: refused for oauth2:{TOKEN}' >&2\nexit 1\n")
    hook.chmod(0o755)
    rendering = fake_rendering(tmp_path / "rendering", "a" * 40)
    env = publish_env(TEMPLATE, instance)
    result = instance_tool(TEMPLATE, "publish", str(rendering), env=env, check=False)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: could not push to {INSTANCE_URL} (main): ")
    assert "GitLab: refused for oauth2:[MASKED]" in line
    assert TOKEN not in result.stdout + result.stderr


# --- the template's `instance` job, as GitLab runs it ------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return template_repository(tmp_path_factory.mktemp("instance-job") / "template")


def instance_job(template: Path, instance: Path, token: str | None = TOKEN, branch: str = "main") -> PipelineRun:
    """The `instance` job of a push pipeline on `branch` (the default branch is main).

    `make instance` would install .venv from requirements/dev.txt (a minute, and the network). make
    reads command-line variables from MAKEFLAGS too: BIN points it at this test's tools, and VENV
    only at a fresh stamp telling make they are installed (the job's .venv is never created)."""
    stamp = template.parent / "installed-venv-stamp"
    stamp.mkdir(exist_ok=True)
    (stamp / ".installed").touch()
    values = {
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_BRANCH": branch,
        "CI_COMMIT_REF_NAME": branch,
        "CI_DEFAULT_BRANCH": "main",
        "CI_COMMIT_SHA": git(template, "rev-parse", "HEAD"),
        "CI_SERVER_URL": HOST,
        "CI_PROJECT_PATH": "ml/template",
        "CI_PROJECT_URL": TEMPLATE_URL,
        "CI_REPOSITORY_URL": f"{HOST.replace('://', f'://gitlab-ci-token:{JOB_TOKEN}@')}/ml/template.git",
        "MAKEFLAGS": f"VENV={stamp} BIN={VENV_BIN}",
        **{
            key: value
            for key, value in publish_env(template, instance, token).items()
            if key.startswith(("INSTANCE_", "GIT_C"))
        },
    }
    args = [str(GITLAB_CI_LOCAL), "--force-shell-executor", "--shell-isolation", "--no-artifacts-to-source"]
    args += [f"--variable={key}={value}" for key, value in values.items()]
    args += ["--ignore-predefined-vars", ",".join(key for key in values if key.startswith("CI_")), "instance"]
    env = {key: value for key, value in project_env(template).items() if key != "PYTHONPATH"}
    env["GIT_TERMINAL_PROMPT"] = "0"  # a refused push fails instead of asking for a password
    result = run(args, template, env, check=False)
    return PipelineRun(result.returncode, result.stdout + result.stderr, template)


def quick_start(project: Path, venv: Path) -> dict:
    """The README's install without make, in a fresh venv, then the pipeline. A copy of the repository
    has the raw data only in the DVC cache: `dvc checkout` puts it in place (offline)."""
    env = {key: value for key, value in project_env(project).items() if key != "PYTHONPATH"}
    run([str(VENV_BIN / "uv"), "venv", "--quiet", "--python", str(VENV_BIN / "python"), str(venv)], project, env)
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")
    run([str(VENV_BIN / "uv"), "pip", "install", "--quiet", "-r", "requirements.lock", "-e", "."], project, env)
    run([str(venv / "bin" / "dvc"), "checkout", "data/raw/dataset.csv.dvc"], project, env)
    run([str(venv / "bin" / "dvc"), "repro"], project, env)
    return json.loads((project / "reports" / "evaluation" / "metrics.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_instance_job_publishes_a_rendering_that_cruft_and_the_quick_start_accept(template, tmp_path):
    instance = bare(tmp_path / "instance.git")
    head = git(template, "rev-parse", "HEAD")

    first = instance_job(template, instance)
    assert first.returncode == 0, first.output
    assert f"Published the rendering of {head[:8]} to {INSTANCE_URL} (main)" in first.job_log("instance")
    assert git(instance, "log", "--format=%s", "main").splitlines() == [f"Render {head[:8]} of the template"]

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(instance), str(clone))
    cruft_state = json.loads((clone / ".cruft.json").read_text(encoding="utf-8"))
    assert (cruft_state["template"], cruft_state["commit"]) == (f"{TEMPLATE_URL}.git", head)
    assert JOB_TOKEN not in (clone / ".cruft.json").read_text() + (clone / ".cookiecutter.json").read_text()
    env = project_env(clone, **git_url_rewrites((template, f"{TEMPLATE_URL}.git")))
    assert "up to date" in run([str(VENV_BIN / "cruft"), "check"], clone, env).stdout

    metrics = quick_start(clone, tmp_path / "venv")
    assert 0 < metrics["accuracy"] <= 1

    pushed = git(instance, "rev-parse", "main")
    second = instance_job(template, instance)  # no template change
    assert second.returncode == 0, second.output
    assert "nothing to push" in second.job_log("instance")
    assert git(instance, "rev-parse", "main") == pushed
    assert TOKEN not in first.output + second.output


@pytest.mark.slow
def test_instance_job_without_token_passes_and_publishes_nothing(template, tmp_path):
    instance = bare(tmp_path / "instance.git")
    result = instance_job(template, instance, token=None)
    assert result.returncode == 0, result.output
    [line] = [line for line in result.job_log("instance").splitlines() if "not published" in line]
    assert "INSTANCE_REPO_URL" in line and "INSTANCE_TOKEN" in line
    assert git(instance, "for-each-ref") == ""


@pytest.mark.parametrize(
    ("variables", "when"),
    [
        ({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}, "on_success"),
        ({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature"}, "never"),
        ({"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "1"}, "never"),
    ],
    ids=["default-branch", "other-branch", "merge-request"],
)
def test_instance_job_runs_only_in_default_branch_pipelines(template, variables, when):
    values = {"CI_DEFAULT_BRANCH": "main", **variables}
    args = [str(GITLAB_CI_LOCAL), "--list-json", *[f"--variable={key}={value}" for key, value in values.items()]]
    if "CI_COMMIT_BRANCH" not in variables:
        args.append("--unset-variable=CI_COMMIT_BRANCH")  # GitLab leaves it unset in merge request pipelines
    args += ["--ignore-predefined-vars", ",".join([*values, "CI_COMMIT_BRANCH"])]
    listed = run(args, template, project_env(template)).stdout
    assert {job["name"]: job["when"] for job in json.loads(listed)}["instance"] == when
