"""A text the model's vocabulary cannot spell (Chinese for English MiniLM) gets a warning that says why and what to use."""
import warnings

import pytest

import llmnb
from llmnb.finetuning.inference import UnknownTextWarning


@pytest.fixture(scope="module")
def tuned(request):
    from easy_data import make_easy_sentiment

    return llmnb.finetune("tiny-bert", make_easy_sentiment(32), max_steps=1, save_checkpoints=False, quiet=True)


def test_chinese_text_for_an_english_vocabulary_is_flagged(tuned):
    if tuned.tokenizer.unk_token_id is None or tuned.tokenizer.tokenize("预训练模型") != ["[UNK]"] * 5:
        pytest.skip("this tokenizer reads Chinese")
    with pytest.warns(UnknownTextWarning, match=r"5 of the 5 tokens of '预训练模型' are \[UNK\].*bert-base-chinese"):
        tuned.predict("预训练模型")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownTextWarning)
        tuned.predict(["The room was lovely.", "我 the room was lovely"])  # one [UNK] in six: readable, no warning
