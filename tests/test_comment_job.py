"""The comment job's script, run line for line with bash as GitLab Runner does, in a baked project.

The GitLab API is the loopback double in harness/gitlab_api.py and `cml` is the stand-in, which talks
to it the way CML 0.20.6 does: it looks for its report among the FIRST page of notes only, and a
note of another user cannot be edited (403). ci/report_comment.py must make up for both, so that a
merge request keeps exactly one report comment of the token's user, however long its discussion.
"""

import base64
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.ci_file import load
from harness.gitlab import PROJECT_ID, STAND_INS, merge_request_variables
from harness.gitlab_api import GitLabApi
from harness.project import project_env, run

IID = 7
TOKEN = "glpat-current-bot-token-7f3e"  # REPO_TOKEN today
OLD_TOKEN = "glpat-previous-bot-token-1c9a"  # the token before it was re-created (another bot user)
BOT = {"id": 31, "username": "project_4242_bot_2"}
OLD_BOT = {"id": 12, "username": "project_4242_bot"}
ALICE = {"id": 5, "username": "alice"}
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
WATERMARK = '"CML watermark DVC model report")'


def comment_script(project: Path) -> str:
    """The comment job's steps from the baked .gitlab-ci.yml, for one `bash -eo pipefail` shell as
    GitLab Runner runs them; the guard that skips forks and missing reports is tested elsewhere
    (ci/pipeline.sh is sourced quietly: it prints the kind of pipeline first)."""
    job = load(project)["comment"]
    assert job["variables"]["REPORT_TITLE"] == "DVC model report"
    assert job["script"][:2] == ["source ci/pipeline.sh", 'skip_unless_report_can_be_posted "$REPORT"']
    script = ["source ci/pipeline.sh >/dev/null", *job["script"][2:]]
    return "\n".join(script).replace('"$REPORT"', job["variables"]["REPORT"])


def sha(push: int) -> str:
    return f"{push:040x}"


@dataclass
class CommentJob:
    project: Path
    api: GitLabApi
    pushes: int = 0

    @property
    def cml_log(self) -> Path:
        return self.project.parent / "cml-calls.jsonl"

    def push(self, token: str | None = TOKEN, head: str = "", **variables: str) -> subprocess.CompletedProcess:
        """A new commit on the merge request's branch (its head, unless `head` names another): a new
        report, then the comment job."""
        self.pushes += 1
        self.api.set_merge_request(IID, head or variables.get("CI_COMMIT_SHA", sha(self.pushes)))
        report = f"# Model report\n\n| accuracy | 0.9{self.pushes} |\n|---|---|\n\n![Confusion matrix](confusion.png)\n"
        (self.project / "report" / "report.md").write_text(report)
        env = project_env(
            self.project,
            CI="true",
            GITLAB_CI="true",
            CI_SERVER_URL=self.api.url,
            CI_API_V4_URL=self.api.api_url,
            CI_PROJECT_ID=PROJECT_ID,
            CI_PROJECT_PATH="ml/demo",
            CI_PROJECT_URL=f"{self.api.url}/ml/demo",
            CI_PIPELINE_ID=str(900 + self.pushes),
            CI_JOB_ID=str(5000 + self.pushes),
            CI_COMMIT_SHA=sha(self.pushes),
            CI_COMMIT_REF_NAME="feature",
            **merge_request_variables("feature", iid=str(IID)),
            REPORT_TITLE="DVC model report",
            CML_STAND_IN_LOG=str(self.cml_log),
        )
        env.update(variables, PATH=f"{STAND_INS}{os.pathsep}{env['PATH']}")
        env.pop("REPO_TOKEN", None)
        if token is not None:
            env["REPO_TOKEN"] = token
        return run(["bash", "-eo", "pipefail", "-c", comment_script(self.project)], self.project, env, check=False)

    def report_notes(self) -> list[dict]:
        return [note for note in self.api.notes(IID) if WATERMARK in note["body"]]

    def discuss(self, count: int) -> None:
        """`count` newer notes: reviewers' comments and, every third, a system note."""
        for index in range(count):
            system = index % 3 == 2
            self.api.add_note(IID, "added 1 commit" if system else f"Looks good ({index})", ALICE, system=system)


