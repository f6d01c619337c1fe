"""Compare this workspace with another git revision: the merge-request report.

    mkdir -p report
    dvc params diff main --md --no-path > report/params.md
    dvc metrics diff main --all --md --no-path --precision 4 > report/metrics.md
    python -m {{cookiecutter.package_name}}.report --base main --output report

writes `report/report.md`. Its first sentence is the verdict: the headline metric's change
(config.HEADLINE) with its 95% interval, on how many test rows, and **better**, **worse** or
**within noise** (compare.py); every metric's row has its own. Then DVC's table of the changed
parameters, the baseline that learnt nothing, the data when it changed, and PNG charts that draw
both sides together (DVC renders no images). With `--production model@vX.Y.Z`, the same verdict
against that version. `report/verdict.txt` holds one line per verdict, for the CI gate
(VERDICT_GATE). DVC's metrics table (`report/metrics.md`, `report/production.md`) is shown only
when a side has neither predictions nor a model to score. CI posts the report to the merge request
with CML; run the same commands locally to preview it. The base revision's files are read through
DVC, which fetches them from the remote when they are not in the local cache.
"""

import argparse
import io
import json
import subprocess
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import yaml
from dvc.api import DVCFileSystem
from dvc.exceptions import DvcException
from dvc_data.index import DataIndexError

from . import compare
from .compare import Interval, Predictions
from .config import (
    HEADLINE,
    LOWER_IS_BETTER,
    PLOT_DATA,
    PREDICTIONS,
    SUMMARY,
    TEST,
    TRAIN,
    WARNINGS,
    PipelineError,
    declared,
    run_main,
    score_names,
    task_of,
)

if TYPE_CHECKING:  # imported where the base's model scores this change's test rows: most reports never do
    import pandas as pd

CURVES = {"roc": ("fpr", "tpr", "ROC curve"), "precision_recall": ("recall", "precision", "Precision-recall curve")}
WORKSPACE = "this change"
SHOWN = 10  # columns or classes the data section lists, so a wide table keeps the comment short


def reader(rev: str | None) -> Callable[..., object]:
    """Read the pipeline's files of the workspace (None) or of a git revision: JSON parsed, or
    with `binary=True` the bytes (predictions, a model, an image).

    One DVCFileSystem serves every file of a revision: it fetches DVC-tracked files from the
    remote when they are not in the local cache, and opening it once is far cheaper than once per
    file. A file that is missing, or whose data never reached the remote, reads as None.
    """
    fs = None if rev is None else DVCFileSystem(url=".", rev=rev)

    def read(path: Path, binary: bool = False):
        try:
            data = path.read_bytes() if fs is None else fs.read_bytes(str(path))
        except (FileNotFoundError, IsADirectoryError, DvcException, DataIndexError):
            return None
        return data if binary else json.loads(data)

    return read


def curve_chart(kind: str, sides: dict[str, dict], output: Path, aucs: dict | None = None) -> Path | None:
    """Both sides' curves on one chart (DVCLive's `{kind: [{x: .., y: ..}, ...]}` data); the ROC
    curves' legend gives each side's AUC (`aucs`, by side)."""
    x, y, title = CURVES[kind]
    curves = {label: plots[kind][kind] for label, plots in sides.items() if plots.get(kind)}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
    for label, points in curves.items():
        auc = (aucs or {}).get(label) if kind == "roc" else None
        label = f"{label} (AUC {auc:.3f})" if auc is not None else label
        ax.plot([p[x] for p in points], [p[y] for p in points], label=label, linewidth=2)
    ax.set(xlabel=x, ylabel=y, title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right" if kind == "roc" else "lower left")
    path = output / f"{kind}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def confusion_counts(pairs: list[dict]) -> tuple[list[str], np.ndarray]:
    """The classes and the matrix (rows actual, columns predicted) of a confusion_matrix.json:
    one entry per (actual, predicted) pair with its count, or, as older files have it, per test row."""
    classes = sorted({p["actual"] for p in pairs} | {p["predicted"] for p in pairs}, key=_numeric_first)
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=int)
    for p in pairs:
        counts[index[p["actual"]], index[p["predicted"]]] += p.get("count", 1)
    return classes, counts


