import pytest

import llmnb
from llmnb.core import models
from llmnb.errors import ModelNotFoundError


def test_bundled_minilm_loads_offline_with_a_fresh_head():
    lm = llmnb.load_model("minilm", num_labels=3)
    assert 22_000_000 < lm.num_parameters < 23_500_000
    assert lm.model.config.num_labels == 3
    model, tokenizer = lm  # unpacks
    assert tokenizer("hello world")["input_ids"][0] == tokenizer.cls_token_id
    assert "M parameters on cpu" in lm.summary()


def test_weights_with_the_wrong_hash_are_refused(monkeypatch):
    models._verify_sha256.cache_clear()
    monkeypatch.setattr(models, "MINILM_SHA256", "0" * 64)
    with pytest.raises(ModelNotFoundError, match="expected sha256"):
        models.bundled_minilm_path()
    models._verify_sha256.cache_clear()


def test_folder_without_config_and_missing_paths(tmp_path):
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        llmnb.load_model(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="No model folder"):
        llmnb.load_model(str(tmp_path / "nothing-here"))


def test_trust_remote_code_is_off_unless_asked(monkeypatch):
    seen = {}

    def fake_from_pretrained(source, name, task, kwargs, trust_remote_code):
        seen["trust"] = trust_remote_code
        raise ModelNotFoundError("stop here")

    monkeypatch.setattr(models, "_from_pretrained", fake_from_pretrained)
    with pytest.raises(ModelNotFoundError):
        llmnb.load_model("someone/model")
    assert seen["trust"] is False
    with pytest.warns(UserWarning, match="trust_remote_code=True runs Python code"):
        llmnb.FineTuneConfig(trust_remote_code=True)
