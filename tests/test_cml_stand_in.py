"""The `cml` stand-in (tests/stand_ins/cml) is part of the proof, so prove it is strict.

It must accept the exact call the generated project makes (ci/comment.sh), record it faithfully, and
reject what real CML 0.20.6 would reject or what would break on GitLab. Each test runs the script in
a subprocess with an explicit environment: no inherited tokens, CI variables or CML_* options.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

STAND_IN = Path(__file__).resolve().parent / "stand_ins" / "cml"
TOKEN = "glpat-stand-in-test-token-5f3a9c"
REPO = "https://gitlab.example.com/g/p"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
# The call in {{cookiecutter.project_slug}}/ci/comment.sh, with its variables expanded.
TEMPLATE_CALL = [
    *("comment", "update", "report/report.md"),
    *("--driver", "gitlab"),
    *("--repo", REPO),
    *("--target", "pr/7"),
    "--native",
    *("--watermark-title", "DVC model report"),
]
INHERITED = ("REPO_TOKEN", "repo_token", "GITHUB_TOKEN", "GITLAB_TOKEN", "BITBUCKET_TOKEN")
INHERITED += ("GITHUB_REPOSITORY", "BITBUCKET_REPO_UUID", "ITERATIVE_DO_NOT_TRACK")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A job's working directory: report/report.md referencing an existing PNG next to it."""
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "roc.png").write_bytes(PNG)
    (tmp_path / "report" / "report.md").write_text("# Model report\n\n| auc | 0.9 |\n\n![roc](./roc.png)\n")
    return tmp_path


@pytest.fixture
def cml(workspace: Path):
    """Run the stand-in in the workspace: (completed process, records this call added to the log)."""
    log = workspace / "cml-calls.jsonl"

    def _run(*args: str, token: str | None = TOKEN, via_path: bool = False, **env: str):
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in INHERITED and not key.startswith(("CI_", "CML_", "GITLAB_", "GIT_"))
        }
        environment.update(
            ITERATIVE_DO_NOT_TRACK="1", CML_STAND_IN_LOG=str(log), GIT_CEILING_DIRECTORIES=str(workspace)
        )
        if token is not None:
            environment["REPO_TOKEN"] = token
        environment.update(env)
        before = log.read_text().count("\n") if log.exists() else 0
        if via_path:  # as the job scripts run it
            environment["PATH"] = f"{STAND_IN.parent}{os.pathsep}{environment['PATH']}"
            command = ["cml", *args]
        else:  # this interpreter rather than the shebang's: half the start-up time
            command = [sys.executable, str(STAND_IN), *args]
        result = subprocess.run(command, cwd=workspace, env=environment, capture_output=True, text=True)
        lines = log.read_text().splitlines() if log.exists() else []
        return result, [json.loads(line) for line in lines[before:]]

    return _run


