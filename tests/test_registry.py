"""The model registry (`python -m <package>.registry`) in a baked project with the loopback S3
remote and a bare `origin`: versions and stages are GTO tags on origin, each resolves to its
commit, and `fetch` from a directory with no clone and no training returns the model whose md5 is
that commit's dvc.lock entry. Every refusal is one `error:` line, and pushes no tag."""

import json
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from harness.project import file_md5, locked_md5, run
from harness.s3 import s3_env

pytestmark = pytest.mark.slow
MODEL = "models/model.skops"


@dataclass
class Project:
    path: Path
    env: dict
    origin: Path

    def registry(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        package = json.loads((self.path / ".cookiecutter.json").read_text())["package_name"]
        return run(["python", "-m", f"{package}.registry", *args], cwd or self.path, self.env, check)

    def git(self, *args: str) -> str:
        return run(["git", *args], self.path, self.env).stdout.strip()

    def commit_trained(self, leaves: int, push: bool = True) -> str:
        """Train with max_leaf_nodes `leaves`, commit params and dvc.lock, push the results: the commit."""
        params = self.path / "params.yaml"
        params.write_text(re.sub(r"max_leaf_nodes: \d+", f"max_leaf_nodes: {leaves}", params.read_text()))
        run(["dvc", "repro", "--quiet"], self.path, self.env)
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", f"Train with {leaves} leaves")
        if push:
            run(["dvc", "push", "--quiet"], self.path, self.env)
        return self.git("rev-parse", "HEAD")

    def locked_md5(self, commit: str) -> str:
        return locked_md5(self.git("show", f"{commit}:dvc.lock"), MODEL)

    def origin_tags(self) -> set[str]:
        listing = run(["git", "ls-remote", "--tags", "--refs", str(self.origin)], self.path, self.env).stdout
        return {line.split("refs/tags/", 1)[1] for line in listing.splitlines()}


@pytest.fixture
def project(bake, s3_endpoint, tmp_path) -> Project:
    bucket = f"registry-{uuid.uuid4().hex[:12]}"
    path = bake(s3_bucket=bucket)
    env = s3_env(path, s3_endpoint, bucket)
    origin = tmp_path / "origin.git"
    run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(origin)], tmp_path, env)
    run(["git", "remote", "add", "origin", str(origin)], path, env)
    run(["git", "push", "--quiet", "origin", "main"], path, env)
    return Project(path, env, origin)


