import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{cookiecutter.package_name}} import compare
from {{cookiecutter.package_name}}.compare import Predictions, write_predictions
from {{cookiecutter.package_name}}.config import PipelineError
from {{cookiecutter.package_name}}.report import (
    Comparison,
    baseline_section,
    compare_with,
    comparison_table,
    confusion_chart,
    confusion_counts,
    curve_chart,
    data_section,
    dvc_table,
    estimator_section,
    predictions_chart,
    raw_data_hash,
    split_lines,
    too_good_section,
    unseen_rows,
    verdict_sentence,
)


def test_charts_draw_both_sides(tmp_path):
    roc = {"roc": [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.2, "tpr": 0.9}, {"fpr": 1.0, "tpr": 1.0}]}
    counts = [{"actual": a, "predicted": p, "count": n} for a, p, n in [("0", "0", 5), ("1", "0", 1), ("1", "1", 7)]]
    sides = {"base": {"roc": roc, "confusion_matrix": counts}, "this change": {"roc": roc, "confusion_matrix": counts}}
    assert curve_chart("roc", sides, tmp_path).read_bytes()[:4] == b"\x89PNG"
    assert curve_chart("precision_recall", sides, tmp_path) is None  # no data on either side
    assert confusion_chart(sides, tmp_path).read_bytes()[:4] == b"\x89PNG"


def test_confusion_counts_read_counts_and_older_per_row_files_alike():
    counts = [{"actual": "10", "predicted": "2", "count": 3}, {"actual": "2", "predicted": "2", "count": 4}]
    rows = [{"actual": "10", "predicted": "2"}] * 3 + [{"actual": "2", "predicted": "2"}] * 4
    for pairs in (counts, rows):
        classes, matrix = confusion_counts(pairs)
        assert classes == ["2", "10"]  # numeric labels in numeric order
        assert np.array_equal(matrix, [[4, 0], [3, 0]])


def test_dvc_table_missing_says_which_command_writes_it(tmp_path):
    with pytest.raises(PipelineError, match=r"metrics.md is missing; write it first with `dvc metrics diff main"):
        dvc_table(tmp_path / "metrics.md", "dvc metrics diff main --md")
    (tmp_path / "params.md").write_text("\n", encoding="utf-8")
    assert dvc_table(tmp_path / "params.md", "dvc params diff main --md") == ""  # nothing changed


def test_the_baseline_section_says_by_how_much_the_model_beats_it_or_that_it_does_not():
    useful = {"balanced_accuracy": 0.9, "accuracy": 0.92, "baseline": {"balanced_accuracy": 0.5, "accuracy": 0.9}}
    text = "\n".join(baseline_section(useful))
    assert "| balanced_accuracy | 0.9000 | 0.5000 | +0.4000 |" in text
    assert "The model beats always predicting the most frequent class by 0.4000 balanced_accuracy." in text
    useless = {"balanced_accuracy": 0.5, "accuracy": 0.9, "baseline": {"balanced_accuracy": 0.5, "accuracy": 0.9}}
    assert "**The model does not beat always predicting the most frequent class**" in "\n".join(
        baseline_section(useless)
    )
    worse = {"rmse": 12.0, "mae": 9.0, "r2": -0.1, "baseline": {"rmse": 10.0, "mae": 8.0, "r2": 0.0}}
    text = "\n".join(baseline_section(worse))
    assert (
        "| rmse | 12.0000 | 10.0000 | -2.0000 |" in text and "does not beat always predicting the training mean" in text
    )
    assert baseline_section({"accuracy": 0.9}) == []  # metrics from before the baseline existed