def confusion_chart(sides: dict[str, dict], output: Path) -> Path | None:
    matrices = {
        label: confusion_counts(plots["confusion_matrix"])
        for label, plots in sides.items()
        if plots.get("confusion_matrix")
    }
    if not matrices:
        return None
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.5 * len(matrices), 4.2), layout="constrained", squeeze=False)
    for ax, (label, (classes, counts)) in zip(axes[0], matrices.items(), strict=True):
        ax.imshow(counts, cmap="Blues")
        for (i, j), n in np.ndenumerate(counts):
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > counts.max() / 2 else "black")
        ax.set(title=label, xlabel="predicted", ylabel="actual", xticks=range(len(classes)), yticks=range(len(classes)))
        ax.set_xticklabels(classes)
        ax.set_yticklabels(classes)
    path = output / "confusion_matrix.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _numeric_first(label: str):
    return (0, float(label), label) if label.lstrip("-").replace(".", "", 1).isdigit() else (1, 0, label)


def predictions_chart(sides: dict[str, dict], output: Path) -> Path | None:
    """A regression's sampled test rows: predicted against actual, and the residuals, both sides."""
    points = {label: plots["predictions"] for label, plots in sides.items() if plots.get("predictions")}
    if not points:
        return None
    fig, (scatter, residuals) = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
    everything = [p[key] for rows in points.values() for p in rows for key in ("actual", "predicted")]
    low, high = min(everything), max(everything)
    scatter.plot([low, high], [low, high], color="grey", linewidth=1, label="perfect")
    # One set of bins for both sides: bins of different widths would make the wider side's bars look taller.
    bins = np.histogram_bin_edges([p["residual"] for rows in points.values() for p in rows], bins=30)
    for label, rows in points.items():
        scatter.scatter([p["actual"] for p in rows], [p["predicted"] for p in rows], s=12, alpha=0.6, label=label)
        residuals.hist([p["residual"] for p in rows], bins=bins, alpha=0.5, label=label)
    scatter.set(xlabel="actual", ylabel="predicted", title="Predicted against actual (test rows)")
    residuals.set(xlabel="actual - predicted", ylabel="rows", title="Residuals")
    scatter.legend()
    residuals.legend()
    path = output / "predictions.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def importance_chart(sides: dict[str, dict], output: Path) -> Path | None:
    """Both sides' permutation importance on one chart, a bar each per column (this change's most
    important first; a column missing from the base's top has no base bar), or this change's alone."""
    found = {label: plots["importance"] for label, plots in sides.items() if plots.get("importance")}
    if WORKSPACE not in found:
        return None
    names = [row["column"] for row in found[WORKSPACE]["importance"]]
    place, height = np.arange(len(names))[::-1], 0.8 / len(found)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) * len(found) + 1.6), layout="constrained")
    for k, (label, data) in enumerate(found.items()):
        value = {row["column"]: row["importance"] for row in data["importance"]}
        shift = (len(found) - 1) / 2 - k  # the base's bar above this change's
        ax.barh(place + shift * height, [value.get(name, np.nan) for name in names], height, label=label)
    ax.set_yticks(place, names)
    ax.set_xlabel("score lost when the column is shuffled")
    ax.set_title(textwrap.fill(found[WORKSPACE]["title"], 60))  # a long title would be cut off
    ax.legend(loc="lower right")
    path = output / "feature_importance.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def read_plots(read: Callable[[Path], object], evaluation: Path) -> dict:
    plots = {}
    for name in (*CURVES, "confusion_matrix", "predictions", "importance"):
        data = read(evaluation / PLOT_DATA / f"{name}.json")
        if data is not None:
            plots[name] = data
    return plots


def check_revision(rev: str) -> None:
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", rev + "^{commit}"], capture_output=True)
    if found.returncode != 0:
        raise PipelineError(
            f"git revision {rev!r} is unknown here; fetch it first "
            f"(for a branch: git fetch --depth=1 origin +refs/heads/B:refs/remotes/origin/B)."
        )


def dvc_table(path: Path, command: str) -> str:
    """A markdown table written by `dvc params diff --md` or `dvc metrics diff --md`."""
    if not path.is_file():
        raise PipelineError(f"{path} is missing; write it first with `{command} > {path}` (see this module's help).")
    return path.read_text(encoding="utf-8").strip()


