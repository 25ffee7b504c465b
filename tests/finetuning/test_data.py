import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from llmnb.errors import DataError
from llmnb.finetuning.batches import Encoded, TokenRows, batch_order, collate, encode
from llmnb.finetuning.data import (
    LabelMap,
    Notice,
    drop_missing,
    pick_columns,
    stratified_split,
    to_frame,
)


def test_dataframe_is_copied_not_changed(easy_frame):
    before = easy_frame.copy()
    frame = to_frame(easy_frame)
    frame.loc[0, "text"] = "changed"
    pd.testing.assert_frame_equal(easy_frame, before)


def test_list_of_dicts_dict_of_lists_and_dataset(easy_rows):
    import datasets

    as_dict = {"text": [r["text"] for r in easy_rows], "label": [r["label"] for r in easy_rows]}
    for data in (easy_rows, as_dict, datasets.Dataset.from_list(easy_rows)):
        frame = to_frame(data)
        assert list(frame.columns) == ["text", "label"] and len(frame) == len(easy_rows)


def test_files_of_every_kind(tmp_path, easy_frame):
    easy_frame.to_csv(tmp_path / "d.csv", index=False)
    easy_frame.to_csv(tmp_path / "d.tsv", index=False, sep="\t")
    easy_frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    easy_frame.to_json(tmp_path / "d.json", orient="records")
    (tmp_path / "d.txt").write_text("first line\n\nsecond line\n")
    for name in ("d.csv", "d.tsv", "d.jsonl", "d.json"):
        frame = to_frame(str(tmp_path / name))
        assert frame["text"].tolist() == easy_frame["text"].tolist(), name
    assert to_frame(tmp_path / "d.txt")["text"].tolist() == ["first line", "second line"]


def test_latin1_csv_is_read_with_a_notice(tmp_path):
    (tmp_path / "l.csv").write_bytes("text,label\ncafé crème était parfait,positive\nbof,negative\n".encode("latin-1"))
    with pytest.warns(Notice, match="not UTF-8"):
        frame = to_frame(tmp_path / "l.csv")
    assert frame["text"][0] == "café crème était parfait"


def test_bad_files_name_the_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok", "label": 1}\n{"text": "broken", \n')
    with pytest.raises(DataError, match="line 2"):
        to_frame(tmp_path / "bad.jsonl")
    (tmp_path / "ragged.csv").write_text("text,label\nfine,1\ntoo,many,fields\n")
    with pytest.raises(DataError, match="line 3"):
        to_frame(tmp_path / "ragged.csv")
    with pytest.raises(DataError, match="No file 'nope.csv'"):
        to_frame("nope.csv")
    with pytest.raises(DataError, match="reads .csv"):
        (tmp_path / "x.parquet").write_text("")
        to_frame(tmp_path / "x.parquet")


def test_bundled_name_is_a_dataset():
    assert len(to_frame("reviews")) == 480 and len(to_frame("reviews_test")) == 240


def test_columns_are_inferred():
    frame = pd.DataFrame({"id": [1, 2], "review": ["long text here", "more text"], "stars": ["good", "bad"]})
    with pytest.raises(DataError, match="Cannot tell which column holds the labels among: id, stars"):
        pick_columns(frame)
    assert pick_columns(frame, label="stars") == ("review", "stars")
    frame2 = pd.DataFrame({"body": ["a long sentence", "another long one"], "sentiment": [1, 0]})
    assert pick_columns(frame2) == ("body", "sentiment")
    with pytest.raises(DataError, match="No column 'txt'.*body, sentiment"):
        pick_columns(frame2, text="txt")


def test_missing_texts_are_dropped_with_a_count():
    frame = pd.DataFrame({"text": ["a", None, " ", "b"], "label": [1, 0, 1, None]})
    with pytest.warns(Notice, match="Dropped 3 of 4"):
        kept = drop_missing(frame, ["text", "label"])
    assert kept["text"].tolist() == ["a"]


def test_label_map_round_trip_and_errors():
    labels = LabelMap.from_values(["pos", "neg", "pos", "neutral"])
    assert labels.names == ["neg", "neutral", "pos"]
    assert labels.decode(labels.encode(["pos", "neg"])) == ["pos", "neg"]
    with pytest.raises(DataError, match="single class"):
        LabelMap.from_values(["pos", "pos"])
    with pytest.raises(DataError, match="never seen in training: angry"):
        labels.encode(["angry"])


def test_stratified_split_keeps_class_shares():
    labels = [0] * 80 + [1] * 20
    train, held = stratified_split(labels, 0.1, seed=3)
    assert sorted(train + held) == list(range(100))
    assert sum(labels[i] for i in held) == 2 and len(held) == 10
    assert stratified_split(labels, 0.1, seed=3) == (train, held)


