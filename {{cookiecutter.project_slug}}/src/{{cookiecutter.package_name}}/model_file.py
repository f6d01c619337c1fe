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

import pandas as pd
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from .config import PipelineError

# Object ids in a skops schema: `"__id__": 1403...` and array files such as `"file": "1403....npy"`.
OBJECT_ID = re.compile(r'(?P<key>"__id__": |"file": ")(?P<id>\d+)')
# The earliest time a zip entry can carry; any fixed value would do.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
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
    """Load a model, trusting only scikit-learn and NumPy types (never arbitrary code)."""
    skio = skops_io()
    untrusted = skio.get_untrusted_types(file=path)
    # functools.partial wraps a function that skops lists (and so checks) on its own: gradient
    # boosting with categories keeps partial(sklearn.utils.validation.check_array, ...).
    foreign = [name for name in untrusted if not name.startswith(("sklearn.", "numpy.", "functools.partial"))]
    if foreign:
        raise PipelineError(f"{path} contains types outside scikit-learn and NumPy: {', '.join(foreign)}.")
    return skio.load(path, trusted=untrusted)


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