def baseline_section(scores: dict) -> list[str]:
    """This change's headline scores beside those of a model that learnt nothing."""
    baseline = scores.get("baseline") or {}
    names = [name for name in score_names(scores) if name in baseline]
    if not names:
        return []
    lines = ["### Against a baseline that learnt nothing", ""]
    lines += ["| metric | this change | baseline | better by |", "|---|---|---|---|"]
    better = {
        name: baseline[name] - scores[name] if name in LOWER_IS_BETTER else scores[name] - baseline[name]
        for name in names
    }
    for name in names:
        lines.append(f"| {name} | {scores[name]:.4f} | {baseline[name]:.4f} | {better[name]:+.4f} |")
    headline, margin = names[0], better[names[0]]
    guess = "the training mean" if task_of(scores) == "regression" else "the most frequent class"
    behind = [f"{name} ({scores[name]:.4f} against {baseline[name]:.4f})" for name in names if better[name] < 0]
    if margin > 0:
        verdict = f"The model beats always predicting {guess} by {margin:.4f} {headline}."
        if behind:  # a metric the model loses on is said, not left in the table
            verdict += f" **It does not beat it on {', '.join(behind)}.**"
    else:
        verdict = (
            f"**The model does not beat always predicting {guess}** ({headline} {scores[headline]:.4f} against "
            f"{baseline[headline]:.4f}): it has learnt nothing useful yet."
        )
    return [*lines, "", verdict, ""]


def too_good_section(warnings: list | None) -> list[str]:
    """evaluate's warnings that this change's scores look too good to be true (its warnings.json)."""
    if not warnings:
        return []
    return ["### Too good to be true?", "", *(f"- {warning['message']}" for warning in warnings), ""]


def split_lines(base: dict | None, head: dict | None) -> list[str]:
    """Which rows this change tests on (prepare's split, from summary.json), and whether the base split differently."""
    if not head:
        return []

    def said(summary: dict) -> str:
        how = summary.get("split") or {"method": "random"}  # summaries from before the choice: random
        share = f"{how['test_size']:.0%} of rows" if "test_size" in how else "share of rows"
        if how["method"] == "time":
            return f"the latest {share} by `{how['time_column']}`, from {how['test_from']} (`prepare.split: time`)"
        stratified = ", stratified by class" if how.get("stratified") else ""
        return f"a random {share}{stratified} (`prepare.split: random`)"

    def key(summary: dict) -> tuple:  # a changed test_size shows in the parameters' table
        how = summary.get("split") or {}
        return how.get("method", "random"), how.get("time_column")

    line = f"Split: {said(head)}."
    if base and key(base) != key(head):
        line += f" The base's: {said(base)}; the two are scored on different test rows."
    return [line, ""]


def raw_data_hash(lock_text: str | None, raw: Path) -> str | None:
    """The md5 of the raw data that dvc.lock says `prepare` read."""
    stages = (yaml.safe_load(lock_text) or {}).get("stages", {}) if lock_text else {}
    for dep in stages.get("prepare", {}).get("deps", []):
        if dep.get("path") == str(raw):
            return dep.get("md5")
    return None


def few(columns: list[str]) -> str:
    """At most SHOWN column names, and how many more."""
    names = ", ".join(f"`{c}`" for c in columns[:SHOWN]) or "none"
    return names + (f" and {len(columns) - SHOWN} more" if len(columns) > SHOWN else "")


def data_section(base: dict | None, head: dict | None) -> list[str]:
    """Rows, columns, missing values and the target, before and after: small, no row data."""
    if not head:
        return []
    lines = [
        "### Data",
        "",
        "> The raw data changed: the metrics compare models trained and tested on different data.",
        "",
    ]
    before, after = (base or {}).get("data", {}), head["data"]
    lines += ["| | base | this change |", "|---|---|---|"]
    lines.append(f"| rows | {before.get('rows', '–')} | {after['rows']} |")
    lines.append(f"| task | {(base or {}).get('task', '–')} | {head['task']} |")
    added = [c for c in after["columns"] if c not in before.get("columns", [])]
    removed = [c for c in before.get("columns", []) if c not in after["columns"]]
    if base:
        lines.append(f"| columns added | | {few(added)} |")
        lines.append(f"| columns removed | {few(removed)} | |")
    shares = {
        column: [side.get("missing", {}).get(column, 0.0) for side in (before, after)]
        for column in set(before.get("missing", {})) | set(after["missing"])
    }
    changed = sorted(
        (c for c, (old, new) in shares.items() if old != new), key=lambda c: -abs(shares[c][1] - shares[c][0])
    )
    for column in changed[:SHOWN]:
        lines.append(f"| missing in `{column}` | {shares[column][0]:.1%} | {shares[column][1]:.1%} |")
    if len(changed) > SHOWN:
        lines.append(f"| missing values changed in {len(changed) - SHOWN} more columns | | |")
    targets = list(dict.fromkeys([*before.get("target", {}), *after["target"]]))[:SHOWN]
    label = "rows of class" if head["task"] == "classification" else "target"
    for key in targets:
        cells = [side.get("target", {}).get(key, "–") for side in (before, after)]
        lines.append(f"| {label} `{key}` | {cells[0]} | {cells[1]} |")
    lines += ["", "New dataset? Update `data/README.md` (source, licence) and the labels in `dvc.yaml`.", ""]
    return lines


