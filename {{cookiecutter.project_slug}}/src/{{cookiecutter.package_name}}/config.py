"""Parameters, paths and data loading shared by the pipeline stages.

dvc.yaml is the map of the pipeline, and the one place its paths and params are written: each
stage's `cmd:` passes the stage its paths (`python -m {{cookiecutter.package_name}}.train data/prepared models/model.skops`),
and the stage reads the params.yaml keys its `params:` lists (`stage_params`, as DVC reads them); it
validates only those. Code outside the stages (predict, the report, the sweep) finds the stages'
outputs where dvc.yaml declares them (`declared`). Problems are raised as `PipelineError` with one
sentence saying what is wrong and how to fix it; `run` turns that into a clean exit instead of a
traceback.
"""

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

PIPELINE_FILE = Path("dvc.yaml")
PARAMS_FILE = Path("params.yaml")
# What the directories that dvc.yaml passes the stages hold, by name. prepare's output (Parquet,
# not CSV: train and evaluate read typed columns back instead of parsing text again) and what it
# found and decided (task, classes, column roles, a profile of the data), which train, evaluate,
# predict and the merge-request report read instead of deciding again:
TRAIN, TEST, SUMMARY = "train.parquet", "test.parquet", "summary.json"
# evaluate's output: the metrics, the plots' data and the images.
METRICS, PLOT_DATA, IMAGES = "metrics.json", Path("plots/sklearn"), Path("plots/images")

# The metrics evaluate writes that are better lower (all others are better higher): the sweep's
# direction and the report's margins over the baseline follow from this one set.
LOWER_IS_BETTER = {"rmse", "mae"}


def task_of(metrics: dict) -> str:
    """The task a metrics.json was written for (evaluate writes `rmse` for a regression only)."""
    return "regression" if "rmse" in metrics else "classification"


def score_names(metrics: dict) -> list[str]:
    """The names of a metrics.json's scores, in the order evaluate wrote them (the headline first)."""
    return [name for name, value in metrics.items() if isinstance(value, int | float) and not isinstance(value, bool)]


class PipelineError(Exception):
    """A problem in the inputs that the user can fix; the message says how."""


def read_yaml_mapping(path: Path, *, mapping_of: str, missing_hint: str) -> dict:
    """A YAML file that must hold a mapping (`mapping_of`: of what); each way it can be wrong is one
    sentence naming the file, a missing one followed by `missing_hint`."""
    try:
        mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise PipelineError(f"{path} is missing{missing_hint}") from error
    except yaml.YAMLError as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(mapping, dict):
        raise PipelineError(f"{path} must be a mapping {mapping_of}.")
    return mapping


def load_params(path: Path = PARAMS_FILE) -> dict:
    """All of params.yaml, including keys no stage reads (the sweep checks its keys against it)."""
    return read_yaml_mapping(
        path, mapping_of="of parameter names to values", missing_hint="; run the pipeline from the project root."
    )


def stage_params(*stages: str, root: Path | str = ".") -> dict:
    """The params.yaml values the stages read (every stage's, when none is named), nested as in
    params.yaml: the keys their `params:` in dvc.yaml lists, `${...}` resolved, so for train `seed`,
    `train.estimator` and the section `train.<that estimator>`, and nothing else.

    What `dvc.api.params_show(stages=..., deps=True)` gives (tests/test_stage_params.py compares the
    two), without importing DVC's API: 0.4-1 s a stage. Both files are parsed as DVC parses them,
    with ruamel.yaml (YAML 1.2, installed with DVC): PyYAML would read `1e-3` as text and `no` as
    false, and a stage would then run with values other than those DVC records in dvc.lock."""
    from ruamel.yaml import YAML, YAMLError

    def load(path: Path) -> dict:
        try:
            mapping = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError as error:
            raise PipelineError(f"{path} is missing; run the pipeline from the project root.") from error
        except YAMLError as error:
            raise PipelineError(f"{path} is not valid YAML: {error}") from error
        if not isinstance(mapping, dict):
            raise PipelineError(f"{path} must be a mapping.")
        return mapping

    pipeline, values = load(Path(root) / PIPELINE_FILE), load(Path(root) / PARAMS_FILE)
    defined = pipeline.get("stages") or {}
    unknown = [name for name in stages if name not in defined]
    if unknown:
        raise PipelineError(f"{PIPELINE_FILE} has no stage {', '.join(unknown)}; restore it from the template.")
    chosen = {name: stage for name, stage in defined.items() if not stages or name in stages}
    found: dict = {}
    for name, stage in chosen.items():
        for entry in stage.get("params") or []:
            if not isinstance(entry, str):
                raise PipelineError(
                    f"{PIPELINE_FILE}: stage '{name}' lists params of another file ({entry}); "
                    f"the stages read keys of {PARAMS_FILE} only."
                )
            selected = selection(values, interpolated(entry, values, name))
            if selected is not None:
                merge(found, selected)
    return found


