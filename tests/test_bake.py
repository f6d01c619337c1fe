"""Baking the template: every answer renders into files that parse, the raw data arrives versioned by
DVC, git is set up (or cleanly skipped), and cruft can create and check a project from the template."""

import ast
import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import palmerpenguins
import pandas as pd
import pytest
import yaml
from sklearn import datasets
from slugify import slugify

from harness.ci_file import load
from harness.project import TEMPLATE, VENV_BIN, bake_cli, pre_gen_hook, project_env, run

hook = pre_gen_hook()

QUESTIONS = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
DATASETS = QUESTIONS["dataset"]
PYTHON_VERSIONS = QUESTIONS["python_version"]
PROJECT_DIR = "{{cookiecutter.project_slug}}"  # the mirror's script, which the default bake leaves out
DEFAULT_SLUG = slugify(QUESTIONS["project_name"])  # the same filter cookiecutter.json applies
TEMPLATE_SYNTAX = ("{{ cookiecutter.", "{{cookiecutter.", "{%")
PARSERS = {
    ".yaml": yaml.safe_load,
    ".yml": lambda text: list(yaml.safe_load_all(text)),  # .gitlab-ci.yml: a spec:inputs header, then the jobs
    ".dvc": yaml.safe_load,  # DVC pointer files are YAML
    ".toml": tomllib.loads,
    ".json": json.loads,
}

# Free text that breaks naive templating: quotes and backslashes end or escape strings, emoji
# outside the BMP become surrogate pairs in Jinja's tojson (which TOML rejects), YAML readers refuse
# raw C1 control characters and drop the spaces after a raw U+2028.
AWKWARD = {
    "quotes": {
        "project_name": 'Ana\'s "quoted" model',
        "description": 'Says "hello", it\'s fine: {not: yaml} # not a comment',
        "author_name": 'Ana "The Dev" O\'Neil',
    },
    "backslash": {
        "project_name": "C:\\models\\new table",
        "description": "Paths like C:\\new\\table and \\u00e9 stay literal \\",
        "author_name": "Back\\slash",
    },
    "emoji": {
        "project_name": "🚀 Rocket model ✨",
        "description": "Finds 🐛 bugs in 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "author_name": "Zoë 🧪 Lab",
    },
    "toml-and-yaml-syntax": {
        "description": "'''single''' \"\"\"triple\"\"\" - [list] &anchor *alias !tag %directive @at `tick`",
        "author_name": "null",
    },
    "control-characters": {"description": "tab\there NEL\x85 LS\u2028 C1\x80 DEL\x7f end"},
}


def project_files(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*") if path.is_file() and ".git" not in path.parts)


def recorded_answers(project: Path) -> dict:
    return json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))


def assert_rendered_cleanly(project: Path, answers: dict) -> None:
    """No template syntax survives, every structured file parses, free text round-trips exactly."""
    parsed = set()
    for path in project_files(project):
        relative = path.relative_to(project).as_posix()
        assert not any(marker in relative for marker in ("{{", "{%")), relative
        content = path.read_bytes()
        if b"\0" in content:
            continue  # binary
        text = content.decode("utf-8")
        leftovers = [marker for marker in TEMPLATE_SYNTAX if marker in text]
        assert not leftovers, f"{relative} still contains {leftovers}"
        if parse := PARSERS.get(path.suffix):
            try:
                parse(text)
            except Exception as error:
                pytest.fail(f"{relative} does not parse: {error}")
            parsed.add(relative)
    assert {"dvc.yaml", "params.yaml", "pyproject.toml", ".cookiecutter.json", "data/raw/dataset.csv.dvc"} <= parsed

    recorded = recorded_answers(project)
    assert {key: recorded[key] for key in answers} == answers
    metadata = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert metadata["name"] == recorded["project_slug"] == project.name
    assert metadata["description"] == recorded["description"]
    assert metadata["authors"] == [{"name": recorded["author_name"], "email": recorded["author_email"]}]
    assert metadata["requires-python"] == f">={QUESTIONS['_min_python']}"
    model = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["artifacts"]["model"]
    assert model["desc"] == recorded["description"]
    assert recorded["dataset"] in model["labels"]
    assert (project / "src" / recorded["package_name"] / "__init__.py").is_file()


@pytest.mark.parametrize("answers", AWKWARD.values(), ids=AWKWARD.keys())
def test_awkward_text_renders_cleanly(bake, answers):
    project = bake(**answers)
    assert_rendered_cleanly(project, answers)