def assert_rejected(result: subprocess.CompletedProcess, records: list[dict], *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert records == [], "a rejected call must not be recorded"
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr


def test_is_an_executable_python_script():
    assert STAND_IN.stat().st_mode & stat.S_IXUSR
    assert STAND_IN.read_text().startswith("#!/usr/bin/env python3\n")


def test_accepts_the_template_call_and_records_it(cml, workspace):
    result, records = cml(*TEMPLATE_CALL)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{REPO}/-/merge_requests/7#note_1\n"
    assert "asset.cml.dev" not in result.stderr  # --native: no public upload warning
    [record] = records
    assert record["argv"] == TEMPLATE_CALL
    assert record["cwd"] == str(workspace)
    assert record["subcommand"] == "comment update"
    assert record["options"] == {
        "driver": "gitlab",
        "repo": REPO,
        "target": "pr/7",
        "publish-native": True,
        "watermark-title": "DVC model report",
    }
    assert record["markdown_path"] == str(workspace / "report" / "report.md")
    assert record["markdown"] == (workspace / "report" / "report.md").read_text()
    assert record["images"] == [
        {
            "ref": "./roc.png",
            "kind": "markdown",
            "path": str(workspace / "report" / "roc.png"),
            "bytes": 40,
            "png": True,
        }
    ]
    assert record["token_source"] == "REPO_TOKEN"
    assert record["env"]["ITERATIVE_DO_NOT_TRACK"] == "1"
    assert record["env"]["CI_MERGE_REQUEST_IID"] is None


def test_runs_from_path_as_cml(cml):
    result, [record] = cml(*TEMPLATE_CALL, via_path=True)
    assert (result.returncode, result.stdout) == (0, f"{REPO}/-/merge_requests/7#note_1\n"), result.stderr
    assert record["argv"] == TEMPLATE_CALL


def test_accepts_flag_equals_value(cml):
    args = ["comment", "update", "report/report.md", "--driver=gitlab", f"--repo={REPO}", "--target=pr/7"]
    result, [record] = cml(*args, "--native", "--watermark-title=DVC model report")

    assert result.returncode == 0, result.stderr
    assert record["options"]["target"] == "pr/7"
    assert record["options"]["watermark-title"] == "DVC model report"


@pytest.mark.parametrize("via", ["REPO_TOKEN", "GITLAB_TOKEN", "--token", "--token=", "--driver-token"])
def test_log_never_contains_the_token(cml, workspace, via):
    if via.startswith("--"):
        flag = [f"{via}{TOKEN}"] if via.endswith("=") else [via, TOKEN]
        result, records = cml(*TEMPLATE_CALL, *flag, token=None)
    else:
        result, records = cml(*TEMPLATE_CALL, token=None, **{via: TOKEN})
    (workspace / "report" / "report.md").write_text(f"token {TOKEN} leaked into the report\n")
    cml(*TEMPLATE_CALL, "--token", TOKEN)

    assert result.returncode == 0, result.stderr
    assert records[0]["token_source"] == ("--token" if via.startswith("--") else via)
    log = (workspace / "cml-calls.jsonl").read_text()
    assert log.count("\n") == 2
    assert TOKEN not in log
    assert "[MASKED]" in log


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (["--dry-run"], "unknown argument: --dry-run"),  # CML has no dry-run mode
        (["--show-md"], "unknown argument: --show-md"),  # a DVC 2 flag, not a CML one
        (["--md"], "unknown argument: --md"),  # an option of `pr create`, not of `comment`
        (["-t", "x"], "no short options"),
        (["--watermarkTitle", "x"], "unknown argument: --watermarkTitle"),
        (["--no-target"], "unknown argument: --no-target"),  # only booleans can be negated
    ],
)
def test_rejects_unknown_flags(cml, flag, message):
    assert_rejected(*cml(*TEMPLATE_CALL, *flag), message)


def test_rejects_global_flag_values_outside_their_choices(cml):
    call = [arg if arg != "gitlab" else "gitea" for arg in TEMPLATE_CALL]
    assert_rejected(*cml(*call), "invalid value for --driver", "github, gitlab, bitbucket")
    assert_rejected(*cml(*TEMPLATE_CALL, "--log", "trace"), "invalid value for --log")


@pytest.mark.parametrize(
    "args",
    [
        ["comment", "update", "report/report.md", "--driver", "gitlab", "--repo", REPO, "--target"],
        ["comment", "update", "report/report.md", "--driver", "gitlab", "--repo", "--native"],
        ["comment", "update", "report/report.md", "--driver=", "--repo", REPO],
    ],
)
def test_rejects_a_missing_option_value(cml, args):
    assert_rejected(*cml(*args), "needs a")


@pytest.mark.parametrize(
    "reference",
    [
        "![roc](./missing.png)",
        "![roc](missing.png 'a title')",
        '<img src="missing.png" width="400">',
        "![roc][plot]\n\n[plot]: ./missing.png",
    ],
)
def test_rejects_a_missing_local_image(cml, workspace, reference):
    (workspace / "report" / "report.md").write_text(f"# Report\n\n![roc](./roc.png)\n\n{reference}\n")
    assert_rejected(*cml(*TEMPLATE_CALL), "missing.png", str(workspace / "report" / "missing.png"))


