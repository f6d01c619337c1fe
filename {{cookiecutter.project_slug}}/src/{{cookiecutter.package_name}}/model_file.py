"""Save and load the model file (dvc.yaml: `models/model.skops`), shared by `train` and `evaluate`.

skops, not pickle: loading a pickle runs arbitrary code, while `skops.io.load` only builds the
types it is told to trust (see `load_model`).

Why `save_model` rewrites what skops writes: a skops file is a zip whose `schema.json` names
objects by their `id()` (`"__id__": 1403...`), and whose NumPy arrays are stored as members named
after that id (`1403....npy`); the zip entries are also stamped with the current time. `id()` is a
memory address, so the same model saved twice gave different bytes, and every retrain changed the
model's hash in `dvc.lock`, made `evaluate` rerun for nothing and left a diff to commit. The ids
are renumbered in order of appearance and the timestamps fixed, so the same data, params and seed
give the same file byte for byte.

Upstream: no skops issue about non-deterministic output could be found (searched GitHub issues of
skops-dev/skops for deterministic / reproducible / id() output; its changelog says nothing either),
so there is nothing to link or to wait for. The id()-named arrays date from
https://github.com/skops-dev/skops/pull/173, which stopped equal arrays being stored twice. Should
skops ever write deterministic files itself, `save_model` can become `skops.io.dump`.
"""

import io
import re
import zipfile
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
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from .config import PipelineError

# Object ids in a skops schema: `"__id__": 1403...` and array files such as `"file": "1403....npy"`.
OBJECT_ID = re.compile(r'(?P<key>"__id__": |"file": ")(?P<id>\d+)')
# The earliest time a zip entry can carry; any fixed value would do.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# The names a model file may hold beyond those skops trusts itself (its defaults: Python's and
# NumPy's plain types and ufuncs, scikit-learn's public estimators and loss functions). Exactly
# what `skops.io.get_untrusted_types` lists for the models `train` saves, every estimator, both
# tasks, with and without categorical columns; the project's test `test_trusted_types_are_what_
# every_trained_model_needs` fails when that changes. Never a prefix: `sklearn.` and `numpy.`
# modules hold functions such as `subprocess.check_output`, `os.remove` and `open`.
TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",  # the linear models' coefficients' type
        "sklearn.tree._tree.Tree",  # a forest's trees (their indices are checked: `check_trees`)
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # gradient boosting's, likewise
        # gradient boosting with categorical columns keeps partial(check_array, ...); skops checks the
        # function a partial wraps on its own, so the partial does not trust anything else.
        "functools.partial",
        "sklearn.utils.validation.check_array",
    }
)
# What a model `train` saves is made of: Pipeline([("columns", ColumnTransformer), ("estimator", ...)]),
# each group of columns passed through, dropped, or through one of COLUMN_PARTS.
ESTIMATOR_TYPES = (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    LogisticRegression,
    Ridge,
)
TREE_TYPES = (DecisionTreeClassifier, DecisionTreeRegressor)
COLUMN_PARTS = ([OneHotEncoder], [OrdinalEncoder], [SimpleImputer, StandardScaler])
# Below this many rows, fits and predictions use one OpenMP thread (see `threads_for`).
ONE_THREAD_ROWS = 50_000


def save_model(model: BaseEstimator, path: Path) -> None:
    """Save with skops, byte for byte the same for the same model (see the module docstring)."""
    skio = skops_io()
    with zipfile.ZipFile(io.BytesIO(skio.dumps(model))) as original:
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
            fixed.writestr(zipfile.ZipInfo(name, date_time=ZIP_EPOCH), data, zipfile.ZIP_DEFLATED)


def load_model(path: Path) -> BaseEstimator:
    """The model in `path`, if it is made only of what this project's models are made of.

    skops builds an object from a name in the file by importing its module and taking the
    attribute, and scikit-learn's modules hold callables that are not scikit-learn's
    (`sklearn.utils._testing.check_output` is `subprocess.check_output`); so the names are
    checked against an exact list (TRUSTED_TYPES) before skops builds anything, then the model's
    shape (PIPELINE_PARTS) and its trees' node indices (`check_trees`) before anything predicts.
    Whatever is not so is refused in one line, having called nothing in the file."""
    skio = skops_io()
    try:
        untrusted = skio.get_untrusted_types(file=path)
    except FileNotFoundError as error:
        raise PipelineError(f"{path} is missing.") from error
    except Exception as error:  # not a zip, no schema.json, an unknown skops loader, ...
        raise PipelineError(f"{path} is not a model file this project can read ({error}).") from error
    foreign = sorted(set(untrusted) - TRUSTED_TYPES)
    if foreign:
        raise PipelineError(
            f"{path} is refused: it names {', '.join(foreign)}, which this project's models never hold "
            "(a model file can run code); use a model trained by this project's train stage."
        )
    model = skio.load(path, trusted=sorted(TRUSTED_TYPES))
    wrong = unexpected_parts(model) or check_trees(model)
    if wrong:
        raise PipelineError(f"{path} is refused: {wrong}; use a model trained by this project's train stage.")
    return model


