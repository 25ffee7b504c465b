import json

import pandas as pd
import pytest

from llmnb.data import (
    LabelMap,
    Notice,
    batch_order,
    collate,
    drop_missing,
    encode,
    pick_columns,
    stratified_split,
    to_frame,
)
from llmnb.errors import DataError


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

    from llmnb.models import bundled_minilm_path

    tok = AutoTokenizer.from_pretrained(str(bundled_minilm_path()))
    enc = encode(tok, ["short", "a somewhat longer sentence here", "x " * 500], [0, 1, 0], max_length=64)
    assert len(enc.input_ids[2]) == 64  # truncated
    batch = collate(enc, [0, 1], pad_id=tok.pad_token_id)
    assert batch["input_ids"].shape == (2, len(enc.input_ids[1]))
    assert batch["attention_mask"][0].sum() == len(enc.input_ids[0])
    assert batch["labels"].tolist() == [0, 1]
