"""The params a stage reads, without DVC: the same as DVC's own reading of dvc.yaml and params.yaml."""

from pathlib import Path

import dvc.api
import pytest
import yaml

from {{cookiecutter.package_name}}.config import PipelineError, load_params, stage_params

from .conftest import PIPELINE

PARAMS_TEXT = (PIPELINE.parent / "params.yaml").read_text(encoding="utf-8")
STAGES = list(yaml.safe_load(PIPELINE.read_text(encoding="utf-8"))["stages"])
ESTIMATORS = list(yaml.safe_load(PARAMS_TEXT)["train"])[1:]  # the sections after `estimator`


def project_with(tmp_path: Path, params_text: str) -> Path:
    """A DVC project of dvc.yaml and this params.yaml, and the working directory (as for a stage)."""
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.yaml").write_text(PIPELINE.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "params.yaml").write_text(params_text, encoding="utf-8")
    return tmp_path


def dvc_reading(root: Path, *stages: str) -> dict:
    no_scm = {"core": {"no_scm": True}}
    return dvc.api.params_show(stages=list(stages) or None, deps=True, repo=str(root), config=no_scm)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_stage_reads_what_dvc_gives_it(tmp_path, monkeypatch, estimator):
    text = PARAMS_TEXT.replace("estimator: hist_gradient_boosting", f"estimator: {estimator}")
    # Values PyYAML (YAML 1.1) and DVC's parser (YAML 1.2) read differently: 1e-3 (text in 1.1),
    # `no` (false in 1.1), 0o17 (text in 1.1).
    text = text.replace("positive_class: null", "positive_class: no").replace("max_iter: 1000", "max_iter: 0o17")
    text = text.replace("learning_rate: 0.1", "learning_rate: 1e-3")
    root = project_with(tmp_path, text)
    monkeypatch.chdir(root)  # DVC finds a named stage from the working directory
    assert stage_params(root=root) == dvc_reading(root)
    for stage in STAGES:
        assert stage_params(stage, root=root) == dvc_reading(root, stage), stage
    train = stage_params("train", root=root)
    assert set(train) == {"seed", "train"} and set(train["train"]) == {"estimator", estimator}
    if estimator == "hist_gradient_boosting":
        assert train["train"][estimator]["learning_rate"] == 0.001
    if estimator == "linear":
        assert train["train"][estimator]["max_iter"] == 15
    assert stage_params("prepare", root=root)["data"]["positive_class"] == "no"
    everything = load_params(root / "params.yaml")  # the sweep's reading of params.yaml: DVC's too
    assert everything["data"]["positive_class"] == "no"
    assert everything["train"]["hist_gradient_boosting"]["learning_rate"] == 0.001


def test_a_missing_key_is_left_out_as_dvc_does_and_a_missing_choice_is_named(tmp_path, monkeypatch):
    params = yaml.safe_load(PARAMS_TEXT)
    del params["prepare"]
    root = project_with(tmp_path, yaml.safe_dump(params))
    monkeypatch.chdir(root)
    assert stage_params("prepare", root=root) == dvc_reading(root, "prepare")
    assert "prepare" not in stage_params("prepare", root=root)  # the stage's own check names it
    del params["train"]["estimator"]
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(PipelineError, match=r"params.yaml has no 'train.estimator'"):
        stage_params("train", root=root)
    with pytest.raises(PipelineError, match=r"dvc.yaml has no stage trian"):
        stage_params("trian", root=root)
