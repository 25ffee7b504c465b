"""01_background: the three "your turn" exercises (word pieces, cosine by hand, mean pooling) pass with their
solutions; MiniLM spells 预训练模型 as [UNK]s, while the byte-level BPE that %pretrain trained on the Chinese corpus
spells it in full and decodes it back exactly."""
from notebook_checks import assert_exercises_correct

VALUES = {
    "minilm_pieces": "tokenizer.tokenize('预训练模型')",
    "bpe_ids": "zh_tokenizer('预训练模型')['input_ids']",
    "bpe_round_trip": "zh_tokenizer.decode(zh_tokenizer('预训练模型')['input_ids'])",
    "common_word_tokens": "len(zh_tokenizer('小明和小狗在公园玩。')['input_ids'])",
    "unk": "zh_tokenizer.unk_token_id",
}


def check(nb, workdir, values):
    assert_exercises_correct(nb, "01.e1", "01.e2", "01.e3")
    assert values["minilm_pieces"] == ["[UNK]"] * 5
    assert values["bpe_round_trip"] == "预训练模型"
    assert values["unk"] is None or values["unk"] not in values["bpe_ids"]
    # Unseen characters go byte by byte (3 bytes each); the corpus's own words merge into fewer tokens than bytes.
    assert len(values["bpe_ids"]) == 15
    assert values["common_word_tokens"] < len("小明和小狗在公园玩。".encode()) / 2
