"""The `cml` and `leo` stand-ins (harness/stand_ins/) are part of the proof, so prove them strict and faithful.

Faithful: against the loopback GitLab API (harness/gitlab_api.py) `cml` makes the requests CML 0.20.6
makes, with its real limits: `comment update` reads only the first page of notes, editing another
user's note fails with GitLab's 403, `runner launch` leaves a never-contacted runner behind. Strict:
what CML refuses fails with yargs' message, and what would break on GitLab exits 1 before any request.
Each test runs the script with an explicit environment (no inherited tokens, CI, CML_* or cloud variables).
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
TOKEN, OTHER_TOKEN, MAINTAINER_TOKEN = "glpat-stand-in-5f3a9c", "glpat-other-88e1", "glpat-maintainer-7c21e0"
BOT, OTHER = {"id": 10, "username": "project_4242_bot"}, {"id": 11, "username": "project_4242_bot_1"}
MAINTAINER = {"id": 12, "username": "runner_bot", "access_level": 40}  # runner launch needs Maintainer
SHA, TITLE = "c0ffee" * 6 + "abcd", "DVC model report"
WATERMARK = f'![](https://cml.dev/watermark.png#{SHA} "CML watermark {TITLE}")'
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
REPORT = "# Model report\n\n![roc](./roc.png)\n"
CREDENTIALS = {
    "aws": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "aws-secret-example"},
    "gcp": {"GOOGLE_APPLICATION_CREDENTIALS_DATA": '{"type": "service_account"}'},
}
STARTUP = "#!/bin/sh\nset -eu\necho 'terraform from the release zip, pinned'\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def api():
    with GitLabApi("4242", "ml/demo", {TOKEN: BOT, OTHER_TOKEN: OTHER, MAINTAINER_TOKEN: MAINTAINER}) as api:
        yield api


@pytest.fixture
def run(tmp_path: Path):
    """Run a stand-in (`cml` or `leo`) in a job's working directory with report/report.md showing an
    existing PNG: (completed process, records this call added to its log)."""
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "roc.png").write_bytes(PNG)
    (tmp_path / "report" / "report.md").write_text(REPORT)

    def _run(argv, script=STAND_IN, **env):
        log = tmp_path / f"{script.name}-calls.jsonl"
        prefixes = ("CI_", "CML_", "GIT_", "AWS_", "AZURE_", "GOOGLE_", "KUBERNETES_", "TASK_", "RUNNER_", "LEO_")
        prefixes += ("GITHUB_", "BITBUCKET_", "DOCKER_")
        environment = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and not k.endswith("TOKEN")}
        environment.update(ITERATIVE_DO_NOT_TRACK="1", CML_STAND_IN_LOG=str(log), LEO_STAND_IN_LOG=str(log))
        environment.update(HOME=str(tmp_path / "home"), GIT_CEILING_DIRECTORIES=str(tmp_path.parent))
        environment = {k: v for k, v in {**environment, **env}.items() if v is not None}
        before = log.read_text().count("\n") if log.exists() else 0
        command = [sys.executable, script, *argv]  # this interpreter rather than the shebang's: faster
        result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True)
        lines = log.read_text().splitlines() if log.exists() else []
        return result, [json.loads(line) for line in lines[before:]]

    _run.path = tmp_path
    return _run


@pytest.fixture
def cml(api, run):
    """`cml comment <mode> report/report.md` with the template's options plus `extra`."""

    def _cml(*extra, mode="update", title=TITLE, target="pr/7", native=True, token=TOKEN, **env):
        argv = ["comment", mode, "report/report.md", "--driver", "gitlab", "--repo", f"{api.url}/ml/demo"]
        argv += ["--target", target, *(["--native"] if native else []), "--watermark-title", title, *extra]
        return run(argv, **{"CI_COMMIT_SHA": SHA, "REPO_TOKEN": token, **env})

    return _cml


def report_notes(api: GitLabApi) -> list[dict]:
    return [note for note in api.notes(7) if f'"CML watermark {TITLE}")' in note["body"]]


