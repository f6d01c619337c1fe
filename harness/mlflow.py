"""A real MLflow 2.x server on loopback (GitLab's model registry implements MLflow's 2.x REST API),
GitLab's registry played over such a server where GitLab behaves differently, and the venvs the
mirror's client and the server run from.

The client venv holds exactly the baked project's ci/mlflow-requirements.txt, as the CI job
installs it; the server venv holds the full `mlflow` of the same version.
"""

import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .project import TEMPLATE, VENV_BIN

CLIENT_REQUIREMENTS = TEMPLATE / "{{cookiecutter.project_slug}}" / "ci" / "mlflow-requirements.txt"
# The server's dependencies as PyPI had them a few days after MLflow 2.22.5 came out: with today's,
# it does not start (later SQLAlchemy 2.x releases dropped a pool class that MLflow 2.22 imports).
# Move it with the client's version.
SERVER_EXCLUDE_NEWER = "2026-05-15"


def client_version() -> str:
    """The MLflow version ci/mlflow-requirements.txt pins."""
    [version] = re.findall(r"^mlflow-skinny==(\S+)", CLIENT_REQUIREMENTS.read_text(encoding="utf-8"), re.M)
    return version


def _venv(path: Path, *install: str) -> Path:
    """A venv of this suite's Python with `uv pip install *install`, built once: the first caller
    builds it (under a lock, as xdist's workers share it), the others find it done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    done = path / ".installed"
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            uv = str(VENV_BIN / "uv")
            subprocess.run(
                [uv, "venv", "--quiet", "--python", str(VENV_BIN / "python"), str(path)], check=True, env=env
            )
            subprocess.run(
                [uv, "pip", "install", "--quiet", "--python", str(path / "bin" / "python"), *install],
                check=True,
                env=env,
            )
            done.touch()
    return path


def client_venv(root: Path) -> Path:
    """The CI job's venv: ci/mlflow-requirements.txt and nothing else (mlflow-skinny, pyyaml)."""
    key = hashlib.sha256(CLIENT_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    return _venv(root / f"mlflow-client-{key}", "-r", str(CLIENT_REQUIREMENTS))


def server_venv(root: Path) -> Path:
    version = client_version()
    return _venv(root / f"mlflow-server-{version}", f"mlflow=={version}", "--exclude-newer", SERVER_EXCLUDE_NEWER)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """`with MlflowServer(venv, workdir) as url:` runs `mlflow server` on 127.0.0.1 (sqlite store and
    proxied artifacts under `workdir`, one gunicorn worker) until the block ends. A fresh server
    takes seconds to migrate its database: `start()` several before entering the first, and they
    start side by side."""

    def __init__(self, venv: Path, workdir: Path, startup_timeout: float = 90):
        self.venv, self.workdir, self.startup_timeout = venv, workdir, startup_timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> "MlflowServer":
        if self.process is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.log = self.workdir / "server.log"
        args = [
            str(self.venv / "bin" / "mlflow"),
            "server",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--backend-store-uri", f"sqlite:///{self.workdir / 'mlflow.db'}",
            "--artifacts-destination", str(self.workdir / "artifacts"),
            "--workers", "1",
        ]  # fmt: skip
        env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
        with open(self.log, "w") as log:
            # A session of its own: stopping it stops gunicorn's worker too.
            self.process = subprocess.Popen(
                args, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __enter__(self) -> str:
        self.start()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self.url
            except OSError:
                time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(
            f"mlflow server gave no /health in {self.startup_timeout} s:\n{self.log.read_text()[-3000:]}"
        )

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Rest:
    """MLflow's REST API as plain JSON, to check what a client wrote without MLflow's own client."""

    def __init__(self, url: str):
        self.url = url

    def _call(self, method: str, path: str, body: dict | None = None, **query) -> dict:
        address = f"{self.url}/api/2.0/mlflow/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            address, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {address}: HTTP {error.code} {error.read().decode()}") from None

    def get(self, path: str, **query) -> dict:
        return self._call("GET", path, **query)

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body)

    def download(self, run_id: str, path: str) -> bytes:
        query = urllib.parse.urlencode({"path": path, "run_uuid": run_id})
        with urllib.request.urlopen(f"{self.url}/get-artifact?{query}", timeout=30) as answer:
            return answer.read()

    # What the registry holds, counted.
    def versions(self, model: str) -> list[dict]:
        return self.get("model-versions/search", filter=f"name='{model}'").get("model_versions", [])

    def runs(self) -> list[dict]:
        experiments = self.post("experiments/search", {"max_results": 1000}).get("experiments", [])
        ids = [experiment["experiment_id"] for experiment in experiments]
        return self.post("runs/search", {"experiment_ids": ids, "max_results": 1000}).get("runs", []) if ids else []

    def registered_models(self) -> list[dict]:
        return self.get("registered-models/search").get("registered_models", [])


