"""Which weights to train, measured: full fine-tuning, the top layers only (`freeze`), LoRA.

    .venv/bin/python benchmarks/strategies.py --quick    # full, freeze=2, LoRA; one seed (3 min, 2 CPU-minutes)
    .venv/bin/python benchmarks/strategies.py            # + freeze=1, LoRA on query/value only, LoRA at
                                                         #   full fine-tuning's lr; seeds 42, 7, 1
    .venv/bin/python benchmarks/strategies.py --smoke    # 2 steps each: checks that it runs

Every contender is `llmnb.finetune("minilm", <the 480 bundled training reviews>, **options)` with
llmnb's defaults (4 epochs, batch 16, bf16 where the CPU has it) and the strategy's own default
learning rate (1e-4; LoRA 2e-3, adapters on every Linear layer of the blocks), trained on all 480 reviews with no validation split
(eval_fraction=0, so there is no per-epoch evaluation and no choice of a best checkpoint): the
accuracy is that of the final weights on the 240 test reviews, the same protocol for every row.

Each run is a fresh child process (so that its peak memory is its own); runs are interleaved,
one round per seed, the order of the contenders rotating every round (see benchmarks/common.py).
Per run, measured inside the child around the `finetune` call (imports, loading the model and
the test evaluation excluded): wall seconds, CPU seconds (user + system of every thread: the
fairer number when other work shares the cores), and memory: VmHWM (peak resident set) of the
process, and how far it rose above the resident set just before the call, with the model loaded
(gradients, optimizer state, activations: what the strategy changes).

The table is printed at the end, then one JSON line with every run. Results and the machine
they came from: docs/performance.md, "Which weights train".
"""
import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys
import time  # noqa: E402

import common  # noqa: F401  (offline environment, this checkout's llmnb on sys.path)
from common import Section, cpu_name, set_threads, versions  # noqa: I001

CONTENDERS = {
    "full": {},
    "freeze=2": {"freeze": 2},
    "freeze=1": {"freeze": 1},
    "lora": {"lora": True},
    "lora qv": {"lora": True, "lora_targets": "qv"},
    "lora lr=1e-4": {"lora": True, "lr": 1e-4},
    "lora dropout=0": {"lora": True, "lora_dropout": 0.0},  # not in the default set: --only "lora dropout=0"
}
SETTINGS = {
    "quick": {"contenders": ["full", "freeze=2", "lora"], "seeds": [42], "options": {}},
    "full": {"contenders": ["full", "freeze=2", "freeze=1", "lora", "lora qv", "lora lr=1e-4"], "seeds": [42, 7, 1], "options": {}},
    "smoke": {"contenders": ["full", "freeze=2", "lora"], "seeds": [42], "options": {"max_steps": 2}},
}

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
import llmnb, llmnb.datasets

def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":")) / 1024