def test_the_data_section_compares_the_profiles_without_row_data():
    base = {
        "task": "classification",
        "data": {"rows": 100, "columns": ["a", "b", "y"], "missing": {}, "target": {"0": 60, "1": 40}},
    }
    head = {
        "task": "classification",
        "data": {"rows": 120, "columns": ["a", "c", "y"], "missing": {"c": 0.25}, "target": {"0": 70, "1": 50}},
    }
    text = "\n".join(data_section(base, head))
    for row in ("| rows | 100 | 120 |", "| columns added | | `c` |", "| columns removed | `b` | |",
                "| missing in `c` | 0.0% | 25.0% |", "| rows of class `1` | 40 | 50 |"):  # fmt: skip
        assert row in text
    assert "Update `data/README.md`" in text
    assert data_section(base, None) == []
    wide = {"task": "classification", "data": {**head["data"], "columns": [f"x{i}" for i in range(15)]}}
    assert "| columns added | | `x0`, `x1`, `x2`, `x3`, `x4`, `x5`, `x6`, `x7`, `x8`, `x9` and 5 more |" in "\n".join(
        data_section(base, wide)
    )


def test_the_raw_data_hash_is_read_from_dvc_lock():
    lock = "stages:\n  prepare:\n    deps:\n    - path: data/own.csv\n      md5: abc\n"
    assert raw_data_hash(lock, Path("data/own.csv")) == "abc"
    assert raw_data_hash(None, Path("data/own.csv")) is None and raw_data_hash("stages: {}\n", Path("x")) is None


def test_a_regression_chart_draws_both_sides(tmp_path):
    points = [{"actual": float(i), "predicted": i + 0.5, "residual": -0.5} for i in range(10)]
    sides = {"base": {"predictions": points}, "this change": {"predictions": points[:5]}}
    assert predictions_chart(sides, tmp_path).read_bytes()[:4] == b"\x89PNG"
    assert predictions_chart({"base": {}}, tmp_path) is None


def side(truth, right, rng, rows="rows"):
    predicted = np.where(right, truth, np.where(truth == "yes", "no", "yes"))
    yes = np.where(predicted == "yes", 0.9, 0.1) + rng.uniform(-0.05, 0.05, len(truth))
    return Predictions(truth, predicted, np.c_[1 - yes, yes], ["no", "yes"], rows)


def test_the_verdict_is_one_sentence_with_the_change_its_interval_the_rows_and_one_word(tmp_path):
    rng = np.random.default_rng(0)
    truth = np.where(np.arange(400) % 4 == 0, "yes", "no")
    weaker = rng.random(400) < 0.75
    base, head = side(truth, weaker, rng), side(truth, weaker | (rng.random(400) < 0.5), rng)
    summary = {"target": "label", "positive_class": "yes"}
    better = Comparison("`main`", "same", compare.paired(base, head, "yes"), 400)
    verdict, text = verdict_sentence(better, summary)
    assert (
        verdict == "better"
        and text.startswith("balanced_accuracy 0.7")
        and "on the same 400 test rows: **better**." in text
    )
    assert text.count("**") == 2 and "(+0.1383, 95% interval +0.0983 to +0.1767)" in text
    worse = Comparison("`main`", "same", compare.paired(head, base, "yes"), 400)
    assert verdict_sentence(worse, summary)[0] == "worse"
    same = Comparison("`main`", "same", compare.paired(base, base, "yes"), 400, identical=True)
    verdict, text = verdict_sentence(same, summary)
    assert verdict == "within noise" and "(the same prediction on every row): **within noise**." in text
    table = "\n".join(comparison_table(better, ["balanced_accuracy", "accuracy", "roc_auc"], summary))
    assert "| **balanced_accuracy** | 0.7" in table and table.count("▲ better") >= 2
    # RMSE and MAE carry the target's name as their unit.
    values = rng.normal(size=300)
    fits = [Predictions(values, values + rng.normal(scale=s, size=300), None, None, "r") for s in (1.0, 0.5)]
    regression = Comparison("`main`", "same", compare.paired(*fits), 300)
    verdict, text = verdict_sentence(regression, {"target": "price"})
    assert verdict == "better" and text.startswith("rmse (`price`) 1.0") and "against `main` (-0." in text


