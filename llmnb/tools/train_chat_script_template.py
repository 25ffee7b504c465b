"""Instruction-tune (sft) or preference-tune (dpo) a causal language model: written by llmnb.export_script.

Settings: train_config.json beside this file. Needs torch, transformers and accelerate only
(and peft for a LoRA run).

    python train.py                                      # one process
    torchrun --nproc_per_node=2 train.py                 # two processes, DistributedDataParallel
    accelerate launch --multi_gpu --num_processes 2 train.py   # the same through accelerate (CPUs too)

Data: train.jsonl (and eval.jsonl), one conversation per line, the rows llmnb trained on.
    sft: {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}
    dpo: {"prompt": [messages], "chosen": [messages], "rejected": [messages]}
The tokenizer's chat template turns messages into text (llmnb's default when it has none).
The loss covers the assistant turns only, each with its end-of-text token, found by rendering the
conversation up to each assistant turn (train_on_prompt: every token). Rows are truncated to
max_length; a row left with no answer token stops the script. No packing: one conversation per
row, padded on the right, so the numbers are close to the notebook's run, not identical.

sft: cross-entropy on the answer tokens (the mean over each process's slice of the batch).
dpo: with log p(y) the summed log-probability of answer y, p the model and r the starting model,
    loss = -log sigmoid(beta * ((log p(chosen) - log r(chosen)) - (log p(rejected) - log r(rejected))))
r's log-probabilities are computed once, before the first step; the loss starts at log 2
(rpo_alpha > 0 adds rpo_alpha times the chosen answers' cross-entropy per token).
Which weights train follows the notebook run: all, the top `freeze` layers + lm_head, or LoRA
adapters (saved merged into the weights). Process 0 logs and saves the model and tokenizer.
"""
import argparse
import json
import math
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as transformers_logging

HERE = Path(__file__).resolve().parent
IGNORE = -100  # the label of a token the loss skips: the prompt and the padding


def read_rows(name):
    with open(HERE / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def render(tokenizer, messages, add_generation_prompt=False):
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def answer_spans(tokenizer, messages):
    """(text, character spans of the assistant turns): each from the end of the generation prompt
    before it to the end of the turn, so the turn's end-of-text token is inside."""
    text = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            prompt, turn = render(tokenizer, messages[:i], True), render(tokenizer, messages[: i + 1])
            if not (text.startswith(turn) and turn.startswith(prompt)):
                raise SystemExit("The chat template renders a conversation differently from its beginning, so answers "
                                 "cannot be told apart from prompts. Set train_on_prompt to true in train_config.json.")
            spans.append((len(prompt), len(turn)))
    return text, spans


def encode_conversation(tokenizer, messages, cfg):
    """(ids, labels): labels are the ids of the tokens that start inside an answer, IGNORE elsewhere.
    Decided per position, never by token id: padding often uses the end-of-text token itself."""
    text, spans = answer_spans(tokenizer, messages)
    if cfg.get("train_on_prompt"):
        spans = [(0, len(text))]
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=cfg["max_length"])
    ids = encoded["input_ids"]
    labels = [t if any(lo <= start < hi for lo, hi in spans) else IGNORE for t, (start, _) in zip(ids, encoded["offset_mapping"])]
    labels[:1] = [IGNORE]  # nothing predicts the first token
    return ids, labels


def encode(rows, tokenizer, cfg, what):
    """sft: {ids, labels} per row; dpo: {ids, labels} of prompt + chosen and of prompt + rejected."""
    examples = []
    for row_number, row in enumerate(rows):
        if cfg["task"] == "sft":
            conversations = [row["messages"]]
        else:
            conversations = [row["prompt"] + row["chosen"], row["prompt"] + row["rejected"]]
        encoded = [encode_conversation(tokenizer, messages, cfg) for messages in conversations]
        if any(all(label == IGNORE for label in labels) for _, labels in encoded):
            raise SystemExit(f"Row {row_number} of {what} has no answer token left after truncating to max_length="
                             f"{cfg['max_length']} tokens. Raise max_length in train_config.json or shorten that prompt.")
        examples.append({"ids": [ids for ids, _ in encoded], "labels": [labels for _, labels in encoded]})
    return examples


