"""Is a change better, worse, or within noise? Two models' predictions on the same test rows.

A raw difference of scores hides how many rows it rests on: on 143 test rows one row is 0.007
accuracy. So each metric's difference gets a 95% interval from a paired bootstrap over the test
rows: the rows are resampled with replacement (within each class for a classification, so a rare
class is never lost), both models are scored on the same resample, and the 2.5% and 97.5%
quantiles of the differences are the interval. Entirely on the better side of 0: **better**;
entirely on the worse side: **worse**; containing 0: **within noise**. Which side is better comes
from config.LOWER_IS_BETTER; the verdict rests on config.HEADLINE, the other metrics are context.

Cost stays bounded on large test sets. The counting metrics (accuracy, balanced accuracy,
precision, recall, F1) depend only on how many rows fall in each (actual, predicted, predicted)
cell, and a resample's cell counts are a multinomial draw: no per-row work at all. RMSE, MAE and
R² need each row's weight in the resample; those are drawn in chunks of at most CHUNK_CELLS
weights (never a resamples x rows matrix at once). ROC AUC, which would sort every resample, gets
DeLong's interval instead: each row's placement (the share of the other class it outranks) gives
the AUC's variance in one sort, the normal interval the same verdict a bootstrap would on a test
set of any size (tests/test_compare.py checks it against scipy's bootstrap and by simulation).

The report and the sweep use this module; evaluate writes the predictions it reads.
"""

import hashlib
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .config import LOWER_IS_BETTER

RESAMPLES = 1_000
SEED = 0  # a rerun prints the same intervals
CONFIDENCE = 0.95
CHUNK_CELLS = 2_000_000  # weights held at once (16 MB of float64)
COUNTING = ("balanced_accuracy", "accuracy", "precision", "recall", "f1")
FINGERPRINT_KEY = b"test_rows"  # the Parquet metadata key of the test rows' fingerprint


@dataclass
class Predictions:
    """One model's predictions on a test set: the actual and predicted class (as text) and each
    class's probability, or the actual and predicted value; `fingerprint` names the test rows."""

    actual: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray | None
    classes: list[str] | None
    fingerprint: str

    @property
    def task(self) -> str:
        return "regression" if self.classes is None else "classification"

    def subset(self, rows: np.ndarray) -> "Predictions":
        """These predictions on some of the rows (a boolean mask)."""
        probabilities = None if self.probabilities is None else self.probabilities[rows]
        return Predictions(self.actual[rows], self.predicted[rows], probabilities, self.classes, "")


