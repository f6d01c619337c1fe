"""Shared helpers: bake the template, run commands in a baked project, a loopback S3 server."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

TEMPLATE = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def project_env(project: Path, **extra: str) -> dict[str, str]:
    """Environment for commands in a baked project: this venv's tools, the project's src on the path.

    PYTHONPATH=src stands in for `pip install -e .` (tested once for real in test_pipeline.py), so
    every baked project can share the template's environment. Bytecode writing stays on: each
    stage is a new process importing scikit-learn, and without .pyc files that costs seconds more.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "GIT_", "CI_", "GCL_", "PYTEST_")) and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(project / "src"),
        DVC_NO_ANALYTICS="1",
        ITERATIVE_DO_NOT_TRACK="1",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
    )
    env.update(extra)
    return env


def ran_stages(output: str) -> list[str]:
    """The stages DVC ran, in order, from its output ("Running stage 'train':")."""
    return re.findall(r"Running stage '(\w+)'", output)


def run(args: list[str], cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, returning its output; on an unexpected exit code, fail with that output."""
    result = subprocess.run(args, cwd=cwd, env=env or project_env(cwd), capture_output=True, text=True)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def bake_cli(output_dir: Path, *answers: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Bake with the real `cookiecutter` command (keeps the hooks' stderr, unlike pytest-cookies)."""
    config = output_dir / "cookiecutter-config.yaml"
    config.write_text(f"cookiecutters_dir: {output_dir / 'cc'}\nreplay_dir: {output_dir / 'replay'}\n")
    args = [str(VENV_BIN / "cookiecutter"), "--no-input", "--config-file", str(config), "-o", str(output_dir)]
    return subprocess.run(
        [*args, str(TEMPLATE), *answers], env=env or project_env(output_dir), capture_output=True, text=True
    )


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
    """moto's S3 server on 127.0.0.1 (a real S3 HTTP API), stopped when the session ends."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_env(project: Path, endpoint: str, bucket: str) -> dict[str, str]:
    """Fake credentials and the endpoint override; creates the bucket the project points at."""
    import boto3

    env = project_env(
        project,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=endpoint,
    )
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    return env
