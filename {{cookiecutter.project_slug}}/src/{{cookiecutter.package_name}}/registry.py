"""The model registry: versions and stages of dvc.yaml's `model` artifact, kept as Git tags by GTO.

`python -m {{ cookiecutter.package_name }}.registry COMMAND`, on a laptop or in CI:

    register [--bump minor|patch|major]     this commit's model becomes the next version (v0.1.0 first)
    promote VERSION STAGE                   the stage holds this version, and no other
    unassign STAGE                          the stage holds no version
    deprecate VERSION                       the version is withdrawn, from its stages too
    show                                    versions, their commits and stages
    current TAG ENVIRONMENT                 in CI: TAG is on origin and still says what ENVIRONMENT's stage holds
    fetch VERSION|STAGE [--out PATH] [--repo URL]   the model, from the DVC remote, without a clone
    verify                                  the checked-out model is the one dvc.lock names

Each change is one GTO tag (`model@v0.2.0`, `model#production#3`, `model#staging!#4`,
`model@v0.1.0!`) pushed to `origin` at once, where its pipeline publishes or deploys the model
or stops a stage's environment (a deprecation unassigns the version's stages first, one tag each).
The tags are read from `origin` first, so versions are numbered against everything registered.

A stage holds one version: `promote` unassigns the version it replaces, so `gto show`, this
module and GitLab's environments agree on what is where. `fetch` resolves a version or a stage
with GTO, then downloads by version (`dvc artifacts get --rev`): DVC's own `--stage` takes the
newest tag naming the stage, even an unassignment, and would return an unassigned model.
"""

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import yaml
from gto import api as gto
from gto.base import Artifact
from gto.constants import VersionSort
from gto.exceptions import GTOException
from gto.registry import GitRegistry
from gto.versions import SemVer

from .config import PipelineError, run_main

ARTIFACT = "model"
FIRST_VERSION = "v0.1.0"
TAGS = f"+refs/tags/{ARTIFACT}*:refs/tags/{ARTIFACT}*"
BUMPS = ("minor", "patch", "major")
OUTDATED = 3  # `current`'s exit code: the deploy and stop jobs allow it (allow_failure: exit_codes)
# Statuses of `dvc status` that only say a file is not here (a fresh clone, a CI checkout).
ABSENT = {"deleted", "not in cache"}


class Outdated(PipelineError):
    """The tag no longer says what its stage holds."""


# --- git and dvc ---------------------------------------------------------------------------------


def hide_credentials(text: str) -> str:
    return re.sub(r"://[^/@\s]+@", "://[MASKED]@", text)


def command(args: list[str], cwd: str | Path = ".") -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True)


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return hide_credentials(lines[-1]) if lines else f"exit code {result.returncode}"


def git(*args: str, cwd: str | Path = ".") -> str:
    result = command(["git", *args], cwd)
    if result.returncode != 0:
        raise PipelineError(f"git {args[0]} failed: {last_line(result)}")
    return result.stdout.rstrip()


def fetch_tags(url: str = "origin", cwd: str | Path = ".", shallow: bool = False) -> None:
    """The registry's tags as `url` has them (GTO needs only the tags). A shallow clone stays shallow."""
    answer = command(["git", "ls-remote", "--tags", "--refs", url, f"refs/tags/{ARTIFACT}*"], cwd)
    if answer.returncode == 0 and answer.stdout.strip():  # (a shallow fetch of no tag at all fails)
        shallow = shallow or git("rev-parse", "--is-shallow-repository", cwd=cwd) == "true"
        answer = command(["git", "fetch", "--quiet", "--no-tags", *(["--depth=1"] if shallow else []), url, TAGS], cwd)
    if answer.returncode != 0:
        raise PipelineError(f"cannot read the registry's tags from {hide_credentials(url)}: {last_line(answer)}")


def push(tag: str) -> None:
    """Push one tag to origin; a refused tag is deleted here too, so a retry starts clean."""
    result = command(["git", "push", "--quiet", "origin", f"refs/tags/{tag}"])
    if result.returncode != 0:
        git("tag", "--delete", tag)
        raise PipelineError(
            f"could not push the tag {tag} to origin ({last_line(result)}): check that you may push tags"
            " (in CI: REPO_TOKEN, see the README); the tag was deleted here, so the command can run again."
        )
    print(f"Pushed the tag {tag} to origin.")


