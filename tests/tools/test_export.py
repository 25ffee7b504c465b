"""llmnb.tools.export: a standalone DDP training script, run as 1 and as 2 processes (tiny BERT, 5 steps)."""
import ast
import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from easy_data import make_easy_sentiment

import llmnb
from llmnb.finetuning.config import FineTuneConfig
from llmnb.tools.export import ExportError, LaunchError, export_script, launch

# 160 rows, 16 held out: 144 training rows = 18 full batches of 8, so no ragged last batch.
OPTIONS = dict(max_steps=5, batch_size=8, lr=2e-3, seed=7, warmup=0.2, quiet=True, save_checkpoints=False, early_stopping=None)


def assert_leaves_before_teardown(source):
    """With several processes, main() ends with os._exit after end_training. Freeing the DDP model
    when main() returns can deadlock in gloo's teardown: before, 2 of 42 two-process runs on a busy
    CPU hung there after saving. One process returns (it may be a kernel running the script)."""
    main_body = source[source.index("def main("):source.index('if __name__ == "__main__":')]
    ending = main_body[main_body.index("accelerator.end_training()"):]
    assert "if n > 1:" in ending and ending.rstrip().endswith("os._exit(0)")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    rows = make_easy_sentiment(160, seed=0)
    ft = llmnb.finetune("tiny-bert", rows, **OPTIONS)
    script = export_script(ft, tmp_path_factory.mktemp("job") / "train.py", data=rows, dropout=0.0)
    return ft, script


def test_script_config_and_data_are_written(job):
    ft, script = job
    folder = script.parent
    source = script.read_text()
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert "llmnb" not in imported and {"torch", "accelerate", "transformers"} <= imported
    assert "Accelerator(" in source and "save_pretrained" in source
    assert_leaves_before_teardown(source)
    cfg = json.loads((folder / "train_config.json").read_text())
    assert cfg["labels"] == ["negative", "positive"] and cfg["max_steps"] == 5 and cfg["batch_size"] == 8
    assert cfg["seed"] == 7 and cfg["dropout"] == 0.0 and cfg["from_config"] is True
    assert (folder / cfg["model"] / "config.json").exists() and (folder / cfg["model"] / "tokenizer.json").exists()
    train = list(csv.DictReader(open(folder / "train.csv")))
    held = list(csv.DictReader(open(folder / "eval.csv")))
    assert (len(train), len(held)) == (ft.train_size, ft.eval_size) == (144, 16)  # llmnb's own split
    assert {r["label"] for r in train} == {"negative", "positive"}


