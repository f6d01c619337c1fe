import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from {{cookiecutter.package_name}}.config import PipelineError
from {{cookiecutter.package_name}}.model_file import load_model, save_model

from .conftest import make_frame


def fitted_forest() -> RandomForestClassifier:
    frame = make_frame()
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(frame.drop(columns="label"), frame["label"])


def test_equal_models_save_to_identical_bytes(tmp_path):
    """Two equal models alive at once have different id()s, which skops writes into the file."""
    first, second = fitted_forest(), fitted_forest()
    save_model(first, tmp_path / "first.skops")
    save_model(second, tmp_path / "second.skops")
    assert (tmp_path / "first.skops").read_bytes() == (tmp_path / "second.skops").read_bytes()


def test_saved_model_loads_and_predicts_the_same(tmp_path):
    model = fitted_forest()
    path = tmp_path / "models" / "model.skops"  # the folder is created
    save_model(model, path)
    features = make_frame().drop(columns="label")
    np.testing.assert_array_equal(load_model(path).predict_proba(features), model.predict_proba(features))


def double(values):
    return 2 * values


def test_types_outside_scikit_learn_and_numpy_are_not_loaded(tmp_path):
    frame = make_frame()
    model = make_pipeline(FunctionTransformer(double), LogisticRegression())
    model.fit(frame.drop(columns="label"), frame["label"])
    save_model(model, tmp_path / "model.skops")
    with pytest.raises(PipelineError, match=r"contains types outside scikit-learn and NumPy: .*\.double"):
        load_model(tmp_path / "model.skops")
