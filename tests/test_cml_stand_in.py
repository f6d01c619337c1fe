"""The `cml` stand-in (harness/stand_ins/cml) is part of the proof, so prove it strict and faithful.

Faithful: against the loopback GitLab API (harness/gitlab_api.py) it makes the requests CML 0.20.6
makes (src/drivers/gitlab.js), including its real limits: `comment update` reads only the first
page of notes, and editing another user's note fails with GitLab's 403. Strict: anything the
template does not call, or that would break on GitLab, exits 1 before any request. Each test runs
the script in a subprocess with an explicit environment (no inherited tokens, CI or CML_* variables).
"""

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.gitlab import STAND_INS
from harness.gitlab_api import GitLabApi

STAND_IN = STAND_INS / "cml"
TOKEN = "glpat-stand-in-test-token-5f3a9c"
OTHER_TOKEN = "glpat-other-user-token-88e1"
BOT = {"id": 10, "username": "project_4242_bot"}
OTHER = {"id": 11, "username": "project_4242_bot_1"}
SHA = "c0ffee" * 6 + "abcd"
TITLE = "DVC model report"
WATERMARK = f'![](https://cml.dev/watermark.png#{SHA} "CML watermark {TITLE}")'
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
REPORT = "# Model report\n\n![roc](./roc.png)\n"
INHERITED = ("REPO_TOKEN", "repo_token", "GITHUB_TOKEN", "GITLAB_TOKEN", "BITBUCKET_TOKEN", "GITHUB_REPOSITORY")
INHERITED += ("BITBUCKET_REPO_UUID",)


@pytest.fixture
def api():
    with GitLabApi("4242", "ml/demo", {TOKEN: BOT, OTHER_TOKEN: OTHER}) as api:
        yield api


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A job's working directory: report/report.md showing an existing PNG next to it."""
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "roc.png").write_bytes(PNG)
    (tmp_path / "report" / "report.md").write_text(REPORT)
    return tmp_path


@pytest.fixture
def cml(api, workspace):
    """Run `cml comment <mode> report/report.md` with the template's options plus `extra` (or exactly
    `argv`): (completed process, records this call added to the log)."""
    log = workspace / "cml-calls.jsonl"

    def _run(*extra, mode="update", title=TITLE, target="pr/7", argv=None, token=TOKEN, **env):
        if argv is None:
            argv = ["comment", mode, "report/report.md", "--driver", "gitlab", "--repo", f"{api.url}/ml/demo"]
            argv += ["--target", target, "--native", "--watermark-title", title, *extra]
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in INHERITED and not key.startswith(("CI_", "CML_", "GIT_"))
        }
        environment.update(ITERATIVE_DO_NOT_TRACK="1", CML_STAND_IN_LOG=str(log), CI_COMMIT_SHA=SHA)
        environment.update(GIT_CEILING_DIRECTORIES=str(workspace.parent), **({"REPO_TOKEN": token} if token else {}))
        environment.update(env)
        before = log.read_text().count("\n") if log.exists() else 0
        # this interpreter rather than the shebang's: half the start-up time
        command = [sys.executable, STAND_IN, *argv]
        result = subprocess.run(command, cwd=workspace, env=environment, capture_output=True, text=True)
        lines = log.read_text().splitlines() if log.exists() else []
        return result, [json.loads(line) for line in lines[before:]]

    return _run


def report_notes(api: GitLabApi) -> list[dict]:
    return [note for note in api.notes(7) if f'"CML watermark {TITLE}")' in note["body"]]


