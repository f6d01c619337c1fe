"""Finish the baked project without network access and without DVC or git being required.

Each add-on not chosen loses its files through one `remove_*` function (its include file, its
scripts, its module and tests); the baked README and .gitlab-ci.yml leave it out by themselves.
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
PACKAGE = Path("src/{{ cookiecutter.package_name }}")
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


def remove(*paths: str | Path) -> None:
    for path in map(Path, paths):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def remove_parameter_sweeps() -> None:
    remove("ci/sweeps.gitlab-ci.yml", "ci/sweeps.sh", "sweep.yaml", PACKAGE / "sweep.py", "tests/test_sweep.py")


def remove_model_registry() -> None:
    remove(
        "ci/model-registry.gitlab-ci.yml", "ci/registry.sh", ".gto", PACKAGE / "registry.py", "tests/test_registry.py"
    )


def remove_mlflow_mirror() -> None:
    remove("ci/mlflow-mirror.gitlab-ci.yml", "ci/mlflow_mirror.py", "ci/mlflow-requirements.txt")


def remove_cloud_runner() -> None:
    remove("ci/cloud-runner.gitlab-ci.yml", "ci/cloud_runner.py", "ci/vm-startup.sh")


def remove_runner_tag() -> None:
    remove("ci/runner-tag.gitlab-ci.yml")


def remove_runner_configurations() -> None:
    remove("ci/runners")


def main() -> None:
    if not ANSWERS["parameter_sweeps"]:
        remove_parameter_sweeps()
    if not ANSWERS["model_registry"]:
        remove_model_registry()
    if not ANSWERS["mlflow_mirror"]:
        remove_mlflow_mirror()
    runner = ANSWERS["training_runner"]
    if runner != "cml":
        remove_cloud_runner()
    if runner not in ("tagged", "gitlab-hosted"):
        remove_runner_tag()
    if runner != "tagged":
        remove_runner_configurations()
    track_with_dvc(RAW_DATA)
    if ANSWERS["init_git"] and not init_git(ANSWERS["default_branch"], ANSWERS["author_name"], ANSWERS["author_email"]):
        print(
            "git was not found, so no repository was created; install git, then run in the project: "
            f"git init -b {ANSWERS['default_branch']} && git add --all && git commit -m 'Start project'",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