def test_is_an_executable_script_that_runs_from_path_as_cml(tmp_path):
    assert STAND_IN.stat().st_mode & stat.S_IXUSR and LEO.stat().st_mode & stat.S_IXUSR
    env = {**os.environ, "PATH": f"{STAND_IN.parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["cml", "--version"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "0.20.6\n")


def test_create_uploads_the_images_and_posts_a_watermarked_note(cml, api, run):
    result, [record] = cml(mode="create")

    assert result.returncode == 0, result.stderr
    [upload] = api.uploads
    assert (upload["filename"], upload["content_type"], upload["content"]) == ("roc.png", "image/png", PNG)
    [note] = api.notes(7)
    assert (note["body"], note["author"]) == (f"# Model report\n\n![roc]({upload['url']})\n\n\n{WATERMARK}", BOT)
    url = f"{api.url}/ml/demo/-/merge_requests/7#note_{note['id']}"
    assert result.stdout == url + "\n"
    assert [(request.method, request.path, request.query) for request in api.requests] == [
        ("GET", "/api/v4/version", {}),  # repoBase: one probe per path prefix of --repo
        ("GET", "/ml/api/v4/version", {}),
        ("POST", "/api/v4/projects/ml%2Fdemo/uploads", {}),
        ("POST", "/api/v4/projects/ml%2Fdemo/merge_requests/7/notes", {}),
    ]
    assert (record["note"], record["token_source"]) == (
        {"id": note["id"], "url": url, "action": "created"},
        "REPO_TOKEN",
    )
    assert [image["path"] for image in record["images"]] == [str(run.path / "report" / "roc.png")]


def test_update_edits_its_own_note_in_place_and_only_for_its_title(cml, api, run):
    cml()
    (run.path / "report" / "report.md").write_text("# Model report, second push\n")
    result, [record] = cml(target="auto", CI_MERGE_REQUEST_IID="7")  # auto: the pipeline's merge request
    other_title, _ = cml(title=f"{TITLE} (GPU)")

    assert result.returncode == other_title.returncode == 0, result.stderr + other_title.stderr
    [first, second] = api.notes(7)
    assert (record["note"]["id"], record["note"]["action"]) == (first["id"], "updated")
    assert first["body"] == f"# Model report, second push\n\n\n{WATERMARK}"
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
    assert [note["author"] for note in api.notes(7)] == [OTHER]
    unauthorized, _ = cml(token="glpat-revoked-token")
    assert unauthorized.stderr == '{"level": "error", "message": "Unauthorized"}\n'  # at the first request


def test_uploads_only_local_files_outside_code_and_never_the_token(cml, api, run):
    (run.path / "report" / "data.csv").write_text("a,b\n")
    kept = f"![remote](https://example.com/a.png) `![code](./missing.png)`\n\n```\n![f](./gone.png)\n```\n{TOKEN}\n"
    (run.path / "report" / "report.md").write_text(f"{kept}[data](data.csv) ![roc][plot]\n\n[plot]: roc.png\n")

    result, [record] = cml("--token", TOKEN, token=None)

    assert result.returncode == 0, result.stderr
    assert [(image["ref"], image["kind"]) for image in record["images"]] == [("data.csv", "link"), ("roc.png", "image")]
    [csv, png] = api.uploads
    assert (
        api.notes(7)[0]["body"] == f"{kept}[data]({csv['url']}) ![roc][plot]\n\n[plot]: {png['url']}\n\n\n{WATERMARK}"
    )
    assert record["token_source"] == "--driver-token"
    assert TOKEN not in (run.path / "cml-calls.jsonl").read_text()


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [  # what CML 0.20.6 itself refuses, with yargs' message:
        (["--dry-run"], {}, "Unknown arguments: dry-run, dryRun\n"),  # CML has no dry-run mode
        (["--md"], {}, "Unknown argument: md\n"),  # an option of `pr create`, not of `comment`
        (["-t", "x"], {}, "Unknown argument: t\n"),
        (["extra.md"], {}, "Unknown argument: extra.md\n"),
        (["--log", "trace"], {}, 'Invalid values:\n  Argument: log, Given: "trace", Choices: "error", "warn", '),
        (["--rm-watermark"], {}, "Arguments watermark-title and rmWatermark are mutually exclusive\n"),
        ([], {"REPO_TOKEN": None, "CI_JOB_TOKEN": "job-token"}, "token not found"),  # CML never reads CI_JOB_TOKEN
        # what CML takes but then mishandles, or the stand-in does not model:
        (["--publish=yes"], {}, "a boolean is true or false (CML reads 'yes' as false)"),
        (["--no-target"], {}, "only boolean options can be negated"),
        (["--driver", "gitlab"], {}, "option --driver is given more than once"),
        (["--publish-url"], {}, "option --publish-url needs a value"),
        (["--watermarkTitle", "x"], {}, "--watermarkTitle: the stand-in takes the kebab-case spelling only"),
        (["--update"], {}, "--update: CML takes it, but the stand-in does not model it"),  # hidden in CML
        ([], {"CML_COMMENT_TARGET": "commit"}, "CML would read CML_COMMENT_TARGET as options"),
        ([], {"CML_REPO": "https://gitlab.com/x/y"}, "CML would read CML_REPO as options"),
        ([], {"target": "issue/3"}, '--target="issue/3": the stand-in models pr/<n>'),
        ([], {"native": False}, "without --native CML sends every local file, unauthenticated, to https://"),
    ],
)
def test_refuses_what_cml_or_the_stand_in_would_not_accept(cml, api, extra, env, message):
    result, records = cml(*extra, **env)
    assert (result.returncode, result.stdout, records, api.requests) == (1, "", [], []), result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["comment", "update"], "Not enough non-option arguments: got 0, need at least 1\n"),  # CML's own failure
        (["comment", "delete", "report/report.md"], "the stand-in knows cml comment create|update"),
        (["pr", "create", "dvc.lock"], "the stand-in knows cml comment create|update and cml runner launch"),
        (["comment", "update", "report/missing.md", "--driver", "gitlab", "--target", "pr/7"], "ENOENT: no such"),
    ],
)
def test_refuses_other_commands_and_a_missing_markdown_file(run, api, argv, message):
    result, records = run([*argv, "--repo", f"{api.url}/ml/demo"], REPO_TOKEN=TOKEN)
    assert (result.returncode, records, api.requests) == (1, [], []), result.stderr
    assert message in result.stderr