@pytest.mark.parametrize("group", [True, False])
def test_batch_order_visits_every_example_once_per_epoch(group):
    lengths = [(i * 37) % 50 + 1 for i in range(203)]
    batches = batch_order(lengths, 16, shuffle=True, seed=1, group_by_length=group)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(203))
    assert sorted(len(b) for b in batches)[1:] == [16] * (len(batches) - 1)  # one short batch at most
    assert batches != batch_order(lengths, 16, shuffle=True, seed=2, group_by_length=group)


def test_length_grouping_cuts_padding():
    lengths = [(i * 37) % 120 + 1 for i in range(800)]

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = padded(batch_order(lengths, 16, True, 0, group_by_length=True))
    plain = padded(batch_order(lengths, 16, True, 0, group_by_length=False))
    assert grouped < 0.7 * plain


def test_collate_pads_to_the_longest_row_only():
    from transformers import AutoTokenizer

    from llmnb.core.models import bundled_minilm_path

    tok = AutoTokenizer.from_pretrained(str(bundled_minilm_path()))
    enc = encode(tok, ["short", "a somewhat longer sentence here", "x " * 500], [0, 1, 0], max_length=64)
    assert len(enc.input_ids[2]) == 64  # truncated
    batch = collate(enc, [0, 1], pad_id=tok.pad_token_id)
    assert batch["input_ids"].shape == (2, len(enc.input_ids[1]))
    assert batch["attention_mask"][0].sum() == len(enc.input_ids[0])
    assert batch["labels"].tolist() == [0, 1]


# ----------------------------------------------------------------------------- compact token rows

def _minilm_tokenizer():
    from transformers import AutoTokenizer

    from llmnb.core.models import bundled_minilm_path

    return AutoTokenizer.from_pretrained(str(bundled_minilm_path()))


@pytest.mark.parametrize("rows", [[], [[]], [[1, 2, 3], [], [4], [5, 6]], [[7] * 300, [], []]])
def test_token_rows_round_trip_lists(rows):
    import numpy as np

    held = TokenRows.from_lists(rows)
    assert len(held) == len(rows) and held.tolist() == rows and held == rows
    assert [r.tolist() for r in held] == rows and [held[i].tolist() for i in range(len(rows))] == rows
    assert held.lengths.tolist() == [len(r) for r in rows] and held.num_tokens == sum(map(len, rows))
    assert held.flat.dtype == np.int32 and held.offsets.dtype == np.int64
    assert TokenRows.from_lists(list(held)) == held  # from numpy rows too
    assert TokenRows.concat([held[:1], held[1:]]) == held


def test_token_rows_index_and_slice():
    rows = [[1, 2, 3], [], [4], [5, 6], [7, 8, 9, 10]]
    held = TokenRows.from_lists(rows)
    assert held[-1].tolist() == [7, 8, 9, 10] and held[1].tolist() == []
    with pytest.raises(IndexError):
        held[5]
    for part in (slice(1, 4), slice(None, 2), slice(3, None), slice(-2, None), slice(4, 2), slice(None, None, 2), slice(None, None, -1)):
        sliced = held[part]
        assert isinstance(sliced, TokenRows) and sliced.tolist() == rows[part], part
    assert held[[4, 0]].tolist() == [rows[4], rows[0]]
    held[0][0] = 99  # rows are views: no copy per access
    assert held.flat[0] == 99


