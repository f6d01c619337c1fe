"""ci/vm-startup.sh, which a `training_runner=cml` bake ships: the start-up script CML's cloud VMs run
inside /usr/bin/cml.sh right before cml-runner. It must be POSIX sh, install the pinned terraform only
when the zip's SHA-256 matches, fall through to the rest of cml.sh on success and stop it on failure.
Here it runs under dash with its constants pointed at a fake release zip behind a file:// URL."""

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.project import bake_defaults

TERRAFORM_VERSION = "1.9.8"
TERRAFORM_URL = "https://releases.hashicorp.com/terraform/1.9.8/terraform_1.9.8_linux_amd64.zip"
TERRAFORM_SHA256 = "186e0145f5e5f2eb97cbd785bc78f21bae4ef15119349f6ad4fa535b83b10df8"
AFTER = "after-startup"  # what cml.sh goes on to do (start cml-runner), as a line appended to the copy


@pytest.fixture(scope="module")
def script_path(tmp_path_factory) -> Path:
    return bake_defaults(tmp_path_factory.mktemp("bake"), "training_runner=cml") / "ci" / "vm-startup.sh"


@pytest.fixture(scope="module")
def script(script_path) -> str:
    return script_path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def dash() -> str:
    path = shutil.which("dash")
    assert path, "dash is not installed (apt-get install dash): cml.sh may run under it, so the tests need it"
    return path


@pytest.fixture
def release(tmp_path) -> Path:
    """A stand-in for HashiCorp's zip: an executable `terraform` that prints its version as terraform does."""
    zip_path = tmp_path / "terraform_linux_amd64.zip"
    member = zipfile.ZipInfo("terraform")
    member.external_attr = 0o755 << 16
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(member, f'#!/bin/sh\necho "Terraform v{TERRAFORM_VERSION}"\necho "on linux_amd64"\n')
    return zip_path


def run_copy(script: str, dash: str, tmp_path: Path, url: str, sha256: str, path: str | None = None):
    """Run a copy of the script under dash with its constants replaced, followed by `echo after-startup`."""
    constants = {"TERRAFORM_URL": url, "TERRAFORM_SHA256": sha256, "INSTALL_DIR": str(tmp_path / "bin")}
    pattern = rf"^(\s*)({'|'.join(constants)})=.*$"
    script, count = re.subn(pattern, lambda m: f"{m[1]}{m[2]}={constants[m[2]]}", script, flags=re.M)
    assert count == len(constants)
    copy = tmp_path / "cml.sh"
    copy.write_text(f"{script}echo {AFTER}\n", encoding="utf-8")
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env = {"PATH": path or os.environ["PATH"], "TMPDIR": str(temp)}
    return subprocess.run([dash, str(copy)], env=env, capture_output=True, text=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_it_pins_terraform_and_has_no_line_that_ends_the_heredoc(script):
    assert "EOF" not in script.splitlines()  # cml.sh's heredoc would end there
    for constant in (
        f"TERRAFORM_VERSION={TERRAFORM_VERSION}",
        f"TERRAFORM_SHA256={TERRAFORM_SHA256}",
        f"TERRAFORM_URL={TERRAFORM_URL}",
        "INSTALL_DIR=/usr/local/bin",
    ):
        assert re.search(rf"^\s*{re.escape(constant)}$", script, flags=re.M), constant


def test_dash_parses_it(script_path, dash):
    subprocess.run([dash, "-n", str(script_path)], check=True)


def test_base64_keeps_it_whole_on_one_line(script_path, script):
    """What the launch job sends: --cloud-startup-script "$(base64 -w0 ci/vm-startup.sh)"."""
    encoded = subprocess.run(["base64", "-w0", str(script_path)], capture_output=True, text=True, check=True).stdout
    assert "\n" not in encoded
    assert base64.b64decode(encoded).decode("utf-8") == script


def test_a_matching_zip_installs_terraform_and_cml_sh_goes_on(script, dash, tmp_path, release):
    result = run_copy(script, dash, tmp_path, release.as_uri(), sha256(release))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == AFTER
    version = subprocess.run([tmp_path / "bin" / "terraform", "version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith(f"Terraform v{TERRAFORM_VERSION}\n")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_right_terraform_already_there_is_kept_without_a_download(script, dash, tmp_path, release):
    assert run_copy(script, dash, tmp_path, release.as_uri(), sha256(release)).returncode == 0
    result = run_copy(script, dash, tmp_path, (tmp_path / "missing.zip").as_uri(), "0" * 64)
    assert result.returncode == 0, result.stderr
    assert "already" in result.stdout and result.stdout.splitlines()[-1] == AFTER


def test_a_wrong_checksum_installs_nothing_and_stops_cml_sh(script, dash, tmp_path, release):
    expected = "0" * 64
    result = run_copy(script, dash, tmp_path, release.as_uri(), expected)
    assert result.returncode != 0
    assert AFTER not in result.stdout  # cml-runner would not start
    [line] = result.stderr.splitlines()
    assert sha256(release) in line and expected in line
    assert not (tmp_path / "bin" / "terraform").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_failed_download_stops_cml_sh(script, dash, tmp_path):
    missing = (tmp_path / "missing.zip").as_uri()
    result = run_copy(script, dash, tmp_path, missing, TERRAFORM_SHA256)
    assert result.returncode != 0 and AFTER not in result.stdout
    assert missing in result.stderr.splitlines()[-1]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_without_unzip_python_unpacks_the_zip(script, dash, tmp_path, release):
    tools = tmp_path / "tools"  # what the script calls, except unzip
    tools.mkdir()
    for tool in ("mktemp", "curl", "sha256sum", "cut", "mkdir", "install", "head", "rm"):
        (tools / tool).symlink_to(shutil.which(tool))
    (tools / "python3").symlink_to(sys.executable)
    result = run_copy(script, dash, tmp_path, release.as_uri(), sha256(release), path=str(tools))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == AFTER
    assert os.access(tmp_path / "bin" / "terraform", os.X_OK)
