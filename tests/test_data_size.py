"""A team's own, larger data: 200,000 generated rows run through the default bake. The plot files
stay small, the metrics are those scikit-learn computes on the whole test set, and the merge
request report is built against the bundled data's commit. `dvc plots` draws the confusion
counts as DVC's HTML pages do (vega-lite under Node)."""

import json
import re
from pathlib import Path

import pytest
import yaml

from harness.plots import drawn_texts
from harness.project import (
    bake_defaults,
    build_report,
    commit_first_model,
    package_name,
    project_env,
    ran_stages,
    run,
    use_generated_data,
)

pytestmark = pytest.mark.slow

ROWS = 200_000
PLOT_FILE_LIMIT = 50_000  # bytes, whatever the number of rows
SKLEARN_PLOTS = Path("reports/evaluation/plots/sklearn")
CONFUSION = str(SKLEARN_PLOTS / "confusion_matrix.json")

# scikit-learn on the whole prepared test set, in the project's environment: the model's scores
# for the positive class prepare chose, and those of the most frequent training class.
DIRECT = """
import json
import pandas as pd
from sklearn import metrics
from sklearn.dummy import DummyClassifier
from {package}.model_file import load_model

summary = json.load(open("data/prepared/summary.json"))
positive = summary["positive_class"]
test = pd.read_parquet("data/prepared/test.parquet")
train_labels = pd.read_parquet("data/prepared/train.parquet", columns=["target"])["target"]
features, labels = test.drop(columns=["target"]), test["target"]
model = load_model("models/model.skops")
classes = list(model.classes_)
predicted, score = model.predict(features), model.predict_proba(features)[:, classes.index(positive)]
fpr, tpr, _ = metrics.roc_curve(labels == positive, score)
guess = DummyClassifier(strategy="most_frequent").fit(train_labels.to_frame(), train_labels).predict(features)
print(json.dumps({{
    "rows": len(labels),
    "balanced_accuracy": metrics.balanced_accuracy_score(labels, predicted),
    "accuracy": metrics.accuracy_score(labels, predicted),
    "precision": metrics.precision_score(labels, predicted, pos_label=positive),
    "recall": metrics.recall_score(labels, predicted, pos_label=positive),
    "f1": metrics.f1_score(labels, predicted, pos_label=positive),
    "roc_auc": metrics.roc_auc_score(labels == positive, score),
    "recall_per_class": dict(zip(map(str, classes), metrics.recall_score(labels, predicted, average=None).tolist())),
    "baseline": {{
        "balanced_accuracy": metrics.balanced_accuracy_score(labels, guess),
        "accuracy": metrics.accuracy_score(labels, guess),
        "f1": metrics.f1_score(labels, guess, pos_label=positive, zero_division=0),
    }},
    "confusion": metrics.confusion_matrix(labels, predicted).tolist(),
    "roc": [[float(x), float(y)] for x, y in zip(fpr, tpr)],
}}))
"""


def rounded(value):
    """As evaluate writes a score, or each of a section's scores."""
    return {name: rounded(inner) for name, inner in value.items()} if isinstance(value, dict) else round(value, 6)


def use_estimator(project: Path, name: str, **hyper) -> None:
    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["train"]["estimator"] = name
    params["train"][name].update(hyper)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def test_generated_rows_keep_plot_files_small_metrics_exact_and_the_report_built(tmp_path):
    project = bake_defaults(tmp_path)
    # One OpenMP thread: the suite keeps both cores busy, and OpenMP's threads waiting for each
    # other on a busy machine made this test several times slower.
    env = project_env(project, OMP_NUM_THREADS="1")
    commit_first_model(project, env)  # the base: the bundled data's model
    use_generated_data(project, ROWS)
    use_estimator(project, "hist_gradient_boosting", max_iter=20)  # fewer iterations: quality is not the point
    assert ran_stages(run(["dvc", "repro"], project, env).stdout) == ["prepare", "train", "evaluate"]

    for plot in (project / SKLEARN_PLOTS).glob("*.json"):
        assert plot.stat().st_size < PLOT_FILE_LIMIT, plot.name

    direct = json.loads(run(["python", "-c", DIRECT.format(package=package_name(project))], project, env).stdout)
    assert direct["rows"] == ROWS // 4
    written = json.loads((project / "reports/evaluation/metrics.json").read_text())
    assert written == {name: rounded(direct[name]) for name in written}
    confusion = json.loads((project / CONFUSION).read_text())
    assert {(c["actual"], c["predicted"]): c["count"] for c in confusion} == {
        (str(a), str(p)): direct["confusion"][a][p] for a in (0, 1) for p in (0, 1)
    }
    roc = [[p["fpr"], p["tpr"]] for p in json.loads((project / SKLEARN_PLOTS / "roc.json").read_text())["roc"]]
    assert roc[0] == direct["roc"][0] and roc[-1] == direct["roc"][-1]
    assert len(roc) < len(direct["roc"]) and all(point in direct["roc"] for point in roc)

    report = build_report(project, "HEAD", env).read_text()
    assert re.search(r"\| train\.hist_gradient_boosting\.max_iter +\| 100 +\| 20 +\|", report), report
    assert re.search(r"\| accuracy +\| 0\.\d+ +\| 0\.\d+ +\|", report), report
    images = re.findall(r"!\[[^\]]*\]\(\./([^)]+)\)", report)
    assert set(images) == {"roc.png", "precision_recall.png", "confusion_matrix.png", "feature_importance.png"}


def test_dvc_plots_draw_the_confusion_counts_of_both_revisions(bake):
    project = bake()
    env = project_env(project)
    commit_first_model(project, env)
    use_estimator(project, "linear")
    run(["dvc", "repro"], project, env)
    specs = json.loads(run(["dvc", "plots", "diff", "HEAD", "--json"], project, env).stdout)["data"]
    [confusion] = specs[CONFUSION]
    assert sorted(confusion["revisions"]) == ["HEAD", "workspace"]
    spec = confusion["content"]
    cells = spec["data"]["values"]
    assert {cell["rev"] for cell in cells} == {"HEAD", "workspace"} and all("count" in cell for cell in cells)

    def drawn(spec: dict) -> dict:  # the numbers in the cells (other texts are titles and labels)
        cells = [(t["datum"], t["text"]) for t in drawn_texts(spec) if "actual" in t["datum"]]
        return {(d["rev"], d["actual"], d["predicted"]): int(text.replace(",", "")) for d, text in cells}

    expected = {(cell["rev"], cell["actual"], cell["predicted"]): cell["count"] for cell in cells}
    assert drawn(spec) == expected
    # A revision written before counts has one entry per test row: drawn the same.
    per_row = [{**cell, "rev": "per row"} for cell in cells if cell["rev"] == "HEAD" for _ in range(cell["count"])]
    for cell in per_row:
        del cell["count"]
    spec["data"]["values"] = cells + per_row
    expected.update({("per row", a, p): n for (rev, a, p), n in expected.items() if rev == "HEAD"})
    assert drawn(spec) == expected