def test_is_an_executable_script_that_runs_from_path_as_cml(tmp_path):
    assert STAND_IN.stat().st_mode & stat.S_IXUSR
    env = {**os.environ, "PATH": f"{STAND_IN.parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["cml", "--version"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "0.20.6\n")


def test_create_uploads_the_images_and_posts_a_watermarked_note(cml, api, workspace):
    result, [record] = cml(mode="create")

    assert result.returncode == 0, result.stderr
    [upload] = api.uploads
    assert (upload["filename"], upload["content_type"], upload["content"]) == ("roc.png", "image/png", PNG)
    [note] = api.notes(7)
    assert note["body"] == f"# Model report\n\n![roc]({upload['url']})\n\n\n{WATERMARK}"
    assert note["author"] == BOT
    url = f"{api.url}/ml/demo/-/merge_requests/7#note_{note['id']}"
    assert result.stdout == url + "\n"
    assert [(request.method, request.path, request.query) for request in api.requests] == [
        ("GET", "/api/v4/version", {}),  # repoBase: one probe per path prefix of --repo
        ("GET", "/ml/api/v4/version", {}),
        ("POST", "/api/v4/projects/ml%2Fdemo/uploads", {}),
        ("POST", "/api/v4/projects/ml%2Fdemo/merge_requests/7/notes", {}),
    ]
    assert record["note"] == {"id": note["id"], "url": url, "action": "created"}
    assert record["token_source"] == "REPO_TOKEN"
    path = str(workspace / "report" / "roc.png")
    assert record["images"] == [
        {"ref": "./roc.png", "kind": "image", "path": path, "bytes": len(PNG), "url": upload["url"]}
    ]


def test_update_edits_its_own_note_in_place_and_only_for_its_title(cml, api, workspace):
    cml()
    (workspace / "report" / "report.md").write_text("# Model report, second push\n")
    result, [record] = cml(target="auto", CI_MERGE_REQUEST_IID="7")  # auto: the pipeline's merge request
    other_title, _ = cml(title=f"{TITLE} (GPU)")

    assert result.returncode == other_title.returncode == 0, result.stderr + other_title.stderr
    [first, second] = api.notes(7)
    assert record["note"]["id"] == first["id"]
    assert record["note"]["action"] == "updated"
    assert first["body"] == f"# Model report, second push\n\n\n{WATERMARK}"
    assert api.requests_to("PUT", "/notes/")[0].status == 200
    assert f'"CML watermark {TITLE} (GPU)")' in second["body"]


@pytest.mark.parametrize(("newer", "action"), [(19, "updated"), (20, "created")])
def test_update_looks_for_its_note_on_the_first_page_of_notes_only(cml, api, newer, action):
    """CML 0.20.6's real limit: once 20 newer notes (system notes count) hide it, a second report is posted."""
    cml()
    for index in range(newer):
        api.add_note(7, "added 1 commit" if index % 2 else f"comment {index}", OTHER, system=bool(index % 2))

    result, [record] = cml()

    assert result.returncode == 0, result.stderr
    assert record["note"]["action"] == action
    assert len(report_notes(api)) == (1 if action == "updated" else 2)
    assert [read.query for read in api.requests_to("GET", "/notes$")] == [{}, {}]


def test_api_errors_fail_with_the_http_status_text_as_cml_does(cml, api):
    assert cml(token=OTHER_TOKEN)[0].returncode == 0  # the report as a previous token's user wrote it

    forbidden, records = cml()

    assert (forbidden.returncode, forbidden.stdout, records) == (1, "", [])
    assert forbidden.stderr == '{"level": "error", "message": "Forbidden"}\n'
    assert api.requests_to("PUT", "/notes/")[0].status == 403
    assert [note["author"] for note in api.notes(7)] == [OTHER]

    unauthorized, _ = cml(token="glpat-revoked-token")
    assert unauthorized.stderr == '{"level": "error", "message": "Unauthorized"}\n'  # at the first request
    assert [request.path for request in api.requests[-2:]] == ["/api/v4/version", "/ml/api/v4/version"]


def test_watermark_sha_falls_back_to_git_head_and_title_placeholders_are_filled(cml, workspace):
    git = ["git", "-C", str(workspace), "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()

    result, [record] = cml(title="run {workflow}_{run} [*]", CI_COMMIT_SHA="", CI_PIPELINE_ID="12", CI_JOB_ID="34")

    assert result.returncode == 0, result.stderr
    assert record["watermark"] == f'![](https://cml.dev/watermark.png#{head} "CML watermark run 12\\_34 \\[\\*]")'


def test_uploads_only_local_files_outside_code_and_leaves_the_rest(cml, api, workspace):
    (workspace / "report" / "data.csv").write_text("a,b\n")
    kept = (
        "![remote](https://example.com/a.png) ![inline](data:image/png;base64,iVBORw0KGgo=)\n"
        "`![code](./missing.png)`\n\n```\n![fenced](./missing.png)\n```\n\n[gone](./missing.csv) [top](#model-report)\n"
    )
    (workspace / "report" / "report.md").write_text(f"{kept}[data](data.csv) ![roc][plot]\n\n[plot]: roc.png\n")

    result, [record] = cml()

    assert result.returncode == 0, result.stderr
    assert [(image["ref"], image["kind"]) for image in record["images"]] == [("data.csv", "link"), ("roc.png", "image")]
    [csv, png] = api.uploads
    assert (
        api.notes(7)[0]["body"] == f"{kept}[data]({csv['url']}) ![roc][plot]\n\n[plot]: {png['url']}\n\n\n{WATERMARK}"
    )


@pytest.mark.parametrize("via", ["REPO_TOKEN", "GITLAB_TOKEN", "--token", "--driver-token="])
def test_the_log_never_holds_the_token(cml, workspace, via):
    (workspace / "report" / "report.md").write_text(f"token {TOKEN} leaked into the report\n")
    flag = ([f"{via}{TOKEN}"] if via.endswith("=") else [via, TOKEN]) if via.startswith("--") else []

    result, [record] = cml(*flag, token=None, **({} if flag else {via: TOKEN}))

    assert result.returncode == 0, result.stderr
    assert record["token_source"] == (via if not flag else "--token")
    log = (workspace / "cml-calls.jsonl").read_text()
    assert TOKEN not in log
    assert "[MASKED]" in log


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (["--dry-run"], {}, "unknown argument: --dry-run"),  # CML has no dry-run mode
        (["--md"], {}, "unknown argument: --md"),  # an option of `pr create`, not of `comment`
        (["--update"], {}, "unknown argument: --update"),  # hidden in CML; the template never uses it
        (["-t", "x"], {}, "no short options"),
        (["--watermarkTitle", "x"], {}, "unknown argument: --watermarkTitle"),
        (["--no-target"], {}, "unknown argument: --no-target"),  # only flags can be negated
        (["--log", "trace"], {}, "invalid value for --log"),
        (["--driver", "gitlab"], {}, "option --driver is given more than once"),
        (["--rm-watermark"], {}, "mutually exclusive"),
        (["--publish-url"], {}, "option --publish-url needs a value"),
        ([], {"CML_COMMENT_TARGET": "commit"}, "CML would read CML_COMMENT_TARGET as options"),
        ([], {"REPO_TOKEN": "", "CI_JOB_TOKEN": "job-token"}, "token not found"),  # CML never reads CI_JOB_TOKEN
    ],
)
def test_rejects_options_cml_or_the_stand_in_would_not_accept(cml, api, extra, env, message):
    result, records = cml(*extra, **env)
    assert (result.returncode, result.stdout, records, api.requests) == (1, "", [], []), result.stderr
    assert message in result.stderr


