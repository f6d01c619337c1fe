"""Render the default project as a repository of its own, and publish it to the instance project.

GitLab's "Create from template" and forking copy a real project; they cannot bake a cookiecutter.
The template's pipeline therefore keeps a rendering of the default answers in an *instance*
project, whose `.cruft.json` lets `cruft update` bring template changes in later.

    python -m tools.instance render DIR [--template-url URL]   # needs cruft (make instance)
    python -m tools.instance publish DIR                       # standard library and git only

`render` runs `cruft create --no-input` on the template's committed HEAD. With --template-url,
git is told to fetch that URL from this checkout, so `.cruft.json` (and `.cookiecutter.json`)
record the URL as if the project had been created from it, without any network access.
The hook's first commit is amended to hold `.cruft.json` and the raw data's DVC cache object:
a copy of a repository (a fork, "Create from template", a clone) carries only tracked files, and
without that object `dvc repro` in the copy stops at "missing data" (`.dvc/.gitignore` ignores
the cache, so it is added with --force; the project's [tool.cruft] skip keeps it out of updates).

`publish` reads INSTANCE_REPO_URL (https://host/group/project) and INSTANCE_TOKEN (a token with
write_repository); it replaces the instance's tree with DIR's commit and pushes one commit to the
instance's default branch (main when the project is empty), only when something changed, never
with force.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

TEMPLATE = Path(__file__).resolve().parents[1]
NOT_PUBLISHED = (
    "The instance was not published: set the CI/CD variables INSTANCE_REPO_URL (https URL of the instance project) "
    "and INSTANCE_TOKEN (a project or personal access token with write_repository), masked."
)

REPOSITORY_VARIABLES = {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR"}


class Failed(Exception):
    """One line for the user; the command exits 1."""


def git(*args: str, cwd: Path, env: dict[str, str] | None = None, secret: str = "") -> str:
    """Run git; on failure raise with the telling lines of its output, `secret` masked."""
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr + result.stdout).splitlines()]
        lines = [line for line in lines if line and line != "remote:"] or [f"exit code {result.returncode}"]
        # The server's words (remote:), the refusal (! [rejected]) and git's verdict (fatal:), else the last line.
        message = " ".join(line for line in lines if line.startswith(("remote:", "!", "fatal:"))) or lines[-1]
        raise Failed(f"git {args[0]} failed: {message.replace(secret, '[MASKED]') if secret else message}")
    return result.stdout.strip()


def clean_git_env(**extra: str) -> dict[str, str]:
    """This environment without the variables that point git at another repository (set inside git
    hooks); git config from the environment (GIT_CONFIG_*, URL rewrites) still applies."""
    env = {key: value for key, value in os.environ.items() if key not in REPOSITORY_VARIABLES}
    env.update(GIT_TERMINAL_PROMPT="0", **extra)
    return env


def render(target: Path, template_url: str) -> None:
    target = target.resolve()
    if target.exists():
        if any(target.iterdir()) and not (target / ".cruft.json").is_file():
            raise Failed(f"{target} exists and is not a rendering: remove it or choose another directory")
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)

    if "://" not in template_url and Path(template_url).exists():
        template_url = str(Path(template_url).absolute())  # as cruft records a local path
    env = clean_git_env()
    if template_url != str(TEMPLATE):  # git fetches the URL from this checkout
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
        env.update(
            GIT_CONFIG_COUNT=str(count + 1),
            **{f"GIT_CONFIG_KEY_{count}": f"url.{TEMPLATE}.insteadOf", f"GIT_CONFIG_VALUE_{count}": template_url},
        )
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        args = [sys.executable, "-m", "cruft", "create", "--no-input", "--default-config", "--output-dir", scratch]
        result = subprocess.run([*args, template_url], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise Failed(f"cruft create failed:\n{result.stdout}{result.stderr}")
        [project] = Path(scratch).iterdir()
        project.rename(target)

    answers = json.loads((target / ".cruft.json").read_text(encoding="utf-8"))["context"]["cookiecutter"]
    name, email = answers["author_name"], answers["author_email"]  # the hook's first commit's identity
    env = clean_git_env(
        GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email
    )
    amend = (target / ".git").is_dir()  # the hook made the first commit (init_git)
    if not amend:
        git("init", "--quiet", "--initial-branch", answers["default_branch"], cwd=target, env=env)
    git("add", "--all", cwd=target, env=env)
    if (target / ".dvc" / "cache").is_dir():
        git("add", "--force", ".dvc/cache", cwd=target, env=env)
    message = ["--amend", "--no-edit"] if amend else ["--message", "Start project from the cookiecutter template"]
    git("-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", *message, cwd=target, env=env)
    leftover = git("status", "--porcelain", cwd=target, env=env)
    if leftover:
        raise Failed(f"the rendering left files outside its commit: {leftover}")
    print(f"Rendered {answers['_commit'][:8]} of {answers['_template']} into {target}")


def publish(source: Path) -> None:
    url, token = os.environ.get("INSTANCE_REPO_URL", ""), os.environ.get("INSTANCE_TOKEN", "")
    if not url or not token:
        print(NOT_PUBLISHED)
        return
    parts = urlsplit(url.strip())
    path = re.sub(r"(\.git)?/*$", "", parts.path)
    if parts.scheme != "https" or not parts.hostname or not path.strip("/"):
        raise Failed(
            f"INSTANCE_REPO_URL must be the project's https URL, like https://gitlab.com/group/project, not {url!r}"
        )
    public = f"https://{parts.hostname}{f':{parts.port}' if parts.port else ''}{path}"
    push_url = public.replace("https://", f"https://oauth2:{token}@", 1) + ".git"

    source = source.resolve()
    env = clean_git_env()
    if git("status", "--porcelain", cwd=source, env=env):
        raise Failed(f"{source} has changes outside its commit: render it again")
    template_commit = json.loads((source / ".cruft.json").read_text(encoding="utf-8"))["commit"]
    identity = git("log", "-1", "--format=%an%n%ae", cwd=source, env=env).splitlines()
    env.update(GIT_AUTHOR_NAME=identity[0], GIT_AUTHOR_EMAIL=identity[1])
    env.update(GIT_COMMITTER_NAME=identity[0], GIT_COMMITTER_EMAIL=identity[1])

    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch) / "instance"
        try:
            git("clone", "--quiet", push_url, str(clone), cwd=Path(scratch), env=env, secret=token)
        except Failed as error:
            raise Failed(f"could not clone {public}: {error}") from None
        if has_commit(clone, env):
            branch = git("symbolic-ref", "--short", "HEAD", cwd=clone, env=env)
        elif git("branch", "--remotes", cwd=clone, env=env):
            raise Failed(f"the default branch of {public} does not exist: choose one in its settings")
        else:  # an empty project: its first branch becomes the default
            branch = "main"
            git("symbolic-ref", "HEAD", f"refs/heads/{branch}", cwd=clone, env=env)
        git("fetch", "--quiet", str(source), "HEAD", cwd=clone, env=env)
        git("read-tree", "-u", "--reset", "FETCH_HEAD", cwd=clone, env=env)  # the tree, not the history
        if has_commit(clone, env) and not git("status", "--porcelain", cwd=clone, env=env):
            print(f"The instance {public} already holds this rendering of {template_commit[:8]}: nothing to push.")
            return
        message = f"Render {template_commit[:8]} of the template"
        git("-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-m", message, cwd=clone, env=env)
        try:
            git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=clone, env=env, secret=token)
        except Failed as error:
            raise Failed(f"could not push to {public} ({branch}): {error}") from None
    print(f"Published the rendering of {template_commit[:8]} to {public} ({branch}).")


def has_commit(repository: Path, env: dict[str, str]) -> bool:
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=repository, env=env, capture_output=True
    )
    return found.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.instance", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render_command = commands.add_parser("render", help="render the default answers into DIR, one commit")
    render_command.add_argument("dir", type=Path)
    render_command.add_argument("--template-url", default=str(TEMPLATE), help="recorded in .cruft.json")
    publish_command = commands.add_parser("publish", help="push DIR's tree to INSTANCE_REPO_URL")
    publish_command.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            render(args.dir, args.template_url)
        else:
            publish(args.dir)
    except Failed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
