import shutil
from pathlib import Path

import pytest
import yaml

from {{cookiecutter.package_name}}.config import PipelineError, load_params
from {{cookiecutter.package_name}}.evaluate import evaluate
from {{cookiecutter.package_name}}.prepare import prepare
from {{cookiecutter.package_name}}.sweep import (
    Sweep,
    experiment_name,
    first_error,
    load_sweep,
    metrics_file,
    set_params,
    table,
    write_report,
)
from {{cookiecutter.package_name}}.train import train

from .conftest import MODEL, PIPELINE, PREPARED, RAW

SPEC = {
    "metric": "roc_auc",
    "direction": "maximize",
    "max_runs": 4,
    "parameters": {"train.random_forest.n_estimators": [10, 20], "train.random_forest.max_depth": [None, 3]},
}


CLASSIFICATION = ["balanced_accuracy", "accuracy", "precision", "recall", "f1", "roc_auc"]


def write_spec(tmp_path, **changes):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**SPEC, **changes}, sort_keys=False))
    return path


@pytest.fixture
def pipeline(tmp_path):
    """A copy of the project's dvc.yaml, with no metrics file beside it (a fresh clone's)."""
    return Path(shutil.copy(PIPELINE, tmp_path / "dvc.yaml"))


@pytest.fixture
def forest(params):
    """params with train.estimator random_forest, so that train reads SPEC's keys."""
    params["train"]["estimator"] = "random_forest"
    return params


def test_every_combination_is_a_run_in_declared_order(tmp_path, forest, pipeline):
    sweep = load_sweep(write_spec(tmp_path), forest, pipeline)
    assert sweep.runs() == [
        {"train.random_forest.n_estimators": 10, "train.random_forest.max_depth": None},
        {"train.random_forest.n_estimators": 10, "train.random_forest.max_depth": 3},
        {"train.random_forest.n_estimators": 20, "train.random_forest.max_depth": None},
        {"train.random_forest.n_estimators": 20, "train.random_forest.max_depth": 3},
    ]
    names = [experiment_name(run) for run in sweep.runs()]
    assert len(set(names)) == 4 and names == [experiment_name(run) for run in sweep.runs()]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metric": None}, "metric must be a score of"),
        ({"direction": "up"}, "direction must be maximize or minimize"),
        ({"max_runs": 0}, "max_runs must be a positive integer"),
        ({"max_runs": 3}, "the sweep has 4 combinations, over max_runs (3)"),
        ({"parameters": {}}, "parameters must map params.yaml keys"),
        ({"parameters": {"train.forest.trees": [1]}}, "'train.forest.trees' is not a key of params.yaml"),
        ({"parameters": {"train": [1]}}, "'train' is a section of params.yaml"),
        ({"parameters": {"seed": []}}, "'seed' needs a non-empty list of single values"),
        ({"parameters": {"seed": [[1, 2]]}}, "'seed' needs a non-empty list of single values"),
    ],
)
def test_a_bad_sweep_is_refused_in_one_sentence(tmp_path, forest, pipeline, changes, message):
    with pytest.raises(PipelineError, match="^" + str(tmp_path / "sweep.yaml")) as refused:
        load_sweep(write_spec(tmp_path, **changes), forest, pipeline)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_values_reach_dvc_as_yaml():
    assert set_params({"a.b": None, "c": 0.1, "d": "text", "e": True}) == [
        "-S", "a.b=null", "-S", "c=0.1", "-S", 'd="text"', "-S", "e=true",
    ]  # fmt: skip


def test_a_stage_error_is_the_reason_given_for_a_failed_run():
    output = "Running stage 'train':\nerror: params.yaml: train.x must not be negative.\nERROR: failed to reproduce"
    assert first_error(output) == "error: params.yaml: train.x must not be negative."
    assert first_error("ERROR: Unable to locate credentials\n") == "ERROR: Unable to locate credentials"


def result(name, n, depth, roc_auc=None, error=None, ran=("train",)):
    params = {"train.random_forest.n_estimators": n, "train.random_forest.max_depth": depth}
    done = {"name": name, "params": params, "ran": list(ran)}
    if error:
        return {**done, "error": error}
    return {**done, "metrics": {metric: 0.5 for metric in CLASSIFICATION} | {"roc_auc": roc_auc}}


