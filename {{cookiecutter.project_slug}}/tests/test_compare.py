"""The intervals are tested like code: their coverage by simulation, a difference of known size,
agreement with scipy's paired bootstrap, scikit-learn's definitions, and degenerate test sets."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

from {{cookiecutter.package_name}}.compare import (
    RESAMPLES,
    Predictions,
    alone,
    fingerprint,
    paired,
    read_predictions,
    write_predictions,
)

CLASSES = ["no", "yes"]


def guesses(truth: np.ndarray, right: np.ndarray, rng) -> Predictions:
    """A classifier right where `right` is True, wrong elsewhere, with probabilities to match."""
    predicted = np.where(right, truth, np.where(truth == "yes", "no", "yes"))
    confidence = rng.uniform(0.5, 1.0, len(truth))
    yes = np.where(predicted == "yes", confidence, 1 - confidence)
    return Predictions(truth, predicted, np.c_[1 - yes, yes], CLASSES, "rows")


def labels(rows: int, rng) -> np.ndarray:
    return np.where(np.arange(rows) % 3 == 0, "yes", "no")[rng.permutation(rows)]


def test_two_models_of_equal_skill_are_within_noise_in_at_least_93_of_200_pairs():
    rng = np.random.default_rng(1)
    covered = {"balanced_accuracy": 0, "roc_auc": 0, "rmse": 0}
    for pair in range(200):
        truth = labels(300, rng)
        found = paired(*[guesses(truth, rng.random(300) < 0.8, rng) for _ in range(2)], "yes", seed=pair)
        for name in ("balanced_accuracy", "roc_auc"):
            covered[name] += found[name].low <= 0 <= found[name].high
        values = rng.normal(size=200)
        fits = [Predictions(values, values + rng.normal(size=200), None, None, "") for _ in range(2)]
        interval = paired(*fits, seed=pair)["rmse"]
        covered["rmse"] += interval.low <= 0 <= interval.high
    assert min(covered.values()) >= 186, covered  # 93% of 200


@pytest.mark.parametrize("rows", [600, 2_000])
def test_a_model_right_on_5_percent_more_rows_is_better_and_its_reverse_worse(rows):
    rng = np.random.default_rng(2)
    truth = labels(rows, rng)
    weaker = rng.random(rows) < 0.8
    stronger = weaker | (rng.random(rows) < 0.25)  # right where the weaker is, and on 5% of rows more
    base, head = guesses(truth, weaker, rng), guesses(truth, stronger, rng)
    forward, backward = paired(base, head, "yes"), paired(head, base, "yes")
    assert forward["accuracy"].change == pytest.approx((stronger.sum() - weaker.sum()) / rows)
    for name in ("accuracy", "balanced_accuracy", "roc_auc"):
        assert (forward[name].verdict, backward[name].verdict) == ("better", "worse"), name
    values = rng.normal(size=rows)
    close, far = values + rng.normal(scale=0.9, size=rows), values + rng.normal(scale=1.0, size=rows)
    errors = paired(Predictions(values, far, None, None, ""), Predictions(values, close, None, None, ""))
    assert errors["rmse"].verdict == errors["mae"].verdict == "better"  # lower is better
    assert errors["r2"].verdict == "better" and errors["rmse"].change < 0 < errors["r2"].change


def agrees(ours, reference) -> bool:
    """Both ends within 0.3 of scipy's standard error (the ends' Monte-Carlo error at 1,000
    resamples is about 0.09 of it)."""
    (low, high), spread = reference.confidence_interval, reference.standard_error
    return abs(ours.low - low) < 0.3 * spread and abs(ours.high - high) < 0.3 * spread


def test_the_paired_interval_agrees_with_scipy_within_monte_carlo_error():
    rng = np.random.default_rng(3)
    values = rng.normal(size=400)
    a, b = values + rng.normal(scale=1.0, size=400), values + rng.normal(scale=0.9, size=400)
    ours = paired(Predictions(values, a, None, None, ""), Predictions(values, b, None, None, ""))

    def rmse(y, p, axis=-1):
        return np.sqrt(((y - p) ** 2).mean(axis=axis))

    scores = {
        "rmse": lambda y, p, q, axis=-1: rmse(y, q, axis) - rmse(y, p, axis),
        "mae": lambda y, p, q, axis=-1: np.abs(y - q).mean(axis) - np.abs(y - p).mean(axis),
    }
    for name, difference in scores.items():
        reference = stats.bootstrap(
            (values, a, b), difference, paired=True, vectorized=True, method="percentile",
            n_resamples=20_000, random_state=0,
        )  # fmt: skip
        assert agrees(ours[name], reference), name

    # A classification: correctness independent of the class, so resampling within classes (ours)
    # and over all rows (scipy's) have the same distribution.
    truth = labels(600, rng)
    base, head = guesses(truth, rng.random(600) < 0.8, rng), guesses(truth, rng.random(600) < 0.84, rng)
    ours = paired(base, head, "yes")["accuracy"]
    right = [(side.predicted == truth).astype(float) for side in (base, head)]
    reference = stats.bootstrap(
        tuple(right), lambda p, q, axis=-1: q.mean(axis) - p.mean(axis), paired=True, vectorized=True,
        method="percentile", n_resamples=20_000, random_state=0,
    )  # fmt: skip
    assert agrees(ours, reference)

    # ROC AUC's interval is DeLong's (normal, from each row's placement): the bootstrap's, without resampling.
    ours = paired(base, head, "yes")["roc_auc"]
    positive = (truth == "yes").astype(float)
    scores = [side.probabilities[:, 1] for side in (base, head)]

    def auc(y, score, axis=-1):  # Mann-Whitney: the positives' mean rank among all rows
        ranks, positives = stats.rankdata(score, axis=axis), y.sum(axis)
        return ((ranks * y).sum(axis) - positives * (positives + 1) / 2) / (positives * (y.shape[axis] - positives))

    reference = stats.bootstrap(
        (positive, *scores), lambda y, p, q, axis=-1: auc(y, q, axis) - auc(y, p, axis), paired=True,
        vectorized=True, method="percentile", n_resamples=20_000, random_state=0,
    )  # fmt: skip
    change = metrics.roc_auc_score(positive, scores[1]) - metrics.roc_auc_score(positive, scores[0])
    assert ours.change == pytest.approx(change) and agrees(ours, reference)

    # Three classes: one-vs-rest, macro-averaged, as evaluate scores it.
    names, codes = ["a", "b", "c"], rng.choice(3, 600, p=[0.5, 0.3, 0.2])
    sides = []
    for noise in (1.0, 0.8):
        odds = np.exp(np.eye(3)[codes] + rng.normal(scale=noise, size=(600, 3)))
        odds /= odds.sum(1, keepdims=True)
        sides.append(Predictions(np.array(names)[codes], np.array(names)[odds.argmax(1)], odds, names, ""))
    ours = paired(*sides)["roc_auc"]
    truths = [(codes == k).astype(float) for k in range(3)]
    columns = truths + [side.probabilities[:, k] for side in sides for k in range(3)]

    def macro_change(*columns, axis=-1):
        y, before, after = columns[:3], columns[3:6], columns[6:]
        return np.mean([auc(y[k], after[k], axis) - auc(y[k], before[k], axis) for k in range(3)], axis=0)

    reference = stats.bootstrap(
        columns, macro_change, paired=True, vectorized=True, method="percentile", n_resamples=10_000, random_state=0
    )
    assert ours.change == pytest.approx(macro_change(*columns)) and agrees(ours, reference)


@pytest.mark.parametrize("classes", [2, 3])
def test_whole_test_set_scores_are_scikit_learns(classes):
    rng = np.random.default_rng(4)
    names = [f"c{i}" for i in range(classes)]
    truth = np.array(names)[rng.integers(0, classes, 500)]
    probabilities = rng.dirichlet(np.ones(classes), 500)
    predicted = np.array(names)[probabilities.argmax(1)]
    side = Predictions(truth, predicted, probabilities, names, "")
    positive = "c1" if classes == 2 else None
    found = alone(side, positive)
    average = {"average": "binary", "pos_label": "c1"} if positive else {"average": "macro"}
    expected = {
        "balanced_accuracy": metrics.balanced_accuracy_score(truth, predicted),
        "accuracy": metrics.accuracy_score(truth, predicted),
        "precision": metrics.precision_score(truth, predicted, zero_division=0, **average),
        "recall": metrics.recall_score(truth, predicted, zero_division=0, **average),
        "f1": metrics.f1_score(truth, predicted, zero_division=0, **average),
        "roc_auc": metrics.roc_auc_score(truth == "c1", probabilities[:, 1])
        if positive
        else metrics.roc_auc_score(truth, probabilities, multi_class="ovr", labels=names),
    }
    assert {name: found[name].head for name in expected} == pytest.approx(expected)
    assert all(found[name].low <= found[name].head <= found[name].high for name in expected)
    values = rng.normal(size=300)
    fit = values + rng.normal(size=300)
    regression = alone(Predictions(values, fit, None, None, ""))
    assert regression["rmse"].head == pytest.approx(metrics.root_mean_squared_error(values, fit))
    assert regression["r2"].head == pytest.approx(metrics.r2_score(values, fit))


def test_degenerate_test_sets_give_no_nan():
    rng = np.random.default_rng(5)
    only_no = np.array(["no"] * 40)  # one class only: ROC AUC undefined, balanced accuracy defined
    sides = [guesses(only_no, rng.random(40) < p, rng) for p in (0.7, 0.9)]
    found = paired(*sides, "yes")
    assert "roc_auc" not in found and set(found) == {"balanced_accuracy", "accuracy", "precision", "recall", "f1"}
    assert all(np.isfinite([i.base, i.head, i.low, i.high]).all() for i in found.values())
    assert found["recall"].head == 0 and found["precision"].head == 0  # no "yes" row: zero, as scikit-learn
    # Three rows of a rare class: every resample keeps them (within each class), so nothing is skipped;
    # ROC AUC's interval is DeLong's (no resamples), inside [-1, 1].
    truth = np.array(["yes"] * 3 + ["no"] * 97)
    rare = paired(guesses(truth, rng.random(100) < 0.8, rng), guesses(truth, rng.random(100) < 0.8, rng), "yes")
    assert all(i.skipped == 0 for i in rare.values()) and rare["balanced_accuracy"].resamples == RESAMPLES
    assert rare["roc_auc"].resamples == 0 and -1 <= rare["roc_auc"].low <= rare["roc_auc"].high <= 1
    # The same predictions on both sides: every interval is the point 0, within noise.
    same = guesses(truth, rng.random(100) < 0.8, rng)
    assert all((i.low, i.high, i.verdict) == (0, 0, "within noise") for i in paired(same, same, "yes").values())
    # A constant target: R² undefined on every resample, left out; RMSE and MAE stand.
    constant = np.full(30, 2.0)
    fits = [Predictions(constant, constant + rng.normal(size=30), None, None, "") for _ in range(2)]
    found = paired(*fits)
    assert set(found) == {"rmse", "mae"} and all(np.isfinite(i.low) for i in found.values())
    # Two rows with two target values: R² undefined on the resamples that draw one row twice.
    two = paired(*[Predictions(np.array([0.0, 1.0]), np.array([0.2, 0.7]) + s, None, None, "") for s in (0, 0.1)])
    assert 0 < two["r2"].skipped < RESAMPLES and np.isfinite(two["r2"].low)


def test_paired_needs_the_same_rows_and_a_rerun_gives_the_same_interval():
    rng = np.random.default_rng(6)
    truth = labels(90, rng)
    base, head = guesses(truth, rng.random(90) < 0.7, rng), guesses(truth, rng.random(90) < 0.8, rng)
    assert paired(base, head, "yes") == paired(base, head, "yes")
    with pytest.raises(ValueError, match="same test rows"):
        paired(base, guesses(truth[::-1].copy(), rng.random(90) < 0.8, rng), "yes")


def test_predictions_round_trip_with_the_fingerprint_of_their_test_rows(tmp_path):
    import pandas as pd

    rows = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["no", "yes", "no"]})
    assert fingerprint(rows) == fingerprint(rows.copy()) != fingerprint(rows.iloc[::-1])
    assert fingerprint(rows) != fingerprint(rows.assign(x=[1.0, 2.0, 4.0]))
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    write_predictions(
        tmp_path / "p.parquet", fingerprint(rows), rows["label"], ["no", "yes", "no"], probabilities, ["no", "yes"]
    )
    read = read_predictions(tmp_path / "p.parquet")
    assert read.fingerprint == fingerprint(rows) and read.classes == ["no", "yes"]
    assert list(read.predicted) == ["no", "yes", "no"] and read.probabilities == pytest.approx(probabilities)
    write_predictions(tmp_path / "r.parquet", "abc", [1.5, 2.5], [1.0, 3.0])
    values = read_predictions(tmp_path / "r.parquet")
    assert values.task == "regression" and list(values.predicted) == [1.0, 3.0] and values.fingerprint == "abc"
