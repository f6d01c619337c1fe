"""Data and models round-trip through a real S3 API (moto's server on 127.0.0.1): a fresh clone
with an empty cache gets everything back from the remote instead of recomputing."""

import pytest
import yaml

from harness.project import run
from harness.s3 import s3_env

pytestmark = pytest.mark.slow

RESTORED = ("data/raw/dataset.csv", "models/model.skops", "reports/evaluation/metrics.json")


def set_leaves(project, count: int) -> None:
    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["train"]["hist_gradient_boosting"]["max_leaf_nodes"] = count
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def test_push_then_fresh_clone_restores_without_recomputing(bake, s3_endpoint, tmp_path):
    project = bake(s3_bucket="roundtrip-bucket", s3_prefix="team/models")
    env = s3_env(project, s3_endpoint, "roundtrip-bucket")
    # An experiment with 10 leaves, pushed with its run-cache but never committed ...
    set_leaves(project, 10)
    run(["dvc", "repro"], project, env)
    run(["dvc", "push", "--run-cache"], project, env)
    experiment_model = (project / "models/model.skops").read_bytes()
    # ... then the committed state: 31 leaves, dvc.lock in git, outputs in the remote.
    run(["git", "checkout", "params.yaml"], project, env)
    run(["dvc", "repro"], project, env)
    run(["git", "add", "--all"], project, env)
    run(["git", "commit", "--quiet", "-m", "Train the first model"], project, env)
    pushed = run(["dvc", "push", "--run-cache"], project, env)
    assert "pushed" in pushed.stdout, pushed.stdout

    clone = tmp_path / "clone"
    run(["git", "clone", "--quiet", str(project), str(clone)], tmp_path, env)
    assert not (clone / ".dvc/cache").exists() and not (clone / "data/raw/dataset.csv").exists()
    clone_env = s3_env(clone, s3_endpoint, "roundtrip-bucket")

    # The committed dvc.lock matches: everything is pulled, nothing runs.
    result = run(["dvc", "repro", "--pull"], clone, clone_env)
    assert "Running stage" not in result.stdout, result.stdout
    for output in RESTORED:
        assert (clone / output).read_bytes() == (project / output).read_bytes(), output
    assert run(["git", "status", "--porcelain"], clone, clone_env).stdout == ""

    # Params that were run and pushed elsewhere: restored from the run-cache, not retrained.
    set_leaves(clone, 10)
    result = run(["dvc", "repro", "--pull"], clone, clone_env)
    assert "Running stage" not in result.stdout, result.stdout
    assert "Stage 'train' is cached - skipping run" in result.stdout, result.stdout
    assert "Stage 'evaluate' is cached - skipping run" in result.stdout, result.stdout
    assert (clone / "models/model.skops").read_bytes() == experiment_model
