"""Keep exactly one CML report comment on the merge request, however long the discussion.

Runs in the comment job's CML image (Python 3.8, standard library only):

    mode=$(python3 ci/report_note.py before)
    cml comment "$mode" report/report.md ... --watermark-title "$REPORT_TITLE"
    python3 ci/report_note.py after

`cml comment update` (CML 0.20.6) looks for its comment on the first page of the merge request's
notes only (GitLab's 20 newest, system notes included) and edits the oldest one there that carries
its watermark. So on a busy merge request an older report comment is not found and a second one
is posted; and if the comment it picks was written by another user (a re-created project access
token is a new bot user), GitLab refuses the edit with 403 and the job fails.

`before` checks REPO_TOKEN, reads every note, and prints the subcommand that works: `update` (CML
edits this token's own comment, or posts a new one) or `create` (CML would pick another user's
comment). `after` deletes this token's older report comments, keeping the newest, and tries to
delete other users' ones. Both read CI_API_V4_URL, CI_MERGE_REQUEST_PROJECT_ID,
CI_MERGE_REQUEST_IID, REPO_TOKEN and REPORT_TITLE (the --watermark-title given to CML).
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

CML_PAGE = 20  # GitLab's default page size: the only page of notes CML 0.20.6 reads
TIMEOUT = 30  # seconds per request
TOKEN_HELP = (
    "create a project access token (role Developer, scopes api and write_repository; GitLab.com "
    "Premium/Ultimate or self-managed GitLab) or, on GitLab.com Free, a personal access token of a "
    "dedicated bot account with the same scopes, and store it as a masked, NOT protected CI/CD "
    "variable named REPO_TOKEN"
)


class Fail(Exception):
    """One `error:` line on stderr, exit 1."""


class ApiError(Exception):
    def __init__(self, method: str, url: str, status: int, reason: str):
        answer = f"HTTP {status} {reason}" if status else f"no answer ({reason})"
        super().__init__(f"GitLab API {method} {url} failed: {answer}")
        self.status, self.reason = status, reason  # status 0: no answer


def call(token: str, method: str, url: str, form: dict | None = None) -> tuple[object, object]:
    """(decoded JSON answer or None, response headers), or ApiError. Also used by cloud_runner.py."""
    headers = {"PRIVATE-TOKEN": token, "Accept": "application/json"}
    body = urlencode(form).encode() if form is not None else None
    request = Request(url, data=body, method=method, headers=headers)
    try:
        with urlopen(request, timeout=TIMEOUT) as response:
            data = response.read()
            return (json.loads(data) if data else None), response.headers
    except HTTPError as error:
        raise ApiError(method, url, error.code, error.reason) from None
    except (OSError, HTTPException, ValueError) as error:
        raise ApiError(method, url, 0, str(getattr(error, "reason", error))) from None


def say(message: str) -> None:
    print(f"report_note: {message}", file=sys.stderr)


def variable(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise Fail(f"{name} is not set: this runs in the comment job of a merge request pipeline")
    return value


class MergeRequest:
    def __init__(self) -> None:
        self.token = os.environ.get("REPO_TOKEN", "")
        if not self.token:
            raise Fail(f"REPO_TOKEN is not set: {TOKEN_HELP}.")
        if re.search(r"\s", self.token):
            raise Fail("REPO_TOKEN contains a space or line break: store the token alone in the CI/CD variable.")
        self.api = variable("CI_API_V4_URL").rstrip("/")
        project, iid = variable("CI_MERGE_REQUEST_PROJECT_ID"), variable("CI_MERGE_REQUEST_IID")
        self.notes_url = f"{self.api}/projects/{project}/merge_requests/{iid}/notes"
        self.watermark = watermark_pattern(os.environ.get("REPORT_TITLE", ""))
        try:
            self.me = self.call("GET", f"{self.api}/user")[0]
        except ApiError as error:
            if error.status in (401, 403):
                raise Fail(
                    f"REPO_TOKEN was refused by {self.api} (HTTP {error.status}): it may be expired, revoked or "
                    "lack the api scope; create a new one (role Developer, scopes api and write_repository) "
                    "and update the CI/CD variable REPO_TOKEN."
                ) from None
            if not error.status:
                raise Fail(
                    f"cannot reach the GitLab API at {self.api} to check REPO_TOKEN; retry the job, or check "
                    f"the runner's network ({error.reason})."
                ) from None
            raise

    def call(self, method: str, url: str) -> tuple[object, object]:
        return call(self.token, method, url)

    def notes(self) -> list[dict]:
        """Every note, newest first (GitLab's default order, so the first 20 are CML's page)."""
        notes: list[dict] = []
        page = "1"
        while page:
            batch, headers = self.call("GET", f"{self.notes_url}?per_page=100&page={page}")
            notes.extend(batch)
            page = headers.get("X-Next-Page", "") if batch else ""
        return notes

    def is_report(self, note: dict) -> bool:
        return bool(self.watermark.search(note.get("body") or ""))

    def is_mine(self, note: dict) -> bool:
        return note["author"]["id"] == self.me["id"]


def watermark_pattern(label: str) -> re.Pattern:
    """CML's Watermark.isIn test for --watermark-title `label`: the image, any hex sha, the title."""
    label = label.replace("{workflow}", os.environ.get("CI_PIPELINE_ID", "undefined"), 1)
    label = label.replace("{run}", os.environ.get("CI_JOB_ID", "undefined"), 1)
    title = f"CML watermark {label}".strip()
    for char in "_*[<":  # as CML escapes them for GitHub
        title = title.replace(char, "\\" + char)
    return re.compile(re.escape("![](https://cml.dev/watermark.png") + "#[0-9a-fA-F]+" + re.escape(f' "{title}")'))


