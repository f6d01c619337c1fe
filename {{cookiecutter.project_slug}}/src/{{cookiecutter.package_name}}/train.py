"""Stage `train`: fit the preprocessing and the estimator chosen in params.yaml, save them as one model.

The model is a scikit-learn pipeline: a ColumnTransformer (numeric columns as they are, or
imputed and scaled for the linear model; categorical ones encoded, unknown categories tolerated;
the target and the left-out columns dropped) and then the estimator, a classifier or a regressor
for the task `prepare` decided. It is saved with `model_file.save_model`, so `predict` and the
registry's `fetch` give a model that takes raw rows. A progress line is printed at least every
PROGRESS_SECONDS while the estimator fits.
"""

import math
import numbers
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from .config import SUMMARY, TRAIN, PipelineError, param, read_summary, run, seed
from .model_file import as_model_input, save_model, threads_for

# One (classifier, regressor) per choice of train.estimator, each taking that section's keys.
ESTIMATORS = {
    "hist_gradient_boosting": (HistGradientBoostingClassifier, HistGradientBoostingRegressor),
    "random_forest": (
        lambda **kw: RandomForestClassifier(n_jobs=-1, **kw),
        lambda **kw: RandomForestRegressor(n_jobs=-1, **kw),
    ),
    # C is the inverse of the regularisation strength for both (Ridge's alpha = 1 / C).
    "linear": (LogisticRegression, lambda C=1.0, **kw: Ridge(alpha=1 / C, **kw)),
}
PROGRESS_SECONDS = 10
# Categories beyond these counts are grouped as "infrequent": one-hot columns stay few, and the
# gradient-boosting trees take at most `max_bins` (255 unless train.hist_gradient_boosting sets it)
# bins per feature, one of them for missing values.
ONE_HOT_CATEGORIES = 20
# Keys of an estimator's section that the template sets itself, and from what.
TEMPLATE_SETS = {
    "random_state": "the top-level `seed`",
    "n_jobs": "every core, or one below 50,000 rows",
    "warm_start": "the progress count of a forest",
    "categorical_features": "the column types prepare decided",
}


def build_estimator(params: dict, task: str) -> tuple[str, BaseEstimator]:
    """(the params.yaml section it is made from, `train.<train.estimator>`; the estimator). Every
    problem of those params is said at once."""
    name = param(params, "train.estimator")
    if name not in ESTIMATORS:
        raise PipelineError(f"params.yaml: train.estimator {name!r} is unknown; choose one of {', '.join(ESTIMATORS)}.")
    section = f"train.{name}"
    hyper, found = param(params, section) or {}, []
    if not isinstance(hyper, dict):
        raise PipelineError(f"params.yaml: {section} must be a mapping of hyper-parameters.")
    make = ESTIMATORS[name][task == "regression"]
    accepted = accepted_keys(name, make)
    for key, value in hyper.items():
        if key in TEMPLATE_SETS:
            found.append(f"{section}.{key} is set by the template (from {TEMPLATE_SETS[key]}): remove it")
        elif key not in accepted:
            found.append(f"{section}.{key} is not a hyper-parameter of {name} (it takes {', '.join(sorted(accepted))})")
        elif isinstance(value, numbers.Number) and not isinstance(value, bool) and value < 0:
            found.append(f"{section}.{key} must not be negative, got {value}")
    if hyper.get("C") == 0:  # the linear regressor's alpha is 1 / C
        found.append(f"{section}.C must be positive, got 0")
    try:
        random_state = seed(params)
    except PipelineError as error:
        found.append(str(error).removeprefix("params.yaml: ").removesuffix("."))
    if found:
        raise PipelineError("params.yaml: " + "; ".join(found) + ".")
    return section, make(random_state=random_state, **hyper)


def accepted_keys(name: str, make) -> set[str]:
    """The keys an estimator's section may set: the estimator's own hyper-parameters (the linear
    regressor takes C, as the classifier does, for its alpha)."""
    keys = set(make(random_state=0).get_params()) - set(TEMPLATE_SETS)
    return keys - {"alpha"} | {"C"} if name == "linear" else keys