def git_file(rev: str, path: str) -> str | None:
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


@dataclass
class Comparison:
    """This change against another revision: `how` it was measured and each metric's interval.

    same: both models' predictions on the same test rows; rescored: the other revision's model
    scored on this change's test rows (the test rows changed); apart: each model on its own test
    rows (`base` holds the other side's own intervals), not directly comparable.
    """

    against: str
    how: str
    intervals: dict[str, Interval]
    rows: int
    base: dict[str, Interval] | None = None
    base_rows: int = 0
    identical: bool = False  # the same prediction on every row
    why: str = ""  # apart: why the other revision's model could not be scored on these rows

    @property
    def headline(self) -> str:
        return next(name for name in self.intervals if name in HEADLINE.values())

    def verdict(self, name: str) -> str:
        if self.how != "apart":
            return self.intervals[name].verdict
        mine, theirs = self.intervals[name], self.base[name]
        if mine.low > theirs.high or mine.high < theirs.low:  # separate 95% intervals: a wide gap
            up = (mine.low > theirs.high) == (name not in LOWER_IS_BETTER)
            return "better" if up else "worse"
        return "within noise"


def unit(name: str, summary: dict) -> str:
    """The metric's name, with the target as the unit of an error measured in it."""
    return f"{name} (`{summary['target']}`)" if name in LOWER_IS_BETTER and summary.get("target") else name


def model_predictions(read: Callable[..., object], model_path: Path, test: "pd.DataFrame", actual) -> Predictions | str:
    """Another revision's model scored on this change's test rows, or why it cannot be: a model
    file that is missing, not a safe scikit-learn model, or that needs columns these rows lack."""
    # Imported here: scikit-learn takes seconds to import, and most reports never load a model.
    from .model_file import as_model_input, load_model, model_columns, threads_for

    data = read(model_path, binary=True)
    if data is None:
        return "its model is not in the DVC remote"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / model_path.name
        path.write_bytes(data)
        try:
            model = load_model(path)
        except PipelineError as error:
            return str(error)
    columns = model_columns(model)
    missing = [name for name in columns["numeric"] + columns["categorical"] if name not in test.columns]
    if missing:
        return f"its model needs columns these test rows lack ({', '.join(missing[:SHOWN])})"
    rows = as_model_input(test, columns)[columns["numeric"] + columns["categorical"]]
    classes = [str(c) for c in getattr(model, "classes_", [])]
    if bool(classes) != (actual.dtype.kind != "f"):
        return "its model was trained for the other task"
    with threads_for(len(rows)):
        if not classes:
            return Predictions(actual, model.predict(rows).astype(float), None, None, "")
        probabilities = model.predict_proba(rows)
    return Predictions(actual, np.asarray(classes)[probabilities.argmax(axis=1)], probabilities, classes, "")


def unseen_rows(training: bytes | None, test: "pd.DataFrame") -> np.ndarray:
    """Which test rows are not among another revision's training rows (compared on the columns
    both have): a model scored on rows it trained on would look better than it is."""
    import pandas as pd

    if training is None:
        return np.ones(len(test), dtype=bool)
    trained = pd.read_parquet(io.BytesIO(training))
    common = [name for name in test.columns if name in trained.columns]
    seen = pd.util.hash_pandas_object(trained[common], index=False)
    return ~pd.util.hash_pandas_object(test[common], index=False).isin(seen).to_numpy()