def collate(examples, pad_id):
    """Right-padded tensors of shape (rows, conversations per row, length): 1 for sft, 2 for dpo."""
    width = max(len(ids) for e in examples for ids in e["ids"])
    shape = (len(examples), len(examples[0]["ids"]), width)
    batch = {"input_ids": torch.full(shape, pad_id), "attention_mask": torch.zeros(shape, dtype=torch.long),
             "labels": torch.full(shape, IGNORE)}
    for i, example in enumerate(examples):
        for j, (ids, labels) in enumerate(zip(example["ids"], example["labels"])):
            batch["input_ids"][i, j, : len(ids)] = torch.tensor(ids)
            batch["attention_mask"][i, j, : len(ids)] = 1
            batch["labels"][i, j, : len(ids)] = torch.tensor(labels)
    if "reference" in examples[0]:
        batch["reference"] = torch.tensor([e["reference"] for e in examples])
    return batch


def load_model(cfg):
    source = str(HERE / cfg["model"]) if (HERE / cfg["model"]).exists() else cfg["model"]
    if not Path(source).exists() and cfg.get("hub_id"):
        source = cfg["hub_id"]  # the folder was on the machine that wrote this script
    remote = cfg.get("trust_remote_code", False)
    if cfg["from_config"]:  # random starting weights, built from the config with the seed set
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source))
    else:
        model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=remote)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=remote)
    if not tokenizer.chat_template:
        tokenizer.chat_template = cfg["chat_template"]  # llmnb's default; saved with the model
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        model.config.pad_token_id = tokenizer.pad_token_id
    if cfg.get("dropout") is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = cfg["dropout"]
    return model, tokenizer


def choose_trainable(model, cfg):
    """Full fine-tuning, the top `freeze` layers and the output layer, or LoRA adapters."""
    if cfg.get("freeze") is not None:
        layers = max((m for m in model.modules() if isinstance(m, torch.nn.ModuleList)), key=len)
        for p in model.parameters():
            p.requires_grad = False
        for module in list(layers)[len(layers) - cfg["freeze"] :]:
            module.requires_grad_(True)
        for name, module in model.named_modules():
            if name.split(".")[-1] in cfg.get("train_whole", []):
                module.requires_grad_(True)
    elif cfg.get("lora"):
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            task_type="CAUSAL_LM", r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], lora_dropout=cfg["lora_dropout"],
            target_modules=cfg.get("lora_targets") or "all-linear",  # all-linear: every Linear of the blocks
            fan_in_fan_out=model.config.model_type == "gpt2",
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


def answer_logps(model, batch):
    """Summed log-probability of each conversation's answer tokens: shape (rows, conversations)."""
    rows, pairs, width = batch["input_ids"].shape
    logits = model(input_ids=batch["input_ids"].view(-1, width), attention_mask=batch["attention_mask"].view(-1, width)).logits
    targets = batch["labels"].view(-1, width)[:, 1:]
    picked = torch.gather(logits[:, :-1].float().log_softmax(-1), 2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * (targets != IGNORE)).sum(-1).view(rows, pairs)


def loss_of(model, batch, cfg):
    """(loss, reward accuracy or None): the answer tokens' cross-entropy, or the DPO loss."""
    if cfg["task"] == "sft":
        flat = {k: batch[k].flatten(0, 1) for k in ("input_ids", "attention_mask", "labels")}
        return model(**flat).loss, None
    policy, reference = answer_logps(model, batch), batch["reference"].to(batch["input_ids"].device)
    margin = cfg["beta"] * ((policy[:, 0] - reference[:, 0]) - (policy[:, 1] - reference[:, 1]))
    loss = -F.logsigmoid(margin).mean()
    if cfg.get("rpo_alpha"):  # plus the chosen answers' own loss per token, so they are written, not only ranked
        chosen_tokens = (batch["labels"][:, 0, 1:] != IGNORE).sum(-1).clamp(min=1)
        loss = loss + cfg["rpo_alpha"] * (-policy[:, 0] / chosen_tokens).mean()
    return loss, (margin > 0).float().mean()


