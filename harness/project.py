"""Bake the template and run commands in a baked project with this environment's tools."""

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

TEMPLATE = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


class CommandFailed(AssertionError):
    """A command exited with an unexpected code; the message holds its output."""


def project_env(project: Path, **extra: str) -> dict[str, str]:
    """Environment for commands in a baked project: this venv's tools, the project's src on the path.

    PYTHONPATH=src stands in for `pip install -e .` (tested once for real in test_pipeline.py), so
    every baked project can share the template's environment. Bytecode writing stays on: each
    stage is a new process importing scikit-learn, and without .pyc files that costs seconds more.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "GIT_", "CI_", "GCL_", "PYTEST_")) and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(project / "src"),
        DVC_NO_ANALYTICS="1",
        ITERATIVE_DO_NOT_TRACK="1",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
    )
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, returning its output; on an unexpected exit code, raise with that output."""
    result = subprocess.run(args, cwd=cwd, env=env or project_env(cwd), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise CommandFailed(f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def locked_md5(dvc_lock: str, path: str = "models/model.skops") -> str:
    """The md5 a dvc.lock (its text) records for the output `path` (the model by default)."""
    lock = yaml.safe_load(dvc_lock)
    [md5] = [out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", []) if out["path"] == path]
    return md5


def ran_stages(output: str) -> list[str]:
    """The stages DVC ran, in order, from its output ("Running stage 'train':")."""
    return re.findall(r"Running stage '(\w+)'", output)


def bake_cli(output_dir: Path, *answers: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Bake with the real `cookiecutter` command, answers as `key=value` (keeps the hooks' stderr)."""
    config = output_dir / "cookiecutter-config.yaml"
    config.write_text(f"cookiecutters_dir: {output_dir / 'cc'}\nreplay_dir: {output_dir / 'replay'}\n")
    args = [str(VENV_BIN / "cookiecutter"), "--no-input", "--config-file", str(config), "-o", str(output_dir)]
    return subprocess.run(
        [*args, str(TEMPLATE), *answers], env=env or project_env(output_dir), capture_output=True, text=True
    )


def baked_project(output_dir: Path) -> Path:
    """The one project `bake_cli` wrote into `output_dir`."""
    [project] = [path.parent for path in output_dir.glob("*/.cookiecutter.json")]
    return project


def bake_defaults(output_dir: Path, *answers: str) -> Path:
    """Bake with the real CLI (the defaults, unless answers are given) and return the project."""
    baked = bake_cli(output_dir, *answers)
    if baked.returncode != 0:
        raise CommandFailed(f"cookiecutter exited {baked.returncode}\n{baked.stdout}\n{baked.stderr}")
    return baked_project(output_dir)


def commit_first_model(project: Path, env: dict, message: str = "Train the first model") -> None:
    """`dvc repro` and commit everything, as the baked README's first steps do."""
    run(["dvc", "repro", "--quiet"], project, env)
    run(["git", "add", "--all"], project, env)
    run(["git", "commit", "--quiet", "-m", message], project, env)


def branch_with_leaves(project: Path, branch: str, leaves: int) -> None:
    """A branch off main that changes only the default estimator's max_leaf_nodes, committed
    without `dvc repro`: its pipeline's train job reproduces (dvc.lock stays main's, a stale one).
    On the bundled breast_cancer data the trees stop at 20 leaves (min_samples_leaf), so only a
    value under 20 changes the model's predictions, and with them evaluate's outputs."""
    env = project_env(project)
    run(["git", "checkout", "--quiet", "-b", branch, "main"], project, env)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["hist_gradient_boosting"]["max_leaf_nodes"] = leaves
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "--quiet", "-am", f"Try {leaves} leaves"], project, env)
    run(["git", "checkout", "--quiet", "main"], project, env)


def package_name(project: Path) -> str:
    return json.loads((project / ".cookiecutter.json").read_text())["package_name"]


def build_report(project: Path, base: str, env: dict | None = None) -> Path:
    """The merge-request report against `base`, with the report job's commands: report/report.md."""
    output = project / "report"
    output.mkdir(exist_ok=True)
    params = run(["dvc", "params", "diff", base, "--md", "--no-path"], project, env).stdout
    (output / "params.md").write_text(params)
    metrics = run(["dvc", "metrics", "diff", base, "--all", "--md", "--no-path", "--precision", "4"], project, env)
    (output / "metrics.md").write_text(metrics.stdout)
    run(["python", "-m", f"{package_name(project)}.report", "--base", base, "--output", "report"], project, env)
    return output / "report.md"


def use_generated_data(
    project: Path, rows: int, features: int = 20, seed: int = 0, categorical: int = 0, missing: float = 0.0
) -> Path:
    """Replace the project's raw data by a generated classification CSV (binary, `features`
    columns, the label in `target`), as a team bringing its own data would, and `dvc add` it. The
    first `categorical` columns are made text categories (a feature's deciles named `c0`..`c9`),
    and a `missing` share of every feature's values is left empty."""
    # Imported here: most users of this module never need them, and scikit-learn takes a second.
    import numpy as np
    from pyarrow import Table, array, csv
    from sklearn.datasets import make_classification

    values, labels = make_classification(rows, features, n_informative=features // 2, random_state=seed)
    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(features):
        column = values[:, i]
        if i < categorical:
            deciles = np.searchsorted(np.quantile(column, np.linspace(0.1, 0.9, 9)), column)
            column = np.array([f"c{d}" for d in range(10)], dtype=object)[deciles]
        columns[f"{'c' if i < categorical else 'x'}{i}"] = array(column, mask=rng.random(rows) < missing)
    table = Table.from_pydict({**columns, "target": labels})
    raw = project / "data/raw/dataset.csv"
    csv.write_csv(table, raw, csv.WriteOptions(quoting_style="none"))
    run(["dvc", "add", "--quiet", "data/raw/dataset.csv"], project)
    return raw


def set_params(project: Path, **values) -> None:
    """Set dotted params.yaml keys (`train.hist_gradient_boosting.max_iter`)."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    for key, value in values.items():
        *sections, last = key.split(".")
        section = params
        for name in sections:
            section = section[name]
        section[last] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def use_own_table(project: Path, frame, **data) -> Path:
    """Write `frame` as the project's raw data, set `data.*` of params.yaml (target, drop, ...), and
    `dvc add` it: the baked README's "Using your own data"."""
    raw = project / "data/raw/dataset.csv"
    frame.to_csv(raw, index=False)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"].update(data)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "add", "--quiet", "data/raw/dataset.csv"], project)
    return raw


def pre_gen_hook() -> ModuleType:
    """hooks/pre_gen_project.py as a module: its rules, without baking (its template syntax sits
    inside `if __name__ == "__main__"`)."""
    spec = importlib.util.spec_from_file_location("pre_gen_project", TEMPLATE / "hooks" / "pre_gen_project.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook
