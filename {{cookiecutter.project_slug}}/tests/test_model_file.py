import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from {{cookiecutter.package_name}}.config import PipelineError
from {{cookiecutter.package_name}}.model_file import ESTIMATOR_TYPES, TRUSTED_TYPES, load_model, save_model
from {{cookiecutter.package_name}}.prepare import prepare
from {{cookiecutter.package_name}}.train import ESTIMATORS, train

from .conftest import RAW, make_frame, make_messy_frame
from .crafted import VARIANTS, crafted_model, runs_when_trusted

SOURCE = Path(__file__).parents[1] / "src"


def fitted_forest() -> Pipeline:
    """A small model shaped as `train` saves them (`load_model` refuses other shapes)."""
    frame = make_frame()
    columns = ColumnTransformer([("numeric", "passthrough", ["alpha", "beta", "gamma", "noise"])])
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    return Pipeline([("columns", columns), ("estimator", forest)]).fit(frame.drop(columns="label"), frame["label"])


def test_equal_models_save_to_identical_bytes(tmp_path):
    """Two equal models alive at once have different id()s, which skops writes into the file."""
    first, second = fitted_forest(), fitted_forest()
    save_model(first, tmp_path / "first.skops")
    save_model(second, tmp_path / "second.skops")
    assert (tmp_path / "first.skops").read_bytes() == (tmp_path / "second.skops").read_bytes()


def test_saved_model_loads_and_predicts_the_same(tmp_path):
    model = fitted_forest()
    path = tmp_path / "models" / "model.skops"  # the folder is created
    save_model(model, path)
    features = make_frame().drop(columns="label")
    np.testing.assert_array_equal(load_model(path).predict_proba(features), model.predict_proba(features))


def double(values):
    return 2 * values


def test_types_outside_the_trusted_list_are_not_loaded(tmp_path):
    frame = make_frame()
    model = make_pipeline(FunctionTransformer(double), LogisticRegression())
    model.fit(frame.drop(columns="label"), frame["label"])
    save_model(model, tmp_path / "model.skops")
    with pytest.raises(PipelineError, match=r"model.skops is refused: it names tests\.test_model_file\.double, which"):
        load_model(tmp_path / "model.skops")


def trained_models(project, params, tmp_path):
    """A model of every estimator, for both tasks, with and without categorical columns, each trained
    by the train stage on a table its prepare stage split: (what it is, its path)."""
    tables = {
        "categories": make_messy_frame(),  # colour and the yes/no label are categories
        "numbers": make_frame(),
    }
    targets = {("classification", "categories"): "label", ("regression", "categories"): "weight"}
    tasks = ("classification", "regression")
    for (name, table), task, estimator in itertools.product(tables.items(), tasks, ESTIMATORS):
        case = f"{estimator}, {task}, {name}"
        target = targets.get((task, name), "label" if task == "classification" else "alpha")
        table.to_csv(RAW, index=False)
        params["data"].update(target=target, task=task)
        params["train"]["estimator"] = estimator
        prepared = tmp_path / case / "prepared"
        prepare(params, RAW, prepared)
        train(params, prepared, tmp_path / case / "model.skops")
        summary = json.loads((prepared / "summary.json").read_text())
        assert bool(summary["categorical"]) == (name == "categories"), case
        yield case, tmp_path / case / "model.skops"


def test_trusted_types_are_what_every_trained_model_needs(project, params, tmp_path):
    """The trusted list is exactly what skops does not trust itself in this project's models: a type
    a new scikit-learn or skops adds makes this fail (add it, after reading what it is), and one
    the models no longer need does too (remove it: trust nothing unused)."""
    needed = set()
    for case, path in trained_models(project, params, tmp_path):
        needed |= set(skops.io.get_untrusted_types(file=path))
        assert type(load_model(path)[-1]).__name__ in {kind.__name__ for kind in ESTIMATOR_TYPES}, case
    assert needed == TRUSTED_TYPES


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_crafted_model_file_is_refused_before_anything_in_it_runs(project, tmp_path, variant):
    rows = make_frame().drop(columns="label")
    rows.to_csv(tmp_path / "rows.csv", index=False)
    marker = tmp_path / "marker"
    crafted = crafted_model(tmp_path / "crafted.skops", marker, variant, rows, "alpha")
    runs_when_trusted(crafted, rows)  # the file is real: trusting `sklearn.*` names runs the command
    assert marker.exists()
    marker.unlink()

    refused = r"crafted.skops is refused: it names .*sklearn\.utils\._testing\.check_output"
    with pytest.raises(PipelineError, match=refused):
        load_model(crafted)
    assert not marker.exists()

    out = tmp_path / "predicted.csv"
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}.predict", str(tmp_path / "rows.csv")]
    result = subprocess.run(
        [*command, "--model", str(crafted), "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SOURCE)},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {crafted} is refused: it names") and len(result.stderr.splitlines()) == 1
    assert not marker.exists() and not out.exists() and not list(tmp_path.glob("*.partial"))


def break_forest(model):
    model[-1].estimators_[1].tree_.children_left[0] = 10**6


def break_boosting(model):
    model[-1]._predictors[2][0].nodes["left"][0] = 10**6


def loop_boosting(model):
    model[-1]._predictors[0][0].nodes["right"][0] = 0  # back to itself: predict would never end


@pytest.mark.parametrize(
    ("estimator", "corrupt", "message"),
    [
        ("random_forest", break_forest, "tree 1 has node indices outside its arrays"),
        ("hist_gradient_boosting", break_boosting, "tree 2 of the gradient boosting has node indices outside"),
        ("hist_gradient_boosting", loop_boosting, "tree 0 of the gradient boosting has node indices outside"),
    ],
)
def test_trees_whose_indices_leave_their_arrays_are_refused(project, params, tmp_path, estimator, corrupt, message):
    """scikit-learn's compiled predict follows these indices unchecked: a crafted file could make it
    read other memory or loop forever."""
    make_messy_frame().to_csv(RAW, index=False)
    prepare(params, RAW, tmp_path / "prepared")
    params["train"]["estimator"] = estimator
    train(params, tmp_path / "prepared", tmp_path / "model.skops")
    model = load_model(tmp_path / "model.skops")
    corrupt(model)
    save_model(model, tmp_path / "crafted.skops")
    with pytest.raises(PipelineError, match=f"crafted.skops is refused: {message}"):
        load_model(tmp_path / "crafted.skops")


def test_a_pipeline_of_other_parts_is_refused(tmp_path):
    frame = make_frame()
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression())  # np.log1p: a ufunc skops trusts
    model.fit(frame.drop(columns="label").abs(), frame["label"])
    save_model(model, tmp_path / "model.skops")
    with pytest.raises(PipelineError, match="is refused: it is not a pipeline of `columns` and `estimator`"):
        load_model(tmp_path / "model.skops")