def add_reference_logps(model, examples, pad_id, accelerator, batch_size):
    """Each pair's log r(chosen), log r(rejected), from the starting weights, before any step."""
    model.eval()
    with torch.no_grad(), accelerator.autocast():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            batch = {k: v.to(accelerator.device) for k, v in collate(chunk, pad_id).items()}
            for example, logps in zip(chunk, answer_logps(model, batch).tolist()):
                example["reference"] = logps
    model.train()


def evaluate(model, examples, pad_id, cfg, device):
    """Mean loss per answer token (sft) or per pair (dpo, with its reward accuracy)."""
    model.eval()
    total, rewarded, count = 0.0, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), 16):
            batch = {k: v.to(device) for k, v in collate(examples[start : start + 16], pad_id).items()}
            loss, accuracy = loss_of(model, batch, cfg)
            size = int((batch["labels"][..., 1:] != IGNORE).sum()) if cfg["task"] == "sft" else len(batch["input_ids"])
            total, count = total + float(loss) * size, count + size
            rewarded += float(accuracy) * size if accuracy is not None else 0.0
    metrics = {"eval_loss": total / count}
    return metrics if cfg["task"] == "sft" else {**metrics, "eval_reward_accuracy": rewarded / count}


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
    set_seed(cfg["seed"])  # the same starting weights in every process
    model, tokenizer = load_model(cfg)
    pad_id = tokenizer.pad_token_id
    train = encode(read_rows(cfg["train_file"]), tokenizer, cfg, cfg["train_file"])
    held = encode(read_rows(cfg["eval_file"]), tokenizer, cfg, cfg["eval_file"]) if cfg.get("eval_file") else []
    if cfg["task"] == "dpo":  # the reference is the starting model: score every pair before it changes
        model.to(accelerator.device)
        add_reference_logps(model, train, pad_id, accelerator, micro)
        if accelerator.is_main_process:
            add_reference_logps(model, held, pad_id, accelerator, micro)
    model = choose_trainable(model, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    loader = torch.utils.data.DataLoader(train, batch_size=micro, shuffle=True, collate_fn=lambda rows: collate(rows, pad_id))
    max_steps = planned_steps(cfg, len(train))
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg), lr=cfg["lr"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, max_steps))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    log_every = cfg["log_every"] or max(1, max_steps // 20)
    accelerator.print(f"{cfg['task']}: {len(train)} examples, {max_steps} steps of {cfg['batch_size']} ({micro // n} per process per forward pass), {n} process(es) on {accelerator.device}")
    accelerator.print(f"training {trainable:,} parameters" + (f" (LoRA r={cfg['lora_r']})" if cfg.get("lora") else f" (top {cfg['freeze']} layers + lm_head)" if cfg.get("freeze") is not None else ""))

    step = 0
    model.train()
    while step < max_steps:
        for batch in loader:
            with accelerator.accumulate(model):
                loss, accuracy = loss_of(model, batch, cfg)
                accelerator.backward(loss)  # DDP averages the gradients of all processes here
                if accelerator.sync_gradients and cfg["grad_clip"]:
                    accelerator.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                step += 1
                mean_loss = accelerator.reduce(loss.detach(), "mean").item()  # every process takes part
                reward = "" if accuracy is None else f"  reward_accuracy {accelerator.reduce(accuracy.detach(), 'mean').item():.2f}"
                if step % log_every == 0 or step == max_steps:
                    accelerator.print(f"step {step}/{max_steps}  loss {mean_loss:.4f}{reward}  lr {scheduler.get_last_lr()[0]:.2e}")
                if step >= max_steps:
                    break

    accelerator.wait_for_everyone()
    # Every process takes part in gathering the weights (a no-op under DDP; needed under FSDP).
    state = None if cfg.get("lora") else accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        if cfg.get("lora"):
            final = final.merge_and_unload()  # adapters folded into the weights: a plain transformers model
        metrics = evaluate(final, held, pad_id, cfg, accelerator.device) if held else {}
        if metrics:
            accelerator.print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        transformers_logging.disable_progress_bar()
        final.save_pretrained(out, state_dict=state)
        tokenizer.save_pretrained(out)  # with its chat template: the saved model chats in the same format
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
