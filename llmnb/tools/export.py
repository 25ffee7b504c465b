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
to the notebook's run, not identical. An `sft` or `dpo` run gets a chat script (train_chat_script_template.py)
and its conversations as `train.jsonl`/`eval.jsonl`: the loss covers the answers only, as in llmnb, but
without packing (one conversation per padded row).
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

from llmnb.errors import ExportError, LaunchError

MARKER = "written by llmnb.export_script"  # in the template's first line: export only replaces its own files
# The script itself, a real Python file shipped with the package (ruff and the tests read it as code).
TEMPLATE = Path(__file__).with_name("train_script_template.py")
CHAT_TEMPLATE = Path(__file__).with_name("train_chat_script_template.py")  # sft and dpo
HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}  # where an alias lives on the Hub
OPTIONS = ("task", "max_length", "epochs", "max_steps", "batch_size", "grad_accum", "lr", "warmup", "schedule",
           "weight_decay", "grad_clip", "seed", "precision", "log_every", "trust_remote_code",
           "freeze", "lora", "lora_r", "lora_alpha", "lora_dropout")


BUILT_FROM_CONFIG = ("tiny-bert", "tiny-gpt2", "tiny-llama")  # aliases with random weights: the script builds them


def export_script(result_or_config=None, path="train.py", data=None, eval=None, model=None, out="model", dropout=None):
    """Write `path` (a training script), `train_config.json`, `train.csv` and `eval.csv` beside it
    (sft and dpo: a chat script, with `train.jsonl` and `eval.jsonl`).

    result_or_config: a `FineTuneResult` (its model, options and labels) or a `FineTuneConfig`.
    data, eval:       the training and validation data, in any form `finetune` takes; without
                      eval, the same stratified share llmnb holds out is written to eval.csv.
    model:            the model name or folder (default: the result's, or 'minilm'); a run that
                      started from a model in memory needs it (save that model first).
    out:              where the script saves the trained model (relative to the script).
    dropout:          override every dropout probability (0 makes runs repeatable across N).
    Returns the script's Path. Files written earlier by export_script are replaced.

    Taught in chapter 7 (tutorials/07_tools.ipynb).
    """
    from llmnb.finetuning.config import FineTuneConfig
    from llmnb.finetuning.data import LabelMap, prepare_data
    from llmnb.finetuning.result import FineTuneResult
    from llmnb.finetuning.strategies import HEAD_NAMES
    from llmnb.core.task import make_task, task_classes

    result = result_or_config if isinstance(result_or_config, FineTuneResult) else None
    config = result.config if result else (result_or_config or FineTuneConfig())
    if not isinstance(config, FineTuneConfig):
        raise ExportError(f"export_script() takes a FineTuneResult or a FineTuneConfig, not a {type(result_or_config).__name__}.")
    if data is None:
        raise ExportError("export_script() needs the training data: data=... (a result does not keep its data).")
    if dropout is not None and not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ExportError(f"dropout={dropout!r} must be a probability from 0 up to (not including) 1, or None to keep the model's.")
    task = make_task(config)
    if task.export_template == "chat" and not (model or result):
        raise ExportError(f"A task={config.task!r} job needs a causal language model: pass model=... (a name or folder, e.g. 'tiny-llama').")
    in_memory = result is not None and model is None and getattr(result, "started_from_result", False)
    model = model or (result.model_name if result else "minilm")
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise ExportError(f"model must be a name or folder the script can load, not a {type(model).__name__}.")
    script = Path(path).expanduser()
    if script.suffix != ".py":
        raise ExportError(f"path='{path}' must name a .py file, e.g. 'job/train.py'.")
    if script.exists() and MARKER not in script.read_text(errors="replace"):
        raise ExportError(f"'{script}' exists and was not written by export_script; choose another path.")
    if task.export_template is None:
        exported = ", ".join(t.name for t in task_classes() if t.export_template)
        raise ExportError(
            f"export_script writes {exported} jobs; this run's task is {config.task!r}, which "
            "the script cannot train yet. Nothing was written. Train it with llmnb.finetune, or write the script by hand."
        )
    if in_memory:
        raise ExportError(
            f"This run started from a model that exists only in memory ({model!r}: a GPT from llmnb.pretrain, or an "
            "earlier run's result after its training), so the script would have nothing to load, or the wrong weights. "
            "Save the starting model first, e.g. gpt.save(\"gpt\"), and pass model=\"gpt\" (its folder) to export_script. "
            "Nothing was written."
        )
    if task.export_template == "chat":
        return _export_chat(result, config, task, script, data, eval, model, out, dropout)
    prepared = prepare_data(data, eval, config, task)
    labels: LabelMap | None = prepared.labels
    if result and result.labels and labels and labels.names != result.labels.names:
        raise ExportError(f"The data's labels {labels.names} differ from the result's {result.labels.names}: give the data it was trained on.")

    folder = script.parent
    folder.mkdir(parents=True, exist_ok=True)
    decode = (lambda ids: ids) if labels is None else labels.decode
    _write_rows(folder / "train.csv", prepared.train_texts, decode(prepared.train_targets))
    if prepared.eval_texts:
        _write_rows(folder / "eval.csv", prepared.eval_texts, decode(prepared.eval_targets))
    source = _model_source(model, folder, config, task, result)
    settings = {
        **source,
        "labels": [str(n) for n in labels.names] if labels else None,
        "train_file": "train.csv",
        "eval_file": "eval.csv" if prepared.eval_texts else None,
        "text_column": "text",
        "label_column": "label",
        **{name: getattr(config, name) for name in OPTIONS},
        "lora_targets": _lora_targets(config, folder, source) if config.lora else None,
        "train_whole": list(HEAD_NAMES),
        "dropout": dropout,
        "out": str(out),
    }
    (folder / "train_config.json").write_text(json.dumps(settings, indent=2) + "\n")
    script.write_text(TEMPLATE.read_text())
    return script