@pytest.mark.slow  # two training processes and one more, each in a fresh interpreter (about a minute)
def test_two_processes_match_one_and_load_with_llmnb(job):
    ft, script = job
    folder = script.parent
    single = subprocess.run([sys.executable, str(script), "--out", "one"], cwd=folder, capture_output=True, text=True, timeout=500)
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-2000:]
    assert "1 process(es)" in single.stdout and "step 5/5" in single.stdout
    double = launch(script, num_processes=2, timeout=500, args=["--out", "two"], echo=False)
    assert "2 process(es)" in double.stdout and "4 per process" in double.stdout
    assert json.loads((folder / "two" / "train_summary.json").read_text())["processes"] == 2

    one, two = (llmnb.load_model(str(folder / name), device="cpu") for name in ("one", "two"))
    assert one.model.config.id2label == two.model.config.id2label == {0: "negative", 1: "positive"}
    assert (folder / "two" / "model.safetensors").exists()
    start = llmnb.load_model("tiny-bert", num_labels=2, seed=7, device="cpu").model.state_dict()
    a, b = one.model.state_dict(), two.model.state_dict()
    moved = max(float((a[k] - start[k]).abs().max()) for k in a)
    gap = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved > 1e-3, "training did not change the weights"
    assert gap < 1e-4, f"2-process weights differ from 1-process by {gap} (trained weights moved {moved})"
    batch = one.tokenizer(["the staff were wonderful"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(one.model(**batch).logits, two.model(**batch).logits, atol=1e-4)


def test_one_process_returns_to_its_caller_as_under_percent_run(job):
    # A notebook may `%run train.py` in its kernel: the script must not end that process.
    _, script = job
    caller = ("import runpy, sys; sys.argv = ['train.py', '--out', 'in-caller']; "
              "runpy.run_path('train.py', run_name='__main__'); print('back in the caller')")
    done = subprocess.run([sys.executable, "-c", caller], cwd=script.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "saved to" in done.stdout and done.stdout.rstrip().endswith("back in the caller")


def test_launch_failure_shows_the_tail(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import sys\nprint('loading the data... marker-42', flush=True)\nsys.exit(3)\n")
    with pytest.raises(LaunchError, match="marker-42") as caught:
        launch(script, num_processes=1, timeout=300, echo=False)
    assert "broken.py failed" in str(caught.value)


@pytest.mark.slow  # torchrun starts, the run times out, the launcher gets its 10 s to stop (about 45 s)
def test_a_timeout_stops_even_a_worker_that_ignores_sigterm(tmp_path):
    psutil = pytest.importorskip("psutil")
    script, pid_file = tmp_path / "stubborn.py", tmp_path / "worker.pid"
    # torchrun starts each worker in a session of its own, so killing the launcher's process group
    # does not reach it; a worker that does not stop on SIGTERM (stuck in C++, or trapping it) was left.
    script.write_text(
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "print('worker up', flush=True)\n"
        "time.sleep(600)\n")
    with pytest.raises(LaunchError, match="ran past timeout"):
        launch(script, num_processes=1, timeout=30, echo=False)
    worker = int(pid_file.read_text())
    try:
        state = psutil.Process(worker).status()
    except psutil.NoSuchProcess:
        state = "gone"
    assert state in ("gone", psutil.STATUS_ZOMBIE), f"the worker {worker} is still {state}"


def test_misuse_is_explained(tmp_path, job):
    ft, _ = job
    with pytest.raises(ExportError, match="training data"):
        export_script(ft, tmp_path / "train.py")
    with pytest.raises(ExportError, match=r"\.py"):
        export_script(ft, tmp_path / "train.txt", data=make_easy_sentiment(20))
    (tmp_path / "mine.py").write_text("print('my own work')\n")
    with pytest.raises(ExportError, match="not written by export_script"):
        export_script(ft, tmp_path / "mine.py", data=make_easy_sentiment(20))
    with pytest.raises(ExportError, match="labels"):
        export_script(ft, tmp_path / "t.py", data=[{"text": t, "label": l} for t, l in [("a b", "x"), ("c d", "y")] * 10])
    with pytest.raises(ExportError, match="No script"):
        launch(tmp_path / "missing.py")
    # A causal-LM or seq2seq run is refused before anything is written (it used to get a classification script).
    for task in ("causal-lm", "seq2seq"):
        with pytest.raises(ExportError, match=f"task is '{task}'.*Nothing was written"):
            export_script(FineTuneConfig(task=task), tmp_path / task / "train.py", data=make_easy_sentiment(20))
        assert not (tmp_path / task).exists()
    with pytest.raises(ExportError, match="num_processes"):
        launch(tmp_path / "mine.py", num_processes=0)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _trained_tensors(folder, start):
    """Names of the weights that a saved model changed, against the starting weights `start`."""
    after = llmnb.load_model(str(folder), device="cpu").model.state_dict()
    assert set(after) == set(start), "the saved model should be a plain BERT classifier"
    return {k for k in start if not torch.equal(start[k], after[k])}


@pytest.mark.slow  # two processes started by the real torchrun command (20-90 s on 2 busy cores)
def test_torchrun_runs_an_exported_lora_job_whose_model_loads(tmp_path):
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("no torchrun beside this Python")
    rows = make_easy_sentiment(160, seed=0)
    ft = llmnb.finetune("tiny-bert", rows, **{**OPTIONS, "lora": True, "lr": 1e-2})
    script = export_script(ft, tmp_path / "job" / "train.py", data=rows, dropout=0.0)
    cfg = json.loads((script.parent / "train_config.json").read_text())
    assert cfg["lora"] is True and cfg["lora_targets"] == "all-linear" and cfg["lr"] == 1e-2
    # The command of the issue, `torchrun --nproc_per_node=2 train.py`, on a free port (tests may run side by side).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run([str(torchrun), f"--master_port={_free_port()}", "--nproc_per_node=2", "train.py"],
                         cwd=script.parent, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "2 process(es)" in run.stdout and "(LoRA r=8)" in run.stdout and "step 5/5" in run.stdout
    assert "Writing model shards" not in run.stdout + run.stderr
    # Saved merged: a plain model for llmnb.load_model. The adapters moved the blocks' Linear weights
    # (not their biases, LayerNorms or the embeddings); the pooler and head trained whole.
    start = llmnb.load_model("tiny-bert", num_labels=2, seed=7, device="cpu").model.state_dict()
    changed = _trained_tensors(script.parent / "model", start)
    for name in ("query.weight", "key.weight", "value.weight", "intermediate.dense.weight"):
        assert any(k.endswith(name) for k in changed), name
    assert any(k.startswith("classifier.") for k in changed) and any(k.startswith("bert.pooler.") for k in changed)
    assert not any(k.startswith("bert.encoder.") and (k.endswith(".bias") or "LayerNorm" in k) for k in changed)
    assert not any(k.startswith("bert.embeddings.") for k in changed)
    assert json.loads((script.parent / "model" / "train_summary.json").read_text())["processes"] == 2


@pytest.mark.slow  # a training script in a fresh process (10 s quiet, minutes on 2 busy cores)
def test_exported_freeze_job_trains_only_the_top_layer(tmp_path):
    rows = make_easy_sentiment(160, seed=0)
    config = llmnb.FineTuneConfig(**{**OPTIONS, "freeze": 1})
    script = export_script(config, tmp_path / "train.py", data=rows, model="tiny-bert", dropout=0.0)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "(top 1 layers + head)" in run.stdout
    start = llmnb.load_model("tiny-bert", num_labels=2, seed=7, device="cpu").model.state_dict()
    changed = _trained_tensors(tmp_path / "model", start)
    assert any(k.startswith("bert.encoder.layer.1.") for k in changed) and any(k.startswith("classifier.") for k in changed)
    assert not any(k.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for k in changed)


def test_finetune_magic_exports_the_run(shell, tmp_path):
    from IPython.core.error import UsageError

    shell.user_ns["export_rows"] = make_easy_sentiment(160, seed=0)
    target = tmp_path / "job" / "train.py"
    shell.run_line_magic("finetune", f"tiny-bert export_rows --max-steps 2 --batch-size 8 --quiet --no-save-checkpoints --name exp --export {target}")
    assert shell.user_ns["exp"].state.step == 2
    cfg = json.loads((target.parent / "train_config.json").read_text())
    assert target.exists() and cfg["max_steps"] == 2 and cfg["batch_size"] == 8
    with pytest.raises(UsageError, match=r"\.py"):
        shell.run_line_magic("finetune", f"tiny-bert export_rows --max-steps 1 --quiet --export {tmp_path / 'job.txt'}")


# ---------------------------------------------------------------------- sft and dpo: the chat script
COLOURS = ["red", "blue", "green", "pink", "white", "brown"]
NAMES = ["Mia", "Tom", "Ben", "Ivy", "Zoe", "Sam", "Max", "Ella"]
DATA = [{"prompt": f"{n} had a {c} ball. What colour was the ball?", "completion": f"{c.capitalize()}."} for n in NAMES for c in COLOURS]
PAIRS = [
    {"prompt": f"{name} had a {colour} ball. What colour was the ball?", "chosen": f"{colour.capitalize()}.",
     "rejected": f"Well, it was a ball, and {name} had it, and maybe it was {other}, who knows."}
    for name in ("Mia", "Tom", "Ben", "Ivy", "Zoe", "Sam") for colour, other in (("red", "blue"), ("green", "pink"), ("white", "brown"))
]
CHAT = dict(lr=3e-3, seed=7, log_every=1, save_checkpoints=False, quiet=True)


@pytest.fixture(scope="module")
def sft_job(tmp_path_factory):
    ft = llmnb.finetune("tiny-llama", DATA, task="sft", max_steps=10, batch_size=8, eval_generate=0, **CHAT)
    return ft, export_script(ft, tmp_path_factory.mktemp("sft") / "train.py", data=DATA)


def _run_script(script, *command):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, *command, script.name], cwd=script.parent, env=env, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run.stdout


def _logged_losses(stdout):
    import re

    return [float(loss) for loss in re.findall(r"^step \d+/\d+  loss ([0-9.]+)", stdout, re.M)]


def _import_script(script):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"exported_{script.parent.name}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_sft_export_writes_the_conversations_llmnb_trained_on(sft_job):
    from llmnb.instruct.chat import DEFAULT_CHAT_TEMPLATE, to_conversation
    from llmnb.tools.export import MARKER

    ft, script = sft_job
    folder = script.parent
    assert MARKER in script.read_text().splitlines()[0] and "import llmnb" not in script.read_text()
    assert_leaves_before_teardown(script.read_text())
    train, held = _jsonl(folder / "train.jsonl"), _jsonl(folder / "eval.jsonl")
    assert (len(train), len(held)) == (ft.train_size, ft.eval_size) == (43, 5)  # llmnb's own held-out split
    everything = [to_conversation(row) for row in DATA]
    assert all(row["messages"] in everything for row in train + held)
    assert {json.dumps(r) for r in train}.isdisjoint(json.dumps(r) for r in held) and len(train + held) == len(DATA)
    cfg = json.loads((folder / "train_config.json").read_text())
    assert cfg["task"] == "sft" and cfg["train_on_prompt"] is False and cfg["from_config"] is True and cfg["max_steps"] == 10
    assert cfg["chat_template"] == DEFAULT_CHAT_TEMPLATE and cfg["train_file"] == "train.jsonl"
    assert (folder / cfg["model"] / "config.json").exists()


def test_the_script_masks_the_prompt_and_trains_each_end_token_as_llmnb_does(sft_job):
    import transformers

    from llmnb.instruct.chat import IGNORE, tokenize_conversation

    _, script = sft_job
    module = _import_script(script)
    cfg = json.loads((script.parent / "train_config.json").read_text())
    tokenizer = transformers.AutoTokenizer.from_pretrained(script.parent / cfg["model"])
    tokenizer.pad_token = tokenizer.eos_token  # pad == eos, as for most causal LMs: labels must not go by token id
    messages = [{"role": "user", "content": "Mia had a red ball. What colour?"}, {"role": "assistant", "content": "Red."},
                {"role": "user", "content": "And Tom's?"}, {"role": "assistant", "content": "Blue."}]
    ids, labels = module.encode_conversation(tokenizer, messages, cfg)
    assert (ids, labels) == tokenize_conversation(tokenizer, messages, cfg["max_length"])  # llmnb's own masking
    trained = [i for i, label in zip(ids, labels) if label != IGNORE]
    assert tokenizer.decode(trained) == "red. [SEP] blue. [SEP]"  # both answers and both end tokens, no prompt
    assert labels[ids.index(tokenizer.encode("mia", add_special_tokens=False)[0])] == IGNORE
    # Padding with the end token itself: the padded positions are skipped, the answer's end token is not.
    short = {"ids": [ids[:6]], "labels": [labels[:6]]}
    batch = module.collate([{"ids": [ids], "labels": [labels]}, short], tokenizer.pad_token_id)
    assert batch["labels"][0, 0].tolist() == labels and batch["labels"][0, 0, -1] == tokenizer.eos_token_id
    assert (batch["labels"][1, 0, 6:] == IGNORE).all() and (batch["input_ids"][1, 0, 6:] == tokenizer.eos_token_id).all()
    assert batch["attention_mask"][1, 0].tolist() == [1] * 6 + [0] * (len(ids) - 6)
    with pytest.raises(SystemExit, match="Row 0 of train.jsonl has no answer token left.*max_length=8"):
        module.encode([{"messages": messages}], tokenizer, {**cfg, "max_length": 8}, "train.jsonl")
    everything = module.encode_conversation(tokenizer, messages, {**cfg, "train_on_prompt": True})[1]
    assert everything[0] == IGNORE and IGNORE not in everything[1:]


@pytest.mark.slow  # the script in a fresh process (10-40 s on 2 busy cores)
def test_exported_sft_script_trains_and_saves_a_model_that_chats(sft_job):
    import transformers

    from llmnb.instruct.chat import DEFAULT_CHAT_TEMPLATE

    _, script = sft_job
    stdout = _run_script(script)
    assert "sft: 43 examples, 10 steps of 8" in stdout
    losses = _logged_losses(stdout)
    assert len(losses) == 10 and losses[-1] < 0.9 * losses[0], losses
    out = script.parent / "model"
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == "llama" and tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 10 and summary["eval_loss"] < losses[0]


@pytest.mark.slow  # a DPO run in llmnb, then its script in a fresh process
def test_exported_dpo_script_starts_at_log_2_and_the_loss_falls(tmp_path):
    import math

    ft = llmnb.finetune("tiny-llama", PAIRS, eval=PAIRS[:6], task="dpo", beta=0.5, max_steps=4, batch_size=6, **CHAT)
    script = export_script(ft, tmp_path / "dpo" / "train.py", data=PAIRS, eval=PAIRS[:6])
    first = _jsonl(script.parent / "train.jsonl")[0]
    assert first == {"prompt": [{"role": "user", "content": PAIRS[0]["prompt"]}],
                     "chosen": [{"role": "assistant", "content": "Red."}],
                     "rejected": [{"role": "assistant", "content": PAIRS[0]["rejected"]}]}
    assert len(_jsonl(script.parent / "eval.jsonl")) == 6
    assert json.loads((script.parent / "train_config.json").read_text())["beta"] == 0.5
    stdout = _run_script(script)
    losses = _logged_losses(stdout)
    assert losses[0] == pytest.approx(math.log(2), abs=0.01)  # the policy is the reference at the first step
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0], losses
    assert "reward_accuracy 1.00" in [line for line in stdout.splitlines() if line.startswith("step")][-1]
    summary = json.loads((script.parent / "model" / "train_summary.json").read_text())
    assert summary["eval_reward_accuracy"] == 1.0 and summary["eval_loss"] < 0.5 * math.log(2)


@pytest.mark.slow  # two processes started by torchrun (20-90 s on 2 busy cores)
def test_torchrun_runs_an_exported_lora_sft_job_whose_merged_model_loads(tmp_path):
    import transformers

    config = FineTuneConfig(task="sft", lora=True, max_steps=3, batch_size=8, lr=1e-2, seed=7, quiet=True)
    script = export_script(config, tmp_path / "lora" / "train.py", data=DATA, model="tiny-llama")
    stdout = _run_script(script, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
    assert "2 process(es)" in stdout and "(LoRA r=8)" in stdout and "step 3/3" in stdout
    out = script.parent / "model"
    assert not (out / "adapter_config.json").exists()  # merged: a plain model
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name in model.state_dict())
    assert json.loads((out / "train_summary.json").read_text())["processes"] == 2


def test_a_run_from_a_model_in_memory_needs_a_saved_model(tmp_path):
    gpt = llmnb.pretrain(corpus_chars=20_000, max_steps=1, block_size=64, vocab_size=300, quiet=True)
    ft = llmnb.finetune(gpt, DATA[:24], task="sft", max_steps=1, batch_size=8, eval_generate=0, save_checkpoints=False, quiet=True)
    with pytest.raises(ExportError, match=r'in memory.*gpt\.save\("gpt"\).*model="gpt".*Nothing was written'):
        export_script(ft, tmp_path / "job" / "train.py", data=DATA[:24])
    assert not (tmp_path / "job").exists()
    # A DPO run from that SFT result: its name is the base's, its starting weights the SFT run's.
    aligned = llmnb.finetune(ft, PAIRS[:6], task="dpo", max_steps=1, batch_size=6, save_checkpoints=False, quiet=True)
    assert aligned.config.max_length == 64  # capped at the GPT's context: longer rows would index past its positions
    with pytest.raises(ExportError, match="in memory"):
        export_script(aligned, tmp_path / "job" / "train.py", data=PAIRS[:6])
    assert not (tmp_path / "job").exists()
    gpt.save(tmp_path / "gpt")
    script = export_script(ft, tmp_path / "job" / "train.py", data=DATA[:24], model=str(tmp_path / "gpt"))
    cfg = json.loads((script.parent / "train_config.json").read_text())
    assert cfg["model"] == str(tmp_path / "gpt") and cfg["from_config"] is False
    with pytest.raises(ExportError, match="causal language model"):
        export_script(FineTuneConfig(task="dpo"), tmp_path / "x" / "train.py", data=PAIRS)