options = json.loads(sys.argv[2])
train, test = llmnb.datasets.load("reviews"), llmnb.datasets.load("reviews", "test")
model = llmnb.load_model("minilm", device="cpu", seed=options["seed"])  # loaded (and its head seeded) outside the timing
rss_before = status("VmRSS")
wall, cpu = time.perf_counter(), time.process_time()
ft = llmnb.finetune(model, train, eval_fraction=0, quiet=True, save_checkpoints=False, **options)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork + exec.
peak = status("VmHWM")
accuracy = ft.evaluate(test)["eval_accuracy"]
print(json.dumps({
    "accuracy": accuracy, "trainable": ft.trainable_parameters, "total": ft.total_parameters, "lr": ft.config.lr,
    "steps": ft.state.step, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "rise_mb": peak - rss_before,
    "precision": str(llmnb.core.engine.choose_precision(ft.config.precision, torch.device("cpu"))),
}))
"""


def run_child(threads, options, timeout=3600):
    env = {**os.environ, "PYTHONPATH": str(common.ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(threads), json.dumps(options)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=common.ROOT)
    if done.returncode:
        raise RuntimeError(f"child process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(runs, names) -> str:
    head = f"{'strategy':<16} {'test accuracy':>22} {'trainable':>17} {'lr':>7} {'wall s':>7} {'CPU s':>7} {'peak RSS MB':>12} {'rise MB':>8}"
    lines = [head, "-" * len(head)]
    for name in names:
        rows = [r for r in runs if r["strategy"] == name]
        acc = [r["accuracy"] for r in rows]
        spread = f" ({min(acc):.3f}-{max(acc):.3f})" if len(acc) > 1 else ""
        share = rows[0]["trainable"] / rows[0]["total"]
        mid = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
        lines.append(
            f"{name:<16} {statistics.mean(acc):>7.3f}{spread:>15} {rows[0]['trainable'] / 1e6:>7.3f} M {share:>6.2%} {rows[0]['lr']:>7g} "
            f"{mid('wall_s'):>7.0f} {mid('cpu_s'):>7.0f} {mid('peak_rss_mb'):>12.0f} {mid('rise_mb'):>8.0f}"
        )
    return "\n".join(lines)


def measure(names, seeds, threads, options) -> list[dict]:
    """One child run per contender and seed, the order of the contenders rotating every seed."""
    runs = []
    for r, seed in enumerate(seeds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            row = {"strategy": name, "seed": seed, **run_child(threads, {**CONTENDERS[name], **options, "seed": seed})}
            runs.append(row)
            print(f"  seed {seed:<3} {name:<16} accuracy {row['accuracy']:.4f}  trainable {row['trainable']:,} of {row['total']:,}  "
                  f"lr {row['lr']:g}  {row['steps']} steps  wall {row['wall_s']:.1f} s  CPU {row['cpu_s']:.1f} s  "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB (+{row['rise_mb']:.0f})  {row['precision']}", flush=True)
    return runs


def run(quick: bool) -> Section:
    """The quick / full / smoke set of contenders and seeds, as a section of run.py (--only strategies)."""
    import torch

    settings = SETTINGS[common.mode(quick)]
    names = settings["contenders"]
    runs = measure(names, settings["seeds"], torch.get_num_threads(), settings["options"])
    summary = {"strategies": {name: {"accuracy": round(statistics.mean(r["accuracy"] for r in runs if r["strategy"] == name), 4),
                                     "cpu_s": round(statistics.median(r["cpu_s"] for r in runs if r["strategy"] == name), 1),
                                     "rise_mb": round(statistics.median(r["rise_mb"] for r in runs if r["strategy"] == name))}
                              for name in names}}
    timed = f"llmnb.finetune with {', '.join(names)} on MiniLM, seeds {settings['seeds']}, each in a fresh process"
    return Section(summary, runs, timed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="full, freeze=2 and LoRA, one seed")
    parser.add_argument("--smoke", action="store_true", help="2 steps of each (checks that it runs; numbers meaningless)")
    parser.add_argument("--only", default=None, help=f"comma-separated contenders, from: {', '.join(CONTENDERS)}")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: 42 with --quick, else 42,7,1)")
    parser.add_argument("--threads", default="auto", help="torch threads per run (default auto: 1 on a machine busier than its cores)")
    args = parser.parse_args()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings = SETTINGS[mode]
    names = args.only.split(",") if args.only else settings["contenders"]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {unknown}; choose from {list(CONTENDERS)}")
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else settings["seeds"]
    threads, load = set_threads(args.threads)
    print(f"strategies ({mode}): {', '.join(names)}; seeds {seeds}; {threads} thread(s), load average {load:.1f}, {cpu_name()}", flush=True)
    started = time.perf_counter()
    runs = measure(names, seeds, threads, settings["options"])
    print()
    print(table(runs, names))
    print(f"\n{len(runs)} runs in {time.perf_counter() - started:.0f} s; load average now {os.getloadavg()[0]:.1f}")
    print(json.dumps({"date": datetime.date.today().isoformat(), "mode": mode, "threads": threads, "cpu": cpu_name(), **versions(), "runs": runs}))


if __name__ == "__main__":
    main()
