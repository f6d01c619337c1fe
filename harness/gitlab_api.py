"""A loopback double of the GitLab REST API (v4) calls that CML 0.20.6, the template's CI scripts
and a runner make.

    with GitLabApi("4242", "ml/demo", {"glpat-bot": {"id": 10, "username": "project_4242_bot"}}) as api:
        api.url      # "http://127.0.0.1:PORT", the GitLab server (CI_SERVER_URL)
        api.api_url  # api.url + "/api/v4" (CI_API_V4_URL)

A user dict may also carry `access_level` (the token's role in the project: 30 Developer, the
default; 40 Maintainer; 50 Owner) and `scopes` (default ["api", "write_repository"]).

Behaves like GitLab where the callers can tell: every request needs a known `PRIVATE-TOKEN`
(else 401) with a scope that allows it (`api`, or `read_api` for reads; else 403
insufficient_scope), a project is addressed by its id or its URL-encoded path, merge request notes
come newest first, 20 a page (max 100) with GitLab's paging headers, system notes included, and a
note can be edited or deleted only by its author (403 otherwise, as for a Developer-role token).
Merge requests need no set-up: any iid has a (possibly empty) list of notes. Timestamps come from
a clock that ticks one second per write, so ordering is deterministic.

Runners follow GitLab's new runner flow: the project has no registration token (`runners_token`
is null, and shown to Maintainers only), `POST /user/runners` creates a project runner and returns
its `glrt-` token (Maintainer or Owner, scope `api` or `create_runner`), and a runner stays
`never_contacted` until a runner process presents that token (`POST /runners/verify`, no
PRIVATE-TOKEN), after which it is `online`. Only Maintainers and Owners see or manage the project's
runners: for a Developer `GET /runners` is an empty list and the rest is 403. Lists are paged like
notes and filtered like GitLab's (`type`, `status`, `paused`, `tag_list`: runners having every tag).
Not modelled: group and instance runners beyond what `add_runner` sets up, the jobs API a runner
polls, runners going offline by themselves (GitLab shows a runner online for two hours after its
last contact), registration tokens.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

START = datetime(2024, 1, 1, tzinfo=UTC)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp", ".ico"}
DEVELOPER, MAINTAINER = 30, 40
DEFAULT_SCOPES = ["api", "write_repository"]
RUNNER_TYPES = ("instance_type", "group_type", "project_type")
RUNNER_STATUSES = ("online", "offline", "stale", "never_contacted")
RUNNER_ACCESS_LEVELS = ("not_protected", "ref_protected")


class Request(NamedTuple):
    method: str
    path: str  # as sent, still URL-encoded: /api/v4/projects/ml%2Fdemo/...
    query: dict[str, str]
    status: int
    form: dict | None = None  # the parameters of a form-encoded or JSON body


class ApiError(Exception):
    def __init__(self, status: int, message: str, key: str = "message", **extra):
        super().__init__(message)
        self.status, self.body = status, {key: message, **extra}


def forbidden() -> ApiError:
    return ApiError(403, "403 Forbidden")


class GitLabApi:
    def __init__(self, project_id: str, project_path: str, tokens: dict[str, dict]):
        self.project_id, self.project_path, self.tokens = str(project_id), project_path, tokens
        self.requests: list[Request] = []
        self.uploads: list[dict] = []  # {"filename", "content_type", "content" (bytes), "url"}
        self._notes: dict[int, list[dict]] = {}  # iid -> notes, oldest first
        self._merge_requests: dict[int, dict] = {}  # iid -> what GET .../merge_requests/:iid shows
        self._runners: dict[int, dict] = {}  # id -> runner as GET /runners/:id shows it, plus token and jobs
        self._lock = threading.Lock()
        self._ids = 1000
        self._ticks = 0

    # --- Test helpers ------------------------------------------------------------------------

    def add_note(self, iid: int, body: str, user: dict, system: bool = False) -> dict:
        """A note written by `user` (a user dict, as in `tokens`), returned as the API shows it."""
        with self._lock:
            return self._create_note(int(iid), body, user, system)

    def set_merge_request(self, iid: int, sha: str, head_pipeline_sha: str = "") -> None:
        """Merge request `iid` whose source branch's head is `sha`; its newest pipeline ran on
        `head_pipeline_sha` (a merged results pipeline's merge commit), `sha` unless given."""
        with self._lock:
            pipeline = {"id": self._ids, "sha": head_pipeline_sha or sha, "status": "running"}
            self._merge_requests[int(iid)] = {"iid": int(iid), "sha": sha, "head_pipeline": pipeline}

    def notes(self, iid: int) -> list[dict]:
        """All notes of merge request `iid`, oldest first (copies)."""
        with self._lock:
            return [json.loads(json.dumps(note)) for note in self._notes.get(int(iid), [])]

    def add_runner(
        self,
        description: str = "",
        tag_list: tuple[str, ...] = (),
        status: str = "never_contacted",
        jobs: tuple[dict, ...] = (),
        **fields,
    ) -> dict:
        """A runner as if registered earlier (project_type unless `runner_type` says otherwise), with
        `status` online, offline or never_contacted and `jobs` ({"id", "status"}: "running" makes it
        busy); `fields` are GET /runners/:id's (run_untagged, locked, access_level, paused...).
        Returned as GET /runners/:id shows it, plus its runner `token`."""
        if status not in ("online", "offline", "never_contacted"):
            raise ValueError(f"status {status!r}")
        with self._lock:
            runner = self._create_runner({"description": description, "tag_list": list(tag_list), **fields})
            runner["_jobs"] = [dict(job) for job in jobs]
            if status != "never_contacted":
                runner.update(contacted_at=self._now(), _status=status, ip_address="127.0.0.1")
            return {**self._runner_details(runner), "token": runner["_token"]}

    def runners(self) -> list[dict]:
        """Every runner, oldest first, as GET /runners/:id shows it (copies)."""
        with self._lock:
            return [self._runner_details(runner) for runner in self._runners.values()]

    def requests_to(self, method: str, pattern: str) -> list[Request]:
        """The logged requests with this method whose path matches the regular expression."""
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # --- Server ------------------------------------------------------------------------------

    def __enter__(self) -> GitLabApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                api._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = handle_one

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.api_url = self.url + "/api/v4"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = http.rfile.read(int(http.headers.get("Content-Length") or 0))
        content_type = http.headers.get("Content-Type", "")
        headers: dict[str, str] = {}
        form = None
        try:
            form = None if content_type.startswith("multipart/") else self._form(body, content_type)
            if not parts.path.startswith("/api/v4/"):
                raise ApiError(404, "404 Not Found", "error")
            segments = [unquote(segment) for segment in parts.path.split("/")[3:]]
            if (http.command, segments) == ("POST", ["runners", "verify"]):  # a runner's call: its own token
                with self._lock:
                    status, payload = 200, self._verify_runner(form, http.client_address[0])
            else:
                user = self.tokens.get(http.headers.get("PRIVATE-TOKEN", ""))
                if user is None:
                    raise ApiError(401, "401 Unauthorized")
                self._check_scope(http.command, segments, user)
                with self._lock:
                    status, payload = self._route(http.command, segments, query, body, http.headers, user, headers)
        except ApiError as error:
            status, payload = error.status, error.body
        self.requests.append(Request(http.command, parts.path, query, status, form or None))
        data = b"" if payload is None else json.dumps(payload).encode()
        http.send_response(status)
        for name, value in headers.items():
            http.send_header(name, value)
        if payload is not None:
            http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)

    @staticmethod
    def _check_scope(method: str, segments: list[str], user: dict) -> None:
        allowed = {"api"} if method != "GET" else {"api", "read_api"}
        if (method, segments) == ("POST", ["user", "runners"]):
            allowed.add("create_runner")
        if not allowed & set(user.get("scopes", DEFAULT_SCOPES)):
            raise ApiError(
                403,
                "insufficient_scope",
                "error",
                error_description="The request requires higher privileges than provided by the access token.",
                scope=" ".join(sorted(allowed)),
            )

    def _route(self, method, segments, query, body, request_headers, user, headers):
        match method, segments:
            case "GET", ["version"]:
                return 200, {"version": "17.5.0", "revision": "0d6a8f1b"}
            case "GET", ["user"]:
                return 200, {**user, "name": user["username"], "state": "active"}
            case "GET", ["personal_access_tokens", "self"]:
                return 200, self._token_details(user)
            case "POST", ["user", "runners"]:
                return 201, self._register_runner(self._form(body, request_headers.get("Content-Type", "")), user)
            case "GET", ["runners"]:
                owned = [r for r in self._runners.values() if r["runner_type"] == "project_type"]
                return 200, self._list_runners(owned if self._can_admin(user) else [], query, headers)
            case _, ["runners", runner_id, *rest] if runner_id.isdigit():
                return self._runner(method, int(runner_id), rest, query, body, request_headers, user, headers)
            case _, ["projects", project, *rest]:
                if project not in (self.project_id, self.project_path):
                    raise ApiError(404, "404 Project Not Found")
                return self._project(method, rest, query, body, request_headers, user, headers)
        raise ApiError(404, "404 Not Found", "error")

    def _project(self, method, rest, query, body, request_headers, user, headers):
        match method, rest:
            case "GET", []:
                return 200, self._project_details(user)
            case "GET", ["runners"]:
                if not self._can_admin(user):
                    raise forbidden()
                return 200, self._list_runners(list(self._runners.values()), query, headers)
            case "POST", ["uploads"]:
                return 201, self._upload(body, request_headers.get("Content-Type", ""))
            case "GET", ["merge_requests", iid] if iid.isdigit():
                if int(iid) not in self._merge_requests:
                    raise ApiError(404, "404 Not found")
                return 200, {**self._merge_requests[int(iid)], "project_id": int(self.project_id)}
            case "GET", ["merge_requests", iid, "notes"] if iid.isdigit():
                return 200, self._list_notes(int(iid), query, headers)
            case "POST", ["merge_requests", iid, "notes"] if iid.isdigit():
                text = self._body_field(body, request_headers.get("Content-Type", ""))
                return 201, self._create_note(int(iid), text, user, False)
            case (("PUT" | "DELETE"), ["merge_requests", iid, "notes", note_id]) if iid.isdigit():
                note = next((n for n in self._notes.get(int(iid), []) if str(n["id"]) == note_id), None)
                if note is None:
                    raise ApiError(404, "404 Note Not Found")
                if note["author"]["id"] != user["id"] or note["system"]:
                    raise ApiError(403, "403 Forbidden")
                if method == "DELETE":
                    self._notes[int(iid)].remove(note)
                    return 204, None
                note.update(body=self._body_field(body, request_headers.get("Content-Type", "")))
                note["updated_at"] = self._now()
                return 200, note
        raise ApiError(404, "404 Not Found", "error")

    def _project_details(self, user: dict) -> dict:
        project = {
            "id": int(self.project_id),
            "name": PurePosixPath(self.project_path).name,
            "path": PurePosixPath(self.project_path).name,
            "path_with_namespace": self.project_path,
            "web_url": f"{self.url}/{self.project_path}",
            "default_branch": "main",
        }
        if self._can_admin(user):  # GitLab shows the registration token to Maintainers only; null: new runner flow
            project["runners_token"] = None
        access = {"access_level": user.get("access_level", DEVELOPER), "notification_level": 3}
        return {**project, "permissions": {"project_access": access, "group_access": None}}

    def _token_details(self, user: dict) -> dict:
        number = list(self.tokens.values()).index(user) + 1
        return {
            "id": number,
            "name": f"{user['username']} token",
            "revoked": False,
            "created_at": START.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "description": None,
            "scopes": list(user.get("scopes", DEFAULT_SCOPES)),
            "user_id": user["id"],
            "last_used_at": None,
            "active": True,
            "expires_at": user.get("expires_at"),
        }

    @staticmethod
    def _can_admin(user: dict) -> bool:
        return user.get("access_level", DEVELOPER) >= MAINTAINER

    # --- Runners -----------------------------------------------------------------------------

    def _register_runner(self, form: dict, user: dict) -> dict:
        """POST /user/runners: GitLab's new runner flow; this double holds project runners only."""
        runner_type = form.get("runner_type")
        if runner_type not in RUNNER_TYPES:
            raise ApiError(400, "runner_type is missing, runner_type does not have a valid value", "error")
        if runner_type != "project_type" or not self._can_admin(user):
            raise forbidden()
        if str(form.get("project_id")) not in (self.project_id, self.project_path):
            raise ApiError(404, "404 Project Not Found")
        fields = {key: form[key] for key in form if key not in ("runner_type", "project_id")}
        runner = self._create_runner(self._runner_fields(fields))
        return {"id": runner["id"], "token": runner["_token"], "token_expires_at": None}

    def _verify_runner(self, form: dict | None, address: str) -> dict:
        """POST /runners/verify: a runner process presenting its token, which makes it `online`."""
        token = (form or {}).get("token")
        runner = next((r for r in self._runners.values() if token and r["_token"] == token), None)
        if runner is None:
            raise forbidden()
        runner.update(contacted_at=self._now(), _status="online", ip_address=address)
        return {"id": runner["id"], "token": runner["_token"], "token_expires_at": None}

    def _create_runner(self, fields: dict) -> dict:
        self._ids += 1
        runner = {
            "id": self._ids,
            "description": "",
            "ip_address": None,
            "active": True,
            "paused": False,
            "is_shared": False,
            "runner_type": "project_type",
            "name": None,
            "tag_list": [],
            "run_untagged": True,
            "locked": False,
            "access_level": "not_protected",
            "maximum_timeout": None,
            "maintenance_note": None,
            "contacted_at": None,
            "created_at": self._now(),
            "architecture": None,
            "platform": None,
            "revision": None,
            "version": None,
            "_status": "never_contacted",
            "_token": f"glrt-{secrets.token_urlsafe(15)}",
            "_jobs": [],
        }
        runner.update(fields)
        runner.update(is_shared=runner["runner_type"] == "instance_type", active=not runner["paused"])
        self._runners[runner["id"]] = runner
        return runner

    def _runner(self, method, runner_id, rest, query, body, request_headers, user, headers):
        runner = self._runners.get(runner_id)
        if runner is None:
            raise ApiError(404, "404 Runner Not Found")
        shared_read = runner["runner_type"] == "instance_type" and (method, rest) == ("GET", [])
        if not (shared_read or (runner["runner_type"] == "project_type" and self._can_admin(user))):
            raise forbidden()
        match method, rest:
            case "GET", []:
                return 200, self._runner_details(runner)
            case "PUT", []:
                fields = self._runner_fields(self._form(body, request_headers.get("Content-Type", "")))
                runner.update(fields)
                runner["active"] = not runner["paused"]
                return 200, self._runner_details(runner)
            case "DELETE", []:
                del self._runners[runner_id]
                return 204, None
            case "GET", ["jobs"]:
                jobs = [job for job in runner["_jobs"] if query.get("status") in (None, job.get("status"))]
                return 200, self._page(jobs, query, headers)
        raise ApiError(404, "404 Not Found", "error")

    def _list_runners(self, runners: list[dict], query: dict, headers: dict) -> list[dict]:
        kind, status = query.get("type"), query.get("status")
        if kind is not None and kind not in RUNNER_TYPES:
            raise ApiError(400, "type does not have a valid value", "error")
        if status is not None and status not in (*RUNNER_STATUSES, "active", "paused"):
            raise ApiError(400, "status does not have a valid value", "error")
        paused = self._bool(query["paused"], "paused") if "paused" in query else None
        tags = self._tags(query.get("tag_list", ""))
        found = [
            runner
            for runner in runners
            if kind in (None, runner["runner_type"])
            and status in (None, runner["_status"])
            and paused in (None, runner["paused"])
            and all(tag in runner["tag_list"] for tag in tags)
        ]
        return [self._runner_summary(runner) for runner in self._page(found, query, headers)]

    @staticmethod
    def _runner_summary(runner: dict) -> dict:
        keys = ("id", "description", "ip_address", "active", "paused", "is_shared", "runner_type", "name")
        status = runner["_status"]
        return {**{key: runner[key] for key in keys}, "online": status == "online", "status": status}

    def _runner_details(self, runner: dict) -> dict:
        details = {key: value for key, value in runner.items() if not key.startswith("_")}
        project = {
            "id": int(self.project_id),
            "name": PurePosixPath(self.project_path).name,
            "name_with_namespace": self.project_path.replace("/", " / "),
            "path": PurePosixPath(self.project_path).name,
            "path_with_namespace": self.project_path,
        }
        projects = [project] if runner["runner_type"] == "project_type" else []
        details = {**details, **self._runner_summary(runner), "tag_list": list(runner["tag_list"])}
        return json.loads(json.dumps({**details, "projects": projects, "groups": []}))

    def _runner_fields(self, form: dict) -> dict:
        """The runner attributes a create or update sets, coerced and checked as GitLab's API does."""
        fields = {}
        for key, value in form.items():
            if key in ("description", "maintenance_note"):
                fields[key] = str(value)
            elif key in ("paused", "locked", "run_untagged"):
                fields[key] = self._bool(value, key)
            elif key == "active":  # deprecated in favour of paused
                fields["paused"] = not self._bool(value, key)
            elif key == "tag_list":
                fields[key] = self._tags(value)
            elif key == "access_level":
                if value not in RUNNER_ACCESS_LEVELS:
                    raise ApiError(400, "access_level does not have a valid value", "error")
                fields[key] = value
            elif key == "maximum_timeout":
                if not str(value).isdigit():
                    raise ApiError(400, "maximum_timeout is invalid", "error")
                fields[key] = int(value)
        return fields

    @staticmethod
    def _bool(value: object, name: str) -> bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1"):
            return True
        if str(value).lower() in ("false", "0"):
            return False
        raise ApiError(400, f"{name} is invalid", "error")

    @staticmethod
    def _tags(value: object) -> list[str]:
        """A tag list from a comma-separated string or a list, as GitLab splits it."""
        items = value if isinstance(value, list) else str(value).split(",")
        return list(dict.fromkeys(tag.strip() for tag in items if tag.strip()))

    # --- Notes and uploads -------------------------------------------------------------------

    def _now(self) -> str:
        self._ticks += 1
        return (START + timedelta(seconds=self._ticks)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def _create_note(self, iid: int, body: str, user: dict, system: bool) -> dict:
        self._ids += 1
        now = self._now()
        note = {
            "id": self._ids,
            "type": None,
            "body": body,
            "author": {"id": user["id"], "username": user["username"]},
            "created_at": now,
            "updated_at": now,
            "system": system,
            "noteable_type": "MergeRequest",
            "noteable_iid": iid,
        }
        self._notes.setdefault(iid, []).append(note)
        return note

    def _list_notes(self, iid: int, query: dict, headers: dict) -> list[dict]:
        sort, order_by = query.get("sort", "desc"), query.get("order_by", "created_at")
        if sort not in ("asc", "desc") or order_by not in ("created_at", "updated_at"):
            raise ApiError(400, "sort, order_by does not have a valid value", "error")
        notes = sorted(self._notes.get(iid, []), key=lambda n: (n[order_by], n["id"]), reverse=sort == "desc")
        return self._page(notes, query, headers)

    @staticmethod
    def _page(items: list, query: dict, headers: dict) -> list:
        """One page of `items` (20 unless per_page says, at most 100), with GitLab's paging headers."""
        try:
            page, per_page = int(query.get("page", 1)), int(query.get("per_page", 20))
        except ValueError:
            raise ApiError(400, "page, per_page is invalid", "error") from None
        page, per_page = max(page, 1), min(max(per_page, 1), 100)
        pages = max(1, -(-len(items) // per_page))
        headers.update(
            {
                "X-Page": str(page),
                "X-Per-Page": str(per_page),
                "X-Next-Page": str(page + 1) if page < pages else "",
                "X-Prev-Page": str(page - 1) if page > 1 else "",
                "X-Total": str(len(items)),
                "X-Total-Pages": str(pages),
            }
        )
        return items[(page - 1) * per_page : page * per_page]

    @staticmethod
    def _form(body: bytes, content_type: str) -> dict:
        """A request's parameters, form-encoded (as CML sends them; `key[]` repeated makes a list) or JSON."""
        if content_type.startswith("application/json"):
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                raise ApiError(400, "400 Bad request - invalid JSON", "error") from None
            return data if isinstance(data, dict) else {}
        form: dict = {}
        for key, value in parse_qsl(body.decode(errors="replace"), keep_blank_values=True):
            if key.endswith("[]"):
                form.setdefault(key[:-2], []).append(value)
            else:
                form[key] = value
        return form

    @classmethod
    def _body_field(cls, body: bytes, content_type: str) -> str:
        """The note's `body` from a form-encoded (as CML sends it) or JSON request."""
        text = cls._form(body, content_type).get("body")
        if text is None:
            raise ApiError(400, "body is missing", "error")
        if not text.strip():
            raise ApiError(400, "400 Bad request - Note can't be blank")
        return text

    def _upload(self, body: bytes, content_type: str) -> dict:
        if not content_type.startswith("multipart/form-data"):
            raise ApiError(400, "file is missing", "error")
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        part = next(
            (p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"), None
        )
        if part is None or not part.get_filename():
            raise ApiError(400, "file is invalid", "error")
        name = PurePosixPath(part.get_filename()).name
        url = f"/uploads/{secrets.token_hex(16)}/{name}"
        alt = PurePosixPath(name).stem
        markdown = f"![{alt}]({url})" if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES else f"[{name}]({url})"
        content = part.get_payload(decode=True)
        self.uploads.append({"filename": name, "content_type": part.get_content_type(), "content": content, "url": url})
        return {
            "id": len(self.uploads),
            "alt": alt,
            "url": url,
            "full_path": f"/{self.project_path}{url}",
            "markdown": markdown,
        }
