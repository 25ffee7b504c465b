"""gpu: model FLOP utilisation (MFU) of llmnb's training engine on a CUDA GPU, BERT-base sized.

    .venv/bin/python benchmarks/gpu.py                      # seq 128 and 512, 30 timed steps each
    .venv/bin/python benchmarks/gpu.py --seq 256 --steps 50 --tokens 32768
    .venv/bin/python benchmarks/gpu.py --smoke              # CPU, tiny model: checks the script runs

As a section of run.py (`run(quick)`): on a machine without a CUDA GPU it measures nothing and
says so; with one, seq 128 and 512 (quick: 15 timed steps x 2 rounds).

Nothing is downloaded: the model is `BertForSequenceClassification(BertConfig())` (BERT-base:
12 layers, 768 wide, 110 M parameters) with random weights, fed random token ids, every row
full length (no padding, so every token is a real one). Training: bf16 autocast, fused AdamW,
lr 1e-4, warmup + linear decay, clipping 1.0, as llmnb does on CUDA.

Contenders, interleaved per sequence length, the order rotating every round:
  plain    a hand-written loop (common.train_plain) with the same optimizer and autocast;
  llmnb    llmnb.core.engine.Engine with precision="bf16" (fused AdamW is its CUDA default);
  matmul   8192 x 8192 bf16 matrix products: the peak FLOP/s MFU divides by, measured here.

MFU = 6 x non-embedding parameters x tokens per second / matmul FLOP/s. The 6N count (forward 2N,
backward 4N) leaves out attention's own products (12 x layers x seq x hidden per token, shown as
"mfu_with_attention"), which matter at seq 512. Batches start on the CPU (as llmnb's collate
makes them) and are copied each step by both contenders. The last line is one JSON object.
"""
import argparse
import json
import sys
import time

import common  # noqa: F401  (offline environment first)
import torch  # noqa: E402
from common import (
    Section,
    interleave,
    median,
    non_embedding_parameters,
    paired_ratio,
    versions,
)
from engine import matmul_flops, train_plain
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

from llmnb.core.engine import Engine  # noqa: E402
from llmnb.finetuning.config import FineTuneConfig  # noqa: E402

LR = 1e-4
SETTINGS = {"quick": dict(seq=[128, 512], tokens=16384, steps=15, rounds=2), "full": dict(seq=[128, 512], tokens=16384, steps=30, rounds=3),
            "smoke": dict(seq=[32], tokens=128, steps=2, rounds=1)}


def make_batches(config, seq, rows, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "input_ids": torch.randint(1000, config.vocab_size, (rows, seq), generator=g),
            "attention_mask": torch.ones(rows, seq, dtype=torch.long),
            "labels": torch.randint(0, config.num_labels, (rows,), generator=g),
        }
        for _ in range(steps)
    ]


def measure(seq, rows, steps, rounds, device, model_config, warmup_steps=3):
    torch.manual_seed(0)
    template = BertForSequenceClassification(model_config).to(device)
    batches = make_batches(model_config, seq, rows, steps)
    tokens = steps * rows * seq
    n = non_embedding_parameters(template)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    precision = "bf16"
    fine_config = FineTuneConfig(
        lr=LR, max_steps=steps, batch_size=rows, precision=precision, early_stopping=None, eval_fraction=0,
        save_checkpoints=False, quiet=True, plot=False, device=device.type,
        log_every=10,  # a real run logs ~100 times in thousands of steps; 30 steps would log every step
    )

    def fresh():
        model = BertForSequenceClassification(model_config).to(device)
        model.load_state_dict(template.state_dict())
        torch.manual_seed(0)
        return model

    def run_plain():
        model = fresh()
        train_plain(model, batches[:warmup_steps], LR, autocast_dtype=torch.bfloat16, device=device, fused=True)  # kernels, allocator
        sync()
        start = time.perf_counter()
        train_plain(model, batches, LR, autocast_dtype=torch.bfloat16, device=device, fused=True)
        sync()
        return {"seconds": time.perf_counter() - start}

    def run_engine():
        model = fresh()
        Engine(model, fine_config.replace(max_steps=warmup_steps), lambda epoch: batches[:warmup_steps], warmup_steps).fit()
        sync()
        start = time.perf_counter()
        state = Engine(model, fine_config, lambda epoch: batches, steps).fit()
        sync()
        assert state.status == "finished", state.message
        return {"seconds": time.perf_counter() - start}

    def run_matmul():
        n_mm = 8192 if device.type == "cuda" else 512
        return {"seconds": 1.0, "flops": matmul_flops(torch.bfloat16, n=n_mm, seconds=1.0, device=device)}

    results = interleave({"plain": run_plain, "llmnb": run_engine, "matmul bf16": run_matmul}, rounds, f"seq {seq}")
    peak = median([r["flops"] for r in results["matmul bf16"]])
    achieved = {name: 6 * n * tokens / median([r["seconds"] for r in results[name]]) for name in ("plain", "llmnb")}
    attention = 12 * model_config.num_hidden_layers * seq * model_config.hidden_size * tokens
    engine_seconds = median([r["seconds"] for r in results["llmnb"]])
    del template
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "seq": seq,
        "rows": rows,
        "tokens_per_step": rows * seq,
        "mfu": achieved["llmnb"] / peak,
        "mfu_plain": achieved["plain"] / peak,
        "mfu_with_attention": (achieved["llmnb"] + attention / engine_seconds) / peak,
        "overhead_vs_plain": paired_ratio(results, "llmnb", "plain"),
        "tokens_per_s": tokens / engine_seconds,
        "achieved_tflops": achieved["llmnb"] / 1e12,
        "peak_bf16_tflops": peak / 1e12,
        "non_embedding_params": n,
    }