def unexpected_parts(model) -> str:
    """What in `model` is not one of the pieces `train` builds ("" if nothing)."""
    steps = getattr(model, "steps", None)
    if type(model) is not Pipeline or [name for name, _ in steps] != ["columns", "estimator"]:
        return "it is not a pipeline of `columns` and `estimator`"
    columns, estimator = model.named_steps["columns"], model.named_steps["estimator"]
    if type(columns) is not ColumnTransformer or type(estimator) not in ESTIMATOR_TYPES:
        return f"its steps are {type(columns).__name__} and {type(estimator).__name__}"
    for name, part, _ in getattr(columns, "transformers_", []):
        kinds = [type(step) for step in part.named_steps.values()] if type(part) is Pipeline else [type(part)]
        passthrough = type(part) is FunctionTransformer and part.func is None and part.inverse_func is None
        if part not in ("drop", "passthrough") and not passthrough and kinds not in COLUMN_PARTS:
            return f"its columns '{name}' go through {', '.join(kind.__name__ for kind in kinds)}"
    return ""


def check_trees(model) -> str:
    """What is wrong with the estimator's trees ("" if nothing). scikit-learn's compiled code follows
    a tree's child and feature indices without bounds checks (skops' note on sklearn.tree._tree.Tree
    and TreePredictor), so each is checked to stay inside its arrays and to lead only downwards
    (train grows children after their parent), so that predicting reads nothing else and ends."""
    estimator = model.named_steps["estimator"]
    features = getattr(estimator, "n_features_in_", None)
    if hasattr(estimator, "estimators_"):  # a forest
        for number, tree in enumerate(estimator.estimators_):
            if type(tree) not in TREE_TYPES or tree.n_features_in_ != features or tree.tree_.n_features != features:
                return f"tree {number} does not match the forest's {features} features"
            nodes = tree.tree_
            if not 0 < nodes.node_count <= nodes.capacity:
                return f"tree {number} claims {nodes.node_count} nodes in {nodes.capacity}"
            left, right, feature = nodes.children_left, nodes.children_right, nodes.feature
            if not downwards(left, right, left == -1, feature, features):
                return f"tree {number} has node indices outside its arrays"
    for number, predictor in enumerate(p for iteration in getattr(estimator, "_predictors", []) for p in iteration):
        nodes, bitsets = predictor.nodes, predictor.raw_left_cat_bitsets
        # predict looks a category up in the bitsets of the features the bin mapper calls categorical
        categorical = np.asarray(estimator._bin_mapper.is_categorical_, dtype=bool)
        split = nodes["is_leaf"] == 0
        on_category = split & (nodes["is_categorical"] != 0)
        if (
            len(nodes) == 0
            or len(categorical) != features
            or not downwards(nodes["left"], nodes["right"], ~split, nodes["feature_idx"], features)
            or bitsets.ndim != 2
            or bitsets.shape[1] != 8  # 256 bits: a category is a uint8
            or not categorical[nodes["feature_idx"][on_category]].all()
            or (nodes["bitset_idx"][on_category] >= len(bitsets)).any()
        ):
            return f"tree {number} of the gradient boosting has node indices outside its arrays"
    return ""


def downwards(left, right, leaf, feature, features: int) -> bool:
    """Each split node's children come after it, within the arrays, and its feature is one of `features`."""
    node = np.arange(len(left))
    left, right, feature = (np.asarray(values, dtype=np.int64) for values in (left, right, feature))
    split = ~np.asarray(leaf, bool)
    inside = (left > node) & (right > node) & (left < len(node)) & (right < len(node))
    return bool(inside[split].all() and ((feature >= 0) & (feature < features))[split].all())


def skops_io():
    """skops.io, imported only by what saves or loads a model: importing it lists every
    scikit-learn estimator (`all_estimators` imports each of scikit-learn's modules, about a
    second), and through `sklearn.utils._testing` imports pytest, which nothing here needs: it is
    kept out (that module imports it only if it can) unless already loaded, as under pytest."""
    import sys

    blocked = "pytest" not in sys.modules
    if blocked:
        sys.modules["pytest"] = None  # `import pytest` raises ImportError while this is set
    try:
        import skops.io
    finally:
        if blocked:
            del sys.modules["pytest"]
    return skops.io


def model_columns(model) -> dict[str, list[str]]:
    """The raw columns the model takes, by kind ("numeric", "categorical"), and those it was
    trained without and ignores ("left_out": the target, data.drop, IDs, dates, free text)."""
    return {name: list(columns) for name, _, columns in model[0].transformers}


def as_model_input(frame: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """The table with its categorical columns as text (missing values kept missing), so that a
    category reads the same whether its file was parsed as true/false, numbers or text."""
    categorical = [name for name in columns["categorical"] if name in frame.columns]
    return frame.assign(**{name: frame[name].astype("str") for name in categorical})


def threads_for(rows: int):
    """OpenMP threads for fitting or predicting on `rows` rows: all cores for a large table, one for
    a small one, where starting and spin-waiting threads costs more than a second core saves, and
    on a busy machine many times the work itself (gradient boosting on breast_cancer's 569 rows:
    0.2 s on one thread, 3.6 s on two with the machine's load at 5)."""
    return threadpool_limits(1 if rows < ONE_THREAD_ROWS else None, user_api="openmp")
