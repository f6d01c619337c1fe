import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import {{cookiecutter.package_name}}.train as training
from {{cookiecutter.package_name}}.config import TRAIN, PipelineError
from {{cookiecutter.package_name}}.model_file import load_model, model_columns
from {{cookiecutter.package_name}}.predict import main as predict
from {{cookiecutter.package_name}}.prepare import prepare
from {{cookiecutter.package_name}}.train import ESTIMATORS, build_estimator, fit_in_steps, train

from .conftest import MODEL, PREPARED, RAW, make_frame, make_messy_frame


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_estimator_trains_on_raw_columns_and_round_trips(project, params, estimator):
    make_messy_frame().to_csv(RAW, index=False)
    params["train"]["estimator"] = estimator
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, MODEL)
    model = load_model(MODEL)
    assert list(model.classes_) == ["no", "yes"]
    columns = model_columns(model)
    assert columns["numeric"] == ["size", "weight"] and columns["categorical"] == ["colour"]
    # The left-out columns never reach the estimator.
    assert list(model[0].get_feature_names_out()[:2]) == ["size", "weight"]
    assert not {"id", "visited", "note", "label"} & {name.split("_")[0] for name in model[0].get_feature_names_out()}
    rows = pd.DataFrame({"size": [np.nan, 3.0], "weight": [0.0, 0.1], "colour": ["purple", None]})
    assert model.predict(rows).shape == (2,)  # missing values and an unseen category


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_estimator_has_a_regressor(project, params, estimator):
    frame = make_messy_frame()
    frame["label"] = frame["size"].fillna(0) * 10 + np.arange(len(frame)) % 7
    frame.to_csv(RAW, index=False)
    params["train"]["estimator"] = estimator
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, MODEL)
    model = load_model(MODEL)
    assert not hasattr(model, "predict_proba")
    assert type(model[-1]).__name__ in {"HistGradientBoostingRegressor", "RandomForestRegressor", "Ridge"}
    assert model.predict(pd.read_parquet(PREPARED / TRAIN)).dtype.kind == "f"


def test_whole_number_labels_with_a_blank_predict_whole_class_names(project, params):
    frame = make_frame()
    frame.loc[5, "label"] = None  # the labels read as 0.0 and 1.0
    frame.to_csv(RAW, index=False)
    params["data"]["positive_class"] = 1
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, MODEL)
    frame.drop(columns="label").head(3).to_csv("rows.csv", index=False)
    predict(["rows.csv", "--model", str(MODEL), "--out", "predicted.csv"])
    predicted = pd.read_csv("predicted.csv")
    assert list(predicted.columns[-3:]) == ["predicted_label", "probability_0", "probability_1"]


def test_unknown_estimator_is_rejected_before_any_output(project, params):
    prepare(params, RAW, PREPARED)
    params["train"]["estimator"] = "svm"
    with pytest.raises(PipelineError, match="train.estimator 'svm' is unknown; choose one of hist_gradient_boosting"):
        train(params, PREPARED, MODEL)
    assert not MODEL.exists()


def test_every_problem_of_the_estimator_params_is_said_at_once(params):
    params["seed"] = -1
    params["train"]["hist_gradient_boosting"].update(max_iter=-5, trees=10, random_state=3, n_jobs=2)
    with pytest.raises(PipelineError) as error:
        build_estimator(params, "classification")
    assert str(error.value) == (
        "params.yaml: train.hist_gradient_boosting.max_iter must not be negative, got -5; "
        "train.hist_gradient_boosting.trees is not a hyper-parameter of hist_gradient_boosting (it takes "
        + ", ".join(sorted(training.accepted_keys("hist_gradient_boosting", ESTIMATORS["hist_gradient_boosting"][0])))
        + "); train.hist_gradient_boosting.random_state is set by the template (from the top-level `seed`): "
        "remove it; train.hist_gradient_boosting.n_jobs is set by the template (from every core, or one below "
        "50,000 rows): remove it; seed must be a non-negative integer, got -1."
    )
    params["train"]["estimator"] = "linear"
    params["seed"] = 0
    params["train"]["linear"]["C"] = 0
    with pytest.raises(PipelineError, match="^params.yaml: train.linear.C must be positive, got 0.$"):
        build_estimator(params, "regression")