def fingerprint(test) -> str:
    """A hash of the test rows (a DataFrame: every column, in order): equal on two revisions, the same rows."""
    import pandas as pd

    digest = hashlib.sha256(",".join(map(str, test.columns)).encode())
    digest.update(pd.util.hash_pandas_object(test, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def write_predictions(path, rows: str, actual, predicted, probabilities=None, classes=None) -> None:
    """Each test row's prediction as Parquet: `actual`, `predicted` and `probability_<class>`
    (float32: 4 bytes a class a row), with the rows' fingerprint in the file's metadata."""
    if classes is None:
        columns = {"actual": np.asarray(actual, dtype=float), "predicted": np.asarray(predicted, dtype=float)}
    else:
        columns = {"actual": np.asarray(actual).astype(str), "predicted": np.asarray(predicted).astype(str)}
        for i, name in enumerate(classes):
            columns[f"probability_{name}"] = np.asarray(probabilities[:, i], dtype=np.float32)
    table = pa.table(columns).replace_schema_metadata({FINGERPRINT_KEY: rows.encode()})
    pq.write_table(table, path, use_dictionary=["actual", "predicted"] if classes is not None else False)


def read_predictions(source) -> Predictions:
    """A predictions file (a path or an open binary file) as `write_predictions` wrote it."""
    # ParquetFile, not read_table: read_table's dataset layer costs 0.3 s to load on first use.
    table = pq.ParquetFile(source, read_dictionary=["actual", "predicted"]).read()
    rows = (table.schema.metadata or {}).get(FINGERPRINT_KEY, b"").decode()
    probability = [name for name in table.column_names if name.startswith("probability_")]
    if not probability:
        actual, predicted = (table.column(name).to_numpy() for name in ("actual", "predicted"))
        return Predictions(actual.astype(float), predicted.astype(float), None, None, rows)
    classes = [name.removeprefix("probability_") for name in probability]
    actual, predicted = (labels(table.column(name)) for name in ("actual", "predicted"))
    probabilities = np.column_stack([table.column(name).to_numpy() for name in probability]).astype(np.float64)
    return Predictions(actual, predicted, probabilities, classes, rows)


def labels(column: pa.ChunkedArray) -> np.ndarray:
    """A dictionary-encoded column of class names as text: the few names, indexed (no object per row)."""
    encoded = column.combine_chunks()
    names = encoded.dictionary.to_numpy(zero_copy_only=False).astype(str)
    return names[encoded.indices.to_numpy(zero_copy_only=False)]


@dataclass
class Interval:
    """A metric on both sides (or one), the change and its 95% interval, over `resamples` resamples
    (`skipped` of them left out because the metric was undefined on them; 0 resamples: DeLong's)."""

    name: str
    base: float | None
    head: float
    low: float
    high: float
    resamples: int
    skipped: int = 0

    @property
    def change(self) -> float:
        return self.head - (self.base or 0.0)

    @property
    def verdict(self) -> str:
        better_up = self.name not in LOWER_IS_BETTER
        if self.low > 0:
            return "better" if better_up else "worse"
        if self.high < 0:
            return "worse" if better_up else "better"
        return "within noise"


def verdict_arrow(verdict: str) -> str:
    return {"better": "▲ better", "worse": "▼ worse"}.get(verdict, "≈ within noise")


# --- the metrics, for one sample or many resamples at once ----------------------------------------


def _divide(top, bottom):
    """top / bottom, 0 where bottom is 0 (scikit-learn's zero_division=0)."""
    return np.divide(top, bottom, out=np.zeros(np.broadcast(top, bottom).shape), where=bottom > 0)


def counting_scores(confusion: np.ndarray, positive: int | None, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The counting metrics from confusion matrices (..., actual, predicted), scikit-learn's
    definitions: precision, recall and F1 of the positive class, or macro-averaged over `labels`
    (the classes that occur in the whole test set, actual or predicted)."""
    support, guessed = confusion.sum(-1), confusion.sum(-2)
    hits = np.diagonal(confusion, axis1=-2, axis2=-1)
    occurring = support > 0
    found = {
        "balanced_accuracy": _divide(hits, support).sum(-1) / np.maximum(occurring.sum(-1), 1),
        "accuracy": hits.sum(-1) / support.sum(-1),
    }
    precision, recall, f1 = _divide(hits, guessed), _divide(hits, support), _divide(2 * hits, guessed + support)
    if positive is not None:
        found.update(precision=precision[..., positive], recall=recall[..., positive], f1=f1[..., positive])
    else:
        found.update(
            precision=precision[..., labels].mean(-1), recall=recall[..., labels].mean(-1), f1=f1[..., labels].mean(-1)
        )
    return found


def auc_and_influence(truth_index: np.ndarray, probabilities: np.ndarray, positive: int | None):
    """roc_auc as evaluate computes it (of the positive class, or one-vs-rest macro-averaged) and
    each row's influence on it: DeLong's placement (the share of the other class the row's score
    outranks, ties counting half) less the AUC, over its class's row count. A resample's AUC moves
    by about the sum of its rows' influences, so their spread within each class is the AUC's variance."""
    columns = [positive] if positive is not None else range(probabilities.shape[1])
    total, influence = 0.0, np.zeros(len(truth_index))
    for k in columns:
        inside = truth_index == k
        ours, theirs = probabilities[inside, k], probabilities[~inside, k]
        ours_sorted, theirs_sorted = np.sort(ours), np.sort(theirs)
        outranked = np.searchsorted(theirs_sorted, ours, "left") + np.searchsorted(theirs_sorted, ours, "right")
        above = outranked / (2 * len(theirs))  # each row of class k: the share of the others it outranks
        outranking = np.searchsorted(ours_sorted, theirs, "left") + np.searchsorted(ours_sorted, theirs, "right")
        below = 1 - outranking / (2 * len(ours))  # each other row: the share of class k that outranks it
        auc = float(above.mean())
        influence[inside] += (above - auc) / len(ours)
        influence[~inside] += (below - auc) / len(theirs)
        total += auc
    return total / len(columns), influence / len(columns)


def stratified_variance(influence: np.ndarray, strata: np.ndarray) -> float:
    """The variance of a sum of row influences when rows are resampled within their stratum (class)."""
    count = np.bincount(strata).astype(float)
    total, squares = np.bincount(strata, influence), np.bincount(strata, influence**2)
    spread = squares - np.divide(total**2, count, out=np.zeros_like(total), where=count > 0)
    return float((spread * count / np.maximum(count - 1, 1)).sum())


def regression_scores(actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """rmse, mae and r2 of each row of `weights` (resamples x rows); r2 NaN where the target is constant."""
    total = weights.sum(1)
    errors = actual - predicted
    mean = weights @ actual / total
    spread = weights @ actual**2 / total - mean**2
    squared = weights @ errors**2 / total
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(spread > 1e-12 * (1 + mean**2), 1 - squared / spread, np.nan)
    return {"rmse": np.sqrt(squared), "mae": weights @ np.abs(errors) / total, "r2": r2}


# --- resampling ------------------------------------------------------------------------------------


def row_weights(rows: int, resamples: int, rng: np.random.Generator):
    """Chunks of resample weights (resamples x rows): each row's count in its resample of `rows` rows."""
    chunk = max(1, CHUNK_CELLS // rows)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        drawn = rng.integers(0, rows, size=(size, rows))
        drawn += np.arange(size)[:, None] * rows
        # counts, exact in float32: half the memory traffic
        yield np.bincount(drawn.ravel(), minlength=size * rows).reshape(size, rows).astype(np.float32)


def _percentiles(values: np.ndarray) -> tuple[float, float, int]:
    kept = values[np.isfinite(values)]
    if not len(kept):
        return np.nan, np.nan, len(values)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(kept, [tail, 100 - tail])
    return float(low), float(high), len(values) - len(kept)


def codes_of(labels: np.ndarray, classes: list[str]) -> np.ndarray:
    """Each label's index in `classes` (-1 for a label not among them)."""
    codes = np.full(len(labels), -1, dtype=np.int64)
    for code, name in enumerate(classes):
        codes[labels == name] = code
    return codes


def confusion_of(entry: np.ndarray, k: int):
    """A function of cell counts (..., cells) giving confusion matrices (..., k, k): each cell's
    count added to its (actual, predicted) entry, `entry` (actual * k + predicted) of each cell."""
    order = np.argsort(entry, kind="stable")
    starts = np.flatnonzero(np.r_[True, entry[order][1:] != entry[order][:-1]])
    entries = entry[order][starts]

    def confusion(cell_counts: np.ndarray) -> np.ndarray:
        matrices = np.zeros((*cell_counts.shape[:-1], k * k))
        matrices[..., entries] = np.add.reduceat(cell_counts[..., order], starts, axis=-1)
        return matrices.reshape(*cell_counts.shape[:-1], k, k)

    return confusion


def classification_draws(
    actual: np.ndarray, sides: list[Predictions], classes: list[str], positive, resamples: int, seed: int
) -> tuple[list[dict], dict[str, list[np.ndarray]], dict]:
    """Each side's scores on the whole test set, their values on every resample (the same resamples
    for all sides), and ROC AUC's row influences (see `draws_of`)."""
    truth, *guesses = (codes_of(labels, classes) for labels in (actual, *(side.predicted for side in sides)))
    if any((codes < 0).any() for codes in (truth, *guesses)):
        raise ValueError("a label of the test rows or a prediction is not among the models' classes")
    k = len(classes)
    positive_index = None if positive is None else classes.index(str(positive))
    labels = np.unique(np.concatenate([truth, *guesses]))
    cell = truth.copy()
    for guess in guesses:
        cell = cell * k + guess
    rng = np.random.default_rng(seed)
    cells, counts = np.unique(cell, return_counts=True)
    # Per side, which (actual, predicted) entry of its confusion matrix each cell adds to.
    digits, rest = [], cells
    for _ in sides:
        digits.append(rest % k)
        rest = rest // k
    confusions = [confusion_of(rest * k + guess, k) for guess in reversed(digits)]

    def scores(cell_counts: np.ndarray) -> list[dict[str, np.ndarray]]:
        return [counting_scores(confusion(cell_counts), positive_index, labels) for confusion in confusions]

    points = [{name: float(value) for name, value in side.items()} for side in scores(counts.astype(float))]
    # A resample's cell counts: within each actual class, a multinomial draw of its rows over its cells.
    draws = {name: [[] for _ in sides] for name in COUNTING}
    stratum = cells // k ** len(sides)
    chunk = max(1, CHUNK_CELLS // len(cells))
    for start in range(0, resamples, chunk):
        drawn = np.zeros((min(chunk, resamples - start), len(cells)))
        for label in np.unique(stratum):
            members = np.flatnonzero(stratum == label)
            total = counts[members].sum()
            drawn[:, members] = rng.multinomial(total, counts[members] / total, size=len(drawn))
        for i, side in enumerate(scores(drawn)):
            for name, values in side.items():
                draws[name][i].append(values)
    # ROC AUC, defined only when every class occurs: DeLong's interval, from each row's influence.
    influences = {}
    if all(side.probabilities is not None for side in sides) and len(np.unique(truth)) == k and k > 1:
        rows = []
        for point, side in zip(points, sides, strict=True):
            point["roc_auc"], influence = auc_and_influence(truth, side.probabilities, positive_index)
            rows.append(influence)
        influences["roc_auc"] = (rows, truth)
    draws = {name: [np.concatenate(chunks) for chunks in per_side] for name, per_side in draws.items()}
    return points, draws, influences


def regression_draws(actual: np.ndarray, sides: list[Predictions], resamples: int, seed: int):
    rng = np.random.default_rng(seed)
    everything = np.ones((1, len(actual)))
    points = [
        {name: float(v[0]) for name, v in regression_scores(actual, s.predicted, everything).items()} for s in sides
    ]
    draws = {name: [[] for _ in sides] for name in ("rmse", "mae", "r2")}
    for weights in row_weights(len(actual), resamples, rng):
        for i, side in enumerate(sides):
            for name, values in regression_scores(actual, side.predicted, weights).items():
                draws[name][i].append(values)
    return points, {name: [np.concatenate(chunks) for chunks in per_side] for name, per_side in draws.items()}, {}


def draws_of(sides: list[Predictions], positive, resamples: int, seed: int):
    """Scores of each side (all on the first side's test rows), their resampled values, and for
    ROC AUC each row's influence on each side's score with the rows' strata (their classes)."""
    first = sides[0]
    if first.task == "regression":
        return regression_draws(first.actual, sides, resamples, seed)
    classes = list(dict.fromkeys([*first.classes, *(c for s in sides for c in s.classes)]))
    aligned = [align_classes(side, classes) for side in sides]
    return classification_draws(first.actual, aligned, classes, positive, resamples, seed)


def align_classes(side: Predictions, classes: list[str]) -> Predictions:
    """The side's probabilities over `classes` (0 for a class its model never knew)."""
    if side.classes == classes or side.probabilities is None:
        return side
    probabilities = np.zeros((len(side.predicted), len(classes)))
    for i, name in enumerate(side.classes):
        probabilities[:, classes.index(name)] = side.probabilities[:, i]
    return Predictions(side.actual, side.predicted, probabilities, classes, side.fingerprint)


def normal_interval(centre: float, variance: float, bound: float) -> tuple[float, float]:
    half = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2) * np.sqrt(variance)
    return max(centre - half, -bound), min(centre + half, bound)


def paired(base: Predictions, head: Predictions, positive=None, resamples: int = RESAMPLES, seed: int = SEED):
    """Each metric of both models on the same test rows, with the change's 95% interval."""
    if len(base.actual) != len(head.actual) or not np.array_equal(base.actual, head.actual):
        raise ValueError("paired comparisons need both sides' predictions on the same test rows")
    points, draws, influences = draws_of([base, head], positive, resamples, seed)
    found = {}
    for name in points[1]:
        if name not in points[0]:
            continue
        if name in influences:  # the same rows move both sides: the difference's influence, row by row
            (before, after), strata = influences[name]
            change = points[1][name] - points[0][name]
            low, high = normal_interval(change, stratified_variance(after - before, strata), 1.0)
            found[name] = Interval(name, points[0][name], points[1][name], low, high, 0)
            continue
        low, high, skipped = _percentiles(draws[name][1] - draws[name][0])
        if np.isfinite(low):
            found[name] = Interval(name, points[0][name], points[1][name], low, high, len(draws[name][1]), skipped)
    return found


def alone(side: Predictions, positive=None, resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Interval]:
    """Each metric of one model with its own 95% interval (when two sides share no test rows)."""
    points, draws, influences = draws_of([side], positive, resamples, seed)
    found = {}
    for name, value in points[0].items():
        if name in influences:
            (influence,), strata = influences[name]
            interval = normal_interval(value, stratified_variance(influence, strata), 1.0)
            found[name] = Interval(name, None, value, max(interval[0], 0.0), interval[1], 0)
            continue
        low, high, skipped = _percentiles(draws[name][0])
        if np.isfinite(low):
            found[name] = Interval(name, None, value, low, high, len(draws[name][0]), skipped)
    return found
