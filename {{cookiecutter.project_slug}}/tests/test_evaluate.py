import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from {{cookiecutter.package_name}}.compare import alone, fingerprint, read_predictions
from {{cookiecutter.package_name}}.config import PREDICTIONS, TEST
from {{cookiecutter.package_name}}.evaluate import (
    CURVE_POINTS,
    PREDICTION_POINTS,
    TOP_FEATURES,
    evaluate,
    importances,
    thin,
    too_good,
)
from {{cookiecutter.package_name}}.model_file import load_model
from {{cookiecutter.package_name}}.prepare import prepare
from {{cookiecutter.package_name}}.train import train

from .conftest import EVALUATION, MODEL, PREPARED, RAW, make_frame, make_messy_frame, make_series

# What evaluate writes, the headline first (the sweep and the report read the names from its file).
CLASSIFICATION = ["balanced_accuracy", "accuracy", "precision", "recall", "f1", "roc_auc"]
REGRESSION = ["rmse", "mae", "r2"]


def scores_after_repro(params) -> dict:
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, MODEL)
    evaluate(params, PREPARED, MODEL, EVALUATION)
    return json.loads((EVALUATION / "metrics.json").read_text())


@pytest.mark.parametrize(("classes", "estimator"), [(2, "random_forest"), (3, "hist_gradient_boosting"), (3, "linear")])
def test_metrics_and_plots_are_written(project, params, classes, estimator):
    make_frame(classes=classes, rows=150).to_csv(RAW, index=False)
    params["train"]["estimator"] = estimator
    scores = scores_after_repro(params)
    assert list(scores) == [*CLASSIFICATION, "recall_per_class", "baseline"]
    assert set(scores["recall_per_class"]) == {str(label) for label in range(classes)}
    assert set(scores["baseline"]) == {"balanced_accuracy", "accuracy", "f1"}
    assert scores["baseline"]["balanced_accuracy"] == round(1 / classes, 6)
    assert scores["balanced_accuracy"] > 1 / classes + 0.2  # the synthetic signal is easy to learn
    plots = EVALUATION / "plots"
    confusion = json.loads((plots / "sklearn" / "confusion_matrix.json").read_text())
    assert len(confusion) == classes**2  # one count per (actual, predicted) pair
    assert sum(cell["count"] for cell in confusion) == 38  # the test rows
    roc = json.loads((plots / "sklearn" / "roc.json").read_text())["roc"]
    assert roc[0]["fpr"] == 0 and roc[-1]["tpr"] == 1
    assert not (plots / "sklearn" / "predictions.json").exists()
    importance = json.loads((plots / "sklearn" / "importance.json").read_text())
    assert importance["title"].startswith("Permutation importance on 38 of 38 test rows")
    assert 0 < len(importance["importance"]) <= TOP_FEATURES and not (plots / "images").exists()


def test_binary_scores_are_about_the_positive_class(project, params):
    """With "yes" four times as common, a model that always says "yes" would have F1 0.89 for
    "yes"; about the rare class, as prepare chooses, its F1 is 0 and the baseline shows that."""
    make_messy_frame(rows=400).to_csv(RAW, index=False)
    scores = scores_after_repro(params)
    test = pd.read_parquet(PREPARED / TEST)
    predicted = load_model(MODEL).predict(test)
    assert scores["f1"] == round(metrics.f1_score(test["label"], predicted, pos_label="no"), 6)
    assert scores["recall"] == scores["recall_per_class"]["no"]
    assert scores["baseline"]["f1"] == 0 and scores["baseline"]["accuracy"] > 0.75
    assert scores["baseline"]["balanced_accuracy"] == 0.5 < scores["balanced_accuracy"]
    # Each test row's prediction, named by the test rows, scores as metrics.json says.
    rows = read_predictions(EVALUATION / PREDICTIONS)
    assert rows.fingerprint == fingerprint(test) and list(rows.actual) == list(test["label"])
    assert list(rows.predicted) == list(predicted) and rows.classes == ["no", "yes"]
    assert {name: round(i.head, 6) for name, i in alone(rows, "no").items()} == {
        name: scores[name] for name in CLASSIFICATION
    }
    params["data"]["positive_class"] = "yes"
    assert scores_after_repro(params)["f1"] == round(metrics.f1_score(test["label"], predicted, pos_label="yes"), 6)


