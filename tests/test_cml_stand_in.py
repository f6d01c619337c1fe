"""The `cml` and `leo` stand-ins (harness/stand_ins/) are part of the proof, so prove them strict and faithful.

Faithful: against the loopback GitLab API (harness/gitlab_api.py) `cml` makes the requests CML 0.20.6
makes (src/drivers/gitlab.js), including its real limits: `comment update` reads only the first
page of notes, editing another user's note fails with GitLab's 403, and `runner launch` leaves
never-contacted runners behind and names the VM's runner by TPI's id. Strict: anything the
template does not call, or that would break on GitLab, exits 1 before any request. Each test runs
the script in a subprocess with an explicit environment (no inherited tokens, CI, CML_* or cloud
variables).
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
from harness.stand_ins import tpi

STAND_IN, LEO = STAND_INS / "cml", STAND_INS / "leo"
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
INHERITED += ("BITBUCKET_REPO_UUID", "DOCKER_MACHINE")
MAINTAINER_TOKEN = "glpat-runner-maintainer-7c21e0"
MAINTAINER = {"id": 12, "username": "runner_bot", "access_level": 40}  # runner launch needs Maintainer


def clean_environment(**env: str | None) -> dict[str, str]:
    """This process's environment without tokens, CI, CML, cloud or leo variables, plus `env` (None: unset)."""
    prefixes = ("CI_", "CML_", "GIT_", "AWS_", "AZURE_", "GOOGLE_", "KUBERNETES_", "TASK_", "RUNNER_", "LEO_")
    environment = {
        key: value for key, value in os.environ.items() if key not in INHERITED and not key.startswith(prefixes)
    }
    environment.update(env)
    return {key: value for key, value in environment.items() if value is not None}


@pytest.fixture
def api():
    with GitLabApi("4242", "ml/demo", {TOKEN: BOT, OTHER_TOKEN: OTHER, MAINTAINER_TOKEN: MAINTAINER}) as api:
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
        environment = clean_environment(ITERATIVE_DO_NOT_TRACK="1", CML_STAND_IN_LOG=str(log), CI_COMMIT_SHA=SHA)
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
        (["runner", "stop"], "Unknown argument: stop"),  # yargs, as CML says it
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


# --- cml runner launch and leo destroy-runner -------------------------------------------------------

STARTUP = "#!/bin/sh\nset -eu\necho 'terraform from the release zip, pinned'\n"
CREDENTIALS = {
    "aws": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "aws-secret-example"},
    "azure": {"AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s", "AZURE_SUBSCRIPTION_ID": "1", "AZURE_TENANT_ID": "t"},
    "gcp": {"GOOGLE_APPLICATION_CREDENTIALS_DATA": '{"type": "service_account"}'},
    "kubernetes": {"KUBERNETES_CONFIGURATION": "apiVersion: v1\nkind: Config\n"},
}
AWS = CREDENTIALS["aws"]
IDENTIFIER = "cml-cml-77-88-3gukyagg-665nrjri"  # TPI's Long() of the name cml-77-88 with the salt 3gukyagg


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def launch_argv(url: str, **changes: str | bool | None) -> list[str]:
    """The template's `cml runner launch` for pipeline 77, job 88, with flags changed (None: left out)."""
    flags = {
        "driver": "gitlab",
        "repo": f"{url}/ml/demo",
        "cloud": "aws",
        "cloud-region": "eu-west-1",
        "cloud-type": "g4dn.xlarge",
        "cloud-gpu": "nogpu",
        "cloud-hdd-size": "40",
        "cloud-image": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",  # hidden in 0.20.6, but there
        "cloud-permission-set": "arn:aws:iam::123456789012:instance-profile/cml-runner",
        "cloud-aws-security-group": "sg-0123456789abcdef0",
        "cloud-metadata": "gitlab_pipeline=77",
        "cloud-startup-script": b64(STARTUP),
        "labels": "cml-77",
        "name": "cml-77-88",
        "single": True,
        "idle-timeout": "15min",
    }
    flags.update({name.replace("_", "-"): value for name, value in changes.items()})
    argv = ["runner", "launch"]
    for name, value in flags.items():
        argv += [f"--{name}"] if value is True else [] if value is None else [f"--{name}", value]
    return argv


