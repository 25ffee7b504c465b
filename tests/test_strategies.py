"""Which weights train: full fine-tuning, the top N layers, or LoRA adapters (chapter 4.4)."""
import pytest
import torch

import llmnb


def _changed(before, model):
    after = dict(model.named_parameters())
    return {name for name, value in before.items() if not torch.equal(value, after[name].detach())}


def test_freeze_trains_only_the_top_layers_and_the_head(easy_rows, tiny_options):
    lm = llmnb.load_model("tiny-bert")
    before = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    ft = llmnb.finetune(lm, easy_rows, **{**tiny_options, "max_steps": 3, "freeze": 1})
    changed = _changed(before, ft.model)
    assert any(n.startswith("bert.encoder.layer.1.") for n in changed)
    assert any(n.startswith("classifier.") for n in changed)
    assert not any(n.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for n in changed)
    assert ft.trainable_parameters < ft.num_parameters / 2


def test_freeze_more_layers_than_the_model_has():
    with pytest.raises(llmnb.ConfigError, match="has only 2 layers"):
        llmnb.finetune("tiny-bert", "reviews", freeze=5, quiet=True)


def test_lora_trains_adapters_and_head_and_merges(easy_rows, tiny_options, tmp_path):
    lm = llmnb.load_model("tiny-bert")
    base_before = {n: p.detach().clone() for n, p in lm.model.named_parameters() if "classifier" not in n}
    ft = llmnb.finetune(lm, easy_rows, **{**tiny_options, "lora": True, "lora_r": 4, "max_steps": 8, "lr": 5e-3})
    trainable = {n for n, p in ft.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    assert ft.trainable_parameters < 0.2 * ft.num_parameters
    # The pretrained weights stay as they were; the adapters moved away from their zero start.
    base_after = {n.replace("base_model.model.", "").replace(".base_layer", ""): p for n, p in ft.model.named_parameters()}
    assert all(torch.equal(value, base_after[name]) for name, value in base_before.items())
    assert any(p.abs().sum() > 0 for n, p in ft.model.named_parameters() if "lora_B" in n)
    merged = ft.merge()
    assert not type(merged).__module__.startswith("peft")
    batch = ft.tokenizer(["the staff were wonderful"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged(**batch).logits, ft.model(**batch).logits, atol=1e-4)
    saved = ft.save(tmp_path / "adapter")
    assert (saved / "adapter_model.safetensors").exists() and (saved / "adapter_config.json").exists()


def test_lora_and_freeze_together_is_refused(easy_rows):
    with pytest.raises(llmnb.ConfigError, match="not both"):
        llmnb.finetune("tiny-bert", easy_rows, lora=True, freeze=1, quiet=True)
