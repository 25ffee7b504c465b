"""Which weights a fine-tune updates: all of them, only the top layers, or LoRA adapters.

Chapter 4.4 of the course (tutorials/04_math.ipynb) compares the three on accuracy,
trainable parameters and time:

    finetune(..., )                 full fine-tuning: every weight moves
    finetune(..., freeze=2)         embeddings and lower layers frozen; the top 2 layers + head train
    finetune(..., lora=True)        low-rank adapters (through `peft`) + the head train

The head that the task added (classifier/score) always trains: it starts from random weights.
"""
from __future__ import annotations

import torch

from .errors import ConfigError

# Attention projections LoRA adapts, per architecture (model.config.model_type).
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
HEAD_NAMES = ("classifier", "score", "lm_head", "qa_outputs", "pooler")


def apply_strategy(model, config):
    """Return the model to train (possibly wrapped by peft), with requires_grad set."""
    if config.lora and config.freeze is not None:
        raise ConfigError("Choose freeze=N or lora=True, not both: LoRA already keeps the base weights frozen.")
    if config.freeze is not None:
        freeze_lower_layers(model, config.freeze)
        return model
    if config.lora:
        return add_lora(model, config)
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
        if name.split(".")[-1] in HEAD_NAMES:
            for p in module.parameters():
                p.requires_grad = True


def add_lora(model, config):
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError:
        raise ConfigError("lora=True needs the peft package: pip install peft (or pip install 'llmnb[peft]').") from None
    model_type = getattr(model.config, "model_type", "")
    task_type = TaskType.SEQ_CLS if hasattr(model, "classifier") or hasattr(model, "score") else None
    lora = LoraConfig(
        task_type=task_type,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=LORA_TARGETS.get(model_type),  # None: peft's own choice for the architecture
        fan_in_fan_out=model_type == "gpt2",  # GPT-2 stores its projections as Conv1D (transposed)
    )
    return get_peft_model(model, lora)


def is_lora(model) -> bool:
    return type(model).__module__.startswith("peft")