def test_the_driver_is_gitlab_from_the_flag_or_ci_project_url(cml, api):
    argv = ["comment", "update", "report/report.md", "--repo", f"{api.url}/ml/demo", "--target", "pr/7", "--native"]
    assert cml(argv=argv)[0].stderr == '{"level": "error", "message": "driver not set"}\n'
    assert "the stand-in models GitLab only" in cml(argv=[*argv, "--driver", "github"])[0].stderr
    assert api.requests == []
    result, _ = cml(argv=argv, CI_PROJECT_URL=f"{api.url}/ml/demo")
    assert result.returncode == 0, result.stderr


def test_without_native_publishing_is_refused_unless_turned_off(cml, api):
    argv = ["comment", "update", "report/report.md", "--driver", "gitlab", "--repo", f"{api.url}/ml/demo"]
    argv += ["--target", "pr/7", "--watermark-title", TITLE]
    refused, _ = cml(argv=argv)
    assert (refused.returncode, api.requests) == (1, []), refused.stderr
    assert "without --native CML sends every local file, unauthenticated, to https://asset.cml.dev" in refused.stderr

    result, _ = cml(argv=[*argv, "--no-publish"])
    assert result.returncode == 0, result.stderr
    assert (api.uploads, api.notes(7)[0]["body"]) == ([], f"{REPORT}\n\n{WATERMARK}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["comment", "", "report/report.md"], "cml comment needs create or update, got ''"),  # an empty $mode
        (["comment", "delete", "report/report.md"], "cml comment needs create or update, got 'delete'"),
        (["comment", "update"], "missing argument <markdown file>"),
        (["comment", "update", "report/report.md", "extra.md"], "unknown argument: extra.md"),
        (["pr", "create", "dvc.lock"], "unknown command: cml pr create"),
        (["runner", "launch"], "unknown command: cml runner launch"),
        ([], "unknown command"),
    ],
)
def test_rejects_other_commands(cml, api, argv, message):
    result, records = cml(argv=[*argv, "--driver", "gitlab"])
    assert (result.returncode, records, api.requests) == (1, [], []), result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ("![roc](./missing.png)", "missing.png (looked for {report}/missing.png)"),
        ("![roc][plot]\n\n[plot]: ./missing.png", "missing.png (looked for {report}/missing.png)"),
        ('<img src="missing.png" width="400">', "missing.png (looked for {report}/missing.png)"),
        (None, "ENOENT: no such file or directory, open 'report/report.md'"),
    ],
)
def test_rejects_a_missing_markdown_file_or_image(cml, api, workspace, report, message):
    markdown = workspace / "report" / "report.md"
    if report is None:
        markdown.unlink()
    else:
        markdown.write_text(f"{REPORT}\n{report}\n")
    result, records = cml()
    assert (result.returncode, records, api.requests) == (1, [], []), result.stderr
    assert message.format(report=workspace / "report") in result.stderr


@pytest.mark.parametrize("target", ["pr/", "pr/abc", "issue/3", "commit", "commit/abc1234", "mr/7", "auto"])
def test_rejects_a_target_that_is_not_a_merge_request(cml, api, target):
    result, records = cml(target=target)
    assert (result.returncode, records, api.requests) == (1, [], []), result.stderr
    assert f'--target="{target}"' in result.stderr


def test_a_report_of_a_million_characters_with_the_watermark_is_too_large(cml, api, workspace):
    markdown = workspace / "report" / "report.md"
    markdown.write_text("x" * (1_000_000 - len(f"\n\n{WATERMARK}") - 1))
    assert cml()[0].returncode == 0
    markdown.write_text("x" * (1_000_000 - len(f"\n\n{WATERMARK}")))
    result, records = cml()
    assert (result.returncode, records) == (1, [])
    assert "GitLab Comment is too large" in result.stderr
