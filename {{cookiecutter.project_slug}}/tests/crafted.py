"""Model files a stranger could send (a merge request, the remote, a registry version): each runs
`touch MARKER` when it predicts, if it is ever loaded. The tests show they are refused before
anything in them is called; `runs_when_trusted` shows they are real, so those tests can fail.

Both dress up `subprocess.check_output` as `sklearn.utils._testing.check_output` (that module
imports it, so the name resolves to it) by relabelling the module in the file's `schema.json`:
- `partial`: `FunctionTransformer(partial(check_output, ["sh", "-c", "touch MARKER"]))`, after a
  step that turns the rows into their count (Popen's `bufsize`);
- `method`: no partial; the command comes from a bound method, `LabelEncoder.inverse_transform` of
  an encoder whose one class is the command, chained into
  `FunctionTransformer(check_output, kw_args={"shell": True})`.
"""

import contextlib
import json
import subprocess
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder
from sklearn.utils.validation import _num_samples

DISGUISE = "sklearn.utils._testing"
VARIANTS = ("partial", "method")


def crafted_model(path: Path, marker: Path, variant: str, frame: pd.DataFrame, numeric: str) -> Path:
    """Write a crafted model file to `path`: a pipeline shaped like the template's (a ColumnTransformer
    named `columns` over `frame`'s column `numeric`, a classifier last) with the command in between."""
    columns = ColumnTransformer(
        [("numeric", "passthrough", [numeric]), ("categorical", "drop", []), ("left_out", "drop", [])]
    ).fit(frame)
    if variant == "partial":
        command = [
            ("count", FunctionTransformer(_num_samples)),
            ("run", FunctionTransformer(partial(subprocess.check_output, ["sh", "-c", f"touch {marker}"]))),
        ]
    else:
        encoder = LabelEncoder().fit([f"touch {marker}"])
        command = [
            ("zeros", FunctionTransformer(np.isnan)),
            ("command", FunctionTransformer(encoder.inverse_transform)),
            ("run", FunctionTransformer(subprocess.check_output, kw_args={"shell": True})),
        ]
    classifier = LogisticRegression().fit(np.arange(4.0)[:, None], [0, 1, 0, 1])
    model = Pipeline([("columns", columns), *command, ("estimator", classifier)])
    skops.io.dump(model, path)
    with zipfile.ZipFile(path) as original:
        entries = {name: original.read(name) for name in original.namelist()}
    schema = json.loads(entries["schema.json"])
    relabel(schema)
    entries["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as crafted:
        for name, data in entries.items():
            crafted.writestr(name, data)
    return path


def relabel(state) -> None:
    """Name `subprocess.check_output` by the scikit-learn module that imports it."""
    if isinstance(state, dict):
        if state.get("__module__") == "subprocess":
            state["__module__"] = DISGUISE
        for value in state.values():
            relabel(value)
    elif isinstance(state, list):
        for value in state:
            relabel(value)


def runs_when_trusted(path: Path, rows: pd.DataFrame) -> None:
    """What a loader that trusts every `sklearn.`/`numpy.` name does with the file: predict, which
    runs the command (and then fails on its output)."""
    untrusted = skops.io.get_untrusted_types(file=path)
    assert all(name.startswith(("sklearn.", "numpy.", "functools.partial")) for name in untrusted), untrusted
    with contextlib.suppress(Exception):
        skops.io.load(path, trusted=untrusted).predict(rows)