def dvc_json(*args: str) -> dict:
    result = command(["dvc", *args, "--json"])
    if result.returncode != 0:
        raise PipelineError(f"dvc {' '.join(args)} failed: {last_line(result)}")
    return json.loads(result.stdout or "{}")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def artifact_path(dvc_yaml: str) -> str:
    """Where dvc.yaml's `model` artifact lives in the workspace."""
    return yaml.safe_load(dvc_yaml)["artifacts"][ARTIFACT]["path"]


def locked_md5(dvc_lock: str, path: str) -> str:
    for stage in yaml.safe_load(dvc_lock)["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return out["md5"]
    raise PipelineError(f"dvc.lock names no {path}: run 'dvc repro' and commit dvc.lock.")


# --- the registry's state ------------------------------------------------------------------------


@contextmanager
def model(repo: str | Path = "."):
    """The `model` artifact as GTO reads it from the tags, and the registry's configuration (.gto)."""
    with GitRegistry.from_url(str(repo)) as registry:
        yield registry.get_state().find_artifact(ARTIFACT, create_new=True), registry.config


def version_of(artifact: Artifact, version: str):
    """The registered, not deprecated version, or a PipelineError."""
    if not SemVer.is_valid(version):
        raise PipelineError(f"'{version}' is not a version such as {FIRST_VERSION}.")
    found = artifact.find_version(name=version)
    if found is None or not found.is_registered:
        raise PipelineError(f"{ARTIFACT} {version} is not registered (see 'show').")
    if not found.is_active:
        raise PipelineError(f"{ARTIFACT} {version} was deprecated.")
    return found


def holders(artifact: Artifact, stage: str) -> list[str]:
    """Versions assigned to the stage and not unassigned, the last assigned first."""
    vstages = artifact.get_vstages(versions_per_stage=-1, sort=VersionSort.Timestamp)
    return [vstage.version for vstage in vstages.get(stage, [])]


def check_stage(config, stage: str) -> None:
    stages = config.stages or []
    if stage not in stages:
        raise PipelineError(f"'{stage}' is not a stage of this registry: .gto lists {', '.join(stages) or 'none'}.")


def after_last_tag() -> None:
    """GTO orders events by their tags' time, in whole seconds: a tag made in the same second as
    the last one (an unassignment right after its assignment) could be read as the earlier."""
    times = git("for-each-ref", "--format=%(taggerdate:unix)", f"refs/tags/{ARTIFACT}*").split()
    newest = max((int(value) for value in times if value), default=0)
    while time.time() < newest + 1:
        time.sleep(0.1)


# --- refusals before a registration --------------------------------------------------------------


def check_clean_workspace() -> None:
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    if changed:
        raise PipelineError(
            f"uncommitted changes ({', '.join(changed)}): commit or stash them first; a version is a commit's model."
        )


def check_dvc_lock() -> None:
    """`dvc status`: what changed besides files that are only absent here."""
    stale = set()
    for stage, changes in dvc_json("status").items():
        for change in changes:
            if isinstance(change, str):  # "changed command", "always changed"
                stale.add(f"{stage}: {change}")
                continue
            for path, state in change.get("changed deps", {}).items():
                if not isinstance(state, str) or state not in ABSENT:  # params: {key: "modified"}
                    stale.add(f"{stage}: {path}")
    if stale:
        raise PipelineError(
            f"dvc.lock does not match this commit ({'; '.join(sorted(stale))} changed): run 'dvc repro --pull',"
            " commit dvc.lock and push the results with 'dvc push'."
        )


def check_model_in_remote(path: str) -> None:
    state = dvc_json("status", "--cloud", path).get(path)
    if state in ("new", "missing"):  # new: in the local cache only; missing: nowhere
        raise PipelineError(
            f"this commit's model ({path}, md5 {locked_md5(Path('dvc.lock').read_text(), path)[:8]}) is not in the"
            " DVC remote: run 'dvc push' (or let this commit's pipeline push it)."
        )


# --- commands ------------------------------------------------------------------------------------


def next_version(artifact: Artifact, bump: str) -> str:
    """The highest version ever registered (deprecated ones too: a number is never reused), bumped."""
    registered = [SemVer(version.version) for version in artifact.versions if version.is_registered]
    if not registered:
        return FIRST_VERSION
    return max(registered).bump(**{f"bump_{bump}": True}).version


def register(bump: str) -> None:
    fetch_tags()
    check_clean_workspace()
    commit = git("rev-parse", "HEAD")
    with model() as (artifact, _):
        existing = artifact.find_version(commit_hexsha=commit)
        if existing is not None and existing.is_registered:
            deprecated = "" if existing.is_active else " (deprecated)"
            raise PipelineError(f"this commit ({commit[:8]}) is {ARTIFACT} {existing.version}{deprecated} already.")
        version = next_version(artifact, bump)
    check_dvc_lock()
    check_model_in_remote(artifact_path(Path("dvc.yaml").read_text()))
    after_last_tag()
    push(gto.register(".", ARTIFACT, "HEAD", version=version).tag)
    print(f"Registered {ARTIFACT} {version}: the model of commit {commit[:8]}.")


def promote(version: str, stage: str) -> None:
    fetch_tags()
    with model() as (artifact, config):
        check_stage(config, stage)
        version_of(artifact, version)
        current = holders(artifact, stage)
    if current == [version]:
        raise PipelineError(f"'{stage}' holds {ARTIFACT} {version} already.")
    # The replaced version leaves first: the assignment is then the newest tag naming the stage.
    for replaced in current:
        if replaced != version:
            after_last_tag()
            push(gto.unassign(".", ARTIFACT, stage=stage, version=replaced).tag)
            print(f"{ARTIFACT} {replaced} leaves '{stage}'.")
    if version not in current:
        after_last_tag()
        push(gto.assign(".", ARTIFACT, stage, version=version).tag)
    print(f"'{stage}' holds {ARTIFACT} {version}.")


def unassign(stage: str) -> None:
    fetch_tags()
    with model() as (artifact, config):
        check_stage(config, stage)
        current = holders(artifact, stage)
    if not current:
        raise PipelineError(f"no version is in '{stage}'.")
    for version in current:
        after_last_tag()
        push(gto.unassign(".", ARTIFACT, stage=stage, version=version).tag)
        print(f"{ARTIFACT} {version} left '{stage}', which now holds no version.")


def deprecate(version: str) -> None:
    fetch_tags()
    with model() as (artifact, _):
        stages = [vstage.stage for vstage in version_of(artifact, version).get_vstages()]
    for stage in stages:  # an unassignment tag of its own, whose pipeline stops the stage's environment
        after_last_tag()
        push(gto.unassign(".", ARTIFACT, stage=stage, version=version).tag)
    after_last_tag()
    push(gto.deregister(".", ARTIFACT, version=version).tag)
    left = f"; it leaves {', '.join(stages)}" if stages else ""
    print(f"Deprecated {ARTIFACT} {version}{left}.")


def show() -> None:
    fetch_tags()
    with model() as (artifact, config):
        versions = [version for version in artifact.versions if version.is_registered]
        if not versions:
            print(f"No version of {ARTIFACT} is registered yet: run 'register'.")
            return
        for stage in config.stages or []:
            print(f"{stage + ':':<12} {next(iter(holders(artifact, stage)), '-')}")
        for version in sorted(versions, key=lambda version: SemVer(version.version), reverse=True):
            stages = ", ".join(vstage.stage for vstage in version.get_vstages()) or "-"
            stages = stages if version.is_active else "deprecated"
            print(f"{version.version:<12} {version.commit_hexsha[:8]}  {version.created_at:%Y-%m-%d %H:%M}  {stages}")


def current(tag: str, environment: str) -> None:
    """The check of a deploy or stop job, which GitLab lets anyone run again later (the environment's
    re-deploy button): TAG must still be on origin, name ENVIRONMENT's stage, and say what that stage
    holds now (an assignment: its version, printed; an unassignment: nothing). Else Outdated."""
    answer = command(["git", "ls-remote", "--tags", "origin", f"refs/tags/{tag}"])
    if answer.returncode != 0:
        raise PipelineError(f"cannot read the tag {tag} on origin: {last_line(answer)}")
    if not answer.stdout.strip():
        raise Outdated(f"the tag {tag} is no longer on origin, so nothing is done for it.")
    [event] = gto.check_ref(".", tag) or [None]
    stage = getattr(event, "stage", None)
    if stage != environment:
        raise PipelineError(f"{tag} is not an assignment or unassignment of the stage '{environment}'.")
    fetch_tags()
    with model() as (artifact, _):
        held = next(iter(holders(artifact, stage)), None)
    if tag.split("#")[1].endswith("!"):
        if held:
            raise Outdated(f"'{stage}' holds {ARTIFACT} {held} again since {tag}: the environment is not stopped.")
        return
    if held != event.version:
        now = f"{ARTIFACT} {held}" if held else "no version"
        raise Outdated(f"'{stage}' holds {now} now, not {event.version} as {tag} said: nothing is deployed.")
    print(event.version)


def fetch(target: str, out: Path | None, repo: str | None) -> None:
    """Resolve the version (or the stage's version) from the repository's tags, download its model
    from the DVC remote, check it against that commit's dvc.lock, and load it (`load_model`: a
    file that could run code is refused and deleted, having run nothing)."""
    url = repo or git("remote", "get-url", "origin")
    if Path(url).exists():
        url = str(Path(url).resolve())
    with tempfile.TemporaryDirectory() as tags_only:
        git("init", "--quiet", cwd=tags_only)
        fetch_tags(url, cwd=tags_only, shallow=True)
        with model(tags_only) as (artifact, _):
            if SemVer.is_valid(target):
                version, where = version_of(artifact, target).version, ""
            else:
                version = next(iter(holders(artifact, target)), None)
                if version is None:
                    raise PipelineError(f"no version of {ARTIFACT} is in '{target}'.")
                where = f" (in '{target}')"
        tag = f"{ARTIFACT}@{version}"
        commit = git("rev-parse", f"{tag}^0", cwd=tags_only)
        path = artifact_path(git("show", f"{tag}:dvc.yaml", cwd=tags_only))
        expected = locked_md5(git("show", f"{tag}:dvc.lock", cwd=tags_only), path)
    out = out or Path(Path(path).name)
    from .model_file import load_model  # here: the other commands need no scikit-learn

    # Downloaded beside `out` and moved there only once checked: whoever pushed the tag chose the
    # file, so it is loaded as `predict` would load it, and one that could run code is deleted.
    fetched = out.with_name(out.name + ".partial")
    try:
        result = command(["dvc", "artifacts", "get", url, ARTIFACT, "--rev", version, "--out", str(fetched), "--force"])
        if result.returncode != 0:
            raise PipelineError(f"dvc artifacts get failed for {ARTIFACT} {version}: {last_line(result)}")
        if md5(fetched) != expected:
            found = md5(fetched)
            raise PipelineError(f"{out} has md5 {found}, but dvc.lock of {tag} names {expected}: fetch it again.")
        load_model(fetched)
    except PipelineError as error:
        fetched.unlink(missing_ok=True)
        raise PipelineError(str(error).replace(str(fetched), f"{ARTIFACT} {version}")) from error
    fetched.replace(out)
    print(f"{ARTIFACT} {version}{where}, commit {commit[:8]}: {out} (md5 {expected}, as in its dvc.lock).")


def verify() -> None:
    path = artifact_path(Path("dvc.yaml").read_text())
    expected = locked_md5(Path("dvc.lock").read_text(), path)
    if not Path(path).is_file():
        raise PipelineError(f"{path} is missing: run 'dvc pull {path}'.")
    if md5(Path(path)) != expected:
        raise PipelineError(f"{path} has md5 {md5(Path(path))}, but dvc.lock names {expected}.")
    print(f"{path}: md5 {expected}, as dvc.lock names it.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    bump = commands.add_parser("register", help="register this commit's model as the next version")
    bump.add_argument("--bump", choices=BUMPS, default="minor", help=f"the first version is {FIRST_VERSION}")
    assign = commands.add_parser("promote", help="assign a version to a stage")
    assign.add_argument("version")
    assign.add_argument("stage")
    commands.add_parser("unassign", help="take the version out of a stage").add_argument("stage")
    commands.add_parser("deprecate", help="withdraw a version").add_argument("version")
    commands.add_parser("show", help="versions and stages")
    get = commands.add_parser("fetch", help="download the model of a version or a stage")
    get.add_argument("target", metavar="VERSION|STAGE")
    get.add_argument("--out", type=Path, help="where to write the model (default: its file name, here)")
    get.add_argument("--repo", help="the project's Git URL or path (default: origin)")
    commands.add_parser("verify", help="check the model file against dvc.lock")
    check = commands.add_parser("current", help="CI: the tag still says what the environment's stage holds")
    check.add_argument("tag")
    check.add_argument("environment")
    args = parser.parse_args(argv)
    actions = {
        "register": lambda: register(args.bump),
        "promote": lambda: promote(args.version, args.stage),
        "unassign": lambda: unassign(args.stage),
        "deprecate": lambda: deprecate(args.version),
        "show": show,
        "fetch": lambda: fetch(args.target, args.out, args.repo),
        "verify": verify,
        "current": lambda: current(args.tag, args.environment),
    }
    try:
        actions[args.command]()
    except GTOException as error:
        raise PipelineError(f"GTO: {error.msg}") from error
    except Outdated as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(OUTDATED)


if __name__ == "__main__":
    run_main(main)