def test_resolves_images_from_the_markdown_files_directory(cml, workspace):
    (workspace / "roc.png").write_bytes(PNG)  # next to the cwd, not next to the report
    (workspace / "report" / "report.md").write_text("![roc](../roc.png)\n![roc](./roc.png)\n")
    result, [record] = cml(*TEMPLATE_CALL)
    assert result.returncode == 0, result.stderr
    assert [image["path"] for image in record["images"]] == [
        str(workspace / "roc.png"),
        str(workspace / "report/roc.png"),
    ]

    (workspace / "report" / "roc.png").unlink()
    assert_rejected(*cml(*TEMPLATE_CALL), "./roc.png")


def test_skips_remote_and_embedded_images_and_code(cml, workspace):
    (workspace / "report" / "notes.txt").write_text("not an image")
    (workspace / "report" / "report.md").write_text(
        "![a](https://example.com/a.png) ![b](data:image/png;base64,iVBORw0KGgo=)\n"
        "`![c](./missing.png)`\n\n```\n![d](./missing.png)\n```\n\n![e](<./notes.txt>)\n"
    )
    result, [record] = cml(*TEMPLATE_CALL)

    assert result.returncode == 0, result.stderr
    assert [(image["ref"], image["png"]) for image in record["images"]] == [("./notes.txt", False)]


def test_warns_about_local_html_images(cml, workspace):
    (workspace / "report" / "report.md").write_text('<img src="roc.png">\n')
    result, [record] = cml(*TEMPLATE_CALL)
    assert result.returncode == 0, result.stderr
    assert record["images"][0]["kind"] == "html"
    assert "will be broken" in result.stderr


def test_rejects_a_missing_markdown_file(cml, workspace):
    (workspace / "report" / "report.md").unlink()
    assert_rejected(*cml(*TEMPLATE_CALL), "no such file", "report/report.md")


def test_rejects_a_missing_markdown_argument(cml):
    assert_rejected(*cml("comment", "update", "--driver", "gitlab", "--repo", REPO), "missing argument <markdown file>")
    assert_rejected(*cml(*TEMPLATE_CALL, "extra.md"), "unknown argument: extra.md")


@pytest.mark.parametrize("empty", [None, ""])
def test_rejects_a_missing_token(cml, empty):
    # CI_JOB_TOKEN is not one of the variables CML reads.
    result, records = cml(*TEMPLATE_CALL, token=empty, CI_JOB_TOKEN="job-token")
    assert_rejected(result, records, "token not found")


@pytest.mark.parametrize("target", ["pr/", "pr/abc", "issue/", "mr/7", "merge_request", "pr/7/notes"])
def test_rejects_a_malformed_target(cml, target):
    call = [arg if arg != "pr/7" else target for arg in TEMPLATE_CALL]
    assert_rejected(*cml(*call), target)


@pytest.mark.parametrize(
    ("target", "env", "url"),
    [
        ("issue/3", {}, f"{REPO}/-/issues/3#note_1"),
        ("auto", {"CI_MERGE_REQUEST_IID": "12"}, f"{REPO}/-/merge_requests/12#note_1"),
        ("pr", {"CI_MERGE_REQUEST_IID": "12"}, f"{REPO}/-/merge_requests/12#note_1"),
        ("commit/abc1234", {}, f"{REPO}/-/commit/abc1234"),
        ("commit", {"CI_COMMIT_SHA": "f" * 40}, f"{REPO}/-/commit/{'f' * 40}"),
    ],
)
def test_accepts_every_target_form(cml, target, env, url):
    call = [arg if arg != "pr/7" else target for arg in TEMPLATE_CALL]
    result, _ = cml(*call, **env)
    assert (result.returncode, result.stdout) == (0, url + "\n"), result.stderr


