"""A team's own table, as it really is, through the baked README's "Using your own data": real
public tables that packages ship (Palmer penguins, clean and raw; scikit-learn's diabetes), each
through `dvc repro`, the merge-request report against the bundled data's commit, and `predict`."""

import json
from pathlib import Path

import numpy as np
import palmerpenguins
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes

from harness.project import (
    bake_defaults,
    build_report,
    commit_first_model,
    package_name,
    project_env,
    ran_stages,
    run,
    use_own_table,
)

pytestmark = pytest.mark.slow

PENGUINS = Path(palmerpenguins.__file__).parent / "data"
# What the raw table holds that is no feature: a study and sample number (the sample number counts
# up within each species, so it gives the species away), an ID, a date, the species' full name
# (for the clutch target) and comments ("Nest never observed with full clutch.").
RAW_NOT_FEATURES = ["studyName", "Sample Number", "Individual ID", "Date Egg", "Comments"]


@pytest.fixture
def baked(tmp_path) -> Path:
    return bake_defaults(tmp_path)


@pytest.fixture
def project(tmp_path) -> Path:
    """The defaults baked, the bundled data's first model committed on main (the report's base),
    and a branch for the new data."""
    project = bake_defaults(tmp_path)
    commit_first_model(project, project_env(project))
    run(["git", "checkout", "--quiet", "-b", "own-data"], project)
    return project


def repro(project: Path) -> tuple[str, dict, dict]:
    result = run(["dvc", "repro"], project)
    assert ran_stages(result.stdout) == ["prepare", "train", "evaluate"]
    metrics = json.loads((project / "reports/evaluation/metrics.json").read_text())
    summary = json.loads((project / "data/prepared/summary.json").read_text())
    return result.stdout, metrics, summary


def predict(project: Path, rows: pd.DataFrame, tmp_path: Path, check: bool = True):
    rows.to_csv(tmp_path / "rows.csv", index=False)
    command = ["python", "-m", f"{package_name(project)}.predict", str(tmp_path / "rows.csv")]
    result = run([*command, "--out", str(tmp_path / "predicted.csv")], project, check=check)
    return result if not check else pd.read_csv(tmp_path / "predicted.csv")


def model_inputs(project: Path) -> list[str]:
    """The raw columns the saved model feeds its estimator, read from the model file itself."""
    code = (
        f"from {package_name(project)}.model_file import load_model, model_columns; "
        "c = model_columns(load_model('models/model.skops')); print('\\n'.join(c['numeric'] + c['categorical']))"
    )
    return run(["python", "-c", code], project).stdout.splitlines()


def monthly_sales(months: int = 240) -> pd.DataFrame:
    """Sales that grow every month and peak with the summer's heat, rows in no particular order."""
    rng = np.random.default_rng(2)
    start = pd.date_range("2000-01-01", periods=months, freq="MS")
    temperature = 15 + 10 * np.sin(2 * np.pi * (start.month - 4) / 12) + rng.normal(size=months)
    sales = 100 + 0.5 * np.arange(months) + 0.8 * temperature + rng.normal(scale=3, size=months)
    table = pd.DataFrame({"month": start.strftime("%Y-%m-%d"), "year": start.year, "temperature": temperature})
    return table.assign(sales=sales).sample(frac=1, random_state=0, ignore_index=True)


def test_a_series_split_at_random_is_flagged_and_split_by_time_scores_a_forecast(project):
    """A random split of monthly sales tests on months whose neighbours were trained on: R² near
    0.99, from `year` alone, which a forecast never gets. prepare suggests the time split, evaluate
    names `year` as carrying the model; with the time split the model is tested on the latest five
    years, and the report says which rows each side tested on."""
    use_own_table(project, monthly_sales(), target="sales")
    output, at_random, summary = repro(project)
    [warning] = [line for line in output.splitlines() if line.startswith("prepare: warning")]
    assert "'month' (dates)" in warning and "set prepare.split: time and data.time_column: month" in warning
    assert summary["split"] == {"method": "random", "test_size": 0.25, "stratified": False}
    [flag] = json.loads((project / "reports/evaluation/warnings.json").read_text())
    assert flag["check"] == "one_column" and flag["columns"] == ["year"]
    assert f"evaluate: warning: {flag['message']}" in output
    report = build_report(project, "main").read_text()
    assert "Split: a random 25% of rows (`prepare.split: random`).\n" in report
    assert f"### Too good to be true?\n\n- {flag['message']}\n" in report

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["prepare"]["split"], params["data"]["time_column"] = "time", "month"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output, by_time, summary = repro(project)
    assert "warning" not in output and summary["split"]["test_from"] == "2015-01-01"
    assert at_random["r2"] > 0.9 and by_time["r2"] < at_random["r2"] - 0.5
    report = build_report(project, "main").read_text()
    assert (
        "Split: the latest 25% of rows by `month`, from 2015-01-01 (`prepare.split: time`). The base's: a "
        "random 25% of rows, stratified by class (`prepare.split: random`); the two are scored on different test rows."
    ) in report
    assert "Too good to be true?" not in report


