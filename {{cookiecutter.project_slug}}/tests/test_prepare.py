import numpy as np
import pandas as pd
import pytest

from {{cookiecutter.package_name}}.config import SUMMARY, TEST, TRAIN, PipelineError, read_summary
from {{cookiecutter.package_name}}.prepare import prepare

from .conftest import PREPARED, RAW, make_frame, make_messy_frame, make_series


def test_split_is_stratified_and_sized(project, params):
    prepare(params, RAW, PREPARED)
    train, test = pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)
    assert (len(train), len(test)) == (90, 30)
    assert test["label"].value_counts().to_dict() == {0: 15, 1: 15}


def test_split_depends_on_seed(project, params):
    prepare(params, RAW, PREPARED)
    first = (PREPARED / TEST).read_bytes()
    params["seed"] = 1
    prepare(params, RAW, PREPARED)
    assert (PREPARED / TEST).read_bytes() != first


def test_missing_target_column_is_reported_and_nothing_written(project, params):
    make_frame().rename(columns={"label": "y"}).to_csv(RAW, index=False)
    with pytest.raises(PipelineError, match=r"no target column 'label' \(rename your label column"):
        prepare(params, RAW, PREPARED)
    assert not (PREPARED / TRAIN).exists() and not (PREPARED / TEST).exists()


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "a quarter", True])
def test_test_size_outside_unit_interval_is_rejected(project, params, value):
    params["prepare"]["test_size"] = value
    with pytest.raises(PipelineError, match="prepare.test_size must be a number between 0 and 1"):
        prepare(params, RAW, PREPARED)
    assert not (PREPARED / TRAIN).exists()


def test_every_problem_of_the_file_is_reported_at_once(project, params):
    frame = make_frame()
    frame["empty"] = None
    frame.loc[4, "label"] = 7  # a class with a single row
    frame.to_csv(RAW, index=False)
    params["data"]["drop"] = ["nope"]
    params["data"]["positive_class"] = 3
    with pytest.raises(PipelineError) as error:
        prepare(params, RAW, PREPARED)
    message = str(error.value)
    assert "\n" not in message
    for part in (
        "data.drop names columns the file does not have: 'nope'",
        "columns with no value at all: empty (add them to data.drop)",
        "classes with a single row, which cannot be split: 7",
        "data.positive_class is set but 'label' has 3 classes",
    ):
        assert part in message
    assert not (PREPARED / TRAIN).exists() and not (PREPARED / SUMMARY).exists()


def test_single_value_target_and_text_regression_target_are_refused(project, params):
    make_frame(classes=1).to_csv(RAW, index=False)
    with pytest.raises(PipelineError, match="target 'label' needs at least two different values, found 1"):
        prepare(params, RAW, PREPARED)
    make_messy_frame().to_csv(RAW, index=False)
    params["data"]["task"] = "regression"
    with pytest.raises(PipelineError, match="target 'label' is not numeric, as a regression needs"):
        prepare(params, RAW, PREPARED)


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        (["a", "b"] * 30, "classification"),
        ([0, 1, 2] * 20, "classification"),
        (list(np.linspace(0, 9, 60)), "regression"),
    ],
)
def test_auto_task_is_decided_from_the_target_and_printed(project, params, capsys, labels, task):
    frame = make_frame(rows=60)
    frame["label"] = labels
    frame.to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["task"] == task
    assert f"prepare: task {task} (" in capsys.readouterr().out


def test_declared_task_wins_over_auto(project, params):
    frame = make_frame(rows=60)
    frame["label"] = np.arange(60) % 3
    frame.to_csv(RAW, index=False)
    params["data"]["task"] = "regression"
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["task"] == "regression"


def test_positive_class_is_the_rarer_one_unless_declared(project, params, capsys):
    make_messy_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["positive_class"] == "no"
    assert "prepare: positive class 'no'" in capsys.readouterr().out
    params["data"]["positive_class"] = "yes"
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["positive_class"] == "yes"
    params["data"]["positive_class"] = "maybe"
    with pytest.raises(PipelineError, match="data.positive_class 'maybe' is not a value of 'label'"):
        prepare(params, RAW, PREPARED)


