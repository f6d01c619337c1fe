"""Finish the baked project without network access and without DVC or git being required.

The raw dataset is registered with DVC the way `dvc add` would (a `.dvc` file plus a copy in the
DVC cache), so the project's first commit already versions the data, and `dvc push` uploads it.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

RAW_DATA = Path("data/raw/dataset.csv")
# What each `training_runner` choice needs beyond the usual runners; the other choices' files go.
RUNNER_FILES = {
    "tagged": [Path("ci/runners")],
    "cml": [Path("ci/cloud_runner.py"), Path("ci/vm-startup.sh")],
}
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")


def track_with_dvc(path: Path) -> None:
    """Write `<path>.dvc` and the DVC 3 cache entry (`.dvc/cache/files/md5/ab/cdef...`)."""
    content = path.read_bytes()
    md5 = hashlib.md5(content).hexdigest()
    cached = Path(".dvc/cache/files/md5") / md5[:2] / md5[2:]
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, cached)
    cached.chmod(0o444)
    path.with_name(path.name + ".dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {len(content)}\n  hash: md5\n  path: {path.name}\n",
        encoding="utf-8",
    )
    path.with_name(".gitignore").write_text(f"/{path.name}\n", encoding="utf-8")


def git(*args: str, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], check=True, stdout=subprocess.DEVNULL, env=env)


def init_git(branch: str, author: str, email: str) -> bool:
    if shutil.which("git") is None:
        return False
    # The caller's GIT_* variables would win over the answers: GIT_AUTHOR_NAME over the identity,
    # and GIT_DIR or GIT_INDEX_FILE (set inside git hooks) would commit into another repository.
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME=author, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=author, GIT_COMMITTER_EMAIL=email)
    git("init", "--quiet", "--initial-branch", branch, env=env)
    git("add", "--all", env=env)
    message = "Start project from the cookiecutter template"
    git("-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "--message", message, env=env)
    return True


def remove_other_runner_files(choice: str) -> None:
    for runner, paths in RUNNER_FILES.items():
        for path in paths if runner != choice else []:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def main() -> None:
    remove_other_runner_files(ANSWERS["training_runner"])
    track_with_dvc(RAW_DATA)
    if ANSWERS["init_git"] and not init_git(ANSWERS["default_branch"], ANSWERS["author_name"], ANSWERS["author_email"]):
        print(
            "git was not found, so no repository was created; install git, then run in the project: "
            f"git init -b {ANSWERS['default_branch']} && git add --all && git commit -m 'Start project'",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