def test_penguins_species_from_the_bundled_file(project, tmp_path):
    bundled = project.parent / "penguins.csv"  # the file the template ships for dataset=penguins
    bundled.write_bytes((PENGUINS / "penguins.csv").read_bytes())
    table = pd.read_csv(bundled)
    use_own_table(project, table, target="species")
    output, metrics, summary = repro(project)
    assert "prepare: task classification (the target is not numeric" in output
    assert summary["categorical"] == ["island", "sex"] and len(summary["numeric"]) == 5
    assert summary["data"]["missing"]["sex"] == round(11 / 344, 4)
    assert set(metrics["recall_per_class"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert metrics["balanced_accuracy"] > 0.9 > metrics["baseline"]["balanced_accuracy"] + 0.5

    report = build_report(project, "main").read_text()
    assert "The model beats always predicting the most frequent class by" in report
    assert "> The raw data changed" in report and "| rows | 569 | 344 |" in report
    assert "| columns added | | `species`, `island`" in report
    assert "| rows of class `Gentoo` | – | 124 |" in report

    rows = table.drop(columns="species").head(20)  # raw rows, missing values included
    predicted = predict(project, rows, tmp_path)
    assert list(predicted.columns[-4:]) == [
        "predicted_species", "probability_Adelie", "probability_Chinstrap", "probability_Gentoo",
    ]  # fmt: skip
    assert (predicted["predicted_species"] == table["species"].head(20)).mean() > 0.9


def test_diabetes_is_a_regression_scored_against_the_mean(project, tmp_path):
    table = load_diabetes(as_frame=True).frame  # scikit-learn's bundled copy, a continuous target
    use_own_table(project, table, target="target")
    output, metrics, summary = repro(project)
    assert "prepare: task regression (the target is numeric with 214 distinct values" in output
    assert set(metrics) == {"rmse", "mae", "r2", "baseline"} and "nan" not in json.dumps(metrics).lower()
    assert metrics["rmse"] < metrics["baseline"]["rmse"] and metrics["r2"] > 0.2
    assert (project / "reports/evaluation/plots/sklearn/predictions.json").exists()

    report = build_report(project, "main").read_text()
    assert "| rmse |" in report and "The model beats always predicting the training mean by" in report
    assert "| task | classification | regression |" in report and "| target `mean` | – | 152.1" in report
    assert "![predictions](./predictions.png)" in report  # beside the base's classification charts

    predicted = predict(project, table.drop(columns="target").head(5), tmp_path)
    assert list(predicted.columns) == [*table.columns.drop("target"), "predicted_target"]

    # Rounded to tens, the target still has too many values to be classes.
    use_own_table(project, table.assign(target=(table["target"] / 10).round() * 10), target="target")
    prepared = run(["dvc", "repro", "prepare"], project).stdout
    assert "prepare: task regression (the target is numeric with 34 distinct values" in prepared


def test_a_rare_no_is_the_positive_class_and_the_baseline_shows_a_yes_sayer(project, tmp_path):
    """Clutch completion: 308 Yes, 36 No. Saying Yes to every row scores accuracy 0.9; the scores
    are about No, the rarer class, so that model shows as F1 0 and balanced accuracy 0.5."""
    table = pd.read_csv(PENGUINS / "penguins-raw.csv")
    use_own_table(project, table, target="Clutch Completion", drop=RAW_NOT_FEATURES)
    output, metrics, summary = repro(project)
    assert summary["positive_class"] == "No" and "prepare: positive class 'No'" in output
    assert metrics["baseline"]["accuracy"] > 0.85 and metrics["baseline"]["f1"] == 0
    assert metrics["baseline"]["balanced_accuracy"] == 0.5
    assert set(metrics["recall_per_class"]) == {"No", "Yes"} and metrics["recall"] == metrics["recall_per_class"]["No"]
    report = build_report(project, "main").read_text()
    beaten = metrics["balanced_accuracy"] > 0.5
    assert ("The model beats always predicting" in report) == beaten
    assert ("**The model does not beat always predicting the most frequent class**" in report) == (not beaten)

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["positive_class"] = "Yes"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _, metrics, summary = repro(project)
    assert summary["positive_class"] == "Yes" and metrics["recall"] == metrics["recall_per_class"]["Yes"]


def test_ids_dates_and_free_text_are_named_then_dropped_and_never_reach_the_model(project, tmp_path):
    table = pd.read_csv(PENGUINS / "penguins-raw.csv").drop(columns=["Sample Number", "studyName"])
    use_own_table(project, table, target="Species")
    output, _, summary = repro(project)
    [warning] = [line for line in output.splitlines() if line.startswith("prepare: warning")]
    assert "'Individual ID' (free text" in warning and "'Date Egg' (dates)" in warning and "data.drop" in warning
    assert {"Individual ID", "Date Egg"} <= set(summary["ignored"])

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["drop"] = ["Individual ID", "Date Egg", "Comments"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output, metrics, _ = repro(project)
    assert "prepare: warning" not in output
    inputs = model_inputs(project)
    assert not {"Individual ID", "Date Egg", "Comments", "Species"} & set(inputs)
    assert {"Island", "Sex", "Body Mass (g)"} <= set(inputs)
    assert metrics["balanced_accuracy"] > 0.9

    # The raw rows as they come, the left-out columns included: copied to the output.
    predicted = predict(project, table.drop(columns="Species").head(3), tmp_path)
    assert list(predicted["Individual ID"]) == list(table["Individual ID"].head(3))


def test_a_european_spreadsheet_export_trains_and_a_failed_repro_goes_back(project):
    """Penguins as a spreadsheet in Europe exports them: `;`-separated, decimal commas, Windows'
    encoding, a header with a trailing space, a row number with a blank, a stray `?` in a number
    column. Then an empty file: one line, and the README's way back to the committed data."""
    table = pd.read_csv(PENGUINS / "penguins.csv").assign(island=lambda t: t["island"].replace("Biscoe", "Biscoë"))
    table.insert(0, "row", range(1, len(table) + 1))
    table = table.astype({"row": object})
    table.loc[10, "row"] = None
    table["bill_length_mm"] = table["bill_length_mm"].map(lambda value: str(value).replace(".", ","))
    table.loc[[3, 20], "bill_length_mm"] = "?"  # and the column's blanks are "nan": missing values too
    raw = project / "data/raw/dataset.csv"
    exported = table.to_csv(index=False, sep=";", decimal=",").replace("species", "species ", 1)
    raw.write_bytes(exported.encode("cp1252"))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["target"] = "species"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output, metrics, summary = repro(project)
    assert "prepare: read data/raw/dataset.csv: semicolon-separated, decimal comma, encoding cp1252" in output
    assert "read as numbers, with these cells missing: 'bill_length_mm' ('?')" in output
    assert summary["ignored"] == {"row": "numbers the rows (an ID?)"} and "bill_length_mm" in summary["numeric"]
    assert summary["categorical"] == ["island", "sex"]
    assert "Biscoë" in set(pd.read_parquet(project / "data/prepared/train.parquet")["island"])
    assert metrics["balanced_accuracy"] > 0.9
    run(["git", "add", "--all"], project)
    run(["git", "commit", "--quiet", "-m", "European export"], project)

    raw.write_bytes(b"")
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode != 0
    assert "error: data/raw/dataset.csv is empty: write your table there" in result.stderr
    assert "size: 0" in (project / "data/raw/dataset.csv.dvc").read_text()  # what DVC recorded before prepare ran
    run(["git", "checkout", "data/raw/dataset.csv.dvc"], project)
    run(["dvc", "checkout"], project)
    assert raw.read_bytes() == exported.encode("cp1252")
    assert "up to date" in run(["dvc", "status"], project).stdout


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.assign(empty=None, **{"Clutch Completion": "Yes"}),
            "columns with no value at all: empty (add them to data.drop); "
            "target 'Clutch Completion' needs at least two different values, found 1",
        ),
        (
            lambda t: t.drop(columns="Clutch Completion"),
            "no target column 'Clutch Completion' (the file has 'studyName', 'Sample Number', 'Species', 'Region', "
            "'Island', 'Stage', 'Individual ID', 'Date Egg', 'Culmen Length (mm)', 'Culmen Depth (mm)', "
            "'Flipper Length (mm)', 'Body Mass (g)', 'Sex', 'Delta 15 N (o/oo)', 'Delta 13 C (o/oo)', 'Comments'; "
            "rename your label column or set data.target in params.yaml)",
        ),
    ],
)
def test_bad_data_is_one_line_naming_everything_and_writes_nothing(baked, change, expected):
    project = baked
    table = change(pd.read_csv(PENGUINS / "penguins-raw.csv"))
    use_own_table(project, table, target="Clutch Completion", task="regression", drop=["Comments", "nope"])
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode != 0
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert line.startswith("error: data/raw/dataset.csv: ") and expected in line
    assert "data.drop names columns the file does not have: 'nope'" in line
    assert "Traceback" not in result.stdout + result.stderr
    assert not (project / "data/prepared").exists()


def test_predict_refuses_rows_that_do_not_match_in_one_line(baked, tmp_path):
    project = baked
    table = pd.read_csv(PENGUINS / "penguins.csv")
    use_own_table(project, table, target="species")
    repro(project)
    rows = table.drop(columns=["species", "island"]).assign(colour="blue").head(3)
    result = predict(project, rows, tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'rows.csv'} cannot be predicted: it lacks columns the model needs: island "
        "(add them; empty cells are fine)."
    )
    assert not (tmp_path / "predicted.csv").exists()