def compare_with(read, against: str, paths: dict[str, Path], head: Predictions, summary: dict):
    """This change's predictions against the revision `read` reads: paired on the same test rows,
    else its model scored on this change's test rows, else each side on its own; None when the
    other revision has neither predictions nor a model this change's task can use."""
    data = read(paths["predictions"], binary=True)
    base = compare.read_predictions(io.BytesIO(data)) if data is not None else None
    positive = summary.get("positive_class")
    if base is not None and base.fingerprint == head.fingerprint and base.task == head.task:
        intervals = compare.paired(base, head, positive)
        identical = np.array_equal(base.predicted, head.predicted)
        return Comparison(against, "same", intervals, len(head.actual), identical=identical)
    import pandas as pd

    test = pd.read_parquet(paths["test"])
    unseen = unseen_rows(read(paths["train"], binary=True), test)
    rescored = "all of these test rows were among its training rows"
    if unseen.any():
        rescored = model_predictions(read, paths["model"], test[unseen], head.actual[unseen])
    if isinstance(rescored, Predictions):
        try:
            intervals = compare.paired(rescored, head.subset(unseen), positive)
            return Comparison(against, "rescored", intervals, int(unseen.sum()), base_rows=len(head.actual))
        except ValueError:  # its classes are not these test rows' classes
            rescored = "its model predicts classes these test rows do not have"
    if base is None or base.task != head.task:
        return None
    theirs_positive = (read(paths["summary"]) or {}).get("positive_class")  # its own: the classes may differ
    mine, theirs = compare.alone(head, positive), compare.alone(base, theirs_positive)
    shared = {name: interval for name, interval in mine.items() if name in theirs}
    return Comparison(against, "apart", shared, len(head.actual), theirs, len(base.actual), why=rescored)


def verdict_sentence(comparison: Comparison, summary: dict) -> tuple[str, str]:
    """The comparison's verdict and its one sentence: the headline metric's change, its interval,
    the test rows it rests on, and better, worse or within noise."""
    name = comparison.headline
    shown, verdict = unit(name, summary), comparison.verdict(name)
    interval, rows = comparison.intervals[name], f"{comparison.rows:,}"
    if comparison.how == "apart":
        theirs = comparison.base[name]
        text = (
            f"{shown} {interval.head:.4f} (95% interval {interval.low:.4f} to {interval.high:.4f}) on this change's "
            f"{rows} test rows against {theirs.head:.4f} ({theirs.low:.4f} to {theirs.high:.4f}) "
            f"on {comparison.against}'s "
            f"{comparison.base_rows:,}: not directly comparable (other test rows; {comparison.why}); "
            f"the two intervals {'overlap' if verdict == 'within noise' else 'do not overlap'}: **{verdict}**."
        )
        return verdict, text
    on = f"the same {rows} test rows"
    if comparison.how == "rescored":
        on = (
            f"the {rows} of this change's {comparison.base_rows:,} test rows that {comparison.against}'s model did "
            "not train on (the test rows changed: that model scored on them)"
        )
    same = " (the same prediction on every row)" if comparison.identical else ""
    text = (
        f"{shown} {interval.base:.4f} → {interval.head:.4f} against {comparison.against} ({interval.change:+.4f}, "
        f"95% interval {interval.low:+.4f} to {interval.high:+.4f}) on {on}{same}: **{verdict}**."
    )
    return verdict, text


def comparison_table(comparison: Comparison, order: list[str], summary: dict) -> list[str]:
    """A row per metric, the headline first, each with its interval and its own verdict."""
    names = [comparison.headline] + [n for n in order if n in comparison.intervals and n != comparison.headline]
    rows = []
    if comparison.how == "apart":
        rows += ["| metric | base (own 95% interval) | this change (own 95% interval) | |", "|---|---|---|---|"]
        for name in names:
            mine, theirs = comparison.intervals[name], comparison.base[name]
            cells = [f"{side.head:.4f} ({side.low:.4f} to {side.high:.4f})" for side in (theirs, mine)]
            arrow = compare.verdict_arrow(comparison.verdict(name))
            shown = f"**{unit(name, summary)}**" if name == comparison.headline else unit(name, summary)
            rows.append(f"| {shown} | {cells[0]} | {cells[1]} | {arrow} |")
        return rows
    rows += ["| metric | base | this change | change (95% interval) | |", "|---|---:|---:|---|---|"]
    for name in names:
        i = comparison.intervals[name]
        shown = f"**{unit(name, summary)}**" if name == comparison.headline else unit(name, summary)
        rows.append(
            f"| {shown} | {i.base:.4f} | {i.head:.4f} | {i.change:+.4f} ({i.low:+.4f} to {i.high:+.4f}) "
            f"| {compare.verdict_arrow(i.verdict)} |"
        )
    return rows


