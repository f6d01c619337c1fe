import json

import pytest

from {{cookiecutter.package_name}}.config import EVALUATION_DIR, RAW_DATA
from {{cookiecutter.package_name}}.evaluate import evaluate
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
    assert len(confusion) == 38  # one (actual, predicted) pair per test row
    roc = json.loads((plots / "sklearn" / "roc.json").read_text())["roc"]
    assert roc[0]["fpr"] == 0 and roc[-1]["tpr"] == 1
    assert (plots / "images" / "feature_importance.png").read_bytes()[:4] == b"\x89PNG"
