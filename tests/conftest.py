"""Fixtures only; what they build on lives in the `harness` package."""

import socket
from pathlib import Path

import pytest

from harness.gitlab import create_jobs_venv
from harness.project import TEMPLATE, bake_defaults, branch_with_leaves, commit_first_model, project_env
from harness.s3 import LocalS3


@pytest.fixture
def bake(cookies):
    """Bake with pytest-cookies and return the project path; fail with the hook's error otherwise."""

    def _bake(**answers) -> Path:
        result = cookies.bake(extra_context=answers, template=str(TEMPLATE))
        assert result.exception is None, result.exception
        assert result.exit_code == 0
        return Path(result.project_path)

    return _bake


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on 127.0.0.1, for the whole session."""
    with LocalS3() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def jobs_venv(tmp_path_factory):
    """The CI jobs' environment, built once from the template's requirements.lock (as every bake's)."""
    return create_jobs_venv(TEMPLATE / "{{cookiecutter.project_slug}}", tmp_path_factory.mktemp("jobs") / "venv")


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory):
    """The defaults baked, with main's first model committed, and branches `leaves-10` and
    `leaves-15` that change only max_leaf_nodes, committed without `dvc repro` (their train
    jobs reproduce). Nothing in S3 yet. Tests clone it or push from it, never change it."""
    project = bake_defaults(tmp_path_factory.mktemp("trained"))
    commit_first_model(project, project_env(project))
    for leaves in (10, 15):
        branch_with_leaves(project, f"leaves-{leaves}", leaves)
    return project


@pytest.fixture
def closed_port():
    """A loopback port bound but not listening: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