def test_rows_line(head: Predictions, scores: dict, base_scores: dict | None, summary: dict, comparison) -> str:
    """How many test rows, per class with each class's recall, which class the scores are about,
    and how the intervals were drawn."""
    text = f"Test rows: {len(head.actual):,}"
    if head.task == "classification":
        labels, numbers = np.unique(head.actual, return_counts=True)
        counts = {str(labels[i]): int(numbers[i]) for i in np.argsort(-numbers, kind="stable")}
        # The base's recall only when it was measured on the same rows.
        same = comparison is not None and comparison.how == "same"
        recalls = [(base_scores or {}).get("recall_per_class", {}) if same else {}, scores.get("recall_per_class", {})]
        per_class = []
        for label, count in list(counts.items())[:SHOWN]:
            recall = " → ".join(f"{side[label]:.2f}" for side in recalls if label in side)
            per_class.append(f"{count:,} `{label}`" + (f" (recall {recall})" if recall else ""))
        more = f" and {len(counts) - SHOWN} more classes" if len(counts) > SHOWN else ""
        text += ": " + ", ".join(per_class) + more + ". "
        positive = summary.get("positive_class")
        text += (
            f"Precision, recall and F1 are of the positive class `{positive}`. "
            if positive is not None
            else "Precision, recall and F1 are averaged over the classes. "
        )
    else:
        text += f". RMSE and MAE are in units of the target `{summary.get('target', 'target')}`. "
    if comparison is not None:
        intervals = comparison.intervals.values()
        stratified = " within each class" if head.task == "classification" else ""
        text += (
            f"95% intervals: bootstrap of the test rows{stratified}, {compare.RESAMPLES:,} resamples (seed "
            f"{compare.SEED}){', paired (both models scored on each resample)' if comparison.how != 'apart' else ''}"
        )
        fewer = [f"{i.name} on {i.resamples:,}" for i in intervals if 0 < i.resamples < compare.RESAMPLES]
        fewer += [f"{i.name}'s from DeLong's variance (normal)" for i in intervals if not i.resamples]
        skipped = [f"{i.name} undefined on {i.skipped:,}, left out" for i in intervals if i.skipped]
        text += "".join(f"; {note}" for note in fewer + skipped) + "."
    return text


def estimator_section(base_params: dict | None, head_params: dict | None) -> list[str]:
    """Both estimators' settings, when the estimator changed: the params diff shows only what changed."""
    train = [(params or {}).get("train", {}) for params in (base_params, head_params)]
    chosen = [side.get("estimator") for side in train]
    if not all(chosen) or chosen[0] == chosen[1]:
        return []
    settings = [side.get(name) or {} for side, name in zip(train, chosen, strict=True)]
    lines = [f"### Estimator: `{chosen[0]}` → `{chosen[1]}`", ""]
    lines += [f"| setting | base (`{chosen[0]}`) | this change (`{chosen[1]}`) |", "|---|---|---|"]
    for key in dict.fromkeys([*settings[0], *settings[1]]):
        cells = [json.dumps(side[key]) if key in side else "–" for side in settings]
        lines.append(f"| {key} | {cells[0]} | {cells[1]} |")
    return [*lines, ""]


