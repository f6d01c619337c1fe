"""A real S3 API on loopback: moto's server on 127.0.0.1, stopped when the block ends."""

import json
import logging
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from .project import VENV_BIN, project_env

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


class LocalS3:
    """`with LocalS3() as endpoint:` gives "http://127.0.0.1:PORT"; state lives in memory."""

    def __enter__(self) -> str:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        return f"http://{host}:{port}"

    def __exit__(self, *exc) -> None:
        self.server.stop()


def client(endpoint: str, **credentials: str):
    """An S3 client with the fake credentials, or with `aws_access_key_id` and the like given."""
    return boto3.client("s3", endpoint_url=endpoint, **{**CREDENTIALS, **credentials})


def s3_env(project: Path, endpoint: str, bucket: str) -> dict[str, str]:
    """Fake credentials and the endpoint override; creates the bucket the project points at."""
    client(endpoint).create_bucket(Bucket=bucket)
    return project_env(
        project,
        AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
        AWS_DEFAULT_REGION=CREDENTIALS["region_name"],
        AWS_ENDPOINT_URL_S3=endpoint,
    )


class S3Process:
    """`with S3Process("bucket") as s3:` moto's server in a process of its own, with the bucket.

    Every moto server of one Python process shares its state (buckets, IAM users) and whether IAM
    is enforced; this one shares neither, so a test can reuse the baked bucket name and turn on
    IAM: `s3.key_for(name, policy)` makes users, then `s3.enforce()` checks every request as AWS
    does (actions on bucket and object ARNs)."""

    def __init__(self, bucket: str):
        self.bucket = bucket

    def __enter__(self) -> "S3Process":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        command = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"moto_server did not start on {self.endpoint}") from None
                time.sleep(0.1)
        client(self.endpoint).create_bucket(Bucket=self.bucket)
        return self

    def key_for(self, name: str, policy: dict | None) -> dict[str, str]:
        """A user holding exactly `policy` (None: no policy), as AWS_* variables."""
        iam = boto3.client("iam", endpoint_url=self.endpoint, **CREDENTIALS)
        iam.create_user(UserName=name)
        if policy is not None:
            iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def enforce(self) -> None:
        """From now on every request needs a known key whose policies allow it."""
        # The count of requests still let through, as the body; a form would arrive empty.
        reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth", b"0", {"Content-Type": "text/plain"})
        urllib.request.urlopen(reset, timeout=10).close()

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
