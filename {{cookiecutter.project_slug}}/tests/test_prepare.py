import pandas as pd
import pytest

from {{cookiecutter.package_name}}.config import RAW_DATA, TEST_DATA, TRAIN_DATA, PipelineError
from {{cookiecutter.package_name}}.prepare import prepare

from .conftest import make_frame


def test_split_is_stratified_and_sized(project, params):
    prepare(params)
    train, test = pd.read_parquet(TRAIN_DATA), pd.read_parquet(TEST_DATA)
    assert (len(train), len(test)) == (90, 30)
    assert test["label"].value_counts().to_dict() == {0: 15, 1: 15}


def test_split_depends_on_seed(project, params):
    prepare(params)
    first = TEST_DATA.read_bytes()
    params["seed"] = 1
    prepare(params)
    assert TEST_DATA.read_bytes() != first


def test_missing_target_column_is_reported_and_nothing_written(project, params):
    make_frame().rename(columns={"label": "y"}).to_csv(RAW_DATA, index=False)
    with pytest.raises(PipelineError, match="no target column 'label'"):
        prepare(params)
    assert not TRAIN_DATA.exists() and not TEST_DATA.exists()


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "a quarter", True])
def test_test_size_outside_unit_interval_is_rejected(project, params, value):
    params["prepare"]["test_size"] = value
    with pytest.raises(PipelineError, match="prepare.test_size must be a number between 0 and 1"):
        prepare(params)
    assert not TRAIN_DATA.exists()


def test_non_numeric_and_missing_values_are_named(project, params):
    frame = make_frame()
    frame["city"] = "Oslo"
    frame.to_csv(RAW_DATA, index=False)
    with pytest.raises(PipelineError, match="columns city are not numeric"):
        prepare(params)
    frame = make_frame()
    frame.loc[3, "beta"] = None
    frame.to_csv(RAW_DATA, index=False)
    with pytest.raises(PipelineError, match="columns beta have missing values"):
        prepare(params)


def test_single_class_is_rejected(project, params):
    make_frame(classes=1).to_csv(RAW_DATA, index=False)
    with pytest.raises(PipelineError, match="needs at least two classes"):
        prepare(params)


def test_split_keeps_the_raw_values_and_is_the_same_file_each_time(project, params):
    prepare(params)
    first = TRAIN_DATA.read_bytes(), TEST_DATA.read_bytes()
    prepared = pd.concat([pd.read_parquet(TRAIN_DATA), pd.read_parquet(TEST_DATA)])
    raw = pd.read_csv(RAW_DATA)
    assert list(prepared.columns) == list(raw.columns)
    by_alpha = {"by": "alpha", "ignore_index": True}
    pd.testing.assert_frame_equal(prepared.sort_values(**by_alpha), raw.sort_values(**by_alpha))
    prepare(params)
    assert (TRAIN_DATA.read_bytes(), TEST_DATA.read_bytes()) == first  # dvc.lock stays put


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"alpha,label\n1,0\n2,1,3\n", "Error tokenizing data. C error: Expected 2 fields in line 3, saw 3"),
        (b"alpha,label\n1,\xff\n", "'utf-8' codec can't decode byte 0xff"),
        (b"", "No columns to parse from file"),
    ],
)
def test_unreadable_file_is_reported_as_pandas_reports_it(project, params, content, message):
    RAW_DATA.write_bytes(content)
    with pytest.raises(PipelineError, match=f"is not a readable CSV file: {message}"):
        prepare(params)
    assert not TRAIN_DATA.exists()
