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
    base_before = {n: p.detach().clone() for n, p in lm.model.named_parameters() if not n.startswith(("classifier.", "bert.pooler."))}
    ft = llmnb.finetune(lm, easy_rows, **{**tiny_options, "lora": True, "lora_r": 4, "max_steps": 8, "lr": 5e-3})
    trainable = {n for n, p in ft.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n or "pooler" in n for n in trainable)
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


# ----------------------------------------------------------------------------- LoRA defaults and heads

def test_lora_gets_its_own_default_learning_rate():
    from llmnb.finetuning.config import DEFAULT_LORA_LR, DEFAULT_LR, FineTuneConfig

    assert DEFAULT_LORA_LR > 5 * DEFAULT_LR
    assert FineTuneConfig().lr == DEFAULT_LR and FineTuneConfig(lora=True).lr == DEFAULT_LORA_LR
    # Chosen again when lora is switched on or off later, as long as nobody set lr ...
    assert FineTuneConfig().replace(lora=True).lr == DEFAULT_LORA_LR
    assert FineTuneConfig(lora=True).replace(lora=False).lr == DEFAULT_LR
    assert FineTuneConfig().replace(epochs=2).replace(lora=True).lr == DEFAULT_LORA_LR
    # ... and an lr that was given is kept, whatever the strategy.
    assert FineTuneConfig(lr=1e-4).replace(lora=True).lr == 1e-4
    assert FineTuneConfig(lora=True, lr=5e-4).lr == 5e-4 and FineTuneConfig().replace(lr=3e-4, lora=True).lr == 3e-4
    with pytest.raises(llmnb.ConfigError, match="lora=True"):
        FineTuneConfig(lora_targets="all-linear")


def test_lora_keeps_the_pooler_and_head_training_and_says_so(easy_rows, tiny_options, capsys):
    from llmnb.finetuning.strategies import apply_strategy

    options = {**tiny_options, "lora": True, "max_steps": 2}
    options.pop("lr")
    ft = llmnb.finetune("tiny-bert", easy_rows, **options)
    assert ft.config.lr == llmnb.finetuning.config.DEFAULT_LORA_LR
    trainable = {n for n, p in ft.model.named_parameters() if p.requires_grad}
    assert any(".pooler.modules_to_save." in n for n in trainable) and any(".classifier.modules_to_save." in n for n in trainable)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable if ".lora_" in n}
    assert adapted == {"query", "key", "value", "dense"}  # every Linear of the blocks
    assert not any(".pooler." in n and ".lora_" in n for n in trainable)  # the pooler trains whole instead
    # Totals count each weight once (peft's frozen spare copy of the pooler and head is left out).
    lm = llmnb.load_model("tiny-bert")
    adapters = sum(p.numel() for n, p in ft.model.named_parameters() if ".lora_" in n)
    assert ft.total_parameters == ft.num_parameters == lm.num_parameters + adapters
    pooler_and_head = sum(p.numel() for n, p in lm.model.named_parameters() if n.startswith(("bert.pooler.", "classifier.")))
    assert ft.trainable_parameters == adapters + pooler_and_head
    assert sum(p.numel() for p in ft.merge().parameters()) == lm.num_parameters
    # What the learner reads before training starts.
    config = llmnb.FineTuneConfig(lora=True, plot=False)
    apply_strategy(llmnb.load_model("tiny-bert").model, config)
    line = capsys.readouterr().out
    assert "LoRA r=8" in line and "every Linear layer of the blocks (query, key, value, dense)" in line
    assert "pooler" in line and f"lr {llmnb.finetuning.config.DEFAULT_LORA_LR:g} (LoRA's default" in line
    apply_strategy(llmnb.load_model("tiny-bert").model, config.replace(lr=1e-3))
    assert "default" not in capsys.readouterr().out


def test_lora_targets_option(easy_rows, tiny_options):
    def adapted(ft):
        return {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in ft.model.named_parameters() if ".lora_" in n}

    options = {**tiny_options, "lora": True, "max_steps": 1}
    assert adapted(llmnb.finetune("tiny-bert", easy_rows, **options, lora_targets="qv")) == {"query", "value"}
    assert adapted(llmnb.finetune("tiny-bert", easy_rows, **options, lora_targets="key, dense")) == {"key", "dense"}
    with pytest.raises(llmnb.ConfigError, match="no layer called.*query"):
        llmnb.finetune("tiny-bert", easy_rows, **options, lora_targets="q_proj")


def _tiny_llama(task):
    import transformers

    tokenizer = llmnb.load_model("tiny-bert").tokenizer
    config = transformers.LlamaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id, num_labels=2,
    )
    torch.manual_seed(0)
    cls = transformers.LlamaForSequenceClassification if task == "classification" else transformers.LlamaForCausalLM
    return llmnb.LoadedModel(cls(config), tokenizer, "tiny-llama", task)