def test_regression_scores_baseline_and_predictions_plot(project, params):
    frame = make_frame(rows=800)
    frame["label"] = frame["alpha"] * 3 + frame["beta"] + np.random.default_rng(0).normal(scale=0.1, size=800)
    frame.to_csv(RAW, index=False)
    scores = scores_after_repro(params)
    assert list(scores) == [*REGRESSION, "baseline"]
    assert set(scores["baseline"]) == {"rmse", "mae", "r2"}
    assert scores["rmse"] < scores["baseline"]["rmse"] and scores["r2"] > 0.8 > scores["baseline"]["r2"]
    test = pd.read_parquet(PREPARED / TEST)
    assert scores["mae"] == round(metrics.mean_absolute_error(test["label"], load_model(MODEL).predict(test)), 6)
    points = json.loads((EVALUATION / "plots" / "sklearn" / "predictions.json").read_text())
    assert len(points) == min(PREDICTION_POINTS, len(test))
    assert all(abs(p["actual"] - p["predicted"] - p["residual"]) < 1e-9 for p in points)
    rows = read_predictions(EVALUATION / PREDICTIONS)
    assert rows.task == "regression" and rows.predicted == pytest.approx(load_model(MODEL).predict(test))
    assert not (EVALUATION / "plots" / "sklearn" / "roc.json").exists()


def test_undefined_scores_are_left_out_never_nan(project, params):
    """A class too rare to reach the test set leaves ROC AUC undefined: no NaN in metrics.json."""
    frame = make_frame(classes=2, rows=120)
    frame.loc[:2, "label"] = 2  # three rows of a third class: one lands in the test set at most
    frame.to_csv(RAW, index=False)
    params["prepare"]["test_size"] = 0.1
    scores = scores_after_repro(params)
    assert "roc_auc" not in scores and scores["balanced_accuracy"] > 0
    assert "nan" not in (EVALUATION / "metrics.json").read_text().lower()


def test_metrics_are_exact_and_plot_files_small_on_a_larger_test_set(project, params):
    make_frame(classes=2, rows=8_000).to_csv(RAW, index=False)
    params["train"]["estimator"] = "linear"
    params["data"]["positive_class"] = 1
    scores = scores_after_repro(params)
    test = pd.read_parquet(PREPARED / TEST)
    labels = test["label"]
    model = load_model(MODEL)
    predicted, score = model.predict(test), model.predict_proba(test)[:, 1]
    assert scores["accuracy"] == round(metrics.accuracy_score(labels, predicted), 6)
    assert scores["f1"] == round(metrics.f1_score(labels, predicted), 6)
    assert scores["roc_auc"] == round(metrics.roc_auc_score(labels, score), 6)

    sklearn_dir = EVALUATION / "plots" / "sklearn"
    confusion = json.loads((sklearn_dir / "confusion_matrix.json").read_text())
    counts = metrics.confusion_matrix(labels, predicted, labels=[0, 1])
    assert {(c["actual"], c["predicted"]): c["count"] for c in confusion} == {
        (str(a), str(p)): counts[a, p] for a in (0, 1) for p in (0, 1)
    }
    roc = json.loads((sklearn_dir / "roc.json").read_text())["roc"]
    fpr, tpr, _ = metrics.roc_curve(labels, score)
    assert len(fpr) > CURVE_POINTS >= len(roc)  # thinned
    assert set(zip(fpr, tpr, strict=True)) >= {(p["fpr"], p["tpr"]) for p in roc}  # the curve's own points
    for name in ("roc", "precision_recall", "confusion_matrix"):
        assert (sklearn_dir / f"{name}.json").stat().st_size < 32_000, name


def test_thinning_keeps_ends_order_and_a_bounded_count():
    rng = np.random.default_rng(0)
    x = np.sort(rng.random(10_000))
    y = np.sqrt(x)
    kept = thin(x, y, limit=50)
    assert len(kept) <= 50
    assert kept[0] == 0 and kept[-1] == len(x) - 1
    assert np.all(np.diff(kept) > 0)  # in order, no repeats, so a monotone curve stays monotone
    assert np.all(np.diff(x[kept]) >= 0) and np.all(np.diff(y[kept]) >= 0)
    assert list(thin(x[:20], y[:20], limit=50)) == list(range(20))  # short curves stay whole


