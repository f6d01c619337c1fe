"""The answer validation in hooks/pre_gen_project.py: each rule on its own, then through the real CLI.

The hook keeps its template syntax inside `if __name__ == "__main__"`, so importing it as a module
gives the plain rule functions without baking anything.
"""

import ast
import subprocess
import sys

import pytest

from harness.project import TEMPLATE, bake_cli, pre_gen_hook

hook = pre_gen_hook()

# A complete set of answers that passes every rule; tests change one or two fields at a time.
VALID = {
    "project_name": "Tumour Classifier",
    "project_slug": "tumour-classifier",
    "package_name": "tumour_classifier",
    "author_email": "data-science@example.com",
    "default_branch": "main",
    "s3_bucket": "tumour-classifier-dvc",
    "s3_prefix": "dvc",
    "aws_region": "us-east-1",
    "s3_endpoint_url": "",
}


def assert_rejected(check, field: str, value: str) -> str:
    """The rule refuses the value with one sentence that names the field and quotes the value."""
    message = check(value)
    assert message is not None, f"{field}={value!r} was accepted"
    assert message.startswith(f"{field} {value!r} "), message
    assert message.endswith(".") and "\n" not in message, message
    return message


def test_valid_answers_have_no_problems():
    assert hook.problems(VALID) == []


def test_every_rule_is_wired_into_problems():
    # A check_* function missing from RULES would never run during a bake.
    checks = {rule for name, rule in vars(hook).items() if name.startswith("check_")}
    assert checks == set(hook.RULES.values())
    assert set(hook.RULES) == set(VALID)


@pytest.mark.parametrize("value", ["tumour-classifier", "a", "model2", "x-1-y"])
def test_slug_accepts(value):
    assert hook.check_slug(value) is None


@pytest.mark.parametrize(
    "value",
    ["Tumour", "2fast", "-lead", "trail-", "double--hyphen", "under_score", "dot.ted", "", "klassifikátor"],
)
def test_slug_rejects(value):
    message = assert_rejected(hook.check_slug, "project_slug", value)
    assert "project_slug=<name>" in message  # tells the user how to override the derived value


@pytest.mark.parametrize("value", ["tumour_classifier", "_private", "model2", "x"])
def test_package_accepts(value):
    assert hook.check_package(value) is None


@pytest.mark.parametrize("value", ["2fast", "class", "import", "with-hyphen", "Upper", "", "has space"])
def test_package_rejects(value):
    message = assert_rejected(hook.check_package, "package_name", value)
    assert "keyword" in message and "digit" in message  # the sentence lists the rules it enforces


@pytest.mark.parametrize("value", ["abc", "tumour-classifier-dvc", "my.data.bucket", "a" * 63, "1bucket"])
def test_bucket_accepts(value):
    assert hook.check_bucket(value) is None


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("ab", "3 to 63 characters"),
        ("a" * 64, "3 to 63 characters"),
        ("Bad_Bucket", "lowercase letters"),
        ("UPPER", "lowercase letters"),
        ("under_score", "lowercase letters"),
        ("-leading", "start and end with a letter or digit"),
        ("trailing-", "start and end with a letter or digit"),
        ("two..dots", "'..'"),
        ("dot.-hyphen", "'.-'"),
        ("192.168.1.1", "IP address"),
        ("xn--bucket", "xn--"),
        ("sthree-bucket", "sthree-"),
        ("bucket-s3alias", "-s3alias"),
    ],
)
def test_bucket_rejects(value, rule):
    message = assert_rejected(hook.check_bucket, "s3_bucket", value)
    assert rule in message, message  # names the specific rule that failed, not a generic complaint


@pytest.mark.parametrize("value", ["dvc", "team/project", "team/project-1/dvc_store", "a.b"])
def test_prefix_accepts(value):
    assert hook.check_prefix(value) is None


@pytest.mark.parametrize("value", ["/dvc", "dvc/", "team//project", "has space", "tab\there", "données"])
def test_prefix_rejects(value):
    assert_rejected(hook.check_prefix, "s3_prefix", value)


@pytest.mark.parametrize("value", ["team#1", "a,b"])
def test_prefix_rejects_what_dvc_config_would_misread(value):
    # .dvc/config is read by configobj: an unquoted '#' starts a comment (the remote would silently
    # point at 's3://bucket/team') and a ',' turns the url into a list (every dvc command fails).
    message = assert_rejected(hook.check_prefix, "s3_prefix", value)
    assert "'#'" in message and "','" in message


@pytest.mark.parametrize("value", ["us-east-1", "eu-central-1", "ap-southeast-2", "us-gov-west-1", "minio"])
def test_region_accepts(value):
    assert hook.check_region(value) is None


@pytest.mark.parametrize("value", ["US East", "us_east_1", "US-EAST-1", "", "-us-east-1", "us-east-1 "])
def test_region_rejects(value):
    message = assert_rejected(hook.check_region, "aws_region", value)
    assert "'us-east-1'" in message  # shows an example of the expected form


@pytest.mark.parametrize(
    "value", ["", "https://minio.example.com", "https://minio.example.com:9000", "http://127.0.0.1:9000/"]
)
def test_endpoint_accepts(value):
    assert hook.check_endpoint(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "ftp://minio.example.com",
        "minio:9000",
        "minio.example.com",
        "https://",
        "https://minio example.com",
        "https://minio.example.com#frag",
        "https://minio.example.com,https://other.example.com",
    ],
)
def test_endpoint_rejects(value):
    message = assert_rejected(hook.check_endpoint, "s3_endpoint_url", value)
    assert "http" in message


