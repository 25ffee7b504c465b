"""Which weights a fine-tune updates: all of them, only the top layers, or LoRA adapters.

Chapter 4.4 of the course (tutorials/04_math.ipynb) compares the three on accuracy,
trainable parameters and time (benchmarks/strategies.py measures them side by side):

    finetune(..., )                 full fine-tuning: every weight moves
    finetune(..., freeze=2)         embeddings and lower layers frozen; the top 2 layers + head train
    finetune(..., lora=True)        low-rank adapters (through `peft`) + the head train

The head that the task added (classifier/score) always trains: it starts from random weights.
So does a BERT-style pooler (the dense layer between the [CLS] vector and the classifier): it was
trained for another objective, or not at all (sentence-transformers checkpoints such as MiniLM
never use it).

LoRA's defaults, measured on MiniLM and the bundled reviews (benchmarks/strategies.py; test
accuracy of the final weights, mean of seeds 42, 7, 1; docs/performance.md, "Which weights
train"): adapters of rank 8 on every Linear layer of the blocks, lr 2e-3: 0.850 with 2.1 % of the
parameters training, against 0.847 for full fine-tuning. Adapters on the query and value
projections only (the LoRA paper's choice) reached 0.800, and LoRA at full fine-tuning's
learning rate (1e-4) 0.704: the adapters' B matrices start at zero and are small, so they need
larger steps (`llmnb.finetuning.config.DEFAULT_LORA_LR`). On a CPU LoRA saves no time or memory at this size
(what the adapters keep for the backward pass costs as much as the optimizer state they spare);
it saves storage: a 1.8 MiB adapter per task, against 87 MiB for the model.
"""
from __future__ import annotations

import torch

from llmnb.errors import ConfigError

# By default LoRA adapts every Linear layer of the transformer blocks (peft's "all-linear": the
# output layer is left out), whatever the architecture; lora_targets="qv" adapts only the attention
# query and value projections, as in the LoRA paper. Their names, per model.config.model_type
# (other types: peft's own table):
LORA_TARGETS = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "gpt2": ["c_attn"],
    "t5": ["q", "v"],
    "mt5": ["q", "v"],
    "bart": ["q_proj", "v_proj"],
    "marian": ["q_proj", "v_proj"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
}
# Modules that stay fully trainable whatever the strategy: new heads, and the layers between the
# encoder and a classification head (BERT's pooler, DistilBERT's pre_classifier).
HEAD_NAMES = ("classifier", "score", "qa_outputs", "classification_head", "pooler", "pre_classifier")
# Output layers of language models: pretrained (often tied to the input embeddings), so they train
# under freeze (the top of the model) but not under LoRA.
LM_HEADS = ("lm_head",)


def apply_strategy(model, config):
    """Return the model to train (possibly wrapped by peft), with requires_grad set.

    Unless config.quiet, prints one line saying what trains (and LoRA's learning rate when it
    is the LoRA default).

    Taught in chapter 2 (tutorials/02_core_concepts.ipynb).
    """
    if config.freeze is not None:
        freeze_lower_layers(model, config.freeze)
    elif config.lora:
        model = add_lora(model, config)
    line = describe(model, config)
    if line and not config.quiet:
        print(f"llmnb: {line}")
    return model