def test_invalid_value_reported_by_scikit_learn(project, params):
    prepare(params, RAW, PREPARED)
    params["train"]["hist_gradient_boosting"]["max_leaf_nodes"] = 1
    with pytest.raises(
        PipelineError, match="^params.yaml: train.hist_gradient_boosting: The 'max_leaf_nodes'"
    ) as error:
        train(params, PREPARED, MODEL)
    assert "\n" not in str(error.value)
    assert not MODEL.exists()


def test_retraining_gives_a_byte_identical_model(project, params):
    """dvc.lock must not change when nothing changed, so the saved model is deterministic."""
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, MODEL)
    first = MODEL.read_bytes()
    train(params, PREPARED, MODEL)
    assert MODEL.read_bytes() == first


def test_gradient_boosting_groups_categories_beyond_its_max_bins(project, params):
    frame = make_messy_frame(rows=300)
    frame["colour"] = [f"shade {i % 40}" for i in range(len(frame))]
    frame.to_csv(RAW, index=False)
    params["train"]["hist_gradient_boosting"]["max_bins"] = 16
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, MODEL)  # 40 categories, 16 bins: no error from scikit-learn
    encoder = load_model(MODEL)[0].named_transformers_["categorical"]
    assert len(encoder.categories_[0]) == 40 and encoder.max_categories == 15


def test_the_linear_model_file_is_the_same_on_one_core_or_two(project, params):
    """BLAS on two threads adds up in another order (this failed before train limited it to one);
    on a one-core machine both runs are one thread and the test cannot fail."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60_000, 30)), columns=[f"x{i}" for i in range(30)])
    frame["label"] = (frame.iloc[:, :5].sum(axis=1) + rng.normal(size=len(frame)) > 0).astype(int)
    frame.to_csv(RAW, index=False)
    params["train"]["estimator"] = "linear"
    prepare(params, RAW, PREPARED)
    files = []
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="blas"):
            train(params, PREPARED, MODEL)
        files.append(MODEL.read_bytes())
    assert files[0] == files[1]


def test_a_forest_grown_in_steps_is_the_forest_grown_at_once(params):
    params["train"]["estimator"] = "random_forest"
    frame = make_messy_frame()
    features, labels = frame[["size", "weight"]].fillna(0), frame["label"]
    at_once = build_estimator(params, "classification")[1].fit(features, labels)
    stepped = build_estimator(params, "classification")[1]

    class Recorded(training.Progress):
        said: list[str] = []

        def __setattr__(self, name, value):
            super().__setattr__(name, value)
            if name == "trees" and value:
                self.said.append(self.count())  # what the progress line says after each step

    progress = Recorded(stepped)
    fit_in_steps(stepped, features, labels, progress)
    assert progress.trees == 20 and not stepped.warm_start
    assert progress.said == [f"{trees} of 20 trees, " for trees in range(2, 21, 2)]
    np.testing.assert_array_equal(stepped.predict_proba(features), at_once.predict_proba(features))


def test_a_long_fit_prints_where_it_is(project, params, capsys, monkeypatch):
    monkeypatch.setattr(training, "PROGRESS_SECONDS", 0.05)
    make_messy_frame(rows=20_000).to_csv(RAW, index=False)
    params["train"]["hist_gradient_boosting"].update(max_iter=200, learning_rate=0.01)
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, MODEL)
    lines = [line for line in capsys.readouterr().out.splitlines() if "iterations" in line]
    assert lines and all(line.startswith("train: ") and line.endswith(" s") for line in lines), lines
    assert "of at most 200 iterations" in lines[-1]
