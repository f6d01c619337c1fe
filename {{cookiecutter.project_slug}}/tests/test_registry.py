import subprocess

import pytest

from {{cookiecutter.package_name}}.config import PipelineError
from {{cookiecutter.package_name}}.registry import hide_credentials, locked_md5, model, next_version

LOCK = """
schema: '2.0'
stages:
  train:
    cmd: python -m train
    outs:
    - path: models/model.skops
      hash: md5
      md5: 349703eaa489997ac9d3ac22a89d65e6
      size: 200714
"""


def test_locked_md5_names_the_model_or_says_what_to_do():
    assert locked_md5(LOCK, "models/model.skops") == "349703eaa489997ac9d3ac22a89d65e6"
    with pytest.raises(PipelineError, match="dvc.lock names no models/other.skops: run 'dvc repro'"):
        locked_md5(LOCK, "models/other.skops")


def test_credentials_in_urls_never_reach_a_message():
    said = hide_credentials("fatal: unable to access 'https://oauth2:glpat-secret@gitlab.com/ml/demo.git/'")
    assert "glpat-secret" not in said and "https://[MASKED]@gitlab.com/ml/demo.git" in said


def test_a_deprecated_version_number_is_never_given_again(tmp_path, monkeypatch):
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(key, "Test")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "test@example.com")
    for args in (["init", "--quiet"], ["commit", "--quiet", "--allow-empty", "-m", "start"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    with model(tmp_path) as (artifact, _):
        assert next_version(artifact, "patch") == "v0.1.0"  # the first version, whatever the bump
    for tag in ("model@v0.1.0", "model@v0.2.0", "model@v0.2.0!"):  # v0.2.0 registered, then deprecated
        subprocess.run(["git", "tag", "--annotate", "--message", tag, tag], cwd=tmp_path, check=True)
    with model(tmp_path) as (artifact, _):
        assert next_version(artifact, "minor") == "v0.3.0"
        assert next_version(artifact, "patch") == "v0.2.1"
        assert next_version(artifact, "major") == "v1.0.0"
