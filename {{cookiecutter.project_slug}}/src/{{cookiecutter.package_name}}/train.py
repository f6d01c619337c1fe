"""Stage `train`: fit the estimator chosen in params.yaml and save it with skops.

skops, not pickle: loading a pickle runs arbitrary code, while `skops.io.load` only builds the
types it is told to trust (see `load_model`).
"""

import io
import numbers
import re
import zipfile

import skops.io
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from .config import MODEL_FILE, TRAIN_DATA, PipelineError, param, read_features, run, seed

# Object ids in a skops schema: `"__id__": 1403...` and array files such as `"file": "1403....npy"`.
OBJECT_ID = re.compile(r'(?P<key>"__id__": |"file": ")(?P<id>\d+)')

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
    save_model(model, MODEL_FILE)
    print(f"train: fitted {type(model).__name__} on {len(labels)} rows")


def save_model(model: BaseEstimator, path=MODEL_FILE) -> None:
    """Save with skops, byte for byte the same for the same model.

    skops names the arrays in its zip after `id()` of Python objects and stamps entries with the
    current time. Renumbering the ids in order of appearance and fixing the timestamps means that
    retraining with the same data, params and seed gives the same file, so dvc.lock keeps its
    hash and `evaluate` is not rerun for nothing.
    """
    with zipfile.ZipFile(io.BytesIO(skops.io.dumps(model))) as original:
        entries = {info.filename: original.read(info) for info in original.infolist()}
    schema = entries.pop("schema.json").decode("utf-8")
    ids: dict[str, str] = {}
    for match in OBJECT_ID.finditer(schema):
        ids.setdefault(match["id"], str(len(ids)))
    schema = OBJECT_ID.sub(lambda match: match["key"] + ids[match["id"]], schema)
    arrays = {}
    for name, data in entries.items():
        stem, _, suffix = name.partition(".")
        arrays[f"{ids.get(stem, stem)}.{suffix}"] = data
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as fixed:
        for name, data in [("schema.json", schema.encode("utf-8")), *sorted(arrays.items())]:
            fixed.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)


def load_model(path=MODEL_FILE) -> BaseEstimator:
    """Load a model, trusting only scikit-learn and NumPy types (never arbitrary code)."""
    untrusted = skops.io.get_untrusted_types(file=path)
    foreign = [name for name in untrusted if not name.startswith(("sklearn.", "numpy."))]
    if foreign:
        raise PipelineError(f"{path} contains types outside scikit-learn and NumPy: {', '.join(foreign)}.")
    return skops.io.load(path, trusted=untrusted)


if __name__ == "__main__":
    run(train)
