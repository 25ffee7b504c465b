"""Fine-tune a sequence classifier: written by llmnb.export_script.

Settings: train_config.json beside this file. Needs torch, transformers and accelerate only
(and peft for a LoRA run).

    python train.py                                      # one process
    torchrun --nproc_per_node=2 train.py                 # two processes, DistributedDataParallel
    accelerate launch --num_processes 2 train.py         # the same, on a machine with 2 GPUs
    accelerate launch --multi_gpu --num_processes 2 train.py   # 2 processes on CPUs too

(accelerate needs --multi_gpu to start several processes where it finds fewer GPUs: without it,
it runs one. On CPUs the processes talk over gloo, on GPUs over NCCL.)

Every optimizer step takes one global batch of `batch_size` examples; with N processes each
reads its 1/N slice (accelerate's prepared DataLoader, same shuffled order on every process),
DDP averages the gradients, so the updates are those of one process with the whole batch.
Process 0 logs and saves the model (safetensors, labels in config.json's id2label).
Which weights train follows the notebook run: all, the top `freeze` layers + head, or LoRA
adapters + head (through peft; saved merged into the weights, so the model loads like any other).
"""
import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
)
from transformers.utils import logging as transformers_logging

HERE = Path(__file__).resolve().parent


def read_rows(name, text_column, label_column):
    """(text, label) pairs from a .csv, .tsv or .jsonl file; rows missing either are skipped."""
    path = HERE / name
    with open(path, newline="", encoding="utf-8") as f:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in f if line.strip()]
        else:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))
    return [(str(r[text_column]), r[label_column]) for r in rows if str(r.get(text_column) or "").strip() and str(r.get(label_column) or "").strip()]


def encode(rows, tokenizer, cfg):
    label2id = {name: i for i, name in enumerate(cfg["labels"] or [])}
    examples = []
    for text, label in rows:
        example = dict(tokenizer(text, truncation=True, max_length=cfg["max_length"]))
        example["labels"] = float(label) if cfg["task"] == "regression" else label2id[str(label)]
        examples.append(example)
    return examples


def load_model(cfg):
    kwargs = {"num_labels": 1, "problem_type": "regression"} if cfg["task"] == "regression" else {
        "num_labels": len(cfg["labels"]),
        "id2label": dict(enumerate(cfg["labels"])),
        "label2id": {name: i for i, name in enumerate(cfg["labels"])},
    }
    source = str(HERE / cfg["model"]) if (HERE / cfg["model"]).exists() else cfg["model"]
    if not Path(source).exists() and cfg.get("hub_id"):
        source = cfg["hub_id"]  # the folder was on the machine that wrote this script
    remote = cfg.get("trust_remote_code", False)
    if cfg["from_config"]:  # random starting weights, built from the config with the seed set
        model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(source, **kwargs))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(source, trust_remote_code=remote, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=remote)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        model.config.pad_token_id = tokenizer.pad_token_id
    if cfg.get("dropout") is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = cfg["dropout"]
    return model, tokenizer


def choose_trainable(model, cfg):
    """Full fine-tuning, the top `freeze` layers, or LoRA adapters; the head always trains."""
    heads = [h for h in cfg.get("train_whole", []) if any(name.split(".")[-1] == h for name, _ in model.named_modules())]
    if cfg.get("freeze") is not None:
        layers = max((m for m in model.modules() if isinstance(m, torch.nn.ModuleList)), key=len)
        for p in model.parameters():
            p.requires_grad = False
        for module in list(layers)[len(layers) - cfg["freeze"] :]:
            module.requires_grad_(True)
        for name, module in model.named_modules():
            if name.split(".")[-1] in heads:
                module.requires_grad_(True)
    elif cfg.get("lora"):
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            task_type="SEQ_CLS", r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], lora_dropout=cfg["lora_dropout"],
            target_modules=cfg.get("lora_targets") or "all-linear",  # all-linear: every Linear of the blocks
            modules_to_save=heads or None, fan_in_fan_out=model.config.model_type == "gpt2",
        )
        model = get_peft_model(model, lora)
    return model


def planned_steps(cfg, examples):
    """Optimizer steps of the run: max_steps, else epochs x ceil(examples / batch_size)."""
    steps_per_epoch = math.ceil(examples / cfg["batch_size"])
    return cfg["max_steps"] or max(1, math.ceil(cfg["epochs"] * steps_per_epoch))


def parameter_groups(model, cfg):
    """AdamW's two groups: matrices decay; biases and normalisation weights do not."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(cfg, max_steps):
    """The learning rate's multiplier at each step: linear warmup, then linear, cosine or constant."""
    warmup = int(round(cfg["warmup"] * max_steps))

    def factor(step):
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, max_steps - warmup)
        return {"constant": 1.0, "cosine": 0.5 * (1 + math.cos(math.pi * progress))}.get(cfg["schedule"], max(0.0, 1 - progress))

    return factor


