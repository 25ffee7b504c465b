"""llmnb.step_time: timing training steps of a tiny BERT without changing it."""
import pytest
import torch

import llmnb
from llmnb.tools.scaling import ScalingError, StepTime, embedding_parameters, step_time


@pytest.fixture(scope="module")
def tiny():
    return llmnb.load_model("tiny-bert", device="cpu")


def test_times_a_step_and_leaves_the_model_alone(tiny):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    result = step_time(tiny, batch_size=4, seq_len=16, steps=2, warmup=1)
    assert isinstance(result, StepTime) and len(result.all_seconds) == 2
    assert result.seconds > 0 and result.tokens_per_second == pytest.approx(4 * 16 / result.seconds)
    assert all(torch.equal(before[k], v) for k, v in tiny.model.state_dict().items())  # a copy was trained
    row = result.as_dict()
    assert row["seq_len"] == 16 and row["precision"] == "fp32" and "all_seconds" not in row


def test_parameter_counts(tiny):
    result = step_time(tiny, batch_size=2, seq_len=8, steps=1, warmup=0)
    total = sum(p.numel() for p in tiny.model.parameters())
    emb = tiny.model.bert.embeddings
    tables = sum(m.weight.numel() for m in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings))
    assert result.parameters == total and embedding_parameters(tiny.model) == tables
    assert result.non_embedding_parameters == total - tables > 0


def test_bf16_and_bad_arguments(tiny):
    assert step_time(tiny, batch_size=2, seq_len=8, precision="bf16", steps=1, warmup=0).precision == "bf16"
    with pytest.raises(ScalingError, match="precision"):
        step_time(tiny, precision="int8")
    with pytest.raises(ScalingError, match="fp16"):
        step_time(tiny, precision="fp16")  # CPU only here
    with pytest.raises(ScalingError, match="seq_len"):
        step_time(tiny, seq_len=4096)
    with pytest.raises(ScalingError, match="batch_size"):
        step_time(tiny, batch_size=0)
    with pytest.raises(ScalingError, match="takes a model name"):
        step_time(42)