def transformer_layers(model) -> torch.nn.ModuleList:
    """The stack of transformer blocks: the longest ModuleList of the model."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    if not lists:
        raise ConfigError(f"Cannot find the transformer layers of this {type(model).__name__} to freeze.")
    return max(lists, key=len)


def freeze_lower_layers(model, trainable_layers: int) -> None:
    layers = transformer_layers(model)
    if trainable_layers > len(layers):
        raise ConfigError(f"freeze={trainable_layers}, but the model has only {len(layers)} layers; use 0 to {len(layers)}.")
    for p in model.parameters():
        p.requires_grad = False
    for layer in list(layers)[len(layers) - trainable_layers :]:
        for p in layer.parameters():
            p.requires_grad = True
    for name, module in model.named_modules():
        if name.split(".")[-1] in HEAD_NAMES + LM_HEADS:
            for p in module.parameters():
                p.requires_grad = True


def lora_targets(model, config):
    """The `target_modules` given to peft: "all-linear" or a list of module names."""
    text = (config.lora_targets or "all-linear").strip()
    if text == "all-linear":
        return text
    if text == "qv":
        model_type = getattr(model.config, "model_type", "")
        try:
            from peft.utils.constants import (
                TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as known,
            )
        except ImportError:
            known = {}
        names = LORA_TARGETS.get(model_type) or known.get(model_type)
        if not names:
            raise ConfigError(
                f"lora_targets='qv': llmnb does not know the query/value layer names of a '{model_type}' model. "
                "Name them (lora_targets='my_q,my_v') or use the default, every Linear layer."
            )
        return list(names)
    names = [n.strip() for n in text.split(",") if n.strip()]
    present = {name.split(".")[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"}
    missing = [n for n in names if n not in present]
    if missing:
        raise ConfigError(
            f"lora_targets names {', '.join(missing)}, which this {type(model).__name__} has no layer called. "
            f"Its Linear layers are called: {', '.join(sorted(present))} (or leave lora_targets unset: every Linear layer)."
        )
    return names


def trainable_heads(model) -> list[str]:
    """Names (last component) of the head modules present in `model` that must keep training."""
    present = {name.split(".")[-1] for name, _ in model.named_modules()}
    return [name for name in HEAD_NAMES if name in present]


def add_lora(model, config):
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError:
        raise ConfigError("lora=True needs the peft package: pip install peft (or pip install 'llmnb[peft]').") from None
    from llmnb.core.task import get_task

    targets = lora_targets(model, config)
    lora = LoraConfig(
        task_type=getattr(TaskType, get_task(config.task).peft_task_type or "SEQ_CLS"),
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        modules_to_save=trainable_heads(model) or None,
        fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2",  # GPT-2 stores its projections as Conv1D (transposed)
    )
    return get_peft_model(model, lora)


def is_lora(model) -> bool:
    return type(model).__module__.startswith("peft")


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameters. peft keeps a frozen copy of every module it trains whole
    (`original_module`, only there to switch the adapter off); it is not counted in the total."""
    trainable = total = 0
    for name, p in model.named_parameters():
        if ".original_module." in f".{name}.":
            continue
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def describe(model, config) -> str:
    """One line for the learner: what trains, how many parameters, and LoRA's lr if defaulted."""
    if config.freeze is None and not config.lora:
        return ""
    trainable, total = count_parameters(model)
    share = f"{trainable:,} of {total / 1e6:.1f} M parameters train ({trainable / total:.2%})"
    heads = trainable_heads(model)
    if config.freeze is not None:
        layers = len(transformer_layers(model))
        return f"freeze={config.freeze}: the top {config.freeze} of {layers} layers and the head ({', '.join(heads) or 'none found'}) train; {share}."
    if is_lora(model):  # what peft actually adapted
        targets = {name.split(".")[-1] for name, m in model.named_modules() if hasattr(m, "lora_A") and ".modules_to_save." not in name}
        order = ["query", "key", "value", "q", "k", "v", "o", "q_proj", "k_proj", "v_proj", "o_proj"]
        targets = sorted(targets, key=lambda t: (order.index(t) if t in order else len(order), t))
    else:
        targets = lora_targets(model, config)
    where = ", ".join(targets) if config.lora_targets else f"every Linear layer of the blocks ({', '.join(targets)})"
    lr = f"; lr {config.lr:g} (LoRA's default; set lr to change it)" if getattr(config, "default_lr_used", False) else ""
    whole = f"; {' and '.join(heads)} train whole" if heads else ""
    return f"LoRA r={config.lora_r} (alpha {config.lora_alpha}) adapters on {where}{whole}; {share}{lr}."
