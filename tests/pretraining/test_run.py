"""Pretraining from scratch: the built corpus, the BPE tokenizer, a tiny GPT whose perplexity falls, sampling, saving."""
import math
import re

import pytest

import llmnb
from llmnb.core.events import Callback
from llmnb.datasets.stories import build_corpus
from llmnb.errors import ConfigError, DataError
from llmnb.pretraining.config import PROFILE_STEPS, PretrainConfig
from llmnb.pretraining.corpus import read_corpus
from llmnb.pretraining.run import pretrain
from llmnb.pretraining.tokenizer import train_tokenizer

# Small enough to run in seconds on a busy 2-core CPU, big enough to halve perplexity many times over.
QUICK = dict(corpus_chars=60_000, width=64, max_steps=30, eval_every=10, quiet=True)


class Recorder(Callback):
    def __init__(self):
        self.events, self.evaluations = [], []

    def on_train_begin(self, state):
        self.events.append("begin")

    def on_evaluate(self, state, metrics):
        self.events.append("evaluate")
        self.evaluations.append((state.step, dict(metrics)))

    def on_train_end(self, state):
        self.events.append(f"end:{state.status}")


@pytest.fixture(scope="module")
def run():
    import torch

    threads = torch.get_num_threads()
    recorder = Recorder()
    gpt = pretrain(callbacks=[recorder], **QUICK)
    return gpt, recorder, threads


# ---------------------------------------------------------------------- corpus and tokenizer
def test_corpus_is_deterministic_and_of_the_requested_size():
    a, b = build_corpus(50_000, seed=3), build_corpus(50_000, seed=3)
    assert a == b
    assert build_corpus(50_000, seed=4) != a
    total = sum(map(len, a))
    assert 50_000 <= total < 51_500  # stops within one story of the target
    assert all(isinstance(s, str) and s.strip() for s in a)
    default = build_corpus()
    assert 400_000 <= sum(map(len, default)) < 401_500 and len(default) > 500
    words = {w.lower() for s in default for w in re.findall(r"[A-Za-z]+", s)}
    assert 200 <= len(words) <= 1000  # a few hundred words: learnable by a tiny model


def test_tokenizer_round_trip():
    texts = build_corpus(30_000, seed=0)
    tok = train_tokenizer(texts, vocab_size=500)
    assert 257 < len(tok) <= 500  # every byte plus learned merges, within the budget
    sentence = texts[0].split(". ")[0] + "."
    ids = tok(sentence, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == sentence
    assert len(ids) < len(sentence) / 2  # merges learned: far fewer tokens than characters
    odd = 'Zoë said "naïve café ☕"\n  twice'  # never seen: byte-level BPE still round-trips exactly
    assert tok.decode(tok(odd, add_special_tokens=False)["input_ids"]) == odd
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"


def test_corpus_forms(tmp_path):
    docs, _ = read_corpus(["One story.", "  ", "Another story."])
    assert docs == ["One story.", "Another story."]
    docs, _ = read_corpus("First part.\n\nSecond part.")
    assert docs == ["First part.", "Second part."]
    path = tmp_path / "book.txt"
    path.write_text("A<|endoftext|>B\n\nstill B<|endoftext|>C", encoding="utf-8")
    assert read_corpus(str(path))[0] == ["A", "B\n\nstill B", "C"]
    assert read_corpus(path)[0] == ["A", "B\n\nstill B", "C"]
    assert read_corpus("stories", n_chars=5_000)[0] == build_corpus(5_000)
    import pandas as pd

    assert read_corpus(pd.DataFrame({"text": ["x y", "z"]}))[0] == ["x y", "z"]
    with pytest.raises(DataError, match="no_such.txt"):
        read_corpus("no_such.txt")
    with pytest.raises(DataError, match="item 1 is a int"):
        read_corpus(["fine", 3])
    with pytest.raises(DataError, match="cannot be a dict"):
        read_corpus({"text": "x"})


def test_too_small_corpus_is_a_data_error():
    with pytest.raises(DataError, match="too small"):
        pretrain(["Only a few words here."] * 3, quiet=True, max_steps=2)


# ---------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "options, field",
    [
        ({"width": 30, "heads": 4}, "width=30"),
        ({"vocab_size": 100}, "vocab_size=100"),
        ({"lr": 0}, "lr=0"),
        ({"block_size": 2}, "block_size=2"),
        ({"max_steps": 1.5}, "max_steps=1.5"),
        ({"precision": "fp8"}, "precision='fp8'"),
        ({"eval_fraction": 0.9}, "eval_fraction=0.9"),
        ({"layer": 3}, "'layer' (did you mean 'layers'?)"),
    ],
)
def test_bad_options_raise_config_error_naming_the_field(options, field):
    with pytest.raises(ConfigError) as error:
        pretrain(["never read"], **options)  # options are checked before the corpus is read
    assert field in str(error.value)


def test_profile_picks_the_default_steps(monkeypatch):
    monkeypatch.setenv("LLMNB_PROFILE", "fast")
    assert PretrainConfig().steps == PROFILE_STEPS["fast"] < PROFILE_STEPS["full"]
    assert PretrainConfig(max_steps=7).steps == 7
    assert PretrainConfig().planned_steps(steps_per_epoch=3) == PROFILE_STEPS["fast"]
    monkeypatch.setenv("LLMNB_PROFILE", "full")
    assert PretrainConfig().steps == PROFILE_STEPS["full"]


