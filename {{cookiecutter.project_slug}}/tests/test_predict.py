import pandas as pd
import pytest

from {{cookiecutter.package_name}}.config import PipelineError, declared
from {{cookiecutter.package_name}}.predict import main
from {{cookiecutter.package_name}}.prepare import prepare
from {{cookiecutter.package_name}}.train import train

from .conftest import PREPARED, RAW, make_messy_frame


@pytest.fixture
def trained(project, params):
    """The model trained where dvc.yaml's train stage writes it, which is where predict looks."""
    make_messy_frame().to_csv(RAW, index=False)
    prepare(params, RAW, PREPARED)
    train(params, PREPARED, declared("train")[0])
    return project


def test_predicts_raw_rows_and_keeps_the_left_out_columns(trained, tmp_path):
    rows = make_messy_frame().head(5).drop(columns="label")
    rows.loc[0, "colour"] = "never seen"
    rows[["weight", "size", "id", "colour"]].to_csv(tmp_path / "new.csv", index=False)  # any order, no note or date
    main([str(tmp_path / "new.csv"), "--out", str(tmp_path / "out" / "predicted.csv")])
    predicted = pd.read_csv(tmp_path / "out" / "predicted.csv")
    assert list(predicted.columns) == [
        "weight",
        "size",
        "id",
        "colour",
        "predicted_label",
        "probability_no",
        "probability_yes",
    ]
    assert list(predicted["id"]) == list(rows["id"])
    assert set(predicted["predicted_label"]) <= {"yes", "no"}
    assert ((predicted["probability_no"] + predicted["probability_yes"]).round(5) == 1).all()


def test_missing_model_columns_are_all_named_and_nothing_is_written(trained, tmp_path):
    rows = make_messy_frame().head(5).drop(columns=["size", "colour"]).assign(predicted_label="yes")
    rows.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(PipelineError) as error:
        main([str(tmp_path / "new.csv"), "--out", str(tmp_path / "out" / "predicted.csv")])
    assert str(error.value) == (
        f"{tmp_path / 'new.csv'} cannot be predicted: it lacks columns the model needs: size, colour (add them; "
        "empty cells are fine); it has columns predict adds: predicted_label (rename or remove them)."
    )
    assert not (tmp_path / "out").exists()


def test_a_missing_model_says_how_to_get_one(project, tmp_path):
    make_messy_frame().to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(PipelineError, match="models/model.skops is missing; run `dvc repro` or `dvc pull`"):
        main([str(tmp_path / "new.csv")])
