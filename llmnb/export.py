"""From a notebook run to a standalone multi-process training script, and a way to launch it.

Used in tutorials/09_faq.ipynb ("how do I train on several GPUs or machines?"):

    path = llmnb.export_script(ft, "job/train.py", data=train_df, eval=test_df)
    llmnb.launch(path, num_processes=2)          # torchrun --standalone --nproc_per_node=2 train.py

`export_script` writes `train.py` (plain transformers + accelerate, no llmnb), the run's options
in `train_config.json`, and the exact rows llmnb trained and validated on (`train.csv`,
`eval.csv`: same cleaning and held-out split). The script runs as one process, under
`torchrun --nproc_per_node=N train.py`, or under `accelerate launch train.py`: DistributedDataParallel
through `accelerate`, gloo on CPUs, NCCL on GPUs. (On a machine without GPUs, `accelerate launch
--num_processes 2` alone starts ONE process; add `--multi_gpu`, accelerate's name for its
multi-process launcher, which works on CPUs too.) Every optimizer step uses the same global
batch whatever N is (each process gets 1/N of it), so N processes follow the same training
curve as one, only faster. A `freeze=N` or `lora=True` run is exported with the same strategy;
a LoRA script saves the model with the adapters merged in, so it loads like any other. Batches are not length-grouped as in llmnb, so the numbers are close
to the notebook's run, not identical.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from .errors import LlmnbError, TrainingError

MARKER = "written by llmnb.export_script"
HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}  # where an alias lives on the Hub
OPTIONS = ("task", "max_length", "epochs", "max_steps", "batch_size", "grad_accum", "lr", "warmup", "schedule",
           "weight_decay", "grad_clip", "seed", "precision", "log_every", "trust_remote_code",
           "freeze", "lora", "lora_r", "lora_alpha", "lora_dropout")


class ExportError(LlmnbError):
    """export_script or launch was given something it cannot use."""


class LaunchError(TrainingError):
    """The launched script failed; the message ends with the tail of its output."""


SCRIPT_TASKS = ("classification", "regression")  # what the script's template trains


def export_script(result_or_config=None, path="train.py", data=None, eval=None, model=None, out="model", dropout=None):
    """Write `path` (a training script), `train_config.json`, `train.csv` and `eval.csv` beside it.

    result_or_config: a `FineTuneResult` (its model, options and labels) or a `FineTuneConfig`.
    data, eval:       the training and validation data, in any form `finetune` takes; without
                      eval, the same stratified share llmnb holds out is written to eval.csv.
    model:            the model name or folder (default: the result's, or 'minilm').
    out:              where the script saves the trained model (relative to the script).
    dropout:          override every dropout probability (0 makes runs repeatable across N).
    Returns the script's Path. Files written earlier by export_script are replaced.
    """
    from .config import FineTuneConfig
    from .data import LabelMap
    from .finetuning import prepare_data
    from .result import FineTuneResult
    from .strategies import HEAD_NAMES
    from .tasks import get_task

    result = result_or_config if isinstance(result_or_config, FineTuneResult) else None
    config = result.config if result else (result_or_config or FineTuneConfig())
    if not isinstance(config, FineTuneConfig):
        raise ExportError(f"export_script() takes a FineTuneResult or a FineTuneConfig, not a {type(result_or_config).__name__}.")
    if data is None:
        raise ExportError("export_script() needs the training data: data=... (a result does not keep its data).")
    if dropout is not None and not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ExportError(f"dropout={dropout!r} must be a probability from 0 up to (not including) 1, or None to keep the model's.")
    model = model or (result.model_name if result else "minilm")
    if not isinstance(model, str):
        raise ExportError(f"model must be a name or folder the script can load, not a {type(model).__name__}.")
    script = Path(path).expanduser()
    if script.suffix != ".py":
        raise ExportError(f"path='{path}' must name a .py file, e.g. 'job/train.py'.")
    if script.exists() and MARKER not in script.read_text(errors="replace"):
        raise ExportError(f"'{script}' exists and was not written by export_script; choose another path.")
    task = get_task(config.task)
    if task.name not in SCRIPT_TASKS:
        raise ExportError(
            f"export_script writes classification and regression jobs; this run's task is {task.name!r}, which the "
            "script cannot train yet. Nothing was written. Train it with llmnb.finetune, or write the script by hand."
        )
    prepared = prepare_data(data, eval, config, task)
    labels: LabelMap | None = prepared["labels"]
    if result and result.labels and labels and labels.names != result.labels.names:
        raise ExportError(f"The data's labels {labels.names} differ from the result's {result.labels.names}: give the data it was trained on.")

    folder = script.parent
    folder.mkdir(parents=True, exist_ok=True)
    decode = (lambda ids: ids) if labels is None else labels.decode
    _write_rows(folder / "train.csv", prepared["train_texts"], decode(prepared["train_targets"]))
    if prepared["eval_texts"]:
        _write_rows(folder / "eval.csv", prepared["eval_texts"], decode(prepared["eval_targets"]))
    source = _model_source(model, folder, config, task, result)
    settings = {
        **source,
        "labels": [str(n) for n in labels.names] if labels else None,
        "train_file": "train.csv",
        "eval_file": "eval.csv" if prepared["eval_texts"] else None,
        "text_column": "text",
        "label_column": "label",
        **{name: getattr(config, name) for name in OPTIONS},
        "lora_targets": _lora_targets(config, folder, source) if config.lora else None,
        "train_whole": list(HEAD_NAMES),
        "dropout": dropout,
        "out": str(out),
    }
    (folder / "train_config.json").write_text(json.dumps(settings, indent=2) + "\n")
    script.write_text(SCRIPT.replace("{MARKER}", MARKER))
    return script


def launch(script_path, num_processes: int = 2, timeout: float | None = None, args=(), echo: bool = True):
    """Run `python -m torch.distributed.run --standalone --nproc_per_node=N script` and wait.

    Output is printed as it comes (echo=False: only kept) and returned in a CompletedProcess.
    A failure raises `LaunchError` with the last lines of output; the kernel's stop button or
    `timeout` (seconds) stops every process of the run.
    """
    script = Path(script_path).expanduser()
    if not script.is_file():
        raise ExportError(f"No script at '{script_path}'. Write one with llmnb.export_script(...).")
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise ExportError(f"num_processes={num_processes!r} must be a whole number >= 1.")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={num_processes}", script.name, *map(str, args)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // num_processes)))
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=script.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines, tail = [], deque(maxlen=40)

    def read():
        for line in proc.stdout:
            lines.append(line)
            tail.append(line)
            if echo:
                print(line, end="", flush=True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as stop:
        _stop(proc)
        reader.join(5)
        if isinstance(stop, KeyboardInterrupt):
            raise
        raise LaunchError(f"{script.name} ran past timeout={timeout} s and was stopped. Last output:\n{''.join(tail)}") from None
    reader.join()
    if code != 0:
        raise LaunchError(f"{script.name} failed with {num_processes} process(es) (exit code {code}). Last output:\n{''.join(tail)}")
    if echo:
        print(f"llmnb: {script.name} finished on {num_processes} process(es) in {time.perf_counter() - start:.0f} s")
    return subprocess.CompletedProcess(command, code, stdout="".join(lines))


def _stop(proc):
    """Terminate the launcher and the workers it started (one process group), then kill."""
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


def _lora_targets(config, folder, source):
    """The `target_modules` of the script's LoRA: the same layers as in the notebook run."""
    from .strategies import LORA_TARGETS

    text = (config.lora_targets or "all-linear").strip()
    if text == "all-linear":
        return text
    if text != "qv":
        return [n.strip() for n in text.split(",") if n.strip()]
    model_type = None
    try:
        where = folder / source["model"] if (folder / source["model"]).exists() else Path(source["model"])
        model_type = json.loads((where / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        pass  # a Hub id whose type is unknown here: the script then adapts every Linear layer
    return LORA_TARGETS.get(model_type)


def _write_rows(path: Path, texts, labels):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels))


def _model_source(name: str, folder: Path, config, task, result) -> dict:
    """How the script finds the starting weights (or, for 'tiny-bert', the config to build from)."""
    from .models import bundled_minilm_path, load_model, quiet_transformers

    if name == "tiny-bert":  # random weights: ship the config and tokenizer, the script builds the model
        source = result if result is not None else load_model("tiny-bert", task=task.name, device="cpu", seed=config.seed)
        with quiet_transformers():
            source.model.config.save_pretrained(folder / "base-model")
            source.tokenizer.save_pretrained(folder / "base-model")
        return {"model": "base-model", "from_config": True, "hub_id": None}
    if name == "minilm":
        return {"model": str(bundled_minilm_path()), "from_config": False, "hub_id": HUB_IDS["minilm"]}
    local = Path(name).expanduser()
    return {"model": str(local.resolve()) if local.exists() else name, "from_config": False, "hub_id": None}


SCRIPT = r'''"""Fine-tune a sequence classifier: {MARKER}.

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
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding
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


def lr_factor(cfg, max_steps):
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
    steps_per_epoch = math.ceil(len(train) / cfg["batch_size"])
    max_steps = cfg["max_steps"] or max(1, math.ceil(cfg["epochs"] * steps_per_epoch))
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"])
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


if __name__ == "__main__":
    main()
'''