def test_publishing_off_posts_the_report_as_it_is_and_a_missing_image_is_refused(cml, api, run):
    assert cml("--no-publish")[0].returncode == 0
    assert (api.uploads, api.notes(7)[0]["body"]) == ([], f"{REPORT}\n\n{WATERMARK}")

    (run.path / "report" / "report.md").write_text(f"{REPORT}\n![x](./missing.png)\n")
    result, _ = cml()
    assert result.returncode == 1 and f"missing.png (looked for {run.path}/report/missing.png)" in result.stderr


def test_a_report_of_a_million_characters_with_the_watermark_is_too_large(cml, run):
    markdown = run.path / "report" / "report.md"
    markdown.write_text("x" * (1_000_000 - len(f"\n\n{WATERMARK}") - 1))
    assert cml()[0].returncode == 0
    markdown.write_text("x" * (1_000_000 - len(f"\n\n{WATERMARK}")))
    result, records = cml()
    assert (result.returncode, records) == (1, []) and "GitLab Comment is too large" in result.stderr


# --- cml runner launch and leo destroy-runner -------------------------------------------------------


def launch_argv(url: str, **changes: str | bool | None) -> list[str]:
    """The template's `cml runner launch` for pipeline 77, job 88, with flags changed (None: left out)."""
    flags = {"driver": "gitlab", "repo": f"{url}/ml/demo", "cloud": "aws", "cloud-region": "eu-west-1"}
    flags.update({"cloud-type": "g4dn.xlarge", "cloud-gpu": "nogpu", "cloud-hdd-size": "40"})
    flags["cloud-image"] = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"  # hidden in 0.20.6, but there
    flags["cloud-permission-set"] = "arn:aws:iam::123456789012:instance-profile/cml-runner"
    flags.update({"cloud-aws-security-group": "sg-0123", "cloud-metadata": "gitlab_pipeline=77"})
    flags.update({"cloud-startup-script": b64(STARTUP), "labels": "cml-77", "name": "cml-77-88", "single": True})
    flags.update({"idle-timeout": "15min", **{name.replace("_", "-"): value for name, value in changes.items()}})
    argv = ["runner", "launch"]
    for name, value in flags.items():
        argv += [f"--{name}"] if value is True else [] if value is None else [f"--{name}", value]
    return argv


