"""The fast paths give the same answers as the slow ones (correctness, not timing).

Timings live in benchmarks/run.py and docs/performance.md; here we check that what makes llmnb
fast changes nothing it should not: length-grouped sampling still visits every example once per
epoch, dynamic padding gives the same loss as no padding at all, and the cheap import stays cheap.
"""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from llmnb.finetuning.batches import Encoded, batch_order, collate

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- length-grouped sampling

def mixed_lengths(n, seed=0):
    rng = random.Random(seed)
    return [rng.randint(1, 200) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 2, 7, 33, 101, 803, 1601])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
@pytest.mark.parametrize("group_by_length", [True, False])
def test_every_example_exactly_once_per_epoch(n, batch_size, group_by_length):
    lengths = mixed_lengths(n, seed=n)
    for epoch in range(4):  # each epoch reshuffles (seed + epoch, as the engine does)
        batches = batch_order(lengths, batch_size, True, 42 + epoch, group_by_length)
        seen = [i for batch in batches for i in batch]
        assert sorted(seen) == list(range(n)), f"epoch {epoch}: an example is missing or repeated"
        assert len(batches) == -(-n // batch_size)
        # Full batches everywhere but (at most) one: the remainder.
        assert sum(len(b) != batch_size for b in batches) <= 1
        assert all(1 <= len(b) <= batch_size for b in batches)


def test_unshuffled_order_is_stable_and_complete():
    lengths = mixed_lengths(57)
    first = batch_order(lengths, 8, False, 0, True)
    assert first == batch_order(lengths, 8, False, 123, True)  # no shuffle: the seed does not matter
    assert sorted(i for b in first for i in b) == list(range(57))


def test_epochs_see_different_orders():
    lengths = mixed_lengths(200)
    orders = [batch_order(lengths, 16, True, 42 + epoch, True) for epoch in range(3)]
    assert orders[0] != orders[1] != orders[2]


def test_grouping_cuts_padding_on_mixed_lengths():
    """What padding_speedup measures, as a count: token slots of padded batches, grouped vs not."""
    lengths = mixed_lengths(800)

    def slots(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = slots(batch_order(lengths, 16, True, 0, True))
    ungrouped = slots(batch_order(lengths, 16, True, 0, False))
    assert grouped < 0.65 * ungrouped
    assert grouped <= 1.1 * sum(lengths)  # almost no padding left


def test_collate_pads_right_and_masks_exactly_the_real_tokens():
    enc = Encoded(input_ids=[[5, 6, 7], [8], [9, 10]], targets=[0, 1, 0])
    batch = collate(enc, [0, 1, 2], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert batch["labels"].tolist() == [0, 1, 0]
    assert int(batch["attention_mask"].sum()) == sum(map(len, enc.input_ids))


# ----------------------------------------------------------------------------- dynamic padding = no padding

@pytest.fixture(scope="module")
def tiny_bert():
    import torch

    import llmnb

    model, tokenizer = llmnb.load_model("tiny-bert", num_labels=3, device="cpu", seed=0)
    model.eval()  # no dropout: padded and unpadded passes must agree
    torch.manual_seed(0)
    return model, tokenizer


TEXTS = [
    "Great.",
    "The room was small but spotless, and the staff were kind.",
    "It broke on day two and support never answered my three emails about it.",
    "Fine, thanks.",
    "Lovely food, slow service, would still come back for the dessert alone, and for the view over the bay at night.",
    "No.",
]


def test_padded_batch_loss_equals_mean_of_unpadded_losses(tiny_bert):
    import torch

    from llmnb.finetuning.batches import encode

    model, tokenizer = tiny_bert
    enc = encode(tokenizer, TEXTS, [0, 1, 2, 0, 1, 2], max_length=64)
    lengths = [len(ids) for ids in enc.input_ids]
    assert len(set(lengths)) > 3  # the batch really mixes lengths
    with torch.no_grad():
        batch = collate(enc, list(range(len(TEXTS))), tokenizer.pad_token_id)
        padded = model(**batch)
        alone = [model(**collate(enc, [i], tokenizer.pad_token_id)) for i in range(len(TEXTS))]
    per_example = torch.stack([out.loss for out in alone])
    assert padded.loss.item() == pytest.approx(per_example.mean().item(), abs=1e-5)
    for i, out in enumerate(alone):  # every example's logits, not just the mean, are unchanged
        torch.testing.assert_close(padded.logits[i], out.logits[0], atol=1e-5, rtol=1e-5)


def test_extra_padding_changes_nothing(tiny_bert):
    """Pad to the batch's longest row (llmnb) or to a fixed 64 (the slow baseline): same loss."""
    import torch

    from llmnb.finetuning.batches import encode

    model, tokenizer = tiny_bert
    enc = encode(tokenizer, TEXTS, [2, 1, 0, 2, 1, 0], max_length=64)
    rows = [0, 3, 5]  # the short ones: the batch is short, the fixed pad is long
    batch = collate(enc, rows, tokenizer.pad_token_id)
    extra = 64 - batch["input_ids"].shape[1]
    assert extra > 20
    wide = {
        "input_ids": torch.nn.functional.pad(batch["input_ids"], (0, extra), value=tokenizer.pad_token_id),
        "attention_mask": torch.nn.functional.pad(batch["attention_mask"], (0, extra), value=0),
        "labels": batch["labels"],
    }
    with torch.no_grad():
        narrow_out, wide_out = model(**batch), model(**wide)
    assert narrow_out.loss.item() == pytest.approx(wide_out.loss.item(), abs=1e-5)
    torch.testing.assert_close(narrow_out.logits, wide_out.logits, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- cheap imports

IMPORT_CHECK = r"""
import json, sys
import llmnb
after_import = sorted(m for m in ("torch", "transformers") if m in sys.modules)
llmnb.FineTuneConfig  # a lazy name, as the magics use it
after_config = sorted(m for m in ("torch", "transformers") if m in sys.modules)
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "llmnb")
assert "finetune" in shell.magics_manager.magics["line"], "the magics were not registered"
after_load_ext = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(json.dumps({"import": after_import, "config": after_config, "load_ext": after_load_ext}))
"""


def test_import_and_load_ext_do_not_import_torch_or_transformers():
    done = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert heavy == {"import": [], "config": [], "load_ext": []}, heavy