def test_ids_dates_and_free_text_are_named_in_one_warning_and_left_out(project, params, capsys):
    make_messy_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    summary = read_summary(PREPARED / SUMMARY)
    assert summary["numeric"] == ["size", "weight"] and summary["categorical"] == ["colour"]
    assert set(summary["ignored"]) == {"id", "visited", "note"}
    [warning] = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert all(f"'{name}'" in warning for name in ("id", "visited", "note")) and "data.drop" in warning
    params["data"]["drop"] = ["id", "visited", "note"]
    prepare(params, RAW, PREPARED)
    assert "warning" not in capsys.readouterr().out
    assert read_summary(PREPARED / SUMMARY)["ignored"] == dict.fromkeys(
        ["id", "visited", "note"], "listed in data.drop"
    )


def test_rows_without_a_target_are_left_out_and_the_profile_is_small(project, params):
    frame = make_messy_frame()
    frame.loc[:9, "label"] = None
    frame.to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    assert len(pd.read_parquet(PREPARED / TRAIN)) + len(pd.read_parquet(PREPARED / TEST)) == 190
    profile = read_summary(PREPARED / SUMMARY)["data"]
    assert profile["rows"] == 200 and profile["columns"] == list(frame.columns)
    assert profile["missing"]["label"] == 0.05 and profile["missing"]["colour"] == round(23 / 200, 4)
    assert sum(profile["target"].values()) == 190


def test_split_keeps_the_raw_values_and_is_the_same_file_each_time(project, params):
    prepare(params, RAW, PREPARED)
    first = (PREPARED / TRAIN).read_bytes(), (PREPARED / TEST).read_bytes()
    prepared = pd.concat([pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)])
    raw = pd.read_csv(RAW)
    assert list(prepared.columns) == list(raw.columns)
    by_alpha = {"by": "alpha", "ignore_index": True}
    pd.testing.assert_frame_equal(prepared.sort_values(**by_alpha), raw.sort_values(**by_alpha))
    prepare(params, RAW, PREPARED)
    assert ((PREPARED / TRAIN).read_bytes(), (PREPARED / TEST).read_bytes()) == first  # dvc.lock stays put


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"alpha,label\n1,0\n2,1,3\n", "Error tokenizing data. C error: Expected 2 fields in line 3, saw 3"),
        (b"alpha,label\n1,\xff\n", "'utf-8' codec can't decode byte 0xff"),
        (b"", "No columns to parse from file"),
    ],
)
def test_unreadable_file_is_reported_as_pandas_reports_it(project, params, content, message):
    RAW.write_bytes(content)
    with pytest.raises(PipelineError, match=f"is not a readable CSV file: {message}"):
        prepare(params, RAW, PREPARED)
    assert not (PREPARED / TRAIN).exists()


def test_the_split_is_recorded_in_the_summary(project, params):
    prepare(params, RAW, PREPARED)
    assert read_summary(PREPARED / SUMMARY)["split"] == {"method": "random", "test_size": 0.25, "stratified": True}


def test_a_time_split_tests_on_the_latest_rows_and_says_so(project, params, capsys):
    make_series().to_csv(RAW, index=False)
    params["prepare"]["split"], params["data"]["time_column"] = "time", "month"
    prepare(params, RAW, PREPARED)
    train, test = pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)
    assert (len(train), len(test)) == (180, 60)
    assert str(train["month"].max()) == "2014-12-01" < "2015-01-01" == str(test["month"].min())
    summary = read_summary(PREPARED / SUMMARY)
    assert summary["split"] == {
        "method": "time", "test_size": 0.25, "time_column": "month",
        "train_until": "2014-12-01", "test_from": "2015-01-01",
    }  # fmt: skip
    assert summary["ignored"] == {"month": "dates (data.time_column)"}
    out = capsys.readouterr().out
    assert "prepare: time split by 'month': trained on rows up to 2014-12-01, tested on rows from 2015-01-01 on" in out
    assert "warning" not in out  # the time column is declared, not a guess to warn about