@pytest.fixture
def launch(workspace):
    """Run `cml <argv>` as the runner job would, HOME in the workspace and the cloud's credentials set:
    (completed process, records this call added to the log)."""
    log = workspace / "cml-calls.jsonl"

    def _run(argv, token=MAINTAINER_TOKEN, cloud="aws", **env):
        settings = {"HOME": str(workspace / "home"), "ITERATIVE_DO_NOT_TRACK": "1", "REPO_TOKEN": token}
        environment = clean_environment(**{**settings, "CML_STAND_IN_LOG": str(log), **CREDENTIALS[cloud], **env})
        before = log.read_text().count("\n") if log.exists() else 0
        result = subprocess.run(
            [sys.executable, STAND_IN, *argv], cwd=workspace, env=environment, capture_output=True, text=True
        )
        lines = log.read_text().splitlines() if log.exists() else []
        return result, [json.loads(line) for line in lines[before:]]

    return _run


def tfstate(path: Path) -> dict:
    """The one instance of the iterative_cml_runner resource in a terraform.tfstate."""
    [resource] = json.loads(path.read_text())["resources"]
    assert (resource["type"], resource["name"]) == ("iterative_cml_runner", "runner")
    [instance] = resource["instances"]
    return instance


def extra_runners(api: GitLabApi) -> list[dict]:
    """The runners CML's token check registers on the new runner flow, which nothing ever uses."""
    return [r for r in api.runners() if (r["description"], r["tag_list"], r["status"]) == ("", [], "never_contacted")]


def test_runner_launch_leaves_one_online_runner_for_the_pipeline_and_two_never_contacted_ones(launch, api, workspace):
    result, [record] = launch(launch_argv(api.url))

    assert result.returncode == 0, result.stderr
    [vm] = [runner for runner in api.runners() if "cml-77" in runner["tag_list"]]
    assert (vm["status"], vm["run_untagged"], vm["locked"], vm["access_level"]) == (
        "online",
        True,
        True,
        "not_protected",
    )
    assert vm["description"] == record["tpi_id"]  # TPI names the VM's runner by its id, not by --name
    assert len(extra_runners(api)) == 2 == len(api.runners()) - 1  # one by the launcher, one by the VM's cml
    instance = tfstate(workspace / "home" / ".cml" / "cml-77-88" / "terraform.tfstate")
    attributes = instance["attributes"]
    assert "status" not in instance  # not tainted
    assert tpi.parse_identifier(attributes["id"])["name"] == "cml-77-88"
    assert attributes["id"] == record["tpi_id"]
    expected = {"cloud": "aws", "region": "eu-west-1", "labels": "cml-77", "name": "cml-77-88", "idle_timeout": 900}
    expected.update(single=True, spot=False, instance_type="g4dn.xlarge", instance_hdd_size=40, instance_gpu="")
    assert {key: attributes[key] for key in expected} == expected
    assert attributes["metadata"] == {"gitlab_pipeline": "77"}
    assert attributes["token"] == MAINTAINER_TOKEN  # terraform keeps it in clear: never publish $HOME/.cml
    assert "aws-secret-example" in base64.b64decode(attributes["startup_script"]).decode()
    logged = json.loads(json.loads(result.stderr.splitlines()[-1])["message"])  # launch.js's last log line
    assert (logged["id"], logged["cloud"], logged["labels"]) == (attributes["id"], "aws", "cml-77")
    assert "token" not in logged and MAINTAINER_TOKEN not in result.stderr
    assert (record["outcome"], record["startup_script"], record["token_source"]) == ("launched", STARTUP, "REPO_TOKEN")
    assert record["options"]["cloud-image"] == "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
    assert MAINTAINER_TOKEN not in (workspace / "cml-calls.jsonl").read_text()
    extra = api.runners()[0]["id"]
    assert [(r.method, r.path, r.query, r.form) for r in api.requests[:7]] == [
        ("GET", "/api/v4/version", {}, None),  # launch.js run(): repoTokenCheck, then runners()
        ("GET", "/ml/api/v4/version", {}, None),
        ("GET", "/api/v4/projects/ml%2Fdemo", {}, None),
        ("POST", "/api/v4/user/runners", {}, {"project_id": "4242", "runner_type": "project_type"}),
        ("GET", "/api/v4/runners", {"per_page": "100"}, None),
        ("GET", f"/api/v4/runners/{extra}/jobs", {}, None),
        ("GET", f"/api/v4/runners/{extra}", {}, None),
    ]
    assert api.requests_to("POST", "/user/runners$")[-1].form == {  # the VM's registerRunner
        "description": record["tpi_id"],
        "tag_list": "cml-77",
        "locked": "true",
        "run_untagged": "true",
        "access_level": "not_protected",
        "project_id": "4242",
        "runner_type": "project_type",
    }
    assert api.requests[-1].path == "/api/v4/runners/verify"


