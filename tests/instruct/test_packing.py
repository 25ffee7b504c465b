"""Packing: best-fit-decreasing bins, and a packed batch's loss equal to the same examples unpacked."""
import pytest
import torch

import llmnb
from llmnb.instruct import chat
from llmnb.instruct.packing import best_fit_decreasing, block_causal_mask, padding_share
from llmnb.tasks.sft import SFT


def test_best_fit_decreasing_fills_bins_and_keeps_every_example_once():
    lengths = [30, 70, 20, 50, 90, 10, 60]
    bins = best_fit_decreasing(lengths, capacity=100)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 100 for b in bins)
    assert len(bins) == 4  # 330 tokens: 4 bins of 100 is the least possible
    assert best_fit_decreasing([120], capacity=100) == [[0]]  # longer than a row: a row of its own


def test_the_mask_is_block_diagonal_and_causal():
    segments = torch.tensor([[1, 1, 2, 2, 2, 0]])
    mask = block_causal_mask(segments)[0, 0]
    assert mask[1, 0] and not mask[0, 1]  # causal inside example 1
    assert not mask[2, 1] and mask[4, 2]  # example 2 does not see example 1
    assert mask.any(-1).all()  # padding sees itself: no empty row, no NaN


def test_padding_share_falls_with_packing():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(8, 64) for _ in range(64)]
    batches = [list(range(64))]
    assert padding_share(lengths, batches, None) > 0.3
    assert padding_share(lengths, batches, 128) < 0.05  # only the last row is part empty


@pytest.mark.parametrize("alias", ["tiny-llama", "tiny-gpt2"])
def test_packed_loss_equals_unpacked_loss(alias):
    loaded = llmnb.load_model(alias, task="sft", seed=0)
    model, tokenizer = loaded.model.float().eval(), loaded.tokenizer
    chat.ensure_chat_template(tokenizer)
    questions = ["Who had the ball?", "Mia had a red ball in the park. Her dog ran after it. What colour was it?",
                 "Where?", "Tom played with a blue kite by the river. Who came too?", "Was it red?"]
    rows = [chat.to_conversation({"prompt": q, "completion": a}) for q, a in zip(questions, ["Mia.", "Red.", "In the park.", "Ben.", "No."])]
    task = SFT()
    enc = task.encode(tokenizer, rows, [{"row": i, "reference": "", "what": "data"} for i in range(5)], 128)
    order = list(range(5))
    pad = tokenizer.pad_token_id
    with torch.no_grad():
        unpacked = task.compute_loss(model, task.collate(enc, order, pad))
        packed_batch = task.collate(enc, order, pad, packed=True)
        packed = task.compute_loss(model, packed_batch)
    assert len(packed_batch["input_ids"]) < 5  # several examples share a row
    assert float(packed) == pytest.approx(float(unpacked), abs=1e-5)