def test_permutation_importance_is_per_raw_column_on_a_fixed_bounded_sample(project, params, monkeypatch):
    make_messy_frame(rows=400).to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, MODEL)
    monkeypatch.setattr("{{cookiecutter.package_name}}.evaluate.IMPORTANCE_ROWS", 40)
    test = pd.read_parquet(PREPARED / TEST)
    features, labels = test[["size", "weight", "colour"]], test["label"]
    first, title = importances(load_model(MODEL), features, labels)
    again, _ = importances(load_model(MODEL), features, labels)
    assert title == "Permutation importance on 40 of 100 test rows (seed 0)"
    assert len(first) == 3 and np.array_equal(first, again)


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "random_forest", "linear"])
def test_permutation_importance_has_scikit_learns_numbers(project, params, estimator):
    """Transformed once, a column's shuffles re-transforming its own transformer's columns only:
    scikit-learn's numbers for the whole model, with text categories, missing values and a column
    the model leaves out."""
    from sklearn.inspection import permutation_importance

    make_messy_frame(rows=400).to_csv(RAW, index=False)
    params["train"]["estimator"] = estimator
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, MODEL)
    test = pd.read_parquet(PREPARED / TEST)
    features, labels = test[["size", "weight", "colour", "label"]], test["label"]
    found, _ = importances(load_model(MODEL), features, labels)
    sample = features.sample(n=len(labels), random_state=0)
    expected = permutation_importance(load_model(MODEL), sample, labels[sample.index], n_repeats=3, random_state=0)
    assert np.array_equal(found, expected.importances_mean) and found[-1] == 0 and found[:3].any()


def warnings_written() -> list[dict]:
    return json.loads((EVALUATION / "warnings.json").read_text())


def test_a_column_that_is_the_target_plus_noise_is_named_and_an_honest_table_is_not(project, params, capsys):
    frame = make_frame(rows=400)
    rng = np.random.default_rng(3)
    frame["label"] = frame["alpha"] + frame["beta"] + rng.normal(size=400)
    frame.to_csv(RAW, index=False)
    assert scores_after_repro(params)["r2"] > 0.3  # learnt something, from two columns
    assert warnings_written() == [] and "evaluate: warning" not in capsys.readouterr().out

    frame["recorded_total"] = frame["label"] + rng.normal(scale=0.05 * frame["label"].std(), size=400)
    frame.to_csv(RAW, index=False)
    assert scores_after_repro(params)["r2"] < 0.99  # the trees' bins: not near-perfect, yet one column
    [one_column] = warnings_written()
    assert one_column["check"] == "one_column" and one_column["columns"] == ["recorded_total"]
    assert one_column["message"].startswith("`recorded_total` carries 100% of the permutation importance")
    params["train"]["estimator"] = "linear"  # no bins: near-perfect too
    assert scores_after_repro(params)["r2"] >= 0.99
    near_perfect, _ = warnings_written()
    assert near_perfect["check"] == "near_perfect" and near_perfect["columns"] == ["recorded_total"]
    out = capsys.readouterr().out
    assert out.count("evaluate: warning: `recorded_total` carries 100%") == 2
    assert out.count("check that no column gives the answer away") == 3


def test_near_perfect_thresholds_spare_what_honest_tables_score():
    """Each case a score the bundled data reaches honestly, then one a leak gives."""
    importance = {"a": 0.05, "b": 0.04, "c": 0.01}
    classes = {"accuracy": 0.96, "baseline": {"accuracy": 0.4}}
    assert too_good({**classes, "balanced_accuracy": 0.96, "roc_auc": 0.9986}, importance, 450, False) == []
    assert too_good({**classes, "balanced_accuracy": 0.985, "roc_auc": 0.9977}, importance, 143, True) == []
    [flag] = too_good({**classes, "balanced_accuracy": 0.96, "roc_auc": 0.9995}, importance, 143, True)
    assert flag["scores"] == {"roc_auc": 0.9995} and flag["columns"] == ["a", "b", "c"]
    [flag] = too_good({**classes, "balanced_accuracy": 1.0, "roc_auc": 1.0}, importance, 45, False)
    assert flag["message"] == (
        "balanced_accuracy 1.0000 on 45 test rows is near-perfect: some tables are that easy, but check that no "
        "column gives the answer away (a copy of the target, or a value known only after it); the most important "
        "columns: `a` (50%), `b` (40%), `c` (10%)."
    )
    # Two thirds of a total of half a test row is no column carrying the model (breast_cancer, seed 2).
    assert too_good({**classes, "balanced_accuracy": 0.94}, {"a": 0.005, "b": 0.0025, "c": -0.001}, 143, True) == []
    assert too_good({**classes, "balanced_accuracy": 0.94}, {"a": 0.5, "b": 0.05}, 143, True)[0]["columns"] == ["a"]


def test_a_time_split_lowers_the_r2_a_random_split_inflated(project, params):
    """Sales grow every month: split at random, each test month has its neighbours in training and
    the model interpolates; tested on the latest months, it must forecast, and trees cannot."""
    make_series().to_csv(RAW, index=False)
    params["data"]["time_column"] = "month"
    at_random = scores_after_repro(params)["r2"]
    params["prepare"]["split"] = "time"
    by_time = scores_after_repro(params)["r2"]
    assert at_random > 0.9 and by_time < at_random - 0.5