def test_runner_takes_its_options_from_cml_runner_variables_and_the_runner_alias(launch, api, workspace):
    env = {"CML_REPO": f"{api.url}/ml/demo", "CML_DRIVER": "gitlab", "CML_RUNNER_LABELS": "cml-5", "RUNNER_PATH": "wd"}
    env.update(CML_RUNNER_NAME="cml-5-6", CML_RUNNER_IDLE_TIMEOUT="300", CML_RUNNER_SINGLE="true")

    result, [record] = launch(["runner", "--cloud", "gcp", "--labels", "cml-9"], cloud="gcp", **env)

    assert result.returncode == 0, result.stderr
    assert record["options"] == {"cloud": "gcp", "labels": "cml-9"}  # the command line wins
    assert record["environment"]["repo"] == {"variable": "CML_REPO", "value": f"{api.url}/ml/demo"}
    assert record["environment"]["workdir"] == {"variable": "RUNNER_PATH", "value": "wd"}
    assert record["environment"]["single"] == {"variable": "CML_RUNNER_SINGLE", "value": True}
    assert tfstate(workspace / "wd" / "terraform.tfstate")["attributes"]["idle_timeout"] == 300
    assert [runner["tag_list"] for runner in api.runners() if runner["status"] == "online"] == [["cml-9"]]

    checked, _ = launch(["runner"], cloud="gcp", CML_RUNNER_CLOUD="gcp", **env)  # runner.js wants a `-` argument
    assert checked.stderr == "Argument check failed: () => process.argv.some((arg) => arg.startsWith('-'))\n"


@pytest.mark.parametrize(
    ("changes", "env", "message"),
    [
        ({"bogus": "1"}, {}, "Unknown argument: bogus\n"),  # yargs' strict mode, as CML prints it
        (
            {"cloud": "openstack"},
            {},
            'Argument: cloud, Given: "openstack", Choices: "aws", "azure", "gcp", "kubernetes"',
        ),
        ({"reuse": True}, {}, "Arguments single and reuse are mutually exclusive\n"),
        ({}, {"CML_RUNNER_REUSE_IDLE": "false"}, "Arguments single and reuseIdle are mutually exclusive\n"),
        ({"no-retry": True}, {}, "Unknown argument: retry\n"),  # yargs reads --no-retry as retry=false
        ({}, {"CML_RUNNER_CLOUD_IMAGES": "x"}, "Unknown argument: cloudImages\n"),
        ({}, {"DOCKER_MACHINE": "1"}, "Unknown argument: dockerMachine\n"),  # CML's legacy variable
        ({"cloudRegion": "eu-west-1"}, {}, "--cloudRegion: the stand-in takes the kebab-case spelling only"),
        (
            {},
            {"CML_RUNNER_CLOUD_SPOT": "1"},
            "CML_RUNNER_CLOUD_SPOT='1': CML reads anything but true or false as false",
        ),
        ({"cloud-hdd-size": "40GB"}, {}, "--cloud-hdd-size '40GB' is not a number"),
        ({"cloud-metadata": "gitlab_pipeline"}, {}, "which TPI's map of strings refuses"),
        ({"cloud-gpu": ""}, {}, "--cloud-gpu is empty"),
        ({"cloud": None}, {}, "without --cloud CML runs gitlab-runner on this machine: not modelled"),
        ({"tf-resource": "e30="}, {}, "--tf-resource is for the `cml runner` TPI starts on the VM"),
        ({}, {"CML_STAND_IN_VM": "slow"}, "the stand-in knows never-ready"),
    ],
)
def test_runner_launch_refuses_before_any_request(launch, api, changes, env, message):
    result, records = launch(launch_argv(api.url, **changes), **env)

    assert (result.returncode, records, api.requests) == (1, [], [])
    assert message in result.stderr


