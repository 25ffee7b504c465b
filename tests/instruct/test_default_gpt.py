"""Defaults that fit together: the default GPT of `llmnb.pretrain()` takes every bundled chat set,
fine-tunes on them as chapter 10 does (pretrain -> sft -> dpo) with no library warning in the cell,
and a GPT whose context is too short is told to pretrain with a longer block_size, not to raise
max_length (which cannot go beyond the model's context)."""
import copy

import pytest

import llmnb
from llmnb.errors import DataError
from llmnb.finetuning.config import FineTuneConfig
from llmnb.instruct import chat
from llmnb.tasks.dpo import DPO
from llmnb.tasks.sft import SFT
from llmnb.pretraining.config import PretrainConfig

WARNING = "Token indices sequence length"  # transformers' warning about a text longer than the model takes
TINY = dict(max_steps=1, batch_size=8, save_checkpoints=False, quiet=True)


@pytest.fixture(scope="module")
def gpt():
    # The default corpus and tokenizer (their sizes set how many tokens an example takes), barely trained.
    return llmnb.pretrain(max_steps=2, quiet=True)


def longest(tokenizer, conversations):
    return max(len(tokenizer(chat.render(tokenizer, m), add_special_tokens=False, verbose=False)["input_ids"])
               for m in conversations)


def test_the_default_gpt_takes_every_bundled_chat_set(gpt):
    block = gpt.config.block_size
    assert block == PretrainConfig().block_size == FineTuneConfig().max_length  # the GPT never cuts before max_length
    tokenizer = copy.deepcopy(gpt.tokenizer)
    chat.ensure_chat_template(tokenizer)
    for name in ("instructions", "instructions_test"):
        examples = SFT().read(llmnb.datasets.load(*name.split("_")), None, name)
        assert longest(tokenizer, [e[0] for e in examples]) <= block, name
    for name in ("preferences", "preferences_test"):
        pairs = [e[0] for e in DPO().read(llmnb.datasets.load(*name.split("_")), None, name)]
        assert longest(tokenizer, [chosen for chosen, _ in pairs]) <= block, name
        # A few rejected answers ramble on (up to 150 tokens): max_length cuts their tails for any model,
        # and DPO scores policy and reference on the same tokens; each keeps its whole prompt and answer tokens.
        assert longest(tokenizer, [rejected[:1] for _, rejected in pairs]) < block - 16, name
        over = sum(longest(tokenizer, [rejected]) > block for _, rejected in pairs)
        assert over <= 0.02 * len(pairs), name


def test_pretrain_then_sft_then_dpo_as_chapter_10_with_no_library_warning(gpt, capfd):
    sft = llmnb.finetune(gpt, "instructions", eval="instructions_test", task="sft", eval_generate=2, **TINY)
    assert sft.status == "finished" and not any("max_length lowered" in n for n in sft.notices)
    dpo = llmnb.finetune(sft, "preferences", eval="preferences_test", task="dpo", **TINY)
    assert dpo.status == "finished" and "eval_preference_accuracy" in dpo.metrics
    straight = llmnb.finetune(gpt, "preferences", task="dpo", eval_fraction=0.1, **TINY)  # DPO on the base GPT
    assert straight.status == "finished"
    out, err = capfd.readouterr()
    assert WARNING not in out + err


def test_a_context_too_short_for_the_data_names_block_size_not_max_length(capfd):
    short = llmnb.pretrain(corpus_chars=20_000, max_steps=1, block_size=32, vocab_size=300, quiet=True)
    with pytest.raises(DataError, match=r"block_size=\d+ \(%pretrain --block \d+\)") as caught:
        llmnb.finetune(short, "instructions", task="sft", eval_generate=2, **TINY)
    message = str(caught.value)
    assert "the model's whole context (32 tokens)" in message and "Raise max_length" not in message
    out, err = capfd.readouterr()
    assert WARNING not in out + err  # the error measured the longest example without transformers' warning


def test_a_max_length_below_a_context_that_has_room_is_still_the_fix(gpt):
    with pytest.raises(DataError, match="Raise max_length") as caught:
        llmnb.finetune(gpt, "instructions", task="sft", eval_generate=2, **{**TINY, "max_length": 24})
    assert "block_size" not in str(caught.value)
