"""A real S3 API on loopback: moto's server on 127.0.0.1, stopped when the block ends."""

import logging
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from .project import project_env

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


def client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)


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
