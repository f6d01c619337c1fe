"""What a DVC remote on the local S3 server holds: are the outputs a `dvc.lock` or a run-cache
entry names all there (a directory's files too)?"""

import hashlib
import json
from pathlib import Path

import yaml

from .s3 import client


class DvcRemote:
    """The remote `s3://bucket/prefix`, read with the fake credentials or the `credentials` given."""

    def __init__(self, endpoint: str, bucket: str, prefix: str = "dvc", **credentials: str):
        self.s3, self.bucket, self.prefix = client(endpoint, **credentials), bucket, prefix

    def keys(self, under: str = "") -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/{under}")
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def run_cache(self) -> dict[str, dict]:
        """Every run-cache entry, by key: a stage's lock entry (cmd, deps, outs)."""
        return {key: yaml.safe_load(self.read(key)) for key in self.keys("runs/")}

    def missing(self, outs: list[dict]) -> list[str]:
        """The paths of `outs` (dvc.lock's `outs` entries) whose data is not all in the remote."""
        stored = self.keys("files/")

        def key(md5: str) -> str:
            return f"{self.prefix}/files/md5/{md5[:2]}/{md5[2:]}"

        missing = []
        for out in outs:
            if key(out["md5"]) not in stored:
                missing.append(out["path"])
            elif out["md5"].endswith(".dir"):
                files = json.loads(self.read(key(out["md5"])))
                missing += [f"{out['path']}/{file['relpath']}" for file in files if key(file["md5"]) not in stored]
        return missing

    def missing_of(self, project: Path) -> list[str]:
        """What the project's dvc.lock and .dvc files name that the remote lacks."""
        stages = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
        outs = [out for stage in stages.values() for out in stage.get("outs", [])]
        for dvc_file in project.glob("data/**/*.dvc"):
            outs += yaml.safe_load(dvc_file.read_text())["outs"]
        return self.missing(outs)

    def damaged(self) -> list[str]:
        """Objects whose content does not hash to their name: what a request cut mid-body could
        leave if the server kept it."""
        damaged = []
        for key in self.keys("files/md5/"):
            name = "".join(key.split("/")[-2:]).removesuffix(".dir")
            if hashlib.md5(self.read(key)).hexdigest() != name:
                damaged.append(key)
        return damaged

    def incomplete_run_cache(self) -> dict[str, list[str]]:
        """Run-cache entries naming outputs the remote lacks: DVC would restore from them in vain."""
        entries = {key: self.missing(entry["outs"]) for key, entry in self.run_cache().items()}
        return {key: missing for key, missing in entries.items() if missing}
