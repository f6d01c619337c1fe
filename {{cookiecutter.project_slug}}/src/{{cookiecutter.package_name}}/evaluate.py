"""Stage `evaluate`: score the model on the held-out test set, and a baseline that learnt nothing.

Writes `metrics.json` into the directory dvc.yaml passes it (`reports/evaluation`): for a
classification, balanced accuracy, accuracy, precision, recall and F1 (of the positive class when
there are two, macro-averaged otherwise), ROC AUC and the recall of each class; for a regression,
RMSE, MAE and R². `baseline` holds the same scores for always predicting the most frequent
training class (or the training mean), so a model that only learnt the class balance shows as one.
A score that is undefined on this test set is left out rather than written as NaN. Beside it,
`warnings.json`: the scores that look too good to be true (near-perfect, or one column carrying
the model), each naming the columns to check; printed too, and shown in the merge-request report.

`predictions.parquet` holds each test row's prediction (the class and every class's probability,
or the value) beside its actual value, and a fingerprint of the test rows: the merge-request
report reads it on both revisions to give each metric's change an interval (compare.py).

Under its `plots/`: the confusion matrix, ROC and precision-recall curves (of the positive class,
or micro-averaged one-vs-rest), or for a regression a sample of predicted against actual values;
and the permutation importance of the raw columns. All as data: `dvc plots` and the report draw
them (this stage imports no plotting library). The metrics use the whole test set; the plot files
do not grow with it: one count per (actual, predicted) pair, at most CURVE_POINTS points a curve,
PREDICTION_POINTS rows, importance on IMPORTANCE_ROWS sampled rows, of the TOP_FEATURES columns.
"""

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.base import is_classifier
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.preprocessing import label_binarize

from .compare import fingerprint, write_predictions
from .config import (
    METRICS,
    PLOT_DATA,
    PREDICTIONS,
    SUMMARY,
    TEST,
    TRAIN,
    WARNINGS,
    read_summary,
    run,
    score_names,
    write_json,
)
from .model_file import as_model_input, load_model, model_columns, threads_for

TOP_FEATURES = 20
CURVE_POINTS = 200
IMPORTANCE_ROWS = 5_000  # permutation importance predicts 3 x n_features times on this many rows
IMPORTANCE_REPEATS = 3
IMPORTANCE_BATCH_CELLS = 4_000_000  # shuffled copies predicted in one call: at most 32 MB of them
PREDICTION_POINTS = 500  # regression: the test rows drawn as predicted against actual
# Scores this close to perfect are rare on real data and common when a column gives the answer away
# (a copy of the target, or a value recorded after it). On the bundled data, three estimators and
# three seeds each: honest two-class ROC AUC reaches 0.998 (breast_cancer), hence 0.999 for it;
# one-vs-rest AUC of several classes is 0.999 on digits with 3-5% of them misread, so it is not
# checked; wine's 45 test rows score 1.0 and are flagged (some tables are that easy: the warning says so).
NEAR_PERFECT = {"balanced_accuracy": 0.995, "r2": 0.99}
NEAR_PERFECT_TWO_CLASS_AUC = 0.999
# One column carries the model when it holds this share of the (positive) permutation importance
# and shuffling it alone loses at least half the model's lead over the baseline. On the bundled data
# and penguins' and diabetes' other targets the largest share was 0.67 (of a total of 0.007); a
# monthly series split at random is flagged for its `year` (98%), whose score is interpolation.
ONE_COLUMN_SHARE = 0.8


def classification_scores(labels, predicted, probabilities, classes, positive) -> dict[str, float]:
    binary = positive is not None
    average = {"average": "binary", "pos_label": positive} if binary else {"average": "macro"}
    found = {
        "balanced_accuracy": metrics.balanced_accuracy_score(labels, predicted),
        "accuracy": metrics.accuracy_score(labels, predicted),
        "precision": metrics.precision_score(labels, predicted, zero_division=0, **average),
        "recall": metrics.recall_score(labels, predicted, zero_division=0, **average),
        "f1": metrics.f1_score(labels, predicted, zero_division=0, **average),
    }
    if probabilities is not None and len(np.unique(labels)) == len(classes):  # else ROC AUC is undefined
        found["roc_auc"] = (
            metrics.roc_auc_score(np.asarray(labels) == positive, probabilities[:, classes.index(positive)])
            if binary
            else metrics.roc_auc_score(labels, probabilities, multi_class="ovr", labels=classes)
        )
    return found


def regression_scores(values, predicted) -> dict[str, float]:
    return {
        "rmse": metrics.root_mean_squared_error(values, predicted),
        "mae": metrics.mean_absolute_error(values, predicted),
        "r2": metrics.r2_score(values, predicted),
    }


def per_class_recall(labels, predicted, classes) -> dict[str, float]:
    recalls = metrics.recall_score(labels, predicted, labels=classes, average=None, zero_division=0)
    return {str(label): float(value) for label, value in zip(classes, recalls, strict=True)}


