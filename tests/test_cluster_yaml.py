"""cluster.yaml passes Ray's own launcher schema offline and has the node types the planner's plans need."""

from pathlib import Path

import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CONFIG = Path(__file__).resolve().parent.parent / "cluster.yaml"


def test_cluster_yaml_is_valid_for_the_ray_launcher():
    raw = yaml.safe_load(CONFIG.read_text())
    validate_config(prepare_config(raw))  # raises jsonschema.ValidationError / ValueError on a bad config
    assert raw["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"  # pinned, not ray-ml, not :latest


def test_node_types_cover_cpu_head_multi_gpu_and_spot_single_gpu():
    raw = yaml.safe_load(CONFIG.read_text())
    nodes = raw["available_node_types"]
    assert nodes[raw["head_node_type"]]["resources"] == {"CPU": 0}  # the head never runs training
    instance = {name: n["node_config"]["InstanceType"] for name, n in nodes.items()}
    assert {"p5.48xlarge", "p4d.24xlarge"} <= set(instance.values())  # 8 x H100 / 8 x A100
    spot = [
        name
        for name, n in nodes.items()
        if n["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot"
    ]
    assert spot and all(nodes[name]["min_workers"] == 0 for name in spot)
    assert all("IamInstanceProfile" in n["node_config"] for n in nodes.values())  # S3 through the instance role
    assert any("scripts/setup.sh" in c for c in raw["setup_commands"])


def test_the_job_api_is_not_open_to_the_network():
    raw = yaml.safe_load(CONFIG.read_text())
    head = " ".join(raw["head_start_ray_commands"])
    assert "0.0.0.0" not in CONFIG.read_text() and "--dashboard-host=127.0.0.1" in head
    assert all(
        "RAY_AUTH_MODE=token" in c
        for c in raw["head_start_ray_commands"] + raw["worker_start_ray_commands"]
        if c.strip().split(";")[-1].strip().startswith(("ray start", "RAY_AUTH_MODE"))
    )