@pytest.fixture
def launch(run):
    def _launch(argv, token=MAINTAINER_TOKEN, cloud="aws", **env):
        return run(argv, REPO_TOKEN=token, **{**CREDENTIALS[cloud], **env})

    return _launch


def tfstate(path: Path) -> dict:
    """The one instance of the iterative_cml_runner resource in a terraform.tfstate."""
    [resource] = json.loads(path.read_text())["resources"]
    assert (resource["type"], resource["name"]) == ("iterative_cml_runner", "runner")
    return resource["instances"][0]


def extra_runners(api: GitLabApi) -> list[dict]:
    """The runners CML's token check registers on the new runner flow, which nothing ever uses."""
    return [r for r in api.runners() if (r["description"], r["tag_list"], r["status"]) == ("", [], "never_contacted")]


def test_runner_launch_leaves_one_online_runner_for_the_pipeline_and_two_never_contacted_ones(launch, api, run):
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
    instance = tfstate(run.path / "home" / ".cml" / "cml-77-88" / "terraform.tfstate")
    attributes = instance["attributes"]
    assert "status" not in instance and tpi.parse_identifier(attributes["id"])["name"] == "cml-77-88"
    expected = {"cloud": "aws", "region": "eu-west-1", "labels": "cml-77", "name": "cml-77-88", "idle_timeout": 900}
    expected.update(single=True, spot=False, instance_type="g4dn.xlarge", instance_hdd_size=40, id=record["tpi_id"])
    assert {key: attributes[key] for key in expected} == expected and "instance_gpu" not in attributes  # nogpu
    assert attributes["metadata"] == {"gitlab_pipeline": "77"}
    assert attributes["token"] == MAINTAINER_TOKEN  # terraform keeps it in clear: never publish $HOME/.cml
    assert "aws-secret-example" in base64.b64decode(attributes["startup_script"]).decode()
    logged = json.loads(json.loads(result.stderr.splitlines()[-1])["message"])  # launch.js's last log line
    assert (logged["id"], logged["idleTimeout"]) == (attributes["id"], 900) and "token" not in logged
    assert MAINTAINER_TOKEN not in result.stderr + (run.path / "cml-calls.jsonl").read_text()
    assert (record["outcome"], record["startup_script"], record["token_source"]) == ("launched", STARTUP, "REPO_TOKEN")
    assert [(r.method, r.path, r.form) for r in api.requests[:4]] == [
        ("GET", "/api/v4/version", None),  # launch.js run(): repoTokenCheck, then runners()
        ("GET", "/ml/api/v4/version", None),
        ("GET", "/api/v4/projects/ml%2Fdemo", None),
        ("POST", "/api/v4/user/runners", {"project_id": "4242", "runner_type": "project_type"}),
    ]
    assert api.requests_to("POST", "/user/runners$")[-1].form == {  # the VM's registerRunner
        **{"description": record["tpi_id"], "tag_list": "cml-77", "locked": "true", "run_untagged": "true"},
        **{"access_level": "not_protected", "project_id": "4242", "runner_type": "project_type"},
    }
    assert api.requests[-1].path == "/api/v4/runners/verify"


