"""Stage `evaluate`: score the model on the held-out test set with DVCLive.

Writes `reports/evaluation/metrics.json` and, under `reports/evaluation/plots/`, the confusion
matrix, ROC and precision-recall curves (micro-averaged one-vs-rest when there are more than two
classes) and a feature-importance chart.

The metrics are computed on the whole test set. The plot files are not allowed to grow with it
(they are pushed, read by the merge-request report for both sides and drawn by `dvc plots diff`):
the confusion matrix is written as one count per (actual, predicted) pair, each curve as at most
CURVE_POINTS of its points, and permutation importance is measured on a fixed sample.
"""

import json

import matplotlib

matplotlib.use("Agg")  # stages run headless, in CI too

import matplotlib.pyplot as plt
import numpy as np
from dvclive import Live
from sklearn import metrics
from sklearn.inspection import permutation_importance
from sklearn.preprocessing import label_binarize
from threadpoolctl import threadpool_limits

from .config import EVALUATION_DIR, MODEL_FILE, TEST_DATA, param, read_features, run
from .model_file import load_model

TOP_FEATURES = 20
CURVE_POINTS = 200
IMPORTANCE_ROWS = 5_000  # permutation importance predicts 3 x n_features times on this many rows
PLOT_DATA = EVALUATION_DIR / "plots" / "sklearn"


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


def thin(x: np.ndarray, y: np.ndarray, limit: int = CURVE_POINTS) -> np.ndarray:
    """Indices of at most `limit` points of the curve (x, y), spread evenly along its length.

    The points kept are the curve's own, first and last included, so a monotone curve stays
    monotone; spacing them by length rather than by index keeps the corners where it turns.
    """
    if len(x) <= limit:
        return np.arange(len(x))
    length = np.concatenate([[0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    kept = np.searchsorted(length, np.linspace(0, length[-1], limit))
    kept[0], kept[-1] = 0, len(x) - 1
    return np.unique(kept)


def curve_points(x, y, thresholds, names: tuple[str, str]) -> list[dict]:
    kept = thin(np.asarray(x), np.asarray(y))
    # roc_curve's first threshold is infinite, which JSON cannot hold
    return [
        {
            names[0]: float(x[i]),
            names[1]: float(y[i]),
            "threshold": float(thresholds[i]) if np.isfinite(thresholds[i]) else None,
        }
        for i in kept
    ]


def plot_data(labels, predicted, truth, score, classes) -> dict[str, object]:
    """The plot files' contents, each of a size set by the number of classes, not of rows."""
    fpr, tpr, roc_thresholds = metrics.roc_curve(truth, score)
    precision, recall, pr_thresholds = metrics.precision_recall_curve(truth, score, drop_intermediate=True)
    pr_thresholds = np.append(pr_thresholds, np.inf)  # the last point, (recall 0, precision 1), has none
    counts = metrics.confusion_matrix(labels, predicted, labels=classes)
    return {
        "roc": {"roc": curve_points(fpr, tpr, roc_thresholds, ("fpr", "tpr"))},
        "precision_recall": {
            "precision_recall": curve_points(recall, precision, pr_thresholds, ("recall", "precision"))
        },
        "confusion_matrix": [
            {"actual": str(actual), "predicted": str(guess), "count": int(counts[i, j])}
            for i, actual in enumerate(classes)
            for j, guess in enumerate(classes)
        ],
    }


def importances(model, features, labels, random_state: int = 0) -> tuple[np.ndarray, str]:
    """Built-in importances where the estimator has them, permutation importance otherwise."""
    final = model[-1] if hasattr(model, "steps") else model
    if hasattr(final, "feature_importances_"):
        return final.feature_importances_, "Feature importance"
    if hasattr(final, "coef_"):
        return np.abs(final.coef_).mean(axis=0), "Feature importance"
    sample = features.sample(n=min(IMPORTANCE_ROWS, len(labels)), random_state=random_state)
    # Permutation importance predicts on a small table many times: OpenMP's start-up for each
    # call costs more than it saves, and on a busy machine several times the whole work.
    with threadpool_limits(1, user_api="openmp"):
        result = permutation_importance(model, sample, labels[sample.index], n_repeats=3, random_state=random_state)
    title = f"Permutation importance on {len(sample):,} of {len(labels):,} test rows (seed {random_state})"
    return result.importances_mean, title


def importance_figure(names, values, title: str = "Feature importance"):
    order = np.argsort(values)[-TOP_FEATURES:]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(order) + 1.2), layout="constrained")
    ax.barh([str(names[i]) for i in order], values[order], color="#4c72b0")
    ax.set_xlabel("importance")
    ax.set_title(f"{title}, top {len(order)}")
    return fig


def evaluate(params: dict) -> None:
    target = param(params, "data.target")
    model = load_model(MODEL_FILE)
    features, labels = read_features(TEST_DATA, target)
    classes = list(model.classes_)
    probabilities = model.predict_proba(features)
    # What `predict` returns for these estimators, without a second pass over the test set.
    predicted = np.asarray(classes)[probabilities.argmax(axis=1)]

    with Live(dir=str(EVALUATION_DIR), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        for name, value in scores(labels, predicted, probabilities, classes).items():
            live.log_metric(name, round(float(value), 6), plot=False)
        truth, score = one_vs_rest(labels, probabilities, classes)
        PLOT_DATA.mkdir(parents=True, exist_ok=True)
        for name, data in plot_data(labels, predicted, truth, score, classes).items():
            (PLOT_DATA / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        figure = importance_figure(features.columns, *importances(model, features, labels))
        live.log_image("feature_importance.png", figure)
        plt.close(figure)
        print("evaluate: " + ", ".join(f"{k}={v}" for k, v in live.summary.items() if k != "step"))


if __name__ == "__main__":
    run(evaluate)