@pytest.mark.parametrize(
    "model, task, targets, head",
    [
        ("tiny-gpt2", "causal-lm", {"c_attn", "c_proj", "c_fc"}, None),
        ("tiny-t5", "seq2seq", {"q", "k", "v", "o", "wi", "wo"}, None),
        ("tiny-llama", "classification", {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}, "score"),
        ("tiny-llama", "causal-lm", {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}, None),
    ],
)
def test_lora_targets_per_architecture(easy_rows, model, task, targets, head, tmp_path):
    rows = {
        "causal-lm": [{"text": r["text"]} for r in easy_rows],
        "seq2seq": [{"source": r["text"], "target": r["label"]} for r in easy_rows],
        "classification": easy_rows,
    }[task]
    source = _tiny_llama(task) if model == "tiny-llama" else model
    ft = llmnb.finetune(source, rows, task=task, lora=True, max_steps=3, lr=1e-2, quiet=True, save_checkpoints=False, early_stopping=None)
    trainable = {n for n, p in ft.model.named_parameters() if p.requires_grad}
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable if ".lora_" in n} == targets
    whole = {n for n in trainable if ".lora_" not in n}
    assert (all(f".{head}." in n for n in whole) and whole) if head else not whole  # an LM head stays as pretrained
    assert ft.trainable_parameters < 0.05 * ft.total_parameters
    assert any(float(p.detach().abs().sum()) > 0 for n, p in ft.model.named_parameters() if "lora_B" in n)  # the adapters moved
    merged = ft.merge()
    assert not type(merged).__module__.startswith("peft") and type(merged).__name__ == type(ft.model.get_base_model()).__name__
    batch = ft.tokenizer(["the staff were wonderful"], return_tensors="pt")
    if task == "seq2seq":
        batch["decoder_input_ids"] = torch.zeros((1, 2), dtype=torch.long)
    with torch.no_grad():
        assert torch.allclose(merged(**batch).logits, ft.model(**batch).logits, atol=1e-4)
    assert isinstance(ft.predict("the staff"), str)
    saved = ft.save(tmp_path / "adapter")
    assert (saved / "adapter_model.safetensors").exists()


def test_no_validation_split_trains_on_everything(easy_rows, tiny_options):
    """eval_fraction=0 (benchmarks/strategies.py's protocol): all rows train, nothing is evaluated."""
    rows = easy_rows[:48]
    ft = llmnb.finetune("tiny-bert", rows, **{**tiny_options, "eval_fraction": 0, "epochs": 4, "save_checkpoints": False})
    assert ft.train_size == len(rows) and ft.eval_size == 0 and ft.metrics == {}
    assert ft.status == "finished" and ft.state.step == 12  # all 4 epochs: no early stopping without evaluations
    pairs = [{"source": r["text"], "target": r["label"]} for r in easy_rows[:32]]
    ft = llmnb.finetune("tiny-t5", pairs, task="seq2seq", **{**tiny_options, "eval_fraction": 0, "max_steps": 1, "save_checkpoints": False})
    assert ft.eval_size == 0 and ft.state.step == 1


@pytest.mark.parametrize(
    "model, task, names",
    [("tiny-bert", "classification", {"query", "value"}), ("tiny-gpt2", "causal-lm", {"c_attn"}),
     ("tiny-t5", "seq2seq", {"q", "v"}), ("tiny-llama", "causal-lm", {"q_proj", "v_proj"})],
)
def test_query_value_names_per_architecture(model, task, names):
    from llmnb.finetuning.strategies import add_lora

    base = _tiny_llama(task).model if model == "tiny-llama" else llmnb.load_model(model, task=task).model
    wrapped = add_lora(base, llmnb.FineTuneConfig(task=task, lora=True, lora_targets="qv"))
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, _ in wrapped.named_parameters() if ".lora_" in n} == names


def test_compression_and_explain_take_a_lora_result(easy_rows, easy_eval_rows, tiny_options, tmp_path):
    ft = llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "lora": True, "max_steps": 6, "lr": 1e-2})
    report = llmnb.quantize(ft, eval_data=easy_eval_rows)
    assert not type(report.model).__module__.startswith("peft") and any("merged" in n for n in report.notes)
    assert report.accuracy_after is not None and report.accuracy_before == pytest.approx(ft.evaluate(easy_eval_rows)["eval_accuracy"])
    pruned = llmnb.prune(ft, 0.3, eval_data=easy_eval_rows)
    assert pruned.sparsity == pytest.approx(0.3, abs=1e-3) and pruned.accuracy_after is not None
    explained = llmnb.explain(ft, "the staff were wonderful", layer=0, head=1)
    words = [i for i, special in enumerate(explained.special) if not special]
    assert len(explained.saliency) == len(explained.tokens) == explained.attention.shape[0] and len(words) == 4
    assert max(abs(explained.saliency[i]) for i in words) == pytest.approx(1.0)  # scaled by the strongest word
    # Adapters of a model built from a config cannot be reloaded alone: the message says what to save instead.
    with pytest.raises(llmnb.ModelNotFoundError, match="merge"):
        llmnb.load_model(str(ft.save(tmp_path / "adapter")))


@pytest.mark.slow  # MiniLM, twice
def test_saved_lora_adapters_load_as_a_plain_model(tmp_path):
    rows = [{"text": t, "label": l} for t, l in [("a lovely stay", "good"), ("rude staff, cold room", "bad")] * 8]
    ft = llmnb.finetune("minilm", rows, lora=True, max_steps=2, eval_fraction=0, quiet=True, save_checkpoints=False)
    folder = ft.save(tmp_path / "adapter")
    assert not (folder / "config.json").exists()  # adapters only: a few MB instead of the whole model
    loaded = llmnb.load_model(str(folder), device="cpu")
    assert type(loaded.model).__name__ == "BertForSequenceClassification"
    assert loaded.model.config.id2label == {0: "bad", 1: "good"}
    batch = loaded.tokenizer(["the room was lovely"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(loaded.model.eval()(**batch).logits, ft.model.eval()(**batch).logits, atol=1e-4)
