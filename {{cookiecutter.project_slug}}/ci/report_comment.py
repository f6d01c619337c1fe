"""Keep exactly one CML report comment on the merge request, however long the discussion.

Runs in the comment job's CML image (Python 3.8, standard library only):

    mode=$(python3 ci/report_comment.py mode)
    cml comment "$mode" report/report.md ... --watermark-title "$REPORT_TITLE"
    python3 ci/report_comment.py remove-older

`cml comment update` (CML 0.20.6) looks for its comment on the first page of the merge request's
notes only (GitLab's 20 newest, system notes included) and edits the oldest one there that carries
its watermark. So on a busy merge request an older report comment is not found and a second one
is posted; and if the comment it picks was written by another user (a re-created project access
token is a new bot user), GitLab refuses the edit with 403 and the job fails.

Two comment jobs can also run at once (two pushes close together, auto-cancel off, a retried
older pipeline): whichever writes last would win, possibly the older commit's report. CML's
watermark names the pipeline's commit (CI_COMMIT_SHA), so each report says which commit it is for.

`mode` checks REPO_TOKEN, reads every note, and prints the subcommand that works: `update` (CML
edits this token's own comment, or posts a new one) or `create` (CML would pick another user's
comment, or this pipeline's commit is no longer the merge request's head, whose report it must not
overwrite). `remove-older` keeps one report comment: the newest for the merge request's head
commit (the source branch's tip, or its newest pipeline's merge commit), else this token's newest,
and deletes the others (another user's it tries to). Both read CI_API_V4_URL, CI_COMMIT_SHA,
CI_MERGE_REQUEST_PROJECT_ID, CI_MERGE_REQUEST_IID, REPO_TOKEN and REPORT_TITLE (the
--watermark-title given to CML).
"""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime

from gitlab_api import ApiError, GitLab, run, variable

CML_PAGE = 20  # GitLab's default page size: the only page of notes CML 0.20.6 reads


def say(message: str) -> None:
    print(f"report_comment: {message}", file=sys.stderr)


class MergeRequest:
    def __init__(self) -> None:
        self.gitlab = GitLab()
        project, iid = variable("CI_MERGE_REQUEST_PROJECT_ID"), variable("CI_MERGE_REQUEST_IID")
        self.path = f"/projects/{project}/merge_requests/{iid}"
        self.notes_path = f"{self.path}/notes"
        self.watermark = watermark_pattern(os.environ.get("REPORT_TITLE", ""))
        self.me = self.gitlab.check_token()

    def notes(self) -> list[dict]:
        """Every note, newest first (GitLab's default order, so the first 20 are CML's page)."""
        return self.gitlab.every_page(self.notes_path)

    def is_report(self, note: dict) -> bool:
        return bool(self.watermark.search(note.get("body") or ""))

    def commit_of(self, note: dict) -> str:
        """The commit a report comment is for: the SHA in CML's watermark."""
        found = self.watermark.search(note.get("body") or "")
        return found.group(1).lower() if found else ""

    def heads(self) -> set[str]:
        """The commits whose report is the current one: the source branch's head and the newest
        pipeline's commit (a merge commit, in merged results pipelines). Empty if unknown."""
        try:
            details = self.gitlab.call("GET", self.path)
        except ApiError as error:
            if error.status == 404:
                return set()
            raise
        pipeline = details.get("head_pipeline") or {}
        return {sha.lower() for sha in (details.get("sha"), pipeline.get("sha")) if sha}

    def is_mine(self, note: dict) -> bool:
        return note["author"]["id"] == self.me["id"]


def watermark_pattern(label: str) -> re.Pattern:
    """CML's Watermark.isIn test for --watermark-title `label`: the image, any hex sha, the title."""
    label = label.replace("{workflow}", os.environ.get("CI_PIPELINE_ID", "undefined"), 1)
    label = label.replace("{run}", os.environ.get("CI_JOB_ID", "undefined"), 1)
    title = f"CML watermark {label}".strip()
    for char in "_*[<":  # as CML escapes them for GitHub
        title = title.replace(char, "\\" + char)
    return re.compile(re.escape("![](https://cml.dev/watermark.png") + "#([0-9a-fA-F]+)" + re.escape(f' "{title}")'))


def describe(note: dict) -> str:
    return f"note {note['id']} by @{note['author']['username']}"


def choose_mode() -> str:
    """`update`, or `create` where CML would pick another user's comment to edit, or would put this
    older commit's report over the head commit's."""
    mr = MergeRequest()
    notes = mr.notes()
    heads, mine = mr.heads(), os.environ.get("CI_COMMIT_SHA", "").lower()
    if heads and mine and mine not in heads:
        say(
            f"this pipeline's commit {mine[:8]} is no longer the merge request's head: its report is posted as a "
            "new comment, so that the head's report is not overwritten, and removed again while the head's stands."
        )
        return "create"
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


def remove_older() -> None:
    """Delete every report comment but one: the newest for the head commit (this token's first),
    else this token's newest."""
    mr = MergeRequest()
    reports = [note for note in mr.notes() if not note.get("system") and mr.is_report(note)]
    heads = mr.heads()
    current = [note for note in reports if mr.commit_of(note) in heads]
    candidates = current or [note for note in reports if mr.is_mine(note)]
    keep = max(
        candidates, key=lambda note: (mr.is_mine(note), timestamp(note.get("updated_at")), note["id"]), default=None
    )
    for note in reports:
        if note is keep:
            continue
        try:
            mr.gitlab.call("DELETE", f"{mr.notes_path}/{note['id']}")
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


def main(argv: list[str]) -> int:
    if argv not in (["mode"], ["remove-older"]):
        print("usage: python3 ci/report_comment.py mode | remove-older", file=sys.stderr)
        return 2
    return run(lambda: print(choose_mode()) if argv == ["mode"] else remove_older())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
