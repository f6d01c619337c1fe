"""The GitLab API as the ci/ scripts use it, with REPO_TOKEN: one place for requests, paging and
what to say when the token is missing or refused.

Runs in the CML image's Python (3.8, standard library only). Scripts end with `sys.exit(run(action))`:
an `error:` line on stderr per problem, and exit 1.
"""

from __future__ import annotations

import json
import os
import re
import sys
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

TIMEOUT = 30  # seconds per request
TOKEN_HELP = (
    "create a project access token (role Developer, scopes api and write_repository; GitLab.com "
    "Premium/Ultimate or self-managed GitLab) or, on GitLab.com Free, a personal access token of a "
    "dedicated bot account with the same scopes, and store it as a masked, NOT protected CI/CD "
    "variable named REPO_TOKEN (README, 'Tokens')"
)


class Fail(Exception):
    """One `error:` line on stderr per line of the message, exit 1."""


class ApiError(Exception):
    def __init__(self, method: str, url: str, status: int, reason: str):
        answer = f"HTTP {status} {reason}" if status else f"no answer ({reason})"
        super().__init__(f"GitLab API {method} {url} failed: {answer}")
        self.status, self.reason = status, reason  # status 0: no answer


def variable(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise Fail(f"{name} is not set: GitLab sets it in a merge request pipeline's jobs")
    return value


class GitLab:
    """The view of the API at CI_API_V4_URL of the token in the CI/CD variable `name` (REPO_TOKEN
    unless told, `advice` saying which token it must be); `check_token` proves it works first."""

    def __init__(self, name: str = "REPO_TOKEN", advice: str = TOKEN_HELP) -> None:
        self.name, self.advice = name, advice
        self.token = os.environ.get(name, "")
        self.api = os.environ.get("CI_API_V4_URL", "").rstrip("/")

    def check_token(self) -> dict:
        """The token's user, or Fail saying what is wrong with the token."""
        if not self.token:
            raise Fail(f"{self.name} is not set: {self.advice}.")
        if re.search(r"\s", self.token):
            raise Fail(f"{self.name} contains a space or line break: store the token alone in the CI/CD variable.")
        try:
            return self.call("GET", "/user")
        except ApiError as error:
            if error.status in (401, 403):
                raise Fail(
                    f"{self.name} was refused by {self.api} (HTTP {error.status}): it may be expired, revoked or "
                    f"lack the api scope: {self.advice}."
                ) from None
            if not error.status:
                raise Fail(
                    f"cannot reach the GitLab API at {self.api} ({error.reason}): retry the job, or check the "
                    "runner's network."
                ) from None
            raise

    def call(self, method: str, path: str, form: dict | None = None) -> object:
        return self.request(method, path, form)[0]

    def every_page(self, path: str) -> list:
        """Every item of a paged list, in GitLab's order (it pages by X-Next-Page)."""
        items: list = []
        page = "1"
        separator = "&" if "?" in path else "?"
        while page:
            batch, headers = self.request("GET", f"{path}{separator}per_page=100&page={page}")
            items.extend(batch)
            page = headers.get("X-Next-Page", "") if batch else ""
        return items

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[object, object]:
        """(decoded JSON answer or None, response headers), or ApiError."""
        url = self.api + path
        headers = {"PRIVATE-TOKEN": self.token, "Accept": "application/json"}
        body = urlencode(form).encode() if form is not None else None
        try:
            with urlopen(Request(url, data=body, method=method, headers=headers), timeout=TIMEOUT) as response:
                data = response.read()
                return (json.loads(data) if data else None), response.headers
        except HTTPError as error:
            raise ApiError(method, url, error.code, error.reason) from None
        except (OSError, HTTPException, ValueError) as error:
            raise ApiError(method, url, 0, str(getattr(error, "reason", error))) from None


def run(action) -> int:
    """0, or 1 after one `error:` line on stderr per problem."""
    try:
        action()
    except (Fail, ApiError) as error:
        print("\n".join(f"error: {line}" for line in str(error).splitlines()), file=sys.stderr)
        return 1
    return 0