def baseline_scores(summary: dict, train_labels, test_labels) -> dict[str, float]:
    """The same scores for a model that has learnt nothing: the most frequent training class,
    or the training mean."""
    if summary["task"] == "regression":
        guess = DummyRegressor().fit(np.zeros((len(train_labels), 1)), train_labels)
        return regression_scores(test_labels, guess.predict(np.zeros((len(test_labels), 1))))
    guess = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(train_labels), 1)), train_labels)
    predicted = guess.predict(np.zeros((len(test_labels), 1)))
    found = classification_scores(test_labels, predicted, None, summary["classes"], summary.get("positive_class"))
    return {name: value for name, value in found.items() if name in ("balanced_accuracy", "accuracy", "f1")}


def plain(scores: dict) -> dict:
    """Rounded, and without the undefined (NaN) ones, which JSON and `dvc metrics diff` cannot take."""
    return {
        name: plain(value) if isinstance(value, dict) else round(float(value), 6)
        for name, value in scores.items()
        if isinstance(value, dict) or np.isfinite(value)
    }


def one_vs_rest(labels, probabilities, classes, positive) -> tuple[np.ndarray, np.ndarray]:
    """Flatten to a binary problem: the positive class when binary, micro-averaged otherwise."""
    if positive is not None:
        return (np.asarray(labels) == positive).astype(int), probabilities[:, classes.index(positive)]
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


def prediction_points(values, predicted, random_state: int = 0) -> list[dict]:
    """At most PREDICTION_POINTS test rows (a fixed sample): actual, predicted and residual."""
    chosen = np.random.default_rng(random_state).permutation(len(values))[:PREDICTION_POINTS]
    values, predicted = np.asarray(values, dtype=float), np.asarray(predicted, dtype=float)
    return [
        {"actual": float(values[i]), "predicted": float(predicted[i]), "residual": float(values[i] - predicted[i])}
        for i in np.sort(chosen)
    ]