def test_update_edits_the_matching_note_and_create_adds_one(cml):
    first, _ = cml(*TEMPLATE_CALL)
    again, [record] = cml(*TEMPLATE_CALL)
    other, _ = cml(*[arg if arg != "DVC model report" else "other" for arg in TEMPLATE_CALL])
    created, _ = cml("comment", "create", *TEMPLATE_CALL[2:])

    assert first.stdout == again.stdout == f"{REPO}/-/merge_requests/7#note_1\n"
    assert record["note"]["updated"] is True
    assert other.stdout == f"{REPO}/-/merge_requests/7#note_3\n"
    assert created.stdout == f"{REPO}/-/merge_requests/7#note_4\n"


def test_a_second_update_on_a_commit_fails_as_on_gitlab(cml):
    call = [arg if arg != "pr/7" else "commit/abc1234" for arg in TEMPLATE_CALL]
    assert cml(*call)[0].returncode == 0
    assert_rejected(*cml(*call), "GitLab does not support comment updates")


def test_rejects_pr_target_without_a_merge_request(cml):
    call = [arg if arg != "pr/7" else "pr" for arg in TEMPLATE_CALL]
    assert_rejected(*cml(*call), "CI_MERGE_REQUEST_IID")


def test_driver_comes_from_the_flag_or_gitlab_environment(cml):
    without_driver = [arg for arg in TEMPLATE_CALL if arg not in ("--driver", "gitlab")]
    assert_rejected(*cml(*without_driver), "driver not set")
    assert cml(*without_driver, CI_PROJECT_URL=REPO)[0].returncode == 0
    on_gitlab_com = [arg if arg != REPO else "https://gitlab.com/g/p" for arg in without_driver]
    assert cml(*on_gitlab_com)[0].returncode == 0
    assert_rejected(*cml(*TEMPLATE_CALL[:3], "--driver", "github", *TEMPLATE_CALL[5:]), "GitLab only")


def test_repo_defaults_to_the_origin_remote(cml, workspace):
    without_repo = [arg for arg in TEMPLATE_CALL if arg not in ("--repo", REPO)]
    assert_rejected(*cml(*without_repo), "no --repo")

    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    subprocess.run(
        ["git", "-C", str(workspace), "remote", "add", "origin", "git@gitlab.example.com:g/p.git"], check=True
    )
    result, _ = cml(*without_repo, GIT_CEILING_DIRECTORIES="")
    assert (result.returncode, result.stdout) == (0, f"{REPO}/-/merge_requests/7#note_1\n"), result.stderr


def test_warns_that_images_would_go_to_the_public_host_without_native(cml):
    result, [record] = cml(*[arg for arg in TEMPLATE_CALL if arg != "--native"])
    assert result.returncode == 0, result.stderr
    assert "https://asset.cml.dev" in result.stderr
    assert any("public host" in warning for warning in record["warnings"])

    without_native = [arg for arg in TEMPLATE_CALL if arg != "--native"]
    result, _ = cml(*without_native, "--no-native", "--publish-url", "https://assets.example.com")
    assert "https://assets.example.com" in result.stderr


def test_rejects_a_report_of_a_million_characters(cml, workspace):
    report = workspace / "report" / "report.md"
    report.write_text("x" * 999_999)
    assert cml(*TEMPLATE_CALL)[0].returncode == 0
    report.write_text("x" * 1_000_000)
    assert_rejected(*cml(*TEMPLATE_CALL), "too large")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["comment", "delete", "report/report.md"], "unknown command: cml comment delete"),
        (["send-comment", "report/report.md"], "unknown command: cml send-comment"),
        (["tensorboard", "connect"], "unknown command: cml tensorboard"),
        (["comment"], "missing subcommand"),
        ([], "missing command"),
    ],
)
def test_rejects_unknown_or_missing_subcommands(cml, args, message):
    assert_rejected(*cml(*args, "--driver", "gitlab"), message)


@pytest.mark.parametrize("args", [["check", "create", "report/report.md"], ["check"]])
def test_check_is_github_only(cml, args):
    assert_rejected(*cml(*args, "--driver", "gitlab"), "GitHub-only")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pr"], "mutually exclusive"),  # with --target
        (["--commit-sha", "abc", "--pr"], "mutually exclusive"),
        (["--rm-watermark"], "mutually exclusive"),  # with --watermark-title
        (["--driver", "gitlab"], "more than once"),
    ],
)
def test_rejects_conflicting_or_repeated_flags(cml, args, message):
    assert_rejected(*cml(*TEMPLATE_CALL, *args), message)