@pytest.mark.parametrize(
    ("changes", "env", "message"),
    [  # what CML 0.20.6 itself refuses, with yargs' message:
        ({"bogus": "1"}, {}, "Unknown argument: bogus\n"),
        ({"no-retry": True}, {}, "Unknown argument: retry\n"),  # yargs reads --no-retry as retry=false
        (
            {"cloud": "openstack"},
            {},
            'Argument: cloud, Given: "openstack", Choices: "aws", "azure", "gcp", "kubernetes"',
        ),
        ({"reuse": True}, {}, "Arguments single and reuse are mutually exclusive\n"),
        # what CML takes but then mishandles, or the stand-in does not model:
        ({"cloud-hdd-size": "40GB"}, {}, "--cloud-hdd-size '40GB' is not a number (CML would pass NaN on)"),
        ({"cloud-metadata": "gitlab_pipeline"}, {}, "which TPI's map of strings refuses"),
        ({"cloudRegion": "eu-west-1"}, {}, "--cloudRegion: the stand-in takes the kebab-case spelling only"),
        ({"cloud": None}, {}, "without --cloud CML runs gitlab-runner on this machine: not modelled"),
        ({}, {"CML_RUNNER_LABELS": "x"}, "CML would read CML_RUNNER_LABELS as options"),
        ({}, {"RUNNER_IDLE_TIMEOUT": "1"}, "CML would read RUNNER_IDLE_TIMEOUT as options"),  # a legacy name
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
        ({"cloud": "gcp"}, CREDENTIALS["gcp"], "Failed creating the machine: Malformed image name!", True),
        ({"idle-timeout": "never"}, {}, "Incorrect attribute value type", False),  # TPI's idle_timeout is a number
    ],
)
def test_a_failed_terraform_apply_leaves_no_runner_but_the_launchers_extra_one(
    launch, api, run, changes, env, error, tainted
):
    result, [record] = launch(launch_argv(api.url, **changes), **env)

    assert result.returncode == 1
    *_, terraform, failure = result.stderr.splitlines()
    assert json.loads(terraform)["message"].startswith(f"terraform error: Error: {error}")
    assert failure == '{"level": "error", "message": "terraform apply error"}'
    assert (record["outcome"], record["error"]) == ("failed", "terraform apply error")
    assert len(extra_runners(api)) == 1 == len(api.runners())
    state = run.path / "home" / ".cml" / "cml-77-88" / "terraform.tfstate"
    assert state.exists() == tainted  # terraform keeps a create that failed after TPI set the id, tainted
    assert not tainted or tfstate(state)["status"] == "tainted"


def test_a_developer_token_registers_nothing_and_the_vm_never_gets_ready(launch, api):
    result, [record] = launch(launch_argv(api.url), token=TOKEN)  # BOT: a Developer

    assert result.returncode == 1
    assert "Failed preparing Gitlab runner: Cannot read properties of undefined (reading 'startsWith')" in result.stderr
    assert (api.requests_to("POST", "/user/runners"), api.runners(), record["vm"]["ready"]) == ([], [], False)


def test_a_name_in_use_is_refused(launch, api, run):
    api.add_runner("cml-77-88", ("cml-1",), status="online")

    result, [record] = launch(launch_argv(api.url))

    message = "Runner name cml-77-88 is already in use. Please change the name or terminate the existing runner."
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        1,
        json.dumps({"level": "error", "message": message}),
    )
    assert record["outcome"] == "failed" and not (run.path / "home" / ".cml").exists()


def test_leo_destroys_the_runner_a_launch_made_and_refuses_what_leo_would(launch, api, run):
    launch(launch_argv(api.url))
    attributes = tfstate(run.path / "home" / ".cml" / "cml-77-88" / "terraform.tfstate")["attributes"]
    argv = ["destroy-runner", "--cloud", attributes["cloud"], "--region", attributes["region"], attributes["id"]]

    result, [record] = run(argv, LEO, **CREDENTIALS["aws"])  # as launch.js destroyLeo and the clean-up job call it

    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stderr
    assert (record["cloud"], record["region"], record["identifier"]) == ("aws", "eu-west-1", attributes["id"])
    for argv, env, message in [
        (["destroy-runner", attributes["id"]], CREDENTIALS["aws"], 'Error: required flag(s) "cloud" not set'),
        (["destroy-runner", "--cloud", "aws", "cml-77-88"], CREDENTIALS["aws"], "'cml-77-88' is not a TPI identifier"),
        (["destroy-runner", "--cloud", "aws", attributes["id"]], {}, "Error: failed to refresh cached credentials"),
    ]:
        refused, _ = run(argv, LEO, **env)
        assert (refused.returncode, refused.stdout) == (1, "") and message in refused.stderr, refused.stderr
