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
from dvc.api import DVCFileSystem
from dvc.exceptions import DvcException
from dvc_data.index import DataIndexError

from .config import EVALUATION_DIR, PipelineError, run_main

METRICS_FILE = EVALUATION_DIR / "metrics.json"
PLOTS_DIR = EVALUATION_DIR / "plots"
CURVES = {"roc": ("fpr", "tpr", "ROC curve"), "precision_recall": ("recall", "precision", "Precision-recall curve")}
WORKSPACE = "this change"


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


def read_plots(read: Callable[[Path], object]) -> dict:
    plots = {}
    for name in (*CURVES, "confusion_matrix"):
        data = read(PLOTS_DIR / "sklearn" / f"{name}.json")
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


def build_report(base: str, base_name: str, output: Path, production: str = "") -> Path:
    check_revision(base)
    params = dvc_table(output / "params.md", f"dvc params diff {base} --md --no-path")
    metrics = dvc_table(output / "metrics.md", f"dvc metrics diff {base} --all --md --no-path --precision 4")
    if production:  # the version GTO says is in production, and DVC's metrics table against it
        deployed = dvc_table(
            output / "production.md", f"dvc metrics diff {production} --all --md --no-path --precision 4"
        )
    read_base, read_head = reader(base), reader(None)
    if read_head(METRICS_FILE) is None:
        raise PipelineError(f"{METRICS_FILE} is missing; run `dvc repro` (or `dvc pull`) first.")
    name = f"`{base_name}` at `{base}`" if base_name else f"`{base}`"
    lines = [f"## Model report: {WORKSPACE} vs {name}", ""]
    if read_base(METRICS_FILE) is None:
        lines += [f"> {name} has no metrics yet (no `dvc.lock`, or its outputs were never pushed).", ""]
    lines += ["### Parameters", "", params or "No parameter changed.", ""]
    lines += ["### Metrics (test set)", "", metrics, ""]
    if production:
        lines += [f"### Against the model in production (`{production}`)", "", deployed, ""]

    sides = {f"base ({base_name or base})": read_plots(read_base), WORKSPACE: read_plots(read_head)}
    charts = [
        curve_chart("roc", sides, output),
        curve_chart("precision_recall", sides, output),
        confusion_chart(sides, output),
    ]
    importance = PLOTS_DIR / "images" / "feature_importance.png"
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