def assert_refused(result: subprocess.CompletedProcess, start: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {start}"), line
    return line


def test_versions_and_stages_resolve_to_their_commits_and_fetch_without_a_clone(project, tmp_path):
    first = project.commit_trained(31)
    registered = project.registry("register").stdout
    assert f"Registered model v0.1.0: the model of commit {first[:8]}." in registered
    second = project.commit_trained(10)
    assert "Registered model v0.2.0" in project.registry("register").stdout  # --bump minor by default

    project.registry("promote", "v0.1.0", "production")
    project.registry("promote", "v0.1.0", "staging")
    reassigned = project.registry("promote", "v0.2.0", "production").stdout
    assert "model v0.1.0 leaves 'production'." in reassigned and "'production' holds model v0.2.0." in reassigned
    project.registry("unassign", "staging")

    # Each event is one tag on origin; the replaced version left `production` before v0.2.0 came.
    assert project.origin_tags() == {
        "model@v0.1.0",
        "model@v0.2.0",
        "model#production#1",
        "model#staging#2",
        "model#production!#3",
        "model#production#4",
        "model#staging!#5",
    }
    for tag, commit in (("model@v0.1.0", first), ("model@v0.2.0", second), ("model#production#4", second)):
        assert project.git("rev-parse", f"{tag}^0") == commit, tag
    shown = project.registry("show").stdout.splitlines()
    assert re.fullmatch(r"production: +v0\.2\.0", shown[1]) and re.fullmatch(r"staging: +-", shown[0]), shown
    assert re.match(rf"v0\.2\.0 +{second[:8]} .* production$", shown[2]), shown
    assert re.match(rf"v0\.1\.0 +{first[:8]} .* -$", shown[3]), shown
    # GTO's own reading (semver order) agrees, as a stage holds one version.
    gto = ["gto", "show", "--ref"]
    assert run([*gto, "model#production"], project.path, project.env).stdout.strip() == "model@v0.2.0"
    assert run([*gto, "model#staging"], project.path, project.env).stdout.strip() == ""

    # What a deploy or stop job checks before it acts, also when GitLab runs it again much later.
    assert project.registry("current", "model#production#4", "production").stdout.strip() == "v0.2.0"
    assert project.registry("current", "model#staging!#5", "staging").stdout.strip() == ""
    outdated = {
        ("model#production#1", "production"): "error: 'production' holds model v0.2.0 now, not v0.1.0 as",
        ("model#production!#3", "production"): "error: 'production' holds model v0.2.0 again since model#produ",
        ("model#production#99", "production"): "error: the tag model#production#99 is no longer on origin",
    }
    for (tag, environment), message in outdated.items():
        refused = project.registry("current", tag, environment, check=False)
        assert refused.returncode == 3 and refused.stderr.startswith(message), refused.stderr
    elsewhere = project.registry("current", "model#production#4", "staging", check=False)
    assert (
        elsewhere.returncode == 1 and "is not an assignment or unassignment of the stage 'staging'" in elsewhere.stderr
    )

    consumer = tmp_path / "consumer"  # no clone, no DVC project: only the repository's URL
    consumer.mkdir()
    origin = str(project.origin)
    for target, commit, out in (("v0.1.0", first, "v1.skops"), ("production", second, "production.skops")):
        fetched = project.registry("fetch", target, "--repo", origin, "--out", out, cwd=consumer).stdout
        assert file_md5(consumer / out) == project.locked_md5(commit), target
        assert f"commit {commit[:8]}: {out} (md5 {project.locked_md5(commit)}, as in its dvc.lock)" in fetched
    assert "(in 'production')" in fetched
    assert_refused(project.registry("fetch", "staging", "--repo", origin, cwd=consumer, check=False), "no version")
    assert sorted(path.name for path in consumer.iterdir()) == ["production.skops", "v1.skops"]
    # What `fetch` gives predicts from raw rows, wherever it is.
    raw = pd.read_csv(project.path / "data/raw/dataset.csv").head(10)
    raw.drop(columns="target").to_csv(tmp_path / "rows.csv", index=False)
    package = json.loads((project.path / ".cookiecutter.json").read_text())["package_name"]
    predict = ["python", "-m", f"{package}.predict", str(tmp_path / "rows.csv"), "--model", "production.skops"]
    run([*predict, "--out", str(tmp_path / "predicted.csv")], consumer, project.env)
    predicted = pd.read_csv(tmp_path / "predicted.csv")
    assert (predicted["predicted_target"] == raw["target"]).mean() >= 0.8 and len(predicted) == 10
    # Why `fetch` resolves stages with GTO: DVC's `--stage` returns the model staging no longer holds.
    dvc_get = ["dvc", "artifacts", "get", origin, "model", "--stage", "staging", "--out", "dvc-staging.skops"]
    run(dvc_get, consumer, project.env)
    assert file_md5(consumer / "dvc-staging.skops") == project.locked_md5(first)

    deprecated = project.registry("deprecate", "v0.1.0").stdout
    assert "Deprecated model v0.1.0." in deprecated and "model@v0.1.0!" in project.origin_tags()
    assert_refused(project.registry("fetch", "v0.1.0", "--repo", origin, cwd=consumer, check=False), "model v0.1.0 was")
    assert re.match(r"v0\.1\.0 .* deprecated$", project.registry("show").stdout.splitlines()[3])

    # A version that a stage holds leaves it first, by an unassignment tag whose pipeline stops the
    # stage's environment; then the deprecation.
    before = project.origin_tags()
    deprecated = project.registry("deprecate", "v0.2.0").stdout
    [unassigned] = [tag for tag in project.origin_tags() - before if tag != "model@v0.2.0!"]
    assert re.fullmatch(r"model#production!#\d+", unassigned) and "model@v0.2.0!" in project.origin_tags()
    assert "Deprecated model v0.2.0; it leaves production." in deprecated
    assert re.fullmatch(r"production: +-", project.registry("show").stdout.splitlines()[1])


def test_each_refusal_is_one_line_and_pushes_no_tag(project):
    trained = project.commit_trained(31, push=False)
    refused = assert_refused(project.registry("register", check=False), "this commit's model (models/model.skops")
    assert "is not in the DVC remote: run 'dvc push'" in refused
    run(["dvc", "push", "--quiet"], project.path, project.env)

    params = project.path / "params.yaml"
    params.write_text(params.read_text().replace("max_leaf_nodes: 31", "max_leaf_nodes: 7"))
    assert assert_refused(project.registry("register", check=False), "uncommitted changes (params.yaml)")
    project.git("commit", "--quiet", "-am", "Change params without dvc repro")
    stale = assert_refused(project.registry("register", check=False), "dvc.lock does not match this commit")
    assert "(train: params.yaml changed): run 'dvc repro --pull'" in stale
    project.git("reset", "--quiet", "--hard", trained)

    project.registry("register")
    assert_refused(project.registry("register", check=False), f"this commit ({trained[:8]}) is model v0.1.0 already.")
    unknown_stage = assert_refused(project.registry("promote", "v0.1.0", "qa", check=False), "'qa' is not a stage")
    assert unknown_stage.endswith(".gto lists staging, production.")
    assert_refused(project.registry("promote", "v0.9.0", "staging", check=False), "model v0.9.0 is not registered")
    assert_refused(project.registry("promote", "latest", "staging", check=False), "'latest' is not a version")
    project.registry("promote", "v0.1.0", "staging")
    assert_refused(project.registry("promote", "v0.1.0", "staging", check=False), "'staging' holds model v0.1.0")
    assert_refused(project.registry("unassign", "production", check=False), "no version is in 'production'.")

    hook = project.origin / "hooks" / "pre-receive"  # origin refuses every push from now on
    hook.write_text("#!/bin/sh\necho 'GitLab: You are not allowed to create tags.'\nexit 1\n")
    hook.chmod(0o755)
    refused = assert_refused(project.registry("promote", "v0.1.0", "production", check=False), "could not push")
    assert "model#production#2 to origin" in refused
    assert project.git("tag", "--list", "model#production*") == ""  # deleted here too: a retry starts clean
    assert project.origin_tags() == {"model@v0.1.0", "model#staging#1"}


def test_fetch_refuses_a_crafted_model_and_keeps_nothing(project, tmp_path):
    """Anyone who can push a tag chooses the file behind a version: one that would run a command when
    it predicts (the baked project's tests/crafted.py) is refused by `fetch`, which writes nothing."""
    project.commit_trained(31)
    marker = tmp_path / "marker"
    craft = (
        "import pandas as pd; from pathlib import Path; from tests.crafted import crafted_model; "
        "rows = pd.read_csv('data/raw/dataset.csv').head(); "
        f"crafted_model(Path('{MODEL}'), Path('{marker}'), 'method', rows, rows.columns[0])"
    )
    run(["python", "-c", craft], project.path, project.env)
    run(["dvc", "commit", "--force", "--quiet", "train"], project.path, project.env)
    run(["dvc", "push", "--quiet"], project.path, project.env)
    project.git("commit", "--quiet", "-am", "A model from somewhere else")
    project.git("tag", "--annotate", "model@v0.2.0", "--message", "Registering artifact model version v0.2.0")
    project.git("push", "--quiet", "origin", "main", "model@v0.2.0")

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    fetch = ["fetch", "v0.2.0", "--repo", str(project.origin), "--out", "model.skops"]
    refused = assert_refused(project.registry(*fetch, cwd=consumer, check=False), "model v0.2.0 is refused: it names")
    assert "sklearn.utils._testing.check_output" in refused
    assert list(consumer.iterdir()) == [] and not marker.exists()