# ---------------------------------------------------------------------- a short run
def test_validation_perplexity_falls_by_at_least_half(run):
    gpt, _, _ = run
    assert gpt.status == "finished" and gpt.state.step == QUICK["max_steps"]
    start, final = gpt.start_perplexity, gpt.final_perplexity
    # Untrained, the model is about as unsure as a uniform guess over the vocabulary.
    assert 0.5 * len(gpt.tokenizer) < start < 2 * len(gpt.tokenizer)
    assert final <= start / 2, (start, final)
    history = gpt.history
    first = history[history.step == 0].iloc[0]
    assert first.eval_perplexity == pytest.approx(start)
    assert first.eval_perplexity == pytest.approx(math.exp(first.eval_loss))
    assert history.train_loss.notna().sum() >= 10  # the curve has training points too
    assert gpt.metrics["eval_perplexity"] == final


def test_callbacks_see_evaluations_with_perplexity(run):
    _, recorder, _ = run
    assert recorder.events[0] == "begin" and recorder.events[-1] == "end:finished"
    steps = [step for step, _ in recorder.evaluations]
    assert steps == [0, 10, 20, 30]  # step 0: the untrained model, before any update
    for _, metrics in recorder.evaluations:
        assert set(metrics) >= {"eval_loss", "eval_perplexity"}
        assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    perplexities = [m["eval_perplexity"] for _, m in recorder.evaluations]
    assert perplexities[-1] < perplexities[0] / 2


def test_generate_returns_only_the_continuation(run):
    from llmnb import generate

    gpt, _, _ = run
    text = gpt.generate("Once upon a time", max_new_tokens=20)
    assert isinstance(text, str) and text and not text.startswith("Once upon a time")  # the new text only
    # the function behind it, with the model's context, writes the same
    assert generate(gpt.model, gpt.tokenizer, "Once upon a time", 20, context=gpt.config.block_size) == text
    assert gpt.generate("Once upon a time", max_new_tokens=20) == text  # same seed, same text
    assert gpt.generate("Once upon a time", max_new_tokens=20, temperature=0) == gpt.generate(
        "Once upon a time", max_new_tokens=20, temperature=0, seed=5
    )  # greedy ignores the seed
    assert gpt.generate("", max_new_tokens=10)  # an empty prompt starts a document


def test_samples_before_and_after_differ(run):
    gpt, _, _ = run
    assert list(gpt.samples_before) == list(gpt.config.prompts) == list(gpt.samples_after)
    for prompt in gpt.config.prompts:
        before, after = gpt.samples_before[prompt], gpt.samples_after[prompt]
        assert before.startswith(prompt) and after.startswith(prompt)
        assert before != after
    assert "before training" in gpt._repr_html_() and "PretrainResult" in repr(gpt)


def test_save_and_reload_with_auto_classes_gives_identical_logits(run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gpt, _, _ = run
    gpt.save(tmp_path / "gpt")
    assert (tmp_path / "gpt" / "model.safetensors").exists() and (tmp_path / "gpt" / "llmnb.json").exists()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "gpt")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "gpt")
    sentence = "One day, Tom went to the park with his red ball."
    ids = tokenizer(sentence)["input_ids"]
    assert ids == gpt.tokenizer(sentence)["input_ids"] and tokenizer.decode(ids) == sentence
    x = torch.tensor([ids])
    model.eval()
    gpt.model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).logits, gpt.model(x).logits)


def test_plot_and_threads_restored(run):
    import torch

    gpt, _, threads = run
    assert torch.get_num_threads() == threads  # training may use fewer CPU threads, then puts them back
    figure = gpt.plot()
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert "perplexity (validation)" in titles


def test_a_seeded_run_gives_the_same_numbers_on_a_busy_machine(monkeypatch):
    # The thread count is not read from the load average: another count sums in another order,
    # and the same seed gave losses 0.01 apart (1 thread on a busy machine, 2 on an idle one).
    import os

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # as on an idle 2-core machine (a test worker may run with 1)
    try:
        options = dict(QUICK, max_steps=8, eval_every=4, corpus_chars=20_000, prompts=())
        monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
        idle = pretrain(**options).history
        monkeypatch.setattr(os, "getloadavg", lambda: (8.0, 8.0, 8.0))
        busy = pretrain(**options).history
    finally:
        torch.set_num_threads(before)
    assert busy["train_loss"].dropna().tolist() == idle["train_loss"].dropna().tolist()
    assert busy["eval_loss"].dropna().tolist() == idle["eval_loss"].dropna().tolist()


def test_llmnb_pretrain_is_callable_even_after_importing_the_module():
    import llmnb.pretraining.run  # noqa: F401  (binds llmnb.pretraining.run, must leave llmnb.pretrain alone)

    assert callable(llmnb.pretrain)
    with pytest.raises(ConfigError, match="width"):
        llmnb.pretrain(["x"], width=30, heads=4)


def test_pretrain_magic(tmp_path):
    from llmnb.notebook.magics import LlmnbMagics

    assert hasattr(LlmnbMagics, "pretrain")
    from IPython.core.error import UsageError
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.extension_manager.load_extension("llmnb")
    ip.user_ns["texts"] = build_corpus(20_000, seed=2)
    ip.run_line_magic("pretrain", "texts --steps 3 --layers 1 --width 32 --vocab 300 --block 32 --lr 0.005 --name g --quiet")
    g = ip.user_ns["g"]
    assert g.state.step == 3 and g.config.layers == 1 and g.config.width == 32 and g.config.block_size == 32
    assert len(g.tokenizer) <= 300 and g.config.lr == 0.005
    with pytest.raises(UsageError, match="nothing_here"):
        ip.run_line_magic("pretrain", "nothing_here --steps 2 --quiet")
    with pytest.raises(UsageError, match="width"):
        ip.run_line_magic("pretrain", "texts --width 30 --quiet")