def evaluate(model, examples, collator, cfg, device):
    model.eval()
    right, squared, count = 0, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), 64):
            batch = {k: v.to(device) for k, v in collator(examples[start : start + 64]).items()}
            logits = model(**batch).logits.float()
            if cfg["task"] == "regression":
                squared += float(((logits.squeeze(-1) - batch["labels"]) ** 2).sum())
            else:
                right += int((logits.argmax(-1) == batch["labels"]).sum())
            count += len(batch["labels"])
    return {"eval_mse": squared / count} if cfg["task"] == "regression" else {"eval_accuracy": right / count}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE / "train_config.json"))
    parser.add_argument("--out", default=None, help="Folder for the trained model (default: the config's).")
    args = parser.parse_args()
    cfg = json.loads(Path(args.config).read_text())
    out = Path(args.out or HERE / cfg["out"])
    precision = cfg["precision"]
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    accelerator = Accelerator(
        # Several processes and no GPU: DDP on the CPU over gloo (accelerate needs to be told).
        cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1,
        mixed_precision={"fp32": "no"}.get(precision, precision),
        gradient_accumulation_steps=cfg["grad_accum"],
        # split_batches: the DataLoader's batch is the global one, cut into one slice per process.
        dataloader_config=DataLoaderConfiguration(split_batches=True, use_seedable_sampler=True, data_seed=cfg["seed"]),
    )
    n = accelerator.num_processes
    micro = cfg["batch_size"] // cfg["grad_accum"]
    if micro % n:
        raise SystemExit(f"batch_size / grad_accum = {micro} must be a multiple of the {n} processes.")
    set_seed(cfg["seed"])  # the same new head's weights in every process
    model, tokenizer = load_model(cfg)
    model = choose_trainable(model, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    train = encode(read_rows(cfg["train_file"], cfg["text_column"], cfg["label_column"]), tokenizer, cfg)
    collator = DataCollatorWithPadding(tokenizer)
    loader = torch.utils.data.DataLoader(train, batch_size=micro, shuffle=True, collate_fn=collator)
    max_steps = planned_steps(cfg, len(train))
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg), lr=cfg["lr"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, max_steps))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    log_every = cfg["log_every"] or max(1, max_steps // 20)
    accelerator.print(f"{len(train)} examples, {max_steps} steps of {cfg['batch_size']} ({micro // n} per process per forward pass), {n} process(es) on {accelerator.device}")
    accelerator.print(f"training {trainable:,} parameters" + (f" (LoRA r={cfg['lora_r']})" if cfg.get("lora") else f" (top {cfg['freeze']} layers + head)" if cfg.get("freeze") is not None else ""))

    step = 0
    model.train()
    while step < max_steps:
        for batch in loader:
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)  # DDP averages the gradients of all processes here
                if accelerator.sync_gradients and cfg["grad_clip"]:
                    accelerator.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                step += 1
                mean_loss = accelerator.reduce(loss.detach(), "mean").item()  # every process takes part
                if step % log_every == 0 or step == max_steps:
                    accelerator.print(f"step {step}/{max_steps}  loss {mean_loss:.4f}  lr {scheduler.get_last_lr()[0]:.2e}")
                if step >= max_steps:
                    break

    accelerator.wait_for_everyone()
    # Every process takes part in gathering the weights (a no-op under DDP; needed when accelerate
    # was configured for FSDP, where each process holds a shard).
    state = None if cfg.get("lora") else accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        if cfg.get("lora"):
            final = final.merge_and_unload()  # adapters folded into the weights: a plain transformers model
        metrics = {}
        if cfg.get("eval_file"):
            examples = encode(read_rows(cfg["eval_file"], cfg["text_column"], cfg["label_column"]), tokenizer, cfg)
            metrics = evaluate(final, examples, collator, cfg, accelerator.device)
            accelerator.print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        transformers_logging.disable_progress_bar()
        final.save_pretrained(out, state_dict=state)
        tokenizer.save_pretrained(out)
        (out / "train_summary.json").write_text(json.dumps({"steps": step, "processes": n, **metrics}, indent=2))
        accelerator.print(f"saved to {out}")
    accelerator.end_training()
    if n > 1:
        # Leave now, before this function's variables are freed: everything is saved and printed.
        # Freeing the DDP model joins gloo's worker threads while holding Python's lock, which one
        # of them may still need to drop its last finished work (PyTorch issue 56297): on a busy
        # CPU about one two-process run in 20 hung there, after "saved to", until it was killed.
        # (One process has no DDP model, and may be a notebook's kernel under %run: it returns.)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