def test_non_ascii_name_gets_a_transliterated_slug(bake):
    answers = {
        "project_name": "Классификатор опухолей",
        "description": "Модель, которая классифицирует опухоли",
        "author_name": "Анна Петрова",
    }
    project = bake(**answers)
    assert_rendered_cleanly(project, answers)
    recorded = recorded_answers(project)
    assert recorded["project_slug"].startswith("klassifikator")
    assert recorded["project_slug"].isascii() and recorded["package_name"].isascii()
    assert recorded["package_name"] == recorded["project_slug"].replace("-", "_")


def test_long_name_still_derives_a_valid_bucket(bake):
    answers = {"project_name": ("Exceptionally long project name " * 4)[:120]}
    project = bake(**answers)
    assert_rendered_cleanly(project, answers)
    recorded = recorded_answers(project)
    assert len(recorded["project_slug"]) > 63  # longer than any bucket name may be
    assert recorded["project_slug"].startswith(recorded["s3_bucket"].removesuffix("-dvc"))
    assert hook.check_bucket(recorded["s3_bucket"]) is None
    assert hook.problems(recorded) == []  # every derived default passes validation


@pytest.mark.parametrize("version", PYTHON_VERSIONS)
def test_python_version_picks_the_ci_image_not_the_lowest_python(bake, version):
    """Whatever the CI image, the project installs on the lowest Python its lock supports: a
    newcomer on Debian 12's Python 3.11 can follow the README whichever version was chosen."""
    project = bake(python_version=version)
    assert_rendered_cleanly(project, {"python_version": version})
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert pyproject["tool"]["ruff"]["target-version"] == "py311"
    assert load(project)["variables"]["PYTHON_IMAGE"] == f"python:{version}"


def test_every_python_choice_is_one_the_lock_supports():
    lowest = tuple(map(int, QUESTIONS["_min_python"].split(".")))
    assert all(tuple(map(int, version.split("."))) >= lowest for version in PYTHON_VERSIONS)


def test_an_unlisted_python_version_is_refused_at_bake_time(tmp_path):
    result = bake_cli(tmp_path, "python_version=3.10")
    assert result.returncode != 0
    assert "3.10 provided for choice variable python_version, but the choices are" in result.stderr
    assert not any(tmp_path.glob("*/pyproject.toml"))


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_file_is_the_chosen_dataset(bake, name):
    project = bake(dataset=name)
    assert_rendered_cleanly(project, {"dataset": name})
    shipped = pd.read_csv(project / "data/raw/dataset.csv")
    target = yaml.safe_load((project / "params.yaml").read_text())["data"]["target"]
    if name == "penguins":  # the palmerpenguins package's file, byte for byte
        original = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
        assert (project / "data/raw/dataset.csv").read_bytes() == original.read_bytes()
        assert target == "species" and shipped.shape == (344, 8)
        assert "CC0" in (project / "data/README.md").read_text()
        return
    # The CSVs were exported from scikit-learn's bundled copies (tools/export_datasets.py).
    expected = getattr(datasets, f"load_{name}")(as_frame=True).frame
    assert shipped.columns[-1] == target == "target"
    assert list(shipped.columns) == list(expected.columns)
    assert shipped.shape == expected.shape
    assert (shipped["target"].to_numpy() == expected["target"].to_numpy()).all()
    # Exported with 6 significant digits.
    assert np.allclose(shipped.to_numpy(dtype=float), expected.to_numpy(dtype=float), rtol=1e-5, atol=0)


@pytest.fixture(scope="module")
def default_project(tmp_path_factory) -> Path:
    """One default bake through the real CLI, shared by the read-only tests below."""
    output = tmp_path_factory.mktemp("default")
    result = bake_cli(output)
    assert result.returncode == 0, result.stderr
    return output / DEFAULT_SLUG


def git_output(project: Path, *args: str) -> str:
    return run(["git", *args], project).stdout.strip()