@pytest.mark.parametrize("value", ["https://AKIAEXAMPLE:s3cr3t@minio.example.com", "https://token@minio.example.com"])
def test_endpoint_rejects_credentials(value):
    # .dvc/config is committed: a key in the endpoint URL would be pushed to GitLab with it.
    message = assert_rejected(hook.check_endpoint, "s3_endpoint_url", value)
    assert "credentials" in message


@pytest.mark.parametrize("value", ["data-science@example.com", "a.b+c@sub.example.org", "Zoë@exämple.de"])
def test_email_accepts(value):
    assert hook.check_email(value) is None


@pytest.mark.parametrize("value", ["no-at-sign", "two@@example.com", "no@tld", "spa ce@example.com", "@example.com"])
def test_email_rejects(value):
    assert_rejected(hook.check_email, "author_email", value)


@pytest.mark.parametrize("value", ["main", "trunk", "release/v1", "feature/JIRA-12_x", "v1.0"])
def test_branch_accepts(value):
    assert hook.check_branch(value) is None


@pytest.mark.parametrize("value", ["a..b", "has space", "x.lock", "/lead", "trail/", "trail.", "a//b", "a~b", "a:b"])
def test_branch_rejects(value):
    assert_rejected(hook.check_branch, "default_branch", value)


# Names chosen to hit each of git's ref-format rules, including the ones a regex tends to miss
# (a first component starting with '.', '.lock' at the end of a middle component, a leading '-',
# the name HEAD); git itself is the oracle.
BRANCH_CANDIDATES = [
    *("main", "release/v1", "v1.0", "a-b_c", "ü", "ab@", "feat.x/y"),
    *("a..b", "has space", "x.lock", "-x", "HEAD", ".hidden", "a/.b", "a.lock/b", "a/b.lock/c"),
    *("@", "a@{b", "a\\b", "a^b", "a?b", "a*b", "a[b", "x//y", "/x", "x/", "x."),
]


@pytest.mark.parametrize("value", BRANCH_CANDIDATES)
def test_branch_rule_agrees_with_git(value, tmp_path):
    # A name the hook accepts but git refuses makes the post-gen hook's `git init` fail after the
    # project was written (a traceback instead of one sentence); git check-ref-format is the truth.
    git = subprocess.run(["git", "check-ref-format", "--branch", value], cwd=tmp_path, capture_output=True)
    assert (hook.check_branch(value) is None) == (git.returncode == 0)


@pytest.mark.parametrize("value", ["", "   ", "two\nlines"])
def test_name_rejects_blank_or_multiline(value):
    message = hook.check_name(value)
    assert message is not None and message.startswith("project_name ")


def test_problems_reports_every_failing_field():
    answers = {**VALID, "s3_bucket": "Bad_Bucket", "author_email": "nobody", "aws_region": "US East"}
    found = hook.problems(answers)
    assert len(found) == 3
    for field in ("author_email", "s3_bucket", "aws_region"):
        assert sum(message.startswith(f"{field} {answers[field]!r}") for message in found) == 1, found


def test_main_prints_one_error_line_per_problem(capsys):
    assert hook.main({**VALID, "s3_bucket": "ab", "s3_prefix": "/dvc"}) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"ERROR: {hook.check_bucket('ab')}", f"ERROR: {hook.check_prefix('/dvc')}"]
    assert hook.main(VALID) == 0


# --- Through the real `cookiecutter` command: the hook's sentence reaches the user, nothing is written.

CONFIG_FILES = {"cookiecutter-config.yaml", "cc", "replay"}  # what bake_cli itself puts in its output dir


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("project_slug", "Bad Slug"),
        ("package_name", "2fast"),
        ("s3_bucket", "Bad_Bucket"),
        ("s3_prefix", "/dvc"),
        ("aws_region", "US East"),
        ("s3_endpoint_url", "ftp://minio.example.com"),
        ("author_email", "nobody"),
        ("default_branch", ".hidden"),
    ],
)
def test_cli_refuses_bad_answer_and_writes_nothing(tmp_path, field, value):
    result = bake_cli(tmp_path, f"{field}={value}")
    assert result.returncode != 0
    expected = f"ERROR: {hook.RULES[field](value)}"
    assert expected.startswith(f"ERROR: {field} {value!r} ")
    assert expected in result.stderr.splitlines(), result.stderr
    assert {path.name for path in tmp_path.iterdir()} <= CONFIG_FILES


def test_cli_bakes_valid_answers_without_errors(tmp_path):
    # The control for the test above: the same command with good answers does create the project.
    result = bake_cli(tmp_path, "project_slug=good-slug", "s3_bucket=good-bucket")
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr
    assert {path.name for path in tmp_path.iterdir()} - CONFIG_FILES == {"good-slug"}


@pytest.mark.parametrize("hook", ["pre_gen_project.py", "post_gen_project.py"])
def test_hooks_need_only_the_standard_library(hook):
    """Baking needs only cookiecutter: no DVC, git bindings or scikit-learn may be imported."""
    tree = ast.parse((TEMPLATE / "hooks" / hook).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names
