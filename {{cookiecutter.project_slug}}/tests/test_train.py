import pytest

from {{cookiecutter.package_name}}.config import MODEL_FILE, PipelineError
from {{cookiecutter.package_name}}.model_file import load_model
from {{cookiecutter.package_name}}.prepare import prepare
from {{cookiecutter.package_name}}.train import ESTIMATORS, train


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_estimator_trains_and_round_trips(project, params, estimator):
    params["train"]["estimator"] = estimator
    prepare(params)
    train(params)
    model = load_model(MODEL_FILE)
    assert list(model.classes_) == [0, 1]


def test_unknown_estimator_is_rejected_before_any_output(project, params):
    params["train"]["estimator"] = "svm"
    with pytest.raises(PipelineError, match="train.estimator 'svm' is unknown; choose one of random_forest"):
        train(params)
    assert not MODEL_FILE.exists()


def test_negative_hyper_parameter_is_rejected(project, params):
    params["train"]["random_forest"]["n_estimators"] = -5
    with pytest.raises(PipelineError, match="train.random_forest.n_estimators must not be negative"):
        train(params)


def test_unknown_hyper_parameter_is_rejected(project, params):
    params["train"]["random_forest"]["trees"] = 10
    with pytest.raises(PipelineError, match="train.random_forest has a key the estimator does not accept"):
        train(params)


def test_invalid_value_reported_by_scikit_learn(project, params):
    prepare(params)
    params["train"]["random_forest"]["n_estimators"] = 0
    with pytest.raises(PipelineError, match="^params.yaml: train.random_forest: The 'n_estimators' parameter") as error:
        train(params)
    assert "\n" not in str(error.value)
    assert not MODEL_FILE.exists()


def test_retraining_gives_a_byte_identical_model(project, params):
    """dvc.lock must not change when nothing changed, so the saved model is deterministic."""
    prepare(params)
    train(params)
    first = MODEL_FILE.read_bytes()
    train(params)
    assert MODEL_FILE.read_bytes() == first