def test_rows_of_one_time_stay_on_one_side_of_a_time_split(project, params):
    frame = make_frame(rows=120)
    frame["day"] = pd.Series(pd.date_range("2024-03-01", periods=30, freq="D").strftime("%d/%m/%Y")).repeat(4).values
    frame.to_csv(RAW, index=False)
    params["prepare"]["split"], params["data"]["time_column"] = "time", "day"
    prepare(params, RAW, PREPARED)
    train, test = pd.read_parquet(PREPARED / TRAIN), pd.read_parquet(PREPARED / TEST)
    # 30 of 120 rows would cut the 23rd day's four rows in half: all four are tested on.
    assert len(test) == 32 and not set(train["day"]) & set(test["day"])
    assert pd.to_datetime(train["day"], dayfirst=True).max() < pd.to_datetime(test["day"], dayfirst=True).min()


def test_a_random_split_of_dated_rows_suggests_the_time_split(project, params, capsys):
    make_messy_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    [warning] = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert "set prepare.split: time and data.time_column: visited to test on the latest rows" in warning
    params["prepare"]["split"], params["data"]["time_column"] = "time", "visited"
    prepare(params, RAW, PREPARED)
    [warning] = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert "'visited'" not in warning and "prepare.split" not in warning


@pytest.mark.parametrize(
    ("split", "time_column", "messages"),
    [
        ("chrono", None, ["prepare.split must be one of random, time, got 'chrono'"]),
        ("time", None, ["prepare.split is time but data.time_column is not set"]),
        (
            "by date",
            3,
            [
                "prepare.split must be one of random, time, got 'by date'",
                "data.time_column must be the name of a column of dates (or null), got 3",
            ],
        ),
    ],
)
def test_bad_split_params_are_one_line_naming_each_and_write_nothing(project, params, split, time_column, messages):
    params["prepare"]["split"], params["data"]["time_column"] = split, time_column
    with pytest.raises(PipelineError) as error:
        prepare(params, RAW, PREPARED)
    assert str(error.value).startswith("params.yaml: ") and "\n" not in str(error.value)
    assert all(message in str(error.value) for message in messages)
    assert not PREPARED.exists()


def test_a_time_column_missing_or_not_dates_is_named_with_the_files_other_problems(project, params):
    frame = make_series()
    frame.loc[[3, 8], "month"] = ["soon", None]
    frame.to_csv(RAW, index=False)
    params["prepare"]["split"], params["data"]["time_column"] = "time", "month"
    params["data"]["drop"] = ["nope"]
    with pytest.raises(PipelineError) as error:
        prepare(params, RAW, PREPARED)
    assert str(error.value) == (
        "raw.csv: data.drop names columns the file does not have: 'nope'; "
        "data.time_column 'month' holds 2 values that are not dates ('soon', nan): fix them, or name another column."
    )
    params["data"]["drop"], params["data"]["time_column"] = [], "when"
    with pytest.raises(PipelineError, match=r"data.time_column 'when' is not a column of the file \(name the column"):
        prepare(params, RAW, PREPARED)
    assert not PREPARED.exists()


def test_a_time_split_that_leaves_a_class_out_of_training_is_refused(project, params):
    frame = make_frame(rows=120)
    frame["day"] = pd.date_range("2024-01-01", periods=120, freq="D").strftime("%Y-%m-%d")
    frame.loc[110:, "label"] = 2  # a class that appears only lately
    frame.to_csv(RAW, index=False)
    params["prepare"]["split"], params["data"]["time_column"] = "time", "day"
    with pytest.raises(
        PipelineError, match=r"the time split leaves no training rows of class 2 \(all among the latest"
    ):
        prepare(params, RAW, PREPARED)
    assert not PREPARED.exists()