class GitLabRegistry:
    """`with GitLabRegistry(mlflow_url, token) as registry:` GitLab's model registry as its docs and code
    describe it (https://docs.gitlab.com/user/project/ml/experiment_tracking/mlflow_client/,
    lib/api/ml/mlflow/), played over a real MLflow server:
    - at `registry.uri` = http://127.0.0.1:PORT/api/v4/projects/4242/ml/mlflow, and only for
      `Authorization: Bearer <token>`: anything else gets 401 {"message": "401 Unauthorized"}, and
      another project 404 {"message": "404 Project Not Found"};
    - a registered model comes with an experiment `[model]NAME`, and a model may not take the name
      of an experiment;
    - model-versions/create ignores `source` and `run_id`: the version is named by its tag
      `gitlab.version` (required here; GitLab would number it) and gets a new run of its own in
      `[model]NAME`;
    - model-versions/get finds a version by that name; model-versions/search does not exist;
    - a version's run has GitLab's `artifact_uri`, the model version's package
      (http://127.0.0.1:PORT/api/v4/projects/4242/packages/ml_models/<id>/files/, from
      lib/api/entities/ml/mlflow/run_info.rb), which takes uploads by PUT; here they land among the
      run's artifacts on the MLflow server, where a test reads them.
    Everything else goes to the MLflow server as it is. `calls` lists (method, path) as received;
    `mlflow` is the server's REST API, behind GitLab's back."""

    PREFIX = "/api/v4/projects/4242/ml/mlflow"
    PACKAGES = re.compile(r"^/api/v4/projects/4242/packages/ml_models/(\d+)/files/(.+)$")

    def __init__(self, mlflow_url: str, token: str):
        self.mlflow, self.token, self.calls = Rest(mlflow_url), token, []
        self.packages: dict[str, tuple[str, str]] = {}  # model version id -> (run id, MLflow's artifact_uri)

    def __enter__(self) -> "GitLabRegistry":
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                content_type = self.headers.get("Content-Type") or "application/json"
                package = registry.PACKAGES.match(path)
                if package:
                    registry.calls.append((self.command, path))
                    if self.headers.get("Authorization") != f"Bearer {registry.token}":
                        return self._answer(401, b'{"message": "401 Unauthorized"}')
                    if self.command != "PUT" or package.group(1) not in registry.packages:
                        return self._answer(404, b'{"message": "404 Not Found"}')
                    _, mlflow_uri = registry.packages[package.group(1)]
                    tail = mlflow_uri.removeprefix("mlflow-artifacts:/")
                    path = f"/api/2.0/mlflow-artifacts/artifacts/{tail}/{package.group(2)}"
                    content_type = "application/octet-stream"
                elif path.startswith("/api/v4/") and not path.startswith(registry.PREFIX):
                    return self._answer(404, b'{"message": "404 Project Not Found"}')
                path = path.removeprefix(registry.PREFIX)
                if not package:
                    registry.calls.append((self.command, path))
                    if self.headers.get("Authorization") != f"Bearer {registry.token}":
                        return self._answer(401, b'{"message": "401 Unauthorized"}')
                    special = registry.gitlab(
                        self.command,
                        path,
                        json.loads(body) if body and "json" in (self.headers.get("Content-Type") or "") else None,
                        dict(urllib.parse.parse_qsl(query)),
                    )
                    if special is not None:
                        return self._answer(special[0], json.dumps(special[1]).encode())
                forwarded = urllib.request.Request(
                    f"{registry.mlflow.url}{path}" + (f"?{query}" if query else ""),
                    data=body if self.command in ("POST", "PUT", "PATCH") else None,
                    method=self.command,
                    headers={"Content-Type": content_type},
                )
                try:
                    with urllib.request.urlopen(forwarded, timeout=60) as answer:
                        self._answer(answer.status, answer.read(), answer.headers.get("Content-Type", ""))
                except urllib.error.HTTPError as error:
                    self._answer(error.code, error.read(), error.headers.get("Content-Type", ""))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.api_v4 = f"http://127.0.0.1:{self.server.server_address[1]}/api/v4"  # CI_API_V4_URL
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}{self.PREFIX}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def gitlab(self, method: str, path: str, body: dict | None, query: dict) -> tuple[int, dict] | None:
        """GitLab's answer where it differs from MLflow's, else None."""
        api = "/api/2.0/mlflow/"
        if path == f"{api}registered-models/create":
            name = body["name"]
            taken = self.mlflow.post("experiments/search", {"max_results": 1000, "filter": f"name = '{name}'"})
            if taken.get("experiments"):
                return 400, {"error_code": "RESOURCE_ALREADY_EXISTS"}
            created = self.mlflow.post("registered-models/create", body)
            self.mlflow.post("experiments/create", {"name": f"[model]{name}"})
            return 200, created
        if path == f"{api}model-versions/create":
            tags = {tag["key"]: tag["value"] for tag in body.get("tags") or []}
            if "gitlab.version" not in tags:
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "stand-in: no gitlab.version"}
            if self.find(body["name"], tags["gitlab.version"]):
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "Version has already been taken"}
            experiment = self.mlflow.get("experiments/get-by-name", experiment_name=f"[model]{body['name']}")
            run = self.mlflow.post("runs/create", {"experiment_id": experiment["experiment"]["experiment_id"]})
            info = run["run"]["info"]
            package_id = str(len(self.packages) + 1)
            self.packages[package_id] = (info["run_id"], info["artifact_uri"])
            own = {**body, "run_id": info["run_id"], "source": self.package_uri(package_id)}
            return 200, self.mlflow.post("model-versions/create", own)
        if path == f"{api}runs/get":
            found = self.mlflow.get("runs/get", **query)
            package_id = next((key for key, (run_id, _) in self.packages.items() if run_id == query["run_id"]), None)
            if package_id:
                found["run"]["info"]["artifact_uri"] = self.package_uri(package_id)
            return 200, found
        if path == f"{api}model-versions/get":
            found = self.find(query["name"], query["version"])
            return (200, {"model_version": found}) if found else (404, {"error_code": "RESOURCE_DOES_NOT_EXIST"})
        if path == f"{api}model-versions/search":
            return 404, {"message": "404 Not Found"}
        return None

    def package_uri(self, package_id: str) -> str:
        return f"{self.api_v4}/projects/4242/packages/ml_models/{package_id}/files/"

    def find(self, name: str, version: str) -> dict | None:
        return next(
            (v for v in self.mlflow.versions(name) if {"key": "gitlab.version", "value": version} in v.get("tags", [])),
            None,
        )