@pytest.mark.parametrize(
    ("changes", "env", "error", "tainted"),
    [
        ({"cloud-startup-script": "not base64!"}, {}, "Error generating startup script: illegal base64 data at", True),
        ({"cloud-startup-script": b64("cat <<EOF\nx\nEOF\n")}, {}, "Error checking the runner status", True),
        ({}, {"CML_STAND_IN_VM": "never-ready"}, "Error checking the runner status", True),
        (
            {},
            {"AWS_SECRET_ACCESS_KEY": None},
            "Failed creating the machine: failed to refresh cached credentials",
            True,
        ),
        ({"cloud": "kubernetes"}, CREDENTIALS["kubernetes"], "instance_permission_set is not yet supported in", True),
        # on GCP an AMI name pattern is no image (project/family)
        ({"cloud": "gcp"}, CREDENTIALS["gcp"], "Failed creating the machine: Malformed image name!", True),
        ({"idle-timeout": "never"}, {}, "Incorrect attribute value type", False),  # TPI's idle_timeout is a number
    ],
)
def test_a_failed_terraform_apply_leaves_no_runner_but_the_launchers_extra_one(
    launch, api, workspace, changes, env, error, tainted
):
    result, [record] = launch(launch_argv(api.url, **changes), **env)

    assert result.returncode == 1
    *_, terraform, failure = result.stderr.splitlines()
    assert json.loads(terraform)["message"].startswith(f"terraform error: Error: {error}")
    assert failure == '{"level": "error", "message": "terraform apply error"}'
    assert (record["outcome"], record["error"]) == ("failed", "terraform apply error")
    assert len(extra_runners(api)) == 1 == len(api.runners())
    state = workspace / "home" / ".cml" / "cml-77-88" / "terraform.tfstate"
    assert state.exists() == tainted  # terraform keeps a create that failed after TPI set the id, tainted
    assert not tainted or tfstate(state)["status"] == "tainted"


def test_a_line_that_is_exactly_eof_is_harmless_only_on_kubernetes(launch, api):
    argv = launch_argv(api.url, cloud="kubernetes", cloud_permission_set=None, cloud_startup_script=b64("x\nEOF\n"))
    result, [record] = launch(argv, cloud="kubernetes")

    assert result.returncode == 0, result.stderr  # no heredoc in TPI's script for containers
    assert record["vm"] == {"ready": True, "problem": None}


@pytest.mark.parametrize("cloud", sorted(CREDENTIALS))
def test_each_cloud_needs_its_own_credentials(launch, api, cloud):
    image = {
        "aws": "ubuntu/images/*",
        "azure": "Canonical:UbuntuServer:18.04-LTS:latest",
        "gcp": "ubuntu-os-cloud/ubuntu-2204-lts",
    }
    permissions = None if cloud == "kubernetes" else "ci-runner"
    argv = launch_argv(api.url, cloud=cloud, cloud_permission_set=permissions, cloud_image=image.get(cloud))
    other = "gcp" if cloud == "aws" else "aws"

    missing, _ = launch(argv, cloud=other)
    launched, _ = launch(argv, cloud=cloud)

    assert missing.returncode == 1
    assert "terraform error: Error: Failed creating the machine:" in missing.stderr
    assert launched.returncode == 0, launched.stderr


def test_a_developer_token_registers_nothing_and_the_vm_never_gets_ready(launch, api):
    result, [record] = launch(launch_argv(api.url), token=TOKEN)  # BOT: a Developer

    assert result.returncode == 1
    assert "Failed preparing Gitlab runner: Cannot read properties of undefined (reading 'startsWith')" in result.stderr
    assert "terraform error: Error: Error checking the runner status" in result.stderr
    assert (api.requests_to("POST", "/user/runners"), api.runners()) == ([], [])  # no runners_token key: no POST
    assert record["vm"]["ready"] is False


def test_a_name_in_use_is_refused_and_reuse_launches_nothing(launch, api, workspace):
    api.add_runner("cml-77-88", ("cml-1",), status="online")

    refused, [record] = launch(launch_argv(api.url))
    reused, _ = launch(launch_argv(api.url, single=None, reuse=True))
    by_labels, _ = launch(launch_argv(api.url, single=None, reuse=True, name="cml-77-89", labels="cml-1"))

    assert refused.returncode == 1
    message = "Runner name cml-77-88 is already in use. Please change the name or terminate the existing runner."
    assert refused.stderr.splitlines()[-1] == json.dumps({"level": "error", "message": message})
    assert record["outcome"] == "failed"
    assert (reused.returncode, by_labels.returncode) == (0, 0), reused.stderr + by_labels.stderr
    assert "Reusing existing runner named cml-77-88..." in reused.stderr
    assert "Reusing existing online runners with the cml-1 labels..." in by_labels.stderr
    assert not (workspace / "home" / ".cml").exists()
    assert len(extra_runners(api)) == 3 == len(api.runners()) - 1  # every launch's token check still made one


@pytest.fixture
def leo(workspace):
    """Run `leo <argv>` with the given environment: (completed process, records this call added)."""
    log = workspace / "leo-calls.jsonl"

    def _run(*argv, **env):
        environment = clean_environment(LEO_STAND_IN_LOG=str(log), **env)
        before = log.read_text().count("\n") if log.exists() else 0
        result = subprocess.run(
            [sys.executable, LEO, *argv], cwd=workspace, env=environment, capture_output=True, text=True
        )
        lines = log.read_text().splitlines() if log.exists() else []
        return result, [json.loads(line) for line in lines[before:]]

    return _run


