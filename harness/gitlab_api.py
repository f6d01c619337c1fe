"""A loopback double of the GitLab REST API calls that CML 0.20.6 and ci/report_note.py make.

    with GitLabApi("4242", "ml/demo", {"glpat-bot": {"id": 10, "username": "project_4242_bot"}}) as api:
        api.url      # "http://127.0.0.1:PORT", the GitLab server (CI_SERVER_URL)
        api.api_url  # api.url + "/api/v4" (CI_API_V4_URL)

Behaves like GitLab where the callers can tell: every request needs a known `PRIVATE-TOKEN`
(else 401), a project is addressed by its id or its URL-encoded path, merge request notes come
newest first, 20 a page (max 100) with GitLab's paging headers, system notes included, and a note
can be edited or deleted only by its author (403 otherwise, as for a Developer-role token). Merge
requests need no set-up: any iid has a (possibly empty) list of notes. Timestamps come from a
clock that ticks one second per write, so ordering is deterministic.
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


class Request(NamedTuple):
    method: str
    path: str  # as sent, still URL-encoded: /api/v4/projects/ml%2Fdemo/...
    query: dict[str, str]
    status: int


class ApiError(Exception):
    def __init__(self, status: int, message: str, key: str = "message"):
        super().__init__(message)
        self.status, self.body = status, {key: message}


class GitLabApi:
    def __init__(self, project_id: str, project_path: str, tokens: dict[str, dict]):
        self.project_id, self.project_path, self.tokens = str(project_id), project_path, tokens
        self.requests: list[Request] = []
        self.uploads: list[dict] = []  # {"filename", "content_type", "content" (bytes), "url"}
        self._notes: dict[int, list[dict]] = {}  # iid -> notes, oldest first
        self._lock = threading.Lock()
        self._ids = 1000
        self._ticks = 0

    # --- Test helpers ------------------------------------------------------------------------

    def add_note(self, iid: int, body: str, user: dict, system: bool = False) -> dict:
        """A note written by `user` (a user dict, as in `tokens`), returned as the API shows it."""
        with self._lock:
            return self._create_note(int(iid), body, user, system)

    def notes(self, iid: int) -> list[dict]:
        """All notes of merge request `iid`, oldest first (copies)."""
        with self._lock:
            return [json.loads(json.dumps(note)) for note in self._notes.get(int(iid), [])]

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
        headers: dict[str, str] = {}
        try:
            if not parts.path.startswith("/api/v4/"):
                raise ApiError(404, "404 Not Found", "error")
            user = self.tokens.get(http.headers.get("PRIVATE-TOKEN", ""))
            if user is None:
                raise ApiError(401, "401 Unauthorized")
            segments = [unquote(segment) for segment in parts.path.split("/")[3:]]
            with self._lock:
                status, payload = self._route(http.command, segments, query, body, http.headers, user, headers)
        except ApiError as error:
            status, payload = error.status, error.body
        self.requests.append(Request(http.command, parts.path, query, status))
        data = b"" if payload is None else json.dumps(payload).encode()
        http.send_response(status)
        for name, value in headers.items():
            http.send_header(name, value)
        if payload is not None:
            http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)

    def _route(self, method, segments, query, body, request_headers, user, headers):
        match method, segments:
            case "GET", ["version"]:
                return 200, {"version": "17.5.0", "revision": "0d6a8f1b"}
            case "GET", ["user"]:
                return 200, {**user, "name": user["username"], "state": "active"}
            case _, ["projects", project, *rest]:
                if project not in (self.project_id, self.project_path):
                    raise ApiError(404, "404 Project Not Found")
                return self._project(method, rest, query, body, request_headers, user, headers)
        raise ApiError(404, "404 Not Found", "error")

    def _project(self, method, rest, query, body, request_headers, user, headers):
        match method, rest:
            case "GET", []:
                return 200, {"id": int(self.project_id), "path_with_namespace": self.project_path}
            case "POST", ["uploads"]:
                return 201, self._upload(body, request_headers.get("Content-Type", ""))
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
        try:
            page, per_page = int(query.get("page", 1)), int(query.get("per_page", 20))
        except ValueError:
            raise ApiError(400, "page, per_page is invalid", "error") from None
        page, per_page = max(page, 1), min(max(per_page, 1), 100)
        notes = sorted(self._notes.get(iid, []), key=lambda n: (n[order_by], n["id"]), reverse=sort == "desc")
        pages = max(1, -(-len(notes) // per_page))
        headers.update(
            {
                "X-Page": str(page),
                "X-Per-Page": str(per_page),
                "X-Next-Page": str(page + 1) if page < pages else "",
                "X-Prev-Page": str(page - 1) if page > 1 else "",
                "X-Total": str(len(notes)),
                "X-Total-Pages": str(pages),
            }
        )
        return notes[(page - 1) * per_page : page * per_page]

    @staticmethod
    def _body_field(body: bytes, content_type: str) -> str:
        """The note's `body` from a form-encoded (as CML sends it) or JSON request."""
        if content_type.startswith("application/json"):
            text = json.loads(body or b"{}").get("body")
        else:
            text = dict(parse_qsl(body.decode(), keep_blank_values=True)).get("body")
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