def _export_chat(result, config, task, script, data, eval, model, out, dropout):
    """export_script for instruction and preference tuning: the conversations llmnb trained on, as
    JSON Lines, and the chat script."""
    from llmnb.core.chat_template import DEFAULT_CHAT_TEMPLATE
    from llmnb.finetuning.strategies import LM_HEADS

    prepared = task.prepare(data, eval, config)  # llmnb's own reading, checks and held-out split
    folder = script.parent
    folder.mkdir(parents=True, exist_ok=True)
    _write_conversations(folder / "train.jsonl", prepared.train_texts)
    if prepared.eval_texts:
        _write_conversations(folder / "eval.jsonl", prepared.eval_texts)
    source = _model_source(model, folder, config, task, result)
    settings = {
        **source,
        "train_file": "train.jsonl",
        "eval_file": "eval.jsonl" if prepared.eval_texts else None,
        **{name: getattr(config, name) for name in OPTIONS},
        **config.task_options,  # sft: train_on_prompt...; dpo: beta, rpo_alpha
        "chat_template": DEFAULT_CHAT_TEMPLATE,  # used only when the model's tokenizer has none, as in llmnb
        "lora_targets": _lora_targets(config, folder, source) if config.lora else None,
        "train_whole": list(LM_HEADS),  # under freeze, as in llmnb: the output layer trains with the top layers
        "dropout": dropout,
        "out": str(out),
    }
    (folder / "train_config.json").write_text(json.dumps(settings, indent=2) + "\n")
    script.write_text(CHAT_TEMPLATE.read_text())
    return script


def _write_conversations(path: Path, conversations):
    """One JSON line per example. A conversation: {"messages"}; a preference pair (two conversations):
    their shared messages as "prompt", then each side's own as "chosen" and "rejected" (prompt +
    chosen is what llmnb scored)."""
    with open(path, "w", encoding="utf-8") as f:
        for item in conversations:
            if not isinstance(item, tuple):
                row = {"messages": item}
            else:
                chosen, rejected = item
                shared = 0
                while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
                    shared += 1
                row = {"prompt": chosen[:shared], "chosen": chosen[shared:], "rejected": rejected[shared:]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def launch(script_path, num_processes: int = 2, timeout: float | None = None, args=(), echo: bool = True):
    """Run `python -m torch.distributed.run --standalone --nproc_per_node=N script` and wait.

    Output is printed as it comes (echo=False: only kept) and returned in a CompletedProcess.
    A failure raises `LaunchError` with the last lines of output; the kernel's stop button or
    `timeout` (seconds) stops every process of the run.

    Taught in chapter 7 (tutorials/07_tools.ipynb).
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
    """Stop the launcher and every worker it started: SIGTERM, which torchrun passes on to its
    workers, then SIGKILL for whatever is left. torchrun starts each worker in a session of its
    own, out of reach of the launcher's process group, so the workers are listed first (before
    the launcher dies and they are handed to init) and killed one by one."""
    import signal

    workers = _descendants(proc.pid)
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            break
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    if workers:
        import psutil

        for worker in workers:
            try:
                worker.kill()
            except psutil.NoSuchProcess:  # it stopped on the SIGTERM
                pass
        psutil.wait_procs(workers, timeout=5)  # SIGKILL takes effect a moment later on a busy machine


def _descendants(pid: int) -> list:
    """The processes under `pid` (psutil, installed with llmnb[lab]; without it, none are listed
    and the stop reaches only the launcher's group)."""
    try:
        import psutil
    except ImportError:
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:  # the launcher has already gone
        return []


def _lora_targets(config, folder, source):
    """The `target_modules` of the script's LoRA: the same layers as in the notebook run."""
    from llmnb.finetuning.strategies import LORA_TARGETS

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
    """How the script finds the starting weights (or, for 'tiny-bert' or 'tiny-llama', the config to build from)."""
    from llmnb.core.models import bundled_minilm_path, load_model, quiet_transformers

    if name in BUILT_FROM_CONFIG:  # random weights: ship the config and tokenizer, the script builds the model
        source = result if result is not None else load_model(name, task=task.name, device="cpu", seed=config.seed)
        with quiet_transformers():
            source.model.config.save_pretrained(folder / "base-model")
            source.tokenizer.save_pretrained(folder / "base-model")
        return {"model": "base-model", "from_config": True, "hub_id": None}
    if name == "minilm":
        return {"model": str(bundled_minilm_path()), "from_config": False, "hub_id": HUB_IDS["minilm"]}
    local = Path(name).expanduser()
    return {"model": str(local.resolve()) if local.exists() else name, "from_config": False, "hub_id": None}