def test_the_comparison_is_paired_on_the_same_rows_and_otherwise_says_what_it_did(tmp_path):
    rng = np.random.default_rng(1)
    truth = np.where(np.arange(200) % 2 == 0, "yes", "no")
    head = side(truth, rng.random(200) < 0.8, rng)
    files = {}
    for name, rows in (("same", "rows"), ("other", "other rows")):
        base = side(truth, rng.random(200) < 0.8, rng, rows)
        write_predictions(
            tmp_path / f"{name}.parquet", rows, base.actual, base.predicted, base.probabilities, base.classes
        )
        files[name] = (tmp_path / f"{name}.parquet").read_bytes()
    pd.DataFrame({"x": range(200), "label": truth}).to_parquet(tmp_path / "test.parquet")
    paths = {name: Path(name) for name in ("predictions", "model", "train", "summary")}
    paths["test"] = tmp_path / "test.parquet"

    def reading(predictions):
        return lambda path, binary=False: predictions if path == Path("predictions") else None

    summary = {"positive_class": "yes", "target": "label"}
    assert compare_with(reading(files["same"]), "`main`", paths, head, summary).how == "same"
    apart = compare_with(reading(files["other"]), "`main`", paths, head, summary)  # no model to score: apart
    assert apart.how == "apart" and apart.why == "its model is not in the DVC remote"
    verdict, text = verdict_sentence(apart, summary)
    assert "not directly comparable (other test rows; its model is not in the DVC remote)" in text
    assert text.endswith(f"**{verdict}**.") and "on this change's 200 test rows against" in text
    assert compare_with(reading(None), "`main`", paths, head, summary) is None


def test_test_rows_that_another_model_trained_on_are_not_scored():
    test = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "a"], "new": [0, 0, 0]})
    buffer = io.BytesIO()
    pd.DataFrame({"x": [2, 5], "y": ["b", "a"]}).to_parquet(buffer)
    assert list(unseen_rows(buffer.getvalue(), test)) == [True, False, True]
    assert unseen_rows(None, test).all()


def test_the_baseline_verdict_names_a_metric_the_model_loses_on():
    scores = {"balanced_accuracy": 0.62, "accuracy": 0.93, "baseline": {"balanced_accuracy": 0.5, "accuracy": 0.94}}
    text = "\n".join(baseline_section(scores))
    assert "The model beats always predicting the most frequent class by 0.1200 balanced_accuracy." in text
    assert "**It does not beat it on accuracy (0.9300 against 0.9400).**" in text


def test_the_estimators_settings_are_shown_when_the_estimator_changed():
    base = {"train": {"estimator": "linear", "linear": {"C": 1.0}, "random_forest": {"n_estimators": 100}}}
    head = {"train": {**base["train"], "estimator": "random_forest"}}
    text = "\n".join(estimator_section(base, head))
    assert "### Estimator: `linear` → `random_forest`" in text
    assert "| C | 1.0 | – |" in text and "| n_estimators | – | 100 |" in text
    assert estimator_section(base, base) == [] and estimator_section(None, head) == []


def test_the_warnings_and_the_split_are_said():
    warning = {"check": "one_column", "columns": ["total"], "message": "`total` carries 98% of the importance: check"}
    assert too_good_section([warning]) == ["### Too good to be true?", "", f"- {warning['message']}", ""]
    assert too_good_section([]) == too_good_section(None) == []
    by_time = {"split": {"method": "time", "test_size": 0.2, "time_column": "month", "test_from": "2015-01-01"}}
    at_random = {"split": {"method": "random", "test_size": 0.25, "stratified": True}}
    [line, _] = split_lines(by_time, by_time)
    assert line == "Split: the latest 20% of rows by `month`, from 2015-01-01 (`prepare.split: time`)."
    [line, _] = split_lines(at_random, by_time)
    assert line.endswith(
        " The base's: a random 25% of rows, stratified by class (`prepare.split: random`); "
        "the two are scored on different test rows."
    )
    older = {"task": "classification"}  # a summary from before the split was recorded: a random one
    assert (
        split_lines(older, at_random)
        == split_lines(None, at_random)
        == ["Split: a random 25% of rows, stratified by class (`prepare.split: random`).", ""]
    )
    assert split_lines(at_random, None) == []
