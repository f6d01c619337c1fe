"""Stage `train`: fit the estimator chosen in params.yaml and save it with skops.

The model file is written by `model_file.save_model`, which also explains why it is not a plain
`skops.io.dump`.
"""

import numbers

from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .config import MODEL_FILE, TRAIN_DATA, PipelineError, param, read_features, run, seed
from .model_file import save_model

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
    except ValueError as error:
        # scikit-learn checks hyper-parameter values in `fit`. It raises InvalidParameterError, which
        # lives in a private module but subclasses ValueError (and TypeError), so catch ValueError.
        # `prepare` has checked the data, so a ValueError here is almost always a hyper-parameter;
        # not TypeError too, which would dress up a bug in this code as a params.yaml problem.
        raise PipelineError(f"params.yaml: train.{params['train']['estimator']}: {error}") from error
    save_model(model, MODEL_FILE)
    print(f"train: fitted {type(model).__name__} on {len(labels)} rows")


if __name__ == "__main__":
    run(train)