def _old_collate(rows_of_ids, targets, rows, pad_id):
    """collate as it was when rows were Python lists: the reference for the numpy version."""
    import torch

    longest = max(len(rows_of_ids[i]) for i in rows)
    input_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for r, i in enumerate(rows):
        ids = rows_of_ids[i]
        input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[r, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": torch.tensor([targets[i] for i in rows])}


def test_collate_gives_the_same_batch_as_list_rows():
    import torch

    tok = _minilm_tokenizer()
    texts = ["Great.", "The room was small but spotless.", "It broke on day two and support never answered.", "No.", "x " * 80]
    targets = [0, 1, 2, 0, 1]
    lists = tok(texts, truncation=True, max_length=32)["input_ids"]
    enc = encode(tok, texts, targets, max_length=32)
    assert enc.input_ids == lists and enc.lengths.tolist() == [len(r) for r in lists]
    for rows in ([0, 1, 2], [3], [4, 0, 3, 1], [2, 2]):
        new, old = collate(enc, rows, tok.pad_token_id), _old_collate(lists, targets, rows, tok.pad_token_id)
        assert new.keys() == old.keys()
        for key in old:
            assert new[key].dtype == old[key].dtype and torch.equal(new[key], old[key]), (rows, key)
    assert Encoded(input_ids=lists, targets=targets).input_ids == enc.input_ids  # lists are converted


def test_encode_in_chunks_matches_one_call_and_empty_input():
    import llmnb.finetuning.batches as data

    tok = _minilm_tokenizer()
    texts = [f"review number {i} " + "good " * (i % 7) for i in range(23)]
    whole = tok(texts, truncation=True, max_length=16)["input_ids"]
    assert data.tokenize_rows(tok, texts, 16, chunk=5) == whole
    assert data.tokenize_rows(tok, texts, 16, target=True, chunk=4) == tok(text_target=texts, truncation=True, max_length=16)["input_ids"]
    empty = encode(tok, [], [], 16)
    assert len(empty) == 0 and empty.num_tokens == 0 and empty.lengths.tolist() == []


class WordTokenizer:
    """Called like a Hugging Face tokenizer, and like one it returns a Python list of fresh int
    objects per text ([CLS] word ids [SEP]); pure Python, so fast to load and deterministic."""

    def __init__(self):
        self.vocab = {}

    def __call__(self, text=None, text_target=None, truncation=True, max_length=512, **unused):
        vocab = self.vocab
        return {"input_ids": [
            [101] + [vocab.setdefault(w, 1000 + len(vocab)) + 0 for w in t.split()][: max_length - 2] + [102]
            for t in (text if text is not None else text_target)
        ]}


def test_encoding_100k_short_rows_stays_small():
    """100,000 rows of ~25 tokens: the ids take ~4.3 bytes a token (~110 B a row), and encoding
    them never holds every row as Python lists (~1 KB a row: ~100 MB)."""
    import random
    import tracemalloc

    words = [f"w{i}" for i in range(500)]
    rng = random.Random(0)
    texts = [" ".join(rng.choices(words, k=rng.randint(19, 27))) for _ in range(100_000)]
    tok = WordTokenizer()
    encode(tok, texts[:100], [0] * 100, 128)  # the vocabulary exists before measuring
    tracemalloc.start()
    try:
        enc = encode(tok, texts, [0] * len(texts), 128)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tokens = enc.num_tokens
    assert len(enc) == 100_000 and 20 <= tokens / len(enc) <= 30
    assert enc.input_ids.tolist()[:3] == tok(texts[:3])["input_ids"]
    assert enc.input_ids.nbytes <= 5 * tokens  # int32 ids + one int64 offset a row; int64 ids would fail
    assert held < 16 * 2**20, f"encoded 100k rows hold {held / 2**20:.0f} MB"
    assert peak < 40 * 2**20, f"encoding 100k rows peaked at {peak / 2**20:.0f} MB"


FINETUNE_PEAK = """
import random, resource, sys
import pandas as pd
import llmnb
n = int(sys.argv[1])
words = ["the", "room", "was", "service", "food", "phone", "really", "and", "staff", "film", "quite", "very"]
rng = random.Random(0)
frame = pd.DataFrame({
    "text": [" ".join(rng.choice(words) for _ in range(rng.randint(18, 26))) + (" great" if i % 2 else " awful") for i in range(n)],
    "label": ["positive" if i % 2 else "negative" for i in range(n)],
})
llmnb.finetune("tiny-bert", frame, max_steps=20, quiet=True, save_checkpoints=False, eval_fraction=0.02)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


@pytest.mark.slow
def test_finetune_on_100k_short_rows_adds_little_peak_memory():
    """20 tiny-bert steps on 100,000 rows of ~25 tokens peak at most 150 MB above 1,000 rows
    (with list-of-lists token rows: ~550 MB above)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    peaks = {}
    for n in (1_000, 100_000):
        run = subprocess.run([sys.executable, "-c", textwrap.dedent(FINETUNE_PEAK), str(n)], capture_output=True, text=True, timeout=300, env=env)
        assert run.returncode == 0, run.stderr[-2000:]
        peaks[n] = int(run.stdout.split()[-1])
    added = peaks[100_000] - peaks[1_000]
    assert added <= 150 * 2**20, f"100k rows added {added / 2**20:.0f} MB to the peak"


def test_hold_out_sets_a_seeded_share_aside_and_refuses_too_few():
    import pytest as _pytest

    from llmnb.errors import DataError
    from llmnb.finetuning.data import hold_out

    kept, held = hold_out(list(range(40)), 0.1, seed=3)
    assert len(held) == 4 and sorted(kept + held) == list(range(40))
    assert hold_out(list(range(40)), 0.1, seed=3) == (kept, held)
    assert hold_out([1, 2, 3], 0.0, seed=0) == ([1, 2, 3], [])
    with _pytest.raises(DataError, match="Only 1 prompts: too few to hold some out"):
        hold_out(["only"], 0.5, seed=0, noun="prompts")
