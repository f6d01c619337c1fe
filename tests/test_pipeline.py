"""The baked project works: it installs, its own tests and lint pass, and its DVC pipeline runs
only what changed."""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import VENV_BIN, project_env, ran_stages, run

pytestmark = pytest.mark.slow

# Chance level is 1/classes; the bundled datasets are far easier than that (see datasets.md).
MIN_ACCURACY = {"breast_cancer": 0.9, "wine": 0.9, "digits": 0.9}


@pytest.mark.parametrize("dataset", sorted(MIN_ACCURACY))
def test_repro_gives_sensible_metrics(bake, dataset):
    project = bake(dataset=dataset)
    result = run(["dvc", "repro"], project)
    assert ran_stages(result.stdout) == ["prepare", "train", "evaluate"]
    scores = json.loads((project / "reports/evaluation/metrics.json").read_text())
    assert set(scores) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert scores["accuracy"] >= MIN_ACCURACY[dataset]
    assert 0.5 < scores["roc_auc"] <= 1
    plots = project / "reports/evaluation/plots"
    for name in ("sklearn/roc.json", "sklearn/precision_recall.json", "sklearn/confusion_matrix.json"):
        assert (plots / name).stat().st_size > 0, name
    assert (plots / "images/feature_importance.png").read_bytes()[:4] == b"\x89PNG"
    # `dvc metrics show` reads what dvc.yaml declares, so the declaration matches the files.
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    assert shown[""]["data"]["reports/evaluation/metrics.json"]["data"]["accuracy"] == scores["accuracy"]


def test_training_param_change_reruns_only_dependent_stages(bake):
    project = bake()
    run(["dvc", "repro"], project)
    assert ran_stages(run(["dvc", "repro"], project).stdout) == []

    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["train"]["random_forest"]["n_estimators"] = 50
    params_file.write_text(yaml.safe_dump(params))
    assert ran_stages(run(["dvc", "repro"], project).stdout) == ["train", "evaluate"]

    # Another estimator's hyper-parameters are not read while random_forest is chosen.
    params["train"]["logistic_regression"]["C"] = 0.5
    params_file.write_text(yaml.safe_dump(params))
    assert ran_stages(run(["dvc", "repro"], project).stdout) == []
    params["train"]["estimator"] = "logistic_regression"
    params_file.write_text(yaml.safe_dump(params))
    assert ran_stages(run(["dvc", "repro"], project).stdout) == ["train", "evaluate"]

    params["prepare"]["test_size"] = 0.3
    params_file.write_text(yaml.safe_dump(params))
    assert ran_stages(run(["dvc", "repro"], project).stdout) == ["prepare", "train", "evaluate"]


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        # dvc.yaml tracks `train.${train.estimator}`, so DVC itself names an unknown estimator.
        ("estimator: random_forest", "estimator: svm", "Parameters 'train.svm' are missing from 'params.yaml'"),
        ("test_size: 0.25", "test_size: 1.5", "error: params.yaml: prepare.test_size must be a number between 0 and 1"),
        ("n_estimators: 100", "n_estimators: -3", "error: params.yaml: train.random_forest.n_estimators must not be"),
    ],
)
def test_bad_param_fails_with_one_clear_line(bake, before, after, message):
    project = bake()
    params_file = project / "params.yaml"
    params_file.write_text(params_file.read_text().replace(before, after))
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output
    assert "Traceback" not in output
    assert not (project / "models/model.skops").exists()


def test_fresh_install_runs_the_projects_tests_and_lint(bake, tmp_path):
    """A real install from the lock file into a new venv, as CI and a newcomer would do it."""
    project = bake(dataset="wine", python_version="3.11")  # the Python this suite runs on
    venv = tmp_path / "venv"
    env = {k: v for k, v in project_env(project).items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run([str(VENV_BIN / "uv"), "venv", "--quiet", "--python", sys.executable, str(venv)], project, env)
    env["VIRTUAL_ENV"] = str(venv)
    run([str(VENV_BIN / "uv"), "pip", "install", "--quiet", "-r", "requirements.lock", "-e", "."], project, env)
    bin_dir = Path(venv) / "bin"
    tests = run([str(bin_dir / "python"), "-m", "pytest", "-q"], project, env)
    assert re.search(r"\b\d+ passed\b", tests.stdout) and "failed" not in tests.stdout
    run([str(bin_dir / "ruff"), "check", "."], project, env)
    run([str(bin_dir / "ruff"), "format", "--check", "."], project, env)
    # The editable install makes the stage modules importable without PYTHONPATH.
    package = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["prepare"]["cmd"].split()[-1]
    run([str(bin_dir / "python"), "-c", f"import {package}"], tmp_path, env)