def importances(model, features, labels, random_state: int = 0) -> tuple[np.ndarray, str]:
    """Permutation importance of each raw column (a category counts once, not per one-hot column),
    on a fixed sample of the test rows: the numbers of scikit-learn's `permutation_importance` of
    the whole model, its shuffles drawn the same way (tests/test_evaluate.py checks), at a fraction
    of the cost. The sample is transformed once; a shuffled column re-transforms only its own
    transformer's columns; and the estimator predicts many shuffles in one call, since a call's
    fixed cost (per tree: a gradient-boosted model of 10 classes has 1,000) dwarfs a small sample's."""
    sample = features.sample(n=min(IMPORTANCE_ROWS, len(labels)), random_state=random_state)
    truth = labels[sample.index].to_numpy()
    columns, estimator = model.named_steps["columns"], model.named_steps["estimator"]
    score = metrics.accuracy_score if is_classifier(estimator) else metrics.r2_score  # as estimator.score
    whole = columns.transform(sample)
    # Each column's shuffles start from the same seed, drawn as scikit-learn draws it.
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    parts = {column: (part, names, columns.output_indices_[name])
             for name, part, names in columns.transformers_ if part != "drop" for column in names}  # fmt: skip

    def shuffles(column):
        """`whole` with the column shuffled, IMPORTANCE_REPEATS times, as scikit-learn shuffles it:
        the order shuffled again each round, applied to the column as last shuffled."""
        part, names, place = parts[column]
        given, order, rng = sample[names].copy(), np.arange(len(sample)), np.random.RandomState(seed)
        for _ in range(IMPORTANCE_REPEATS):
            rng.shuffle(order)
            moved = given[column].iloc[order]
            moved.index = given.index
            given[column] = moved
            shuffled = whole.copy()
            shuffled[:, place] = np.asarray(part.transform(given))
            yield shuffled

    def scores_of(batch: list) -> list[float]:
        with threads_for(len(batch) * len(whole)):
            predicted = estimator.predict(np.concatenate(batch))
        return [score(truth, rows) for rows in np.split(predicted, len(batch))]

    baseline = scores_of([whole])[0]
    # A column the model leaves out changes nothing when shuffled: 0, as scikit-learn finds.
    found = {column: [baseline] * IMPORTANCE_REPEATS for column in sample.columns if column not in parts}
    copies = ((column, shuffled) for column in sample.columns if column in parts for shuffled in shuffles(column))
    per_call = -(-IMPORTANCE_BATCH_CELLS // whole.size)  # copies a call predicts
    while batch := list(itertools.islice(copies, per_call)):
        owners, shuffled = zip(*batch, strict=True)
        for owner, value in zip(owners, scores_of(list(shuffled)), strict=True):
            found.setdefault(owner, []).append(value)
    drops = baseline - np.array([found[column] for column in sample.columns])
    title = f"Permutation importance on {len(sample):,} of {len(labels):,} test rows (seed {random_state})"
    return drops.mean(axis=1), title


def too_good(scores: dict, importance: dict, rows: int, two_classes: bool) -> list[dict]:
    """Warnings that the scores may be too good to be true, each naming the columns to check: a
    near-perfect score, one column carrying the model. `importance`: permutation importance per
    column, in the estimator's own score (accuracy, or R²), which `scores` and its baseline hold."""
    kept = {str(name): max(float(value), 0.0) for name, value in importance.items()}
    total = sum(kept.values())
    share = {name: value / total for name, value in kept.items()} if total > 0 else {}
    ranked = sorted(share, key=share.get, reverse=True)
    named = ranked[:1] + [name for name in ranked[1:3] if share[name] >= 0.01]  # no list of 0%s
    check = "check that no column gives the answer away (a copy of the target, or a value known only after it)"
    warnings = []
    limits = NEAR_PERFECT | ({"roc_auc": NEAR_PERFECT_TWO_CLASS_AUC} if two_classes else {})
    near = {name: scores[name] for name, limit in limits.items() if scores.get(name, -np.inf) >= limit}
    if near:
        said = " and ".join(f"{name} {value:.4f}" for name, value in near.items())
        top = ", ".join(f"`{name}` ({share[name]:.0%})" for name in named)
        warnings.append(
            {
                "check": "near_perfect",
                "scores": near,
                "columns": named,
                "message": f"{said} on {rows} test rows is near-perfect: some tables are that easy, but {check}"
                + (f"; the most important columns: {top}." if top else "."),
            }
        )
    scorer = "r2" if "r2" in scores else "accuracy"
    lead = scores[scorer] - scores["baseline"][scorer]
    if ranked and share[ranked[0]] >= ONE_COLUMN_SHARE and kept[ranked[0]] >= lead / 2 > 0:
        name = ranked[0]
        warnings.append(
            {
                "check": "one_column",
                "share": round(share[name], 4),
                "columns": [name],
                "message": f"`{name}` carries {share[name]:.0%} of the permutation importance (shuffling it costs "
                f"{kept[name]:.3f} of {scorer}, the model's lead over the baseline is {lead:.3f}): {check}. "
                f"Is `{name}` known before the target is?",
            }
        )
    return warnings


def importance_plot(names, values, title: str) -> dict:
    """The TOP_FEATURES most important columns, most important first (DVC draws them as bars, the
    merge-request report beside the base's), and the title saying on how many rows."""
    order = np.argsort(-np.asarray(values), kind="stable")[:TOP_FEATURES]
    rows = [{"column": str(names[i]), "importance": round(float(values[i]), 6)} for i in order]
    return {"importance": rows, "title": f"{title}, top {len(rows)}"}


def evaluate(params: dict, prepared: Path, model: Path, evaluation: Path) -> None:
    """`model` scored on `prepared`'s test set: metrics.json and plots/ in `evaluation`."""
    summary = read_summary(prepared / SUMMARY)
    target, task = summary["target"], summary["task"]
    model = load_model(model)
    columns = model_columns(model)
    test = pd.read_parquet(prepared / TEST)
    rows = fingerprint(test)  # names the test rows, so the report knows when two revisions share them
    test = as_model_input(test, columns)
    features, labels = test[columns["numeric"] + columns["categorical"]], test[target]
    train_labels = pd.read_parquet(prepared / TRAIN, columns=[target])[target]

    with threads_for(len(test)):
        scores, plots, predictions = task_scores(model, summary, features, labels)
    scores["baseline"] = baseline_scores(summary, train_labels, labels)
    scores = plain(scores)

    write_json(scores, evaluation / METRICS)
    write_predictions(evaluation / PREDICTIONS, rows, labels, **predictions)
    for name, data in plots.items():
        write_json(data, evaluation / PLOT_DATA / f"{name}.json")
    values, title = importances(model, features, labels)
    by_column = dict(zip(features.columns, values, strict=True))
    warnings = too_good(scores, by_column, len(test), two_classes="positive_class" in summary)
    write_json(warnings, evaluation / WARNINGS)
    write_json(importance_plot(features.columns, values, title), evaluation / PLOT_DATA / "importance.json")
    print(f"evaluate ({task}): " + ", ".join(f"{name}={scores[name]}" for name in score_names(scores)))
    print("evaluate: baseline " + ", ".join(f"{k}={v}" for k, v in scores["baseline"].items()))
    for warning in warnings:
        print(f"evaluate: warning: {warning['message']}")


def task_scores(model, summary: dict, features, labels) -> tuple[dict, dict, dict]:
    """The model's scores on the test set, its task's plot data and each row's prediction."""
    if summary["task"] == "classification":
        classes, positive = list(model.classes_), summary.get("positive_class")
        probabilities = model.predict_proba(features)
        # What `predict` returns for these estimators, without a second pass over the test set.
        predicted = np.asarray(classes)[probabilities.argmax(axis=1)]
        scores = classification_scores(labels, predicted, probabilities, classes, positive)
        scores["recall_per_class"] = per_class_recall(labels, predicted, classes)
        truth, score = one_vs_rest(labels, probabilities, classes, positive)
        rows = {"predicted": predicted, "probabilities": probabilities, "classes": classes}
        return scores, plot_data(labels, predicted, truth, score, classes), rows
    predicted = model.predict(features)
    plots = {"predictions": prediction_points(labels, predicted)}
    return regression_scores(labels, predicted), plots, {"predicted": predicted}


if __name__ == "__main__":
    run(evaluate, "prepared", "model", "evaluation")