def build_report(base: str, base_name: str, output: Path, production: str = "") -> Path:
    check_revision(base)
    params = dvc_table(output / "params.md", f"dvc params diff {base} --md --no-path")
    metrics = dvc_table(output / "metrics.md", f"dvc metrics diff {base} --all --md --no-path --precision 4")
    if production:  # the version GTO says is in production, and DVC's metrics table against it
        deployed = dvc_table(
            output / "production.md", f"dvc metrics diff {production} --all --md --no-path --precision 4"
        )
    # Where the stages wrote, as dvc.yaml declares it: evaluate's metrics file (in the directory
    # of its plots) and predictions, train's model, prepare's first dep (the raw data) and its
    # output directory (the test rows, the summary).
    metrics_file, raw = declared("evaluate", "metrics")[0], declared("prepare", "deps")[0]
    prepared, evaluation = declared("prepare")[0], metrics_file.parent
    [predictions] = [path for path in declared("evaluate") if path.name == PREDICTIONS] or [evaluation / PREDICTIONS]
    paths = {
        "predictions": predictions,
        "model": declared("train")[0],
        "test": prepared / TEST,
        "train": prepared / TRAIN,
        "summary": prepared / SUMMARY,
    }
    summary = prepared / SUMMARY
    read_base, read_head = reader(base), reader(None)
    scores, head_summary = read_head(metrics_file), read_head(summary) or {}
    if scores is None or not predictions.is_file():
        raise PipelineError(f"{metrics_file} or {predictions} is missing; run `dvc repro` (or `dvc pull`) first.")
    head = compare.read_predictions(predictions)
    name = f"`{base_name}` at `{base}`" if base_name else f"`{base}`"
    base_scores = read_base(metrics_file)
    against = compare_with(read_base, f"`{base_name or base}`", paths, head, head_summary)
    lines = [f"## Model report: {WORKSPACE} vs {name}", ""]
    verdicts = []
    if against is not None:
        verdicts.append(verdict_sentence(against, head_summary))
        lines += [verdicts[-1][1], ""]
    elif base_scores is None:
        lines += [f"{name} has no metrics yet (no `dvc.lock`, or its outputs were never pushed): no verdict.", ""]
    else:
        lines += [
            f"{name} has no test-row predictions and no model these test rows can be scored with: no verdict.",
            "",
        ]
    lines += too_good_section(read_head(evaluation / WARNINGS))
    lines += ["### Metrics (test set)", ""]
    lines += comparison_table(against, score_names(scores), head_summary) if against else [metrics]
    lines += ["", test_rows_line(head, scores, base_scores, head_summary, against), ""]
    lines += split_lines(read_base(summary), head_summary)
    if production:
        lines += [f"### Against the model in production (`{production}`)", ""]
        deployed_against = compare_with(reader(production), f"production (`{production}`)", paths, head, head_summary)
        if deployed_against is not None:
            verdicts.append(verdict_sentence(deployed_against, head_summary))
            lines += [verdicts[-1][1], "", *comparison_table(deployed_against, score_names(scores), head_summary), ""]
        else:
            lines += [deployed, ""]
    lines += baseline_section(scores)
    lines += ["### Parameters", "", params or "No parameter changed.", ""]
    base_params, head_params = git_file(base, "params.yaml"), Path("params.yaml")
    lines += estimator_section(
        yaml.safe_load(base_params) if base_params else None,
        yaml.safe_load(head_params.read_text(encoding="utf-8")) if head_params.exists() else None,
    )
    lock = Path("dvc.lock")
    head_lock = lock.read_text() if lock.exists() else None
    if raw_data_hash(git_file(base, "dvc.lock"), raw) != raw_data_hash(head_lock, raw):
        lines += data_section(read_base(summary), head_summary)

    base_label = f"base ({base_name or base})"
    sides = {base_label: read_plots(read_base, evaluation), WORKSPACE: read_plots(read_head, evaluation)}
    aucs = {base_label: (base_scores or {}).get("roc_auc"), WORKSPACE: scores.get("roc_auc")}
    charts = [
        curve_chart("roc", sides, output, aucs),
        curve_chart("precision_recall", sides, output),
        confusion_chart(sides, output),
        predictions_chart(sides, output),
        importance_chart(sides, output),
    ]
    lines += ["### Plots", ""] + [f"![{chart.stem}](./{chart.name})" for chart in charts if chart] + [""]
    report = output / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    # One line per verdict, for the merge request's gate (ci/pipeline.sh, verdict_gate).
    plain = [f"{verdict}: {text.replace('**', '')}" for verdict, text in verdicts]
    (output / "verdict.txt").write_text("".join(line + "\n" for line in plain), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="git revision to compare with (default: main)")
    parser.add_argument("--base-name", default="", help="what to call the base in the report, e.g. its branch")
    parser.add_argument("--output", type=Path, default=Path("report"), help="folder with DVC's tables; gets report.md")
    parser.add_argument("--production", default="", help="version tag in production, if any")
    args = parser.parse_args(argv)
    report = build_report(args.base, args.base_name, args.output, args.production)
    print(f"report: {report}")


if __name__ == "__main__":
    run_main(main)