# `${key}` in a `params:` entry, not `\${`: DVC's own pattern (dvc/parsing/interpolate.py).
INTERPOLATION = re.compile(r"(?<!\\)\$\{(?P<key>.*?)\}")


def interpolated(entry: str, values: dict, stage: str) -> str:
    """A dvc.yaml `params:` entry with each `${key}` replaced by that params.yaml value, as DVC does."""

    def text(match: re.Match) -> str:
        value = param(values, match["key"])
        if isinstance(value, dict | list) or value is None:
            raise PipelineError(
                f"{PIPELINE_FILE}: stage '{stage}' reads params '{entry}', but '{match['key']}' in "
                f"{PARAMS_FILE} is {value!r}, not a name or a number."
            )
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return INTERPOLATION.sub(text, entry).replace(r"\${", "${")


def selection(values: dict, dotted_key: str) -> dict | None:
    """`{"a": {"b": values["a"]["b"]}}` for "a.b", or None if params.yaml has no such key."""
    try:
        tree = param(values, dotted_key)
    except PipelineError:
        return None  # DVC leaves out a key the file does not have; the stage's own check names it
    for part in reversed(dotted_key.split(".")):
        tree = {part: tree}
    return tree


def merge(into: dict, tree: dict) -> None:
    """`tree`'s keys added to `into`, sections merged key by key."""
    for key, value in tree.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def declared(stage: str, field: str = "outs", pipeline: Path = PIPELINE_FILE) -> list[Path]:
    """The paths dvc.yaml lists under `field` (deps, outs, metrics) of `stage`, in its order:
    where code that is not a stage (predict, the report, the sweep) finds what a stage wrote."""
    pipeline_map = read_yaml_mapping(pipeline, mapping_of="of stages", missing_hint="; run this from the project root.")
    stages = pipeline_map.get("stages") or {}
    entries = (stages.get(stage) or {}).get(field) or []
    if not entries:
        raise PipelineError(f"{pipeline}: stage '{stage}' declares no {field}; restore it from the template.")
    return [Path(next(iter(entry)) if isinstance(entry, dict) else entry) for entry in entries]


def param(params: dict, dotted_key: str):
    """Return `params["a"]["b"]` for "a.b", or say which key is missing from params.yaml."""
    value = params
    for part in dotted_key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PipelineError(f"params.yaml has no '{dotted_key}'; add it (see the README).")
        value = value[part]
    return value


def seed(params: dict) -> int:
    value = param(params, "seed")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PipelineError(f"params.yaml: seed must be a non-negative integer, got {value!r}.")
    return value


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV file as a table, or one line saying why it cannot be read."""
    # pyarrow parses a large CSV several times faster, on every core. A file it cannot read is
    # read again by pandas' own parser, whose messages name the line or the column.
    try:
        frame = pd.read_csv(path, engine="pyarrow")
        # pyarrow keeps the memory it parsed the file in for later use: give it back, or the split
        # and the Parquet files come on top of it (about 300 MB more peak memory at 1M rows).
        import pyarrow  # here: pandas imports it for this engine anyway, and nothing else here needs it

        pyarrow.default_memory_pool().release_unused()
        # pyarrow reads bytes that are not UTF-8 as binary values, where pandas names the byte.
        binary = any(
            isinstance(value, bytes)
            for name in frame.select_dtypes("object", exclude="str")
            for value in frame[name].dropna().head(1)
        )
        if len(frame.columns) and not binary:
            return frame
    except Exception:
        pass
    try:
        return pd.read_csv(path)
    except FileNotFoundError as error:
        raise PipelineError(f"{path} is missing; run `dvc pull` or add your data (see the README).") from error
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path} is not a readable CSV file: {error}") from error


def read_summary(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise PipelineError(f"{path} is missing; run `dvc repro` (or `dvc pull`) first.") from error


def write_json(data, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Dictionary encoding only for columns that are not floats: floats seldom repeat, so pyarrow
    would build each one's dictionary only to give it up, and a table of them was written about 2.5x
    and read back 4-8x slower for it (1M rows x 20: 0.46 s against 0.17 s, 1.2 s against 0.15 s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    repeating = [str(name) for name, kind in frame.dtypes.items() if kind.kind != "f"]
    frame.to_parquet(path, index=False, use_dictionary=repeating)


def run_main(main: Callable[[], None]) -> None:
    """Run a command; report a PipelineError in one line and exit 1 instead of a traceback."""
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def run(stage: Callable[..., None], *paths: str) -> None:
    """Run the dvc.yaml stage named like the function `stage`: with the params that stage reads
    and the `paths` its `cmd:` passes, in that order (each is also a deps or outs entry there)."""
    parser = argparse.ArgumentParser(description=f"The stage `{stage.__name__}` of dvc.yaml.")
    for name in paths:
        parser.add_argument(name, type=Path)
    args = parser.parse_args()
    run_main(lambda: stage(stage_params(stage.__name__), **vars(args)))