def test_accepts_the_deprecated_comment_flags_with_a_warning(cml):
    without_target = [arg for arg in TEMPLATE_CALL if arg not in ("--target", "pr/7")]
    result, [record] = cml(*without_target, "--pr", CI_MERGE_REQUEST_IID="7")
    assert result.returncode == 0, result.stderr
    assert "Deprecation warning" in result.stderr
    assert record["target"] == {"type": "pr", "id": "7"}


@pytest.mark.parametrize(
    ("subcommand", "args"),
    [
        ("ci", ["ci", "--fetch-depth", "0", "--user-email", "bot@example.com", "--user-name", "Bot"]),
        ("repo prepare", ["repo", "prepare", "--fetch-depth=1"]),
        ("pr create", ["pr", "create", "dvc.lock", "params.yaml", "--squash", "--skip-ci", "--title", "Retrain"]),
        ("runner launch", ["runner", "launch", "--cloud", "aws", "--cloud-region", "eu-west", "--single"]),
        ("runner launch", ["runner", "launch", "--idle-timeout", "never", "--cloud-metadata", "a=b", "--no-retry"]),
        ("runner launch", ["runner", "launch", "--labels", "cml,gpu", "--cloud-spot-price", "0.5", "--reuse-idle"]),
    ],
)
def test_accepts_the_other_documented_commands(cml, subcommand, args):
    result, [record] = cml(*args, "--driver", "gitlab", "--repo", REPO)
    assert result.returncode == 0, result.stderr
    assert record["subcommand"] == subcommand
    assert record["token_source"] == "REPO_TOKEN"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ci", "--fetch-depth", "all"], "needs an integer"),
        (["repo", "prepare", "extra"], "unknown argument: extra"),
        (["pr", "create", "--rebase"], "Rebase auto-merge mode not implemented for GitLab"),
        (["pr", "create", "--merge", "--squash"], "mutually exclusive"),
        (["runner", "launch", "--cloud", "ibm"], "invalid value for --cloud"),
        (["runner", "launch", "--single", "--reuse"], "mutually exclusive"),
        (["runner", "launch", "--cloud-metadata", "novalue"], "key=value"),
        (["runner", "launch", "--cloud-hdd-size", "big"], "needs a number"),
    ],
)
def test_rejects_bad_uses_of_the_other_commands(cml, args, message):
    assert_rejected(*cml(*args, "--driver", "gitlab", "--repo", REPO), message)


def test_publish_is_deprecated_but_works(cml):
    result, [record] = cml("publish", "report/roc.png", "--native", "--md", "--driver", "gitlab", "--repo", REPO)
    assert result.returncode == 0, result.stderr
    assert "deprecated" in result.stderr
    assert result.stdout.startswith(f"![]({REPO}/uploads/")
    assert record["subcommand"] == "publish"
    assert_rejected(*cml("publish", "report/missing.png", "--repo", REPO), "no such file")


def test_without_a_log_file_the_record_goes_to_stderr(cml, workspace):
    result, records = cml(*TEMPLATE_CALL, CML_STAND_IN_LOG="")
    assert result.returncode == 0, result.stderr
    assert records == []
    [line] = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert json.loads(line)["subcommand"] == "comment update"


def test_warns_about_ignored_cml_variables_and_telemetry(cml):
    env = {"CML_COMMENT_TARGET": "commit", "CML_IMAGE": "iterativeai/cml:0-dvc3-base1"}
    result, [record] = cml(*TEMPLATE_CALL, ITERATIVE_DO_NOT_TRACK="", **env)
    assert result.returncode == 0, result.stderr
    assert "CML_COMMENT_TARGET" in result.stderr
    assert "CML_IMAGE" not in result.stderr  # the template's CI variable is not a CML option
    assert "telemetry" in result.stderr
    assert record["options"]["target"] == "pr/7"
