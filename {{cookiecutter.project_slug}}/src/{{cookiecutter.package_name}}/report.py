"""Compare this workspace with another git revision: the merge-request report.

    mkdir -p report
    dvc params diff main --md --no-path > report/params.md
    dvc metrics diff main --all --md --no-path --precision 4 > report/metrics.md
    python -m {{cookiecutter.package_name}}.report --base main --output report

writes `report/report.md`: DVC's own tables of the changed parameters and of the metrics (with
`--production model@vX.Y.Z`, also `report/production.md`: the metrics against that version), and PNG
charts that draw both sides together (DVC renders no images). CI posts it to the merge request
with CML; run the same commands locally to preview it. The base revision's plot data is read
through DVC, which fetches it from the remote when it is not in the local cache.
"""

import argparse
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import yaml
from dvc.api import DVCFileSystem
from dvc.exceptions import DvcException
from dvc_data.index import DataIndexError

from .config import (
    IMAGES,
    LOWER_IS_BETTER,
    PLOT_DATA,
    SUMMARY,
    WARNINGS,
    PipelineError,
    declared,
    run_main,
    score_names,
    task_of,
)

CURVES = {"roc": ("fpr", "tpr", "ROC curve"), "precision_recall": ("recall", "precision", "Precision-recall curve")}
WORKSPACE = "this change"
SHOWN = 10  # columns or classes the data section lists, so a wide table keeps the comment short


def reader(rev: str | None) -> Callable[[Path], object]:
    """Read the pipeline's JSON files of the workspace (None) or of a git revision.

    One DVCFileSystem serves every file of a revision: it fetches DVC-tracked files from the
    remote when they are not in the local cache, and opening it once is far cheaper than once per
    file. A file that is missing, or whose data never reached the remote, reads as None.
    """
    fs = None if rev is None else DVCFileSystem(url=".", rev=rev)

    def read(path: Path):
        try:
            text = path.read_text(encoding="utf-8") if fs is None else fs.read_text(str(path), encoding="utf-8")
        except (FileNotFoundError, DvcException, DataIndexError):
            return None
        return json.loads(text)

    return read


def curve_chart(kind: str, sides: dict[str, dict], output: Path) -> Path | None:
    """Both sides' curves on one chart (DVCLive's `{kind: [{x: .., y: ..}, ...]}` data)."""
    x, y, title = CURVES[kind]
    curves = {label: plots[kind][kind] for label, plots in sides.items() if plots.get(kind)}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
    for label, points in curves.items():
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
    for label, rows in points.items():
        scatter.scatter([p["actual"] for p in rows], [p["predicted"] for p in rows], s=12, alpha=0.6, label=label)
        residuals.hist([p["residual"] for p in rows], bins=30, alpha=0.5, label=label)
    scatter.set(xlabel="actual", ylabel="predicted", title="Predicted against actual (test rows)")
    residuals.set(xlabel="actual - predicted", ylabel="rows", title="Residuals")
    scatter.legend()
    residuals.legend()
    path = output / "predictions.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def read_plots(read: Callable[[Path], object], evaluation: Path) -> dict:
    plots = {}
    for name in (*CURVES, "confusion_matrix", "predictions"):
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
    if margin > 0:
        verdict = f"The model beats always predicting {guess} by {margin:.4f} {headline}."
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

    line = f"Test rows: {said(head)}."
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


def build_report(base: str, base_name: str, output: Path, production: str = "") -> Path:
    check_revision(base)
    params = dvc_table(output / "params.md", f"dvc params diff {base} --md --no-path")
    metrics = dvc_table(output / "metrics.md", f"dvc metrics diff {base} --all --md --no-path --precision 4")
    if production:  # the version GTO says is in production, and DVC's metrics table against it
        deployed = dvc_table(
            output / "production.md", f"dvc metrics diff {production} --all --md --no-path --precision 4"
        )
    # Where the stages wrote, as dvc.yaml declares it: evaluate's metrics file (in the directory
    # of its plots), prepare's first dep (the raw data) and its output directory (the summary).
    metrics_file, raw = declared("evaluate", "metrics")[0], declared("prepare", "deps")[0]
    summary, evaluation = declared("prepare")[0] / SUMMARY, metrics_file.parent
    read_base, read_head = reader(base), reader(None)
    scores = read_head(metrics_file)
    if scores is None:
        raise PipelineError(f"{metrics_file} is missing; run `dvc repro` (or `dvc pull`) first.")
    name = f"`{base_name}` at `{base}`" if base_name else f"`{base}`"
    lines = [f"## Model report: {WORKSPACE} vs {name}", ""]
    if read_base(metrics_file) is None:
        lines += [f"> {name} has no metrics yet (no `dvc.lock`, or its outputs were never pushed).", ""]
    lines += ["### Parameters", "", params or "No parameter changed.", ""]
    lines += ["### Metrics (test set)", "", metrics, ""]
    lines += split_lines(read_base(summary), read_head(summary)) + baseline_section(scores)
    lines += too_good_section(read_head(evaluation / WARNINGS))
    if production:
        lines += [f"### Against the model in production (`{production}`)", "", deployed, ""]
    lock = Path("dvc.lock")
    head_lock = lock.read_text() if lock.exists() else None
    if raw_data_hash(git_file(base, "dvc.lock"), raw) != raw_data_hash(head_lock, raw):
        lines += data_section(read_base(summary), read_head(summary))

    sides = {
        f"base ({base_name or base})": read_plots(read_base, evaluation),
        WORKSPACE: read_plots(read_head, evaluation),
    }
    charts = [
        curve_chart("roc", sides, output),
        curve_chart("precision_recall", sides, output),
        confusion_chart(sides, output),
        predictions_chart(sides, output),
    ]
    importance = evaluation / IMAGES / "feature_importance.png"
    if importance.exists():
        charts.append(Path(shutil.copy(importance, output / "feature_importance.png")))
    lines += ["### Plots", ""] + [f"![{chart.stem}](./{chart.name})" for chart in charts if chart] + [""]
    report = output / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
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