@pytest.fixture
def job(bake):
    project = bake()
    (project / "report").mkdir(exist_ok=True)
    (project / "report" / "confusion.png").write_bytes(PNG)
    with GitLabApi(PROJECT_ID, "ml/demo", {TOKEN: BOT, OLD_TOKEN: OLD_BOT, "glpat-alice": ALICE}) as api:
        yield CommentJob(project, api)


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_the_first_push_posts_the_report_and_later_pushes_edit_it(job):
    first = job.push()
    assert_succeeded(first)
    [note] = job.report_notes()
    assert note["author"] == BOT
    assert "| accuracy | 0.91 |" in note["body"]
    [upload] = job.api.uploads
    assert (upload["filename"], upload["content"]) == ("confusion.png", PNG)
    assert f"![Confusion matrix]({upload['url']})" in note["body"]
    assert first.stdout == f"0.20.6\n{job.api.url}/ml/demo/-/merge_requests/{IID}#note_{note['id']}\n"
    assert first.stderr == "report_comment: no report comment on this merge request yet, so CML posts a new one.\n"

    job.discuss(3)
    second = job.push()
    assert_succeeded(second)
    [edited] = job.report_notes()
    assert edited["id"] == note["id"]
    assert "| accuracy | 0.92 |" in edited["body"]
    assert edited["updated_at"] > note["updated_at"]
    assert second.stderr == ""  # a plain edit in place needs no explanation


@pytest.mark.parametrize("newer", [25, 130])  # 130: the old report is on the second page of 100, too
def test_a_report_older_than_the_notes_cml_reads_is_replaced(job, newer):
    assert_succeeded(job.push())
    [old] = job.report_notes()
    job.discuss(newer)

    result = job.push()

    assert_succeeded(result)
    [new] = job.report_notes()
    assert new["id"] != old["id"]
    assert new["author"] == BOT
    assert "| accuracy | 0.92 |" in new["body"]
    assert result.stderr.splitlines() == [
        f"report_comment: the report comment (note {old['id']} by @{BOT['username']}) is older than the 20 newest "
        "notes that CML 0.20.6 reads, so a new one is posted and the old one removed afterwards.",
        f"report_comment: removed the old report comment note {old['id']} by @{BOT['username']}.",
    ]
    cml_reads = job.api.requests_to("GET", r"/projects/ml%2Fdemo/merge_requests/\d+/notes$")
    assert [read.query for read in cml_reads] == [{}, {}]  # CML itself: the first page only
    own_reads = job.api.requests_to("GET", rf"/projects/{PROJECT_ID}/merge_requests/\d+/notes$")
    assert {read.query["per_page"] for read in own_reads} == {"100"}
    assert ("2" in {read.query["page"] for read in own_reads}) == (newer > 100)  # every page is read


def test_a_report_written_by_another_user_is_left_and_one_of_this_token_posted(job):
    assert_succeeded(job.push(token=OLD_TOKEN))
    [old] = job.report_notes()
    assert old["author"] == OLD_BOT

    result = job.push()  # REPO_TOKEN was re-created: a new bot user

    assert_succeeded(result)
    assert [note["author"] for note in job.report_notes()] == [OLD_BOT, BOT]
    assert result.stderr.splitlines() == [
        f"report_comment: the report comment CML would edit (note {old['id']}) was written by @{OLD_BOT['username']}, "
        "another user, as happens when the token is re-created instead of rotated: GitLab refuses the edit (403), "
        "so a new comment is posted.",
        f"report_comment: could not remove the old report comment note {old['id']} by @{OLD_BOT['username']}: it was "
        "written by another user, so GitLab refuses (403); delete it by hand, and rotate tokens instead of "
        "re-creating them.",
    ]

    again = job.push()

    assert_succeeded(again)
    notes = job.report_notes()
    assert [note["author"] for note in notes] == [OLD_BOT, BOT]
    assert "| accuracy | 0.93 |" in notes[1]["body"]


def test_a_late_comment_job_of_an_older_commit_leaves_the_head_commits_report(job):
    """Two comment jobs at once (auto-cancel off, or a retried older pipeline): the report that
    stays is the one for the merge request's head commit, whichever job writes last."""
    assert_succeeded(job.push())
    assert_succeeded(job.push())  # the head: commit 2's report, edited in place
    [head] = job.report_notes()

    late = job.push(CI_COMMIT_SHA=sha(1), head=sha(2))  # commit 1's comment job ends last

    assert_succeeded(late)
    [kept] = job.report_notes()
    assert kept["id"] == head["id"] and "| accuracy | 0.92 |" in kept["body"] and f"#{sha(2)} " in kept["body"]
    first, removed = late.stderr.splitlines()
    assert first == (
        f"report_comment: this pipeline's commit {sha(1)[:8]} is no longer the merge request's head: its report is "
        "posted as a new comment, so that the head's report is not overwritten, and removed again while the head's "
        "stands."
    )
    assert removed.startswith("report_comment: removed the old report comment note ") and str(head["id"]) not in removed


