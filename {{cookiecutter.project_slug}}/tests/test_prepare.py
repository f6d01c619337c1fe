import pytest

from {{cookiecutter.package_name}}.config import RAW_DATA, TEST_DATA, TRAIN_DATA, PipelineError
from {{cookiecutter.package_name}}.prepare import prepare

from .conftest import make_frame


def test_split_is_stratified_and_sized(project, params):
    prepare(params)
    import pandas as pd

    train, test = pd.read_csv(TRAIN_DATA), pd.read_csv(TEST_DATA)
    assert (len(train), len(test)) == (90, 30)
    assert test["label"].value_counts().to_dict() == {0: 15, 1: 15}


def test_split_depends_on_seed(project, params):
    prepare(params)
    first = TEST_DATA.read_text()
    params["seed"] = 1
    prepare(params)
    assert TEST_DATA.read_text() != first


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
