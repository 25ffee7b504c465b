"""llmnb.datasets.tense: the present -> past sentence pairs (bundled as 'tense') and the small word-level T5."""
import pandas as pd
import pytest

import llmnb
from llmnb.datasets import tense as pairs


def test_build_pairs_is_deterministic_sized_and_distinct():
    a, b = pairs.build_pairs(300, seed=3), pairs.build_pairs(300, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["source", "target"]
    assert len(a) == 300 and a["source"].is_unique
    assert not a.equals(pairs.build_pairs(300, seed=4))
    assert (a["source"] != a["target"]).all()  # every sentence has a verb to move to the past


def test_build_pairs_respects_exclude_and_rejects_bad_sizes():
    first = pairs.build_pairs(50, seed=0)
    other = pairs.build_pairs(50, seed=0, exclude=set(first["source"]))
    assert not set(first["source"]) & set(other["source"])
    with pytest.raises(ValueError):
        pairs.build_pairs(0)


def test_known_rewrites():
    frame = pairs.build_pairs(2000, seed=0)
    joined = dict(zip(frame["source"], frame["target"]))
    for source, target in joined.items():
        if " does not " in source:
            assert " did not " in target
        if source.endswith(" today."):
            assert target.endswith(" yesterday.")
        if " is " in source:
            assert " was " in target


def test_bundled_files_are_the_generator_output():
    train, test = pairs.bundled_splits()
    pd.testing.assert_frame_equal(llmnb.datasets.load("tense"), train)
    pd.testing.assert_frame_equal(llmnb.datasets.load("tense", "test"), test)
    assert (len(train), len(test)) == (pairs.TRAIN_SIZE, pairs.TEST_SIZE)
    assert not set(train["source"]) & set(test["source"])
    assert "tense_test" in llmnb.datasets.names()


@pytest.mark.slow  # importing `evaluate` (for BLEU) alone takes 15 s of CPU
def test_copying_the_source_scores_a_middling_bleu():
    test = llmnb.datasets.load("tense", "test")
    bleu = llmnb.metrics.compute(["bleu"], list(test["source"]), list(test["target"]))["bleu"]
    assert 30 < bleu < 65


def test_word_tokenizer_round_trip_and_end_token():
    tok = pairs.word_tokenizer(["Tom eats an apple today.", "Tom ate an apple yesterday."])
    ids = tok("Today, Tom eats an apple.")["input_ids"]
    assert ids[-1] == tok.eos_token_id and tok.pad_token_id == 0
    assert tok.unk_token_id in ids  # "," was not in the texts it was built from
    assert tok.decode(tok("Tom ate an apple.")["input_ids"], skip_special_tokens=True) == "tom ate an apple."
    assert tok(text_target=["Tom ate."])["input_ids"][0][-1] == tok.eos_token_id


def test_word_t5_trains_with_finetune():
    data = pairs.build_pairs(64, seed=0)
    model = pairs.word_t5(list(data["source"]) + list(data["target"]), device="cpu")
    assert model.task == "seq2seq" and model.model.config.vocab_size == len(model.tokenizer)
    ft = llmnb.finetune(model, data, task="seq2seq", eval_fraction=0, max_steps=3, batch_size=8, lr=3e-3,
                        save_checkpoints=False, quiet=True)  # no evaluation: BLEU would import `evaluate` (slow)
    assert ft.state.step == 3 and ft.history["train_loss"].notna().any()
    tok = model.tokenizer
    predicted = ft.predict("Tom eats an apple today.")  # 3 steps: maybe nothing yet, but only known words
    assert tok.unk_token_id not in tok(predicted)["input_ids"], predicted
    ids = tok("Tom ate an apple yesterday.")["input_ids"]
    assert tok.unk_token_id not in ids and tok.decode(ids, skip_special_tokens=True) == "tom ate an apple yesterday."
