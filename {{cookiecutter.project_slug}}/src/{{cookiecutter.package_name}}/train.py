"""Stage `train`: fit the estimator chosen in params.yaml and save it with skops.

skops, not pickle: loading a pickle runs arbitrary code, while `skops.io.load` only builds the
types it is told to trust (see `load_model`).
"""

import numbers

import skops.io
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from .config import MODEL_FILE, TRAIN_DATA, PipelineError, param, read_features, run, seed

ESTIMATORS = {
    "random_forest": lambda **kw: RandomForestClassifier(n_jobs=-1, **kw),
    "logistic_regression": lambda **kw: make_pipeline(StandardScaler(), LogisticRegression(**kw)),
    "hist_gradient_boosting": HistGradientBoostingClassifier,
}


def build_estimator(params: dict) -> BaseEstimator:
    name = param(params, "train.estimator")
    if name not in ESTIMATORS:
        raise PipelineError(f"params.yaml: train.estimator {name!r} is unknown; choose one of {', '.join(ESTIMATORS)}.")
    hyper = param(params, f"train.{name}") or {}
    if not isinstance(hyper, dict):
        raise PipelineError(f"params.yaml: train.{name} must be a mapping of hyper-parameters.")
    for key, value in hyper.items():
        if isinstance(value, numbers.Number) and not isinstance(value, bool) and value < 0:
            raise PipelineError(f"params.yaml: train.{name}.{key} must not be negative, got {value}.")
    try:
        return ESTIMATORS[name](random_state=seed(params), **hyper)
    except TypeError as error:
        raise PipelineError(f"params.yaml: train.{name} has a key the estimator does not accept: {error}.") from error


def train(params: dict) -> None:
    target = param(params, "data.target")
    model = build_estimator(params)
    features, labels = read_features(TRAIN_DATA, target)
    try:
        model.fit(features, labels)
    except InvalidParameterError as error:
        raise PipelineError(f"params.yaml: train.{params['train']['estimator']}: {error}") from error
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    skops.io.dump(model, MODEL_FILE)
    print(f"train: fitted {type(model).__name__} on {len(labels)} rows")


def load_model(path=MODEL_FILE) -> BaseEstimator:
    """Load a model, trusting only scikit-learn and NumPy types (never arbitrary code)."""
    untrusted = skops.io.get_untrusted_types(file=path)
    foreign = [name for name in untrusted if not name.startswith(("sklearn.", "numpy."))]
    if foreign:
        raise PipelineError(f"{path} contains types outside scikit-learn and NumPy: {', '.join(foreign)}.")
    return skops.io.load(path, trusted=untrusted)


if __name__ == "__main__":
    run(train)