def test_first_commit_versions_the_data_pointer_not_the_data(default_project):
    assert git_output(default_project, "rev-list", "--count", "HEAD") == "1"
    committed = git_output(default_project, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
    assert ".dvc/config" in committed
    assert "data/raw/dataset.csv.dvc" in committed
    assert "data/raw/dataset.csv" not in committed
    assert (default_project / "data/raw/dataset.csv").is_file()  # present, only ignored by git
    run(["git", "check-ignore", "--quiet", "data/raw/dataset.csv"], default_project)
    assert git_output(default_project, "status", "--porcelain", "--untracked-files=all") == ""


def test_dvc_cache_holds_the_raw_data(default_project):
    data = (default_project / "data/raw/dataset.csv").read_bytes()
    pointer = yaml.safe_load((default_project / "data/raw/dataset.csv.dvc").read_text(encoding="utf-8"))
    (out,) = pointer["outs"]
    md5 = hashlib.md5(data).hexdigest()
    assert out == {"md5": md5, "size": len(data), "hash": "md5", "path": "dataset.csv"}
    cached = default_project / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    assert cached.read_bytes() == data


def dvc_config(project: Path) -> dict[str, str]:
    """The project's .dvc/config as DVC itself reads it (configobj quirks included)."""
    listed = run(["dvc", "config", "--list", "--project"], project).stdout
    return dict(line.split("=", 1) for line in listed.splitlines())


def assert_no_credentials(project: Path) -> None:
    text = (project / ".dvc/config").read_text(encoding="utf-8").lower()
    for word in ("access_key", "secret", "password", "token", "credential", "profile"):
        assert word not in text, f".dvc/config mentions {word!r}: credentials belong in config.local or env"


@pytest.mark.slow
def test_dvc_config_points_at_the_bucket(default_project):
    answers = recorded_answers(default_project)
    remote = QUESTIONS["_dvc_remote"]
    assert dvc_config(default_project) == {
        "core.remote": remote,
        f"remote.{remote}.url": f"s3://{answers['s3_bucket']}/{answers['s3_prefix']}",
        f"remote.{remote}.region": answers["aws_region"],
    }
    assert "endpointurl" not in (default_project / ".dvc/config").read_text(encoding="utf-8")
    assert_no_credentials(default_project)


@pytest.mark.slow
def test_dvc_config_keeps_a_custom_endpoint(bake):
    endpoint = "https://minio.example.com:9000"
    answers = {
        "s3_endpoint_url": endpoint,
        "s3_bucket": "ml-data",
        "s3_prefix": "team/project-1",
        "aws_region": "eu-west-1",
    }
    project = bake(**answers)
    assert_rendered_cleanly(project, answers)
    remote = QUESTIONS["_dvc_remote"]
    assert dvc_config(project) == {
        "core.remote": remote,
        f"remote.{remote}.url": "s3://ml-data/team/project-1",
        f"remote.{remote}.region": "eu-west-1",
        f"remote.{remote}.endpointurl": endpoint,
    }
    assert f"    endpointurl = {endpoint}\n" in (project / ".dvc/config").read_text(encoding="utf-8")
    assert_no_credentials(project)


@pytest.mark.slow
def test_dvc_sees_the_raw_data_as_committed_and_cached(default_project):
    # A wrong md5 or size would show the file as "uncommitted", a missing cache entry as "not_in_cache".
    data_status = run(["dvc", "data", "status", "--json", "--unchanged"], default_project).stdout
    assert json.loads(data_status) == {"unchanged": ["data/raw/dataset.csv"]}


def test_first_commit_uses_the_answers_identity_and_branch(tmp_path):
    # git prefers GIT_AUTHOR_*/GIT_COMMITTER_* from the environment over any `-c user.name`; the
    # first commit must still carry the identity the user answered.
    identity = {"GIT_AUTHOR_NAME": "Env Author", "GIT_AUTHOR_EMAIL": "env@example.com"}
    identity |= {"GIT_COMMITTER_NAME": "Env Committer", "GIT_COMMITTER_EMAIL": "committer@example.com"}
    answers = ["author_name=Ana O'Neil", "author_email=ana@example.org", "default_branch=trunk"]
    result = bake_cli(tmp_path, *answers, env=project_env(tmp_path, **identity))
    assert result.returncode == 0, result.stderr
    project = tmp_path / DEFAULT_SLUG
    assert git_output(project, "log", "--format=%an|%ae|%cn|%ce") == "|".join(["Ana O'Neil", "ana@example.org"] * 2)
    assert git_output(project, "symbolic-ref", "--short", "HEAD") == "trunk"
    assert git_output(project, "branch", "--format=%(refname:short)") == "trunk"


def test_bake_inside_another_repositorys_git_environment(tmp_path):
    # Inside a git hook GIT_DIR points at the calling repository; `git init` and `commit` in the
    # post-gen hook must still create the project's own repository and leave the other one alone.
    outer = tmp_path / "outer"
    run(["git", "init", "--quiet", str(outer)], tmp_path)
    output = tmp_path / "out"
    output.mkdir()
    result = bake_cli(output, env=project_env(output, GIT_DIR=str(outer / ".git")))
    assert result.returncode == 0, result.stderr
    project = output / DEFAULT_SLUG
    assert git_output(project, "rev-parse", "--show-toplevel") == str(project)
    assert "data/raw/dataset.csv.dvc" in git_output(project, "ls-files").splitlines()
    assert run(["git", "rev-parse", "--verify", "HEAD"], outer, check=False).returncode != 0  # no commit


def test_init_git_false_creates_no_repository_and_prints_no_hint(tmp_path):
    # Through the CLI, where "false" arrives as text and must still mean False.
    result = bake_cli(tmp_path, "init_git=false")
    assert result.returncode == 0, result.stderr
    project = tmp_path / DEFAULT_SLUG
    assert_rendered_cleanly(project, {"init_git": False})
    assert (project / "data/raw/dataset.csv.dvc").is_file()
    assert not (project / ".git").exists()
    assert "git init" not in result.stderr


def test_bake_without_git_on_path_explains_how_to_init(tmp_path):
    # Only python and cookiecutter on PATH. The venv's scripts have absolute shebangs and cookiecutter
    # runs the hooks with sys.executable, so no other tool is needed to bake.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("python", "cookiecutter"):
        (tools / name).symlink_to(VENV_BIN / name)
    assert shutil.which("git", path=str(tools)) is None
    output = tmp_path / "out"
    output.mkdir()
    result = bake_cli(output, env=project_env(output, PATH=str(tools)))
    assert result.returncode == 0, result.stderr
    project = output / DEFAULT_SLUG
    assert (project / "data/raw/dataset.csv.dvc").is_file()  # DVC tracking does not need git
    assert not (project / ".git").exists()
    assert "git was not found" in result.stderr
    assert f"git init -b {QUESTIONS['default_branch']}" in result.stderr


@pytest.mark.slow
def test_cruft_creates_and_checks_a_project(tmp_path):
    # cruft bakes from a git repository's committed HEAD, so commit a copy of the working tree.
    template = tmp_path / "template"
    shutil.copytree(
        TEMPLATE,
        template,
        ignore=shutil.ignore_patterns(".venv", "node_modules", ".git", "__pycache__", ".*_cache"),
    )
    env = project_env(template)
    run(["git", "init", "--quiet"], template, env)
    run(["git", "add", "--all"], template, env)
    run(["git", "-c", "commit.gpgsign=false", "commit", "--quiet", "-m", "Template"], template, env)
    head = git_output(template, "rev-parse", "HEAD")

    output = tmp_path / "out"
    cruft = str(VENV_BIN / "cruft")
    run([cruft, "create", "--no-input", "--default-config", str(template), "--output-dir", str(output)], tmp_path)
    (project,) = output.iterdir()
    cruft_state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert cruft_state["commit"] == head
    assert (project / ".git").is_dir() and (project / "data/raw/dataset.csv.dvc").is_file()  # hooks ran
    checked = run([cruft, "check"], project)
    assert "up to date" in checked.stdout

    # New answers re-render the project through `cruft update` (which diffs two renderings of the
    # template, hooks and all: the project's [tool.cruft] skip list keeps .git and DVC's data out).
    run(["git", "add", "--all"], project, project_env(project))
    run(["git", "commit", "--quiet", "-m", "Baked with cruft"], project, project_env(project))
    run([cruft, "update", "--skip-apply-ask", "--variables-to-update", '{"s3_bucket": "acme-wine"}'], project)
    assert "url = s3://acme-wine/dvc" in (project / ".dvc/config").read_text(encoding="utf-8")
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["context"]["cookiecutter"][
        "s3_bucket"
    ] == ("acme-wine")


def test_dvc_yaml_is_the_one_place_the_stage_paths_are_written(default_project):
    """Each stage's `cmd:` passes the paths of its deps and outs; no module spells one out in code
    (a docstring or comment may name one as an example), so moving an output is an edit of dvc.yaml."""
    stages = yaml.safe_load((default_project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    paths = {"data/raw/dataset.csv", "data/prepared", "models/model.skops", "reports/evaluation"}
    for name, stage in stages.items():
        given = set(stage["cmd"].split()[3:])
        assert given and given <= paths, (name, stage["cmd"])
        declared = [next(iter(entry)) if isinstance(entry, dict) else entry for entry in stage["deps"] + stage["outs"]]
        assert all(any(path.startswith(arg) for arg in given) for path in declared if not path.startswith("src/"))
    for module in sorted((default_project / "src").rglob("*.py")) + [TEMPLATE / PROJECT_DIR / "ci/mlflow_mirror.py"]:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        scopes = (ast.Module, ast.FunctionDef, ast.ClassDef)
        docstrings = {
            id(node.body[0].value) for node in ast.walk(tree) if isinstance(node, scopes) and ast.get_docstring(node)
        }
        literals = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
        ]
        written = [text for text in literals for path in paths if path in text]
        assert not written, f"{module.name} writes dvc.yaml's paths again: {written}"