def test_the_table_ranks_runs_shows_varying_values_and_keeps_failed_rows(tmp_path):
    sweep = Sweep("roc_auc", "maximize", {**SPEC["parameters"], "seed": [0]})
    results = [
        result("sweep-a", 10, None, 0.91),
        result("sweep-b", 20, 3, 0.97, ran=()),
        result("sweep-c", 10, 3, error="error: params.yaml: bad | value"),
    ]
    text = table(sweep, results, "sweep.png")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`sweep-" in line]
    assert rows[0].startswith("| 1 | `sweep-b` | `20` | `3` | **0.9700** |")
    assert rows[1].startswith("| 2 | `sweep-a` | `10` | `null` | **0.9100** |")
    assert rows[2].startswith("| – | `sweep-c` | `10` | `3` | failed: error: params.yaml: bad \\| value |")
    assert "| n_estimators | max_depth |" in text and "seed |" not in text  # only what varies
    assert "Same in every run: `seed=0`" in text
    assert "1 of 2 successful runs came back from the run-cache" in text
    assert "dvc exp apply sweep-b" in text and "dvc exp branch sweep-b" in text
    minimize = table(Sweep("roc_auc", "minimize", SPEC["parameters"]), results, None)
    assert minimize.index("`sweep-a`") < minimize.index("`sweep-b`")


def test_the_report_draws_the_metric_against_the_swept_values(tmp_path):
    sweep = Sweep("roc_auc", "maximize", SPEC["parameters"])
    results = [result(f"sweep-{n}{d}", n, d, 0.9 + n / 1000) for n in (10, 20) for d in (None, 3)]
    report = write_report(sweep, results, tmp_path / "report")
    assert "![roc_auc of each run](sweep.png)" in report.read_text()
    assert (tmp_path / "report" / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_the_metric_is_one_evaluate_wrote_into_the_workspace(project, forest):
    """No second list of metric names: the workspace's metrics file says which there are."""
    path, pipeline = write_spec(project, metric="auc"), project / "dvc.yaml"
    assert load_sweep(path, forest, pipeline).metric == "auc"  # no metrics file yet: the first run checks it
    prepare(forest, RAW, PREPARED)
    train(forest, PREPARED, MODEL)
    evaluate(forest, PREPARED, MODEL, metrics_file(pipeline).parent)
    with pytest.raises(PipelineError, match=f"metric must be one of {', '.join(CLASSIFICATION)} "):
        load_sweep(path, forest, pipeline)
    assert load_sweep(write_spec(project, metric="f1"), forest, pipeline).metric == "f1"
    with pytest.raises(PipelineError, match="the runs' metrics have no auc; rank by one of balanced_accuracy"):
        table(Sweep("auc", "maximize", SPEC["parameters"]), [result("sweep-a", 10, None, 0.9)], None)


FOREST = "train.random_forest.n_estimators"


@pytest.mark.parametrize(
    ("parameters", "unread"),
    [
        # train reads only train.hist_gradient_boosting: the forest's keys change nothing.
        (SPEC["parameters"], f"{FOREST}, train.random_forest.max_depth"),
        # Some combinations choose the linear model, none the forest.
        ({"train.estimator": ["hist_gradient_boosting", "linear"], FOREST: [10, 20]}, FOREST),
    ],
)
def test_a_swept_key_no_stage_reads_is_refused_in_one_sentence(tmp_path, params, pipeline, parameters, unread):
    with pytest.raises(PipelineError) as refused:
        load_sweep(write_spec(tmp_path, parameters=parameters), params, pipeline)
    message = str(refused.value)
    assert f"no stage reads {unread} with the values swept" in message
    assert "sweep train.estimator too, change train.estimator in params.yaml, or sweep keys of train.hist_" in message
    assert "\n" not in message and message.endswith(".")


def test_a_key_some_combination_reads_is_swept(tmp_path, params, pipeline):
    """Sweeping train.estimator makes the forest's keys read in the runs that choose the forest."""
    parameters = {
        "train.estimator": ["hist_gradient_boosting", "random_forest"],
        "train.random_forest.max_depth": [3, 5],
    }
    assert len(load_sweep(write_spec(tmp_path, parameters=parameters), params, pipeline).runs()) == 4


def test_a_key_outside_every_stage_says_to_declare_it(tmp_path, params, pipeline):
    params["notes"] = {"author": "me"}
    with pytest.raises(PipelineError, match="no stage reads notes.author .* add them to a stage's params in dvc.yaml"):
        load_sweep(write_spec(tmp_path, parameters={"notes.author": ["me", "you"]}), params, pipeline)


def test_the_default_sweep_passes_its_check(pipeline):
    project = PIPELINE.parent
    sweep = load_sweep(project / "sweep.yaml", load_params(project / "params.yaml"), pipeline)
    assert len(sweep.runs()) == 4


def test_a_regression_sweep_ranks_by_its_own_metrics_and_direction(tmp_path, forest, pipeline):
    with pytest.raises(PipelineError, match="rmse is better lower, so direction must be minimize"):
        load_sweep(write_spec(tmp_path, metric="rmse"), forest, pipeline)
    sweep = Sweep("rmse", "minimize", SPEC["parameters"])
    runs = [{**result(f"sweep-{n}", n, None), "metrics": {"rmse": n, "mae": n / 2, "r2": 0.5}} for n in (3, 1, 2)]
    rows = [line for line in table(sweep, runs, None).splitlines() if "`sweep-" in line]
    assert [row.split(" | ")[1] for row in rows[:3]] == ["`sweep-1`", "`sweep-2`", "`sweep-3`"]
    assert "| **rmse** | against the best (95%) | mae | r2 |" in table(sweep, runs, None)
    with pytest.raises(PipelineError, match="the runs' metrics have no roc_auc; rank by one of rmse, mae, r2"):
        table(Sweep("roc_auc", "maximize", SPEC["parameters"]), runs, None)