def test_remove_older_keeps_the_head_commits_report_even_when_it_is_not_the_newest(job):
    """Both jobs posted before either removed anything, the head's first."""
    body = "# Model report\n\n![](https://cml.dev/watermark.png#{sha} " + WATERMARK
    head = job.api.add_note(IID, body.format(sha=sha(2)), BOT)
    job.api.add_note(IID, body.format(sha=sha(1)), BOT)  # the older commit's, written last
    job.api.set_merge_request(IID, sha(2))
    script = ["python3", "ci/report_comment.py", "remove-older"]
    env = project_env(job.project, CI_API_V4_URL=job.api.api_url, CI_COMMIT_SHA=sha(1), REPO_TOKEN=TOKEN)
    env.update(merge_request_variables("feature", iid=str(IID)), REPORT_TITLE="DVC model report")
    result = run(script, job.project, env, check=False)
    assert result.returncode == 0, result.stderr
    assert [note["id"] for note in job.report_notes()] == [head["id"]]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("problem", ["missing", "refused", "unreachable"])
def test_a_token_problem_stops_the_job_with_one_line_before_cml_runs(job, problem):
    token, variables = {"missing": None, "refused": "glpat-revoked-token-0d2b"}.get(problem, TOKEN), {}
    if problem == "unreachable":
        dead = f"http://127.0.0.1:{closed_port()}"
        variables = {"CI_API_V4_URL": f"{dead}/api/v4", "CI_PROJECT_URL": f"{dead}/ml/demo"}
    expected = {
        "missing": "error: REPO_TOKEN is not set: create a project access token (role Developer, scopes api and "
        "write_repository; GitLab.com Premium/Ultimate or self-managed GitLab) or, on GitLab.com Free, a personal "
        "access token of a dedicated bot account with the same scopes, and store it as a masked, NOT protected "
        "CI/CD variable named REPO_TOKEN (README, 'Tokens').",
        "refused": f"error: REPO_TOKEN was refused by {job.api.api_url} (HTTP 401): it may be expired, revoked or "
        "lack the api scope: create a project access token (role Developer, scopes api and write_repository;",
        "unreachable": f"error: cannot reach the GitLab API at {variables.get('CI_API_V4_URL')} (",
    }[problem]

    result = job.push(token=token, **variables)

    assert result.returncode == 1
    assert result.stdout == "0.20.6\n"
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1, result.stderr
    assert not job.cml_log.exists()  # no `cml comment` call
    assert [request.method for request in job.api.requests] == (["GET"] if problem == "refused" else [])
    assert token is None or token not in result.stdout + result.stderr


WORSE = (
    "balanced_accuracy 0.9661 → 0.5000 against `main` (-0.4661, 95% interval -0.5100 to -0.4200) "
    "on the same 143 test rows: worse."
)


@pytest.mark.parametrize(
    ("gate", "verdicts", "code", "said"),
    [
        ("fail", [f"worse: {WORSE}"], 1, f"error: the model report says worse: {WORSE} (VERDICT_GATE is fail; "),
        (None, [f"worse: {WORSE}"], 0, f"warning: the model report says worse: {WORSE} (VERDICT_GATE=fail would "),
        ("fail", ["within noise: balanced_accuracy ... : within noise.", "better: against production ..."], 0, ""),
        ("block", [], 1, "error: VERDICT_GATE must be warn or fail, got 'block' (Settings > CI/CD > Variables"),
    ],
)
def test_the_gate_fails_a_worse_verdict_after_the_report_is_posted_when_turned_on(job, gate, verdicts, code, said):
    (job.project / "report" / "verdict.txt").write_text("".join(f"{line}\n" for line in verdicts))
    result = job.push(**({"VERDICT_GATE": gate} if gate else {}))
    assert result.returncode == code, result.stdout + result.stderr
    [note] = job.report_notes()  # posted first: the reviewer reads why the pipeline failed
    assert "| accuracy | 0.91 |" in note["body"]
    output = result.stdout + result.stderr
    assert (said in output) if said else ("worse" not in output and "error" not in output), output