def test_leo_is_an_executable_script_that_destroys_the_runner_a_launch_made(launch, leo, api, workspace):
    assert LEO.stat().st_mode & stat.S_IXUSR
    launch(launch_argv(api.url))
    attributes = tfstate(workspace / "home" / ".cml" / "cml-77-88" / "terraform.tfstate")["attributes"]
    argv = ["destroy-runner", "--cloud", attributes["cloud"], "--region", attributes["region"], attributes["id"]]

    result, [record] = leo(*argv, **CREDENTIALS["aws"])  # as launch.js destroyLeo and a clean-up job call it

    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stderr
    assert (record["cloud"], record["region"], record["identifier"]) == ("aws", "eu-west-1", attributes["id"])
    assert record["parts"] == {"prefix": "cml", "name": "cml-77-88", "salt": attributes["id"].split("-")[-2]}


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--cloud=aws", "destroy-runner", IDENTIFIER, "--verbose"], CREDENTIALS["aws"]),
        (["destroy-runner", IDENTIFIER], {**CREDENTIALS["aws"], "TASK_CLOUD": "aws", "TASK_REGION": "us-west"}),
        (["destroy-runner", "--cloud", "az", IDENTIFIER], CREDENTIALS["azure"]),
        (["destroy-runner", "--cloud", "azure", IDENTIFIER], CREDENTIALS["azure"]),
        (["destroy-runner", "--cloud", "gcp", "--region", "us-east", IDENTIFIER], CREDENTIALS["gcp"]),
        (["destroy-runner", "--cloud", "k8s", IDENTIFIER], CREDENTIALS["kubernetes"]),
        (["destroy-runner", "--cloud", "kubernetes", "--", "tpi-test-3z4xlzwq-3u0vweb4"], CREDENTIALS["kubernetes"]),
    ],
)
def test_leo_destroy_runner_takes_cobras_flags_every_provider_name_and_task_variables(leo, argv, env):
    result, [record] = leo(*argv, **env)
    assert (result.returncode, result.stderr, record["exit"]) == (0, "", 0), result.stderr


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["destroy-runner", "--cloud", "aws"], AWS, "Error: accepts 1 arg(s), received 0\nUsage:"),
        (["destroy-runner", "--cloud", "aws", IDENTIFIER, IDENTIFIER], AWS, "Error: accepts 1 arg(s), received 2"),
        (["destroy-runner", IDENTIFIER], AWS, 'Error: required flag(s) "cloud" not set'),
        (["destroy-runner", "--cloud", "openstack", IDENTIFIER], AWS, 'Error: unknown provider: "openstack"'),
        (["destroy-runner", "--cloud", "aws", "--zone", "a", IDENTIFIER], AWS, "Error: unknown flag: --zone"),
        (["destroy-runner", "--cloud", "aws", "-r", "x", IDENTIFIER], AWS, "Error: unknown shorthand flag: 'r' in -r"),
        (["destroy-runner", "--cloud"], AWS, "Error: flag needs an argument: --cloud"),
        (
            ["destroy-runner", "--cloud", "aws", "--verbose=yes", IDENTIFIER],
            AWS,
            'invalid argument "yes" for "--verbose"',
        ),
        (["destroy-runner", "--cloud", "aws", "cml-77-88"], AWS, "'cml-77-88' is not a TPI identifier"),  # the name
        (["destroy-runner", "--cloud", "aws", "tpi-test-3z4xlzwq-3u0vweb5"], AWS, "is not a TPI identifier"),  # hash
        (["destroy-runner", "--cloud", "aws", IDENTIFIER], {}, "Error: failed to refresh cached credentials"),
        (["destroy-runner", "--cloud", "az", IDENTIFIER], {}, "Error: AZURE_SUBSCRIPTION_ID is not present"),
        (["destroy-runner", "--cloud", "gcp", IDENTIFIER], {}, "Error: google: could not find default credentials"),
        (["destroy-runner", "--cloud", "k8s", IDENTIFIER], {}, "Error: invalid configuration: no configuration"),
        (["stop", IDENTIFIER], AWS, "leo (stand-in): error: leo stop: not modelled"),
        (["destroy", IDENTIFIER], AWS, 'Error: unknown command "destroy" for "leo"'),
    ],
)
def test_leo_refuses_what_leo_or_the_stand_in_would_not_accept(leo, argv, env, message):
    result, _ = leo(*argv, **env)
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    assert message in result.stderr
