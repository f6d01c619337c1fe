import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from {{cookiecutter.package_name}}.config import EVALUATION_DIR, RAW_DATA, TEST_DATA
from {{cookiecutter.package_name}}.evaluate import CURVE_POINTS, evaluate, importances, thin
from {{cookiecutter.package_name}}.model_file import load_model
from {{cookiecutter.package_name}}.prepare import prepare
from {{cookiecutter.package_name}}.train import train

from .conftest import make_frame

METRICS = {"accuracy", "precision", "recall", "f1", "roc_auc"}


@pytest.mark.parametrize(
    ("classes", "estimator"), [(2, "random_forest"), (3, "hist_gradient_boosting"), (3, "logistic_regression")]
)
def test_metrics_and_plots_are_written(project, params, classes, estimator):
    make_frame(classes=classes, rows=150).to_csv(RAW_DATA, index=False)
    params["train"]["estimator"] = estimator
    prepare(params)
    train(params)
    evaluate(params)
    scores = json.loads((EVALUATION_DIR / "metrics.json").read_text())
    assert set(scores) >= METRICS
    assert scores["accuracy"] > 1 / classes + 0.2  # the synthetic signal is easy to learn
    plots = EVALUATION_DIR / "plots"
    confusion = json.loads((plots / "sklearn" / "confusion_matrix.json").read_text())
    assert len(confusion) == classes**2  # one count per (actual, predicted) pair
    assert sum(cell["count"] for cell in confusion) == 38  # the test rows
    roc = json.loads((plots / "sklearn" / "roc.json").read_text())["roc"]
    assert roc[0]["fpr"] == 0 and roc[-1]["tpr"] == 1
    assert (plots / "images" / "feature_importance.png").read_bytes()[:4] == b"\x89PNG"


def test_metrics_are_exact_and_plot_files_small_on_a_larger_test_set(project, params):
    make_frame(classes=2, rows=8_000).to_csv(RAW_DATA, index=False)
    params["train"]["estimator"] = "logistic_regression"
    prepare(params)
    train(params)
    evaluate(params)
    test = pd.read_parquet(TEST_DATA)
    features, labels = test.drop(columns=["label"]), test["label"]
    model = load_model()
    predicted, score = model.predict(features), model.predict_proba(features)[:, 1]
    scores = json.loads((EVALUATION_DIR / "metrics.json").read_text())
    assert scores["accuracy"] == round(metrics.accuracy_score(labels, predicted), 6)
    assert scores["f1"] == round(metrics.f1_score(labels, predicted), 6)
    assert scores["roc_auc"] == round(metrics.roc_auc_score(labels, score), 6)

    sklearn_dir = EVALUATION_DIR / "plots" / "sklearn"
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


def test_permutation_importance_uses_a_fixed_bounded_sample(project, params, monkeypatch):
    make_frame(classes=2, rows=400).to_csv(RAW_DATA, index=False)
    params["train"]["estimator"] = "hist_gradient_boosting"  # no built-in importances
    prepare(params)
    train(params)
    monkeypatch.setattr("{{cookiecutter.package_name}}.evaluate.IMPORTANCE_ROWS", 40)
    test = pd.read_parquet(TEST_DATA)
    features, labels = test.drop(columns=["label"]), test["label"]
    first, title = importances(load_model(), features, labels)
    again, _ = importances(load_model(), features, labels)
    assert title == "Permutation importance on 40 of 100 test rows (seed 0)"
    assert np.array_equal(first, again)