def no_gpu_reason() -> str | None:
    if torch.cuda.is_available():
        return None if torch.cuda.is_bf16_supported() else f"{torch.cuda.get_device_name()} does not support bf16, which this measures"
    return (f"no CUDA GPU here (torch.cuda.is_available() is False; torch {torch.__version__}, CUDA build: "
            f"{torch.version.cuda or 'no'}): nothing measured; run benchmarks/gpu.py on a machine with an NVIDIA GPU")


def measure_all(seqs, tokens, steps, rounds, device, model_config) -> list[dict]:
    return [measure(seq, max(1, tokens // seq), steps, rounds, device, model_config) for seq in seqs]


def run(quick: bool) -> Section:
    reason = no_gpu_reason() if common.mode(quick) != "smoke" else None
    if reason:
        return Section({"gpu": "no GPU"}, [], reason)
    settings = common.pick(SETTINGS, quick)
    if common.mode(quick) == "smoke":
        device, model_config = torch.device("cpu"), BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=2,
                                                              intermediate_size=128, num_labels=2)
    else:
        device, model_config = torch.device("cuda"), BertConfig(num_labels=2)
        torch.backends.cuda.matmul.allow_tf32 = True
    rows = measure_all(settings["seq"], settings["tokens"], settings["steps"], settings["rounds"], device, model_config)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (smoke test)"
    summary = {
        "gpu": name,
        "gpu_mfu": {r["seq"]: round(r["mfu"], 4) for r in rows},
        "gpu_mfu_with_attention": {r["seq"]: round(r["mfu_with_attention"], 4) for r in rows},
        "gpu_overhead_vs_plain": {r["seq"]: round(r["overhead_vs_plain"], 4) for r in rows},
    }
    timed = (f"BERT-base from BertConfig() on {name}, bf16 autocast, fused AdamW: Engine vs a plain loop and a bf16 matmul peak, "
             f"seq {settings['seq']}, {settings['steps']} steps x {settings['rounds']} round(s)")
    return Section(summary, rows, timed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq", type=int, nargs="+", default=[128, 512], help="sequence lengths (default 128 512)")
    parser.add_argument("--tokens", type=int, default=16384, help="tokens per step (rows = tokens // seq)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per contender and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="CPU, 2-layer model, 2 steps: checks the script runs (numbers meaningless)")
    args = parser.parse_args()

    if args.smoke:
        device = torch.device("cpu")
        model_config = BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128, num_labels=2)
        args.seq, args.tokens, args.steps, args.rounds = [32], 128, 2, 1
    else:
        if not torch.cuda.is_available():
            sys.exit(
                "benchmarks/gpu.py needs a CUDA GPU, and torch sees none here (torch.cuda.is_available() is False; "
                f"torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Nothing was measured. "
                "Run it on a machine with an NVIDIA GPU, or use benchmarks/run.py for the CPU numbers."
            )
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = True  # the fp32 parts (optimizer, master weights) as a user would run them
        model_config = BertConfig(num_labels=2)  # BERT-base defaults
        if not torch.cuda.is_bf16_supported():
            sys.exit(f"benchmarks/gpu.py measures bf16 training, which {torch.cuda.get_device_name()} does not support.")

    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (smoke test)"
    print(f"llmnb GPU benchmark on {name}: BERT-base from BertConfig(), bf16 autocast, fused AdamW", flush=True)
    rows = measure_all(args.seq, args.tokens, args.steps, args.rounds, device, model_config)

    print(f"\n{'seq':>5}{'rows':>6}{'tokens/s':>12}{'TFLOP/s':>9}{'peak':>8}{'MFU':>7}{'MFU+attn':>10}{'plain MFU':>11}{'llmnb/plain':>13}")
    for r in rows:
        print(f"{r['seq']:>5}{r['rows']:>6}{r['tokens_per_s']:>12.0f}{r['achieved_tflops']:>9.1f}{r['peak_bf16_tflops']:>8.1f}"
              f"{r['mfu']:>7.3f}{r['mfu_with_attention']:>10.3f}{r['mfu_plain']:>11.3f}{r['overhead_vs_plain']:>13.3f}")
    summary = {
        "device": name,
        "mfu": {r["seq"]: round(r["mfu"], 4) for r in rows},
        "mfu_with_attention": {r["seq"]: round(r["mfu_with_attention"], 4) for r in rows},
        "overhead_vs_plain": {r["seq"]: round(r["overhead_vs_plain"], 4) for r in rows},
        "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
        "precision": "bf16 autocast, fused AdamW; peak = bf16 matmul",
        "steps": args.steps,
        "rounds": args.rounds,
        "date": time.strftime("%Y-%m-%d"),
        "versions": {**versions(), "cuda": torch.version.cuda},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
