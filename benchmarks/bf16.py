"""bf16: what bf16 autocast buys on this CPU, per training step and for a whole fine-tune, and what
it costs in accuracy.

    .venv/bin/python benchmarks/bf16.py [--quick]

Per step: the Engine in bf16 with a plain fp32 loop in lockstep beside it, set against engine.py's
Engine in fp32 with its own plain fp32 companion (each engine's time relative to its companion, so
the two runs compare despite the machine's drift); the plain loops' own fp32 / bf16 ratio with
fused and with foreach AdamW; a 2048 x 2048 bf16 matmul (the peak of mfu_bf16). Whole fine-tune:
llmnb.finetune in fp32 and in bf16 on the bundled reviews, test accuracy recomputed afterwards (the
fine-tunes of trainer.py, run once per process with the Trainer between them).
"""
from __future__ import annotations

import functools

import common
import engine
import torch
import trainer
from common import Section, interleave, median, spread, values

import llmnb.core.engine

SETTINGS = {"quick": dict(rounds=3, deadline=260), "full": dict(rounds=5, deadline=None), "smoke": dict(rounds=1, deadline=None)}


@functools.cache
def bf16_rounds(quick: bool):
    """Per round: Engine bf16 with a plain fp32 loop in lockstep, and the bf16 matmul peak (run once)."""
    settings = common.pick(SETTINGS, quick)
    bench, fp32 = engine.fp32_rounds(quick)  # the same batches
    contenders = {
        "engine bf16": lambda: bench.engine("bf16", {"plain": engine.COMPANIONS["plain"]}),
        "matmul bf16": lambda: {"seconds": 1.0, "flops": engine.matmul_flops(torch.bfloat16)},
    }
    rounds = min(settings["rounds"], len(fp32["engine fp32"]))
    return bench, fp32, interleave(contenders, rounds, "bf16", deadline=common.deadline(settings["deadline"], quick))


def run(quick: bool) -> Section:
    bench, fp32, results = bf16_rounds(quick)
    a, c = fp32["engine fp32"], results["engine bf16"]
    speedup = [(x["seconds"] / x["plain s"]) / (y["seconds"] / y["plain s"]) for x, y in zip(a, c)]
    flops = 6 * common.non_embedding_parameters(bench.template) * bench.tokens
    peak = median(values(results, "matmul bf16", "flops"))
    achieved = flops / median([r["seconds"] for r in c])
    tunes = trainer.finetune_rounds(quick)
    delta = [b - f for b, f in zip(values(tunes, "llmnb bf16", "accuracy"), values(tunes, "llmnb fp32", "accuracy"))]
    whole = [f / b for f, b in zip(values(tunes, "llmnb fp32"), values(tunes, "llmnb bf16"))]
    auto = llmnb.core.engine.choose_precision("auto", torch.device("cpu"))
    summary = {
        "bf16_speedup": median(speedup),
        "bf16_spread": spread(speedup),
        "bf16_plain_speedup": median([r["plain foreach s"] / r["plain bf16 foreach s"] for r in a]),
        "bf16_speedup_fused": median([r["plain s"] / r["plain bf16 s"] for r in a]),
        "mfu_bf16": achieved / peak,
        "achieved_gflops": {"bf16": round(achieved / 1e9, 2)},
        "peak_gflops": {"bf16": round(peak / 1e9, 2)},
        "bf16_accuracy_delta": median(delta),
        "bf16_accuracy_deltas": delta,
        "bf16_finetune_speedup": median(whole),
        "precision_auto_cpu": str(auto).replace("torch.", "") if auto else "fp32",
        "cpu_bf16_flags": common.cpu_flags("avx512_bf16", "amx_bf16", "amx_tile"),
    }
    accuracy = {name: round(median(values(tunes, name, "accuracy")), 4) for name in ("llmnb fp32", "llmnb bf16")}
    notes = {
        "bf16_speedup": ("Engine step time fp32 / bf16 autocast",
                         f"per round {summary['bf16_spread']}; plain loops {summary['bf16_speedup_fused']:.3f} with fused AdamW "
                         f"(foreach {summary['bf16_plain_speedup']:.3f}); fine-tune wall {summary['bf16_finetune_speedup']:.3f}; "
                         f"mfu_bf16 {summary['mfu_bf16']:.3f} ({achieved / 1e9:.2f} of {peak / 1e9:.2f} GFLOP/s)"),
        "bf16_accuracy_delta": ("test accuracy, bf16 - fp32 fine-tune",
                                f"fp32 {accuracy['llmnb fp32']:.4f}, bf16 {accuracy['llmnb bf16']:.4f} after "
                                f"{trainer.epochs(quick):g} epoch(s); 1 row = 0.0042"),
    }
    rows = common.round_rows(results) + [row for row in common.round_rows(tunes) if row["contender"].startswith("llmnb")]
    timed = (f"Engine bf16 vs a plain fp32 loop in lockstep ({bench.steps} steps x {len(c)} rounds) against engine.py's fp32 "
             f"rounds; bf16 matmul peak; llmnb.finetune fp32 and bf16 ({trainer.epochs(quick):g} epoch(s) x {len(whole)} round(s))")
    return Section(summary, rows, timed, notes)


if __name__ == "__main__":
    common.main_for(run)