def preprocessing(estimator: BaseEstimator, summary: dict) -> ColumnTransformer:
    """The columns as the estimator takes them: gradient boosting handles missing values and
    categories itself (it is told which columns are categories); a random forest takes missing
    numbers but needs categories one-hot; the linear model needs numbers imputed and scaled too."""
    numeric, categorical = summary["numeric"], summary["categorical"]
    native = isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor)
    linear = isinstance(estimator, LogisticRegression | Ridge)
    if native:
        estimator.set_params(categorical_features=[False] * len(numeric) + [True] * len(categorical))
        categories = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=estimator.max_bins - 1,
        )
    else:
        categories = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=ONE_HOT_CATEGORIES, sparse_output=False
        )
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler()) if linear else "passthrough"
    left_out = [summary["target"], *summary["ignored"]]  # the target first: predict names its column after it
    return ColumnTransformer(
        [("numeric", numbers, numeric), ("categorical", categories, categorical), ("left_out", "drop", left_out)],
        verbose_feature_names_out=False,
    )


class Progress:
    """Prints how far the fit is, every PROGRESS_SECONDS, from a thread (the fit holds the main one)."""

    def __init__(self, estimator: BaseEstimator):
        self.estimator, self.started, self.done = estimator, time.monotonic(), threading.Event()
        self.trees = self.total_trees = 0  # set by `fit_in_steps` for forests

    def count(self) -> str:
        estimator = self.estimator
        if hasattr(estimator, "max_iter") and hasattr(estimator, "_predictors"):  # gradient boosting
            return f"{len(estimator._predictors)} of at most {estimator.max_iter} iterations, "
        if hasattr(estimator, "n_estimators"):
            return f"{self.trees} of {self.total_trees or estimator.n_estimators} trees, "
        return ""

    def report(self) -> None:
        while not self.done.wait(PROGRESS_SECONDS):
            elapsed = time.monotonic() - self.started
            print(f"train: {self.count()}{elapsed:.0f} s", flush=True)

    def __enter__(self):
        threading.Thread(target=self.report, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.done.set()


def fit_in_steps(estimator: BaseEstimator, features, labels, progress: Progress) -> None:
    """A forest grown ten steps at a time (the same trees as in one go: warm_start draws the same
    seeds), so there is a count to show; other estimators fit at once."""
    if not hasattr(estimator, "n_estimators"):
        estimator.fit(features, labels)
        return
    total = progress.total_trees = estimator.n_estimators  # the estimator's own count grows step by step
    estimator.set_params(warm_start=True)
    for trees in sorted({math.ceil(total * step / 10) for step in range(1, 11)}):
        estimator.set_params(n_estimators=trees).fit(features, labels)
        progress.trees = trees
    estimator.set_params(warm_start=False)


def train(params: dict, prepared: Path, model: Path) -> None:
    """The estimator fitted on `prepared`'s training set, with its preprocessing, saved as `model`."""
    summary = read_summary(prepared / SUMMARY)
    section, estimator = build_estimator(params, summary["task"])
    columns = preprocessing(estimator, summary)
    frame = as_model_input(pd.read_parquet(prepared / TRAIN), summary)
    labels = frame[summary["target"]]
    started = time.monotonic()
    try:
        features = columns.fit_transform(frame)
        # One BLAS thread, on any machine: the linear models' sums then add up in one order, and the
        # same data gives the same model file on one core or two (60,000 rows gave two files before).
        with Progress(estimator) as progress, threads_for(len(frame)), threadpool_limits(1, user_api="blas"):
            fit_in_steps(estimator, features, labels, progress)
    except ValueError as error:
        # scikit-learn checks hyper-parameter values in `fit`. It raises InvalidParameterError, which
        # lives in a private module but subclasses ValueError (and TypeError), so catch ValueError.
        # `prepare` has checked the data, so a ValueError here is almost always a hyper-parameter;
        # not TypeError too, which would dress up a bug in this code as a params.yaml problem.
        raise PipelineError(f"params.yaml: {section}: {error}") from error
    save_model(Pipeline([("columns", columns), ("estimator", estimator)]), model)
    print(
        f"train: fitted {type(estimator).__name__} on {len(labels)} rows and {features.shape[1]} columns "
        f"in {time.monotonic() - started:.1f} s"
    )


if __name__ == "__main__":
    run(train, "prepared", "model")