def describe(note: dict) -> str:
    return f"note {note['id']} by @{note['author']['username']}"


def before() -> str:
    mr = MergeRequest()
    notes = mr.notes()
    pick = next((note for note in reversed(notes[:CML_PAGE]) if mr.is_report(note)), None)
    if pick is not None and mr.is_mine(pick):
        return "update"
    if pick is not None:
        say(
            f"the report comment CML would edit (note {pick['id']}) was written by @{pick['author']['username']}, "
            "another user, as happens when the token is re-created instead of rotated: GitLab refuses the edit "
            "(403), so a new comment is posted."
        )
        return "create"
    older = [note for note in notes if mr.is_report(note)]
    if older:
        say(
            f"the report comment ({describe(older[0])}) is older than the {CML_PAGE} newest notes that CML 0.20.6 "
            "reads, so a new one is posted and the old one removed afterwards."
        )
    else:
        say("no report comment on this merge request yet, so CML posts a new one.")
    return "update"


def after() -> None:
    mr = MergeRequest()
    reports = [note for note in mr.notes() if not note.get("system") and mr.is_report(note)]
    mine = [note for note in reports if mr.is_mine(note)]
    keep = max(mine, key=lambda note: (timestamp(note.get("updated_at")), note["id"]), default=None)
    for note in reports:
        if note is keep:
            continue
        try:
            mr.call("DELETE", f"{mr.notes_url}/{note['id']}")
        except ApiError as error:
            if error.status == 404:  # already gone (another pipeline's job)
                continue
            if error.status != 403:
                raise
            say(
                f"could not remove the old report comment {describe(note)}: it was written by another user, "
                "so GitLab refuses (403); delete it by hand, and rotate tokens instead of re-creating them."
            )
            continue
        say(f"removed the old report comment {describe(note)}.")


def timestamp(value: str | None) -> float:
    """Seconds since the epoch of a GitLab time ("2024-01-01T12:00:00.000Z"); 0 if unreadable."""
    try:
        return datetime.fromisoformat((value or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def run(action) -> int:
    """0, or 1 after one `error:` line on stderr (each line of a Fail's message is one problem)."""
    try:
        action()
    except (Fail, ApiError) as error:
        print("\n".join(f"error: {line}" for line in str(error).splitlines()), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("before", "after"):
        print("usage: python3 ci/report_note.py before|after", file=sys.stderr)
        return 2
    return run(lambda: print(before()) if argv[0] == "before" else after())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
