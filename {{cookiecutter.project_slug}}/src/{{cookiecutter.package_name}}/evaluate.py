"""Stage `evaluate`: score the model on the held-out test set with DVCLive.

Writes `reports/evaluation/metrics.json` and, under `reports/evaluation/plots/`, the confusion
matrix, ROC and precision-recall curves (micro-averaged one-vs-rest when there are more than two
classes) and a feature-importance chart.
"""

import matplotlib

matplotlib.use("Agg")  # stages run headless, in CI too

import matplotlib.pyplot as plt
import numpy as np
from dvclive import Live
from sklearn import metrics
from sklearn.inspection import permutation_importance
from sklearn.preprocessing import label_binarize

from .config import EVALUATION_DIR, MODEL_FILE, TEST_DATA, param, read_features, run
from .model_file import load_model

TOP_FEATURES = 20


def scores(labels, predicted, probabilities, classes) -> dict[str, float]:
    binary = len(classes) == 2
    average = "binary" if binary else "macro"
    positive = {"pos_label": classes[1]} if binary else {}
    return {
        "accuracy": metrics.accuracy_score(labels, predicted),
        "precision": metrics.precision_score(labels, predicted, average=average, zero_division=0, **positive),
        "recall": metrics.recall_score(labels, predicted, average=average, zero_division=0, **positive),
        "f1": metrics.f1_score(labels, predicted, average=average, zero_division=0, **positive),
        "roc_auc": metrics.roc_auc_score(labels, probabilities[:, 1])
        if binary
        else metrics.roc_auc_score(labels, probabilities, multi_class="ovr", labels=classes),
    }


def one_vs_rest(labels, probabilities, classes) -> tuple[np.ndarray, np.ndarray]:
    """Flatten to a binary problem: the positive class when binary, micro-averaged otherwise."""
    if len(classes) == 2:
        return (np.asarray(labels) == classes[1]).astype(int), probabilities[:, 1]
    return label_binarize(labels, classes=classes).ravel(), probabilities.ravel()


def importances(model, features, labels, random_state: int = 0) -> np.ndarray:
    """Built-in importances where the estimator has them, permutation importance otherwise."""
    final = model[-1] if hasattr(model, "steps") else model
    if hasattr(final, "feature_importances_"):
        return final.feature_importances_
    if hasattr(final, "coef_"):
        return np.abs(final.coef_).mean(axis=0)
    result = permutation_importance(model, features, labels, n_repeats=3, random_state=random_state)
    return result.importances_mean


def importance_figure(names, values):
    order = np.argsort(values)[-TOP_FEATURES:]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(order) + 1.2), layout="constrained")
    ax.barh([str(names[i]) for i in order], values[order], color="#4c72b0")
    ax.set_xlabel("importance")
    ax.set_title(f"Feature importance (top {len(order)})")
    return fig


def evaluate(params: dict) -> None:
    target = param(params, "data.target")
    model = load_model(MODEL_FILE)
    features, labels = read_features(TEST_DATA, target)
    classes = list(model.classes_)
    predicted = model.predict(features)
    probabilities = model.predict_proba(features)

    with Live(dir=str(EVALUATION_DIR), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        for name, value in scores(labels, predicted, probabilities, classes).items():
            live.log_metric(name, round(float(value), 6), plot=False)
        live.log_sklearn_plot("confusion_matrix", labels, predicted, name="confusion_matrix.json")
        truth, score = one_vs_rest(labels, probabilities, classes)
        live.log_sklearn_plot("roc", truth, score, name="roc.json")
        live.log_sklearn_plot("precision_recall", truth, score, name="precision_recall.json", drop_intermediate=True)
        figure = importance_figure(features.columns, importances(model, features, labels))
        live.log_image("feature_importance.png", figure)
        plt.close(figure)
        print("evaluate: " + ", ".join(f"{k}={v}" for k, v in live.summary.items() if k != "step"))


if __name__ == "__main__":
    run(evaluate)
