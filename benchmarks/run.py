"""llmnb's speed claims, measured: every number a ratio of contenders run side by side.

    .venv/bin/python benchmarks/run.py --quick     # about 13 minutes on 2 busy cores
    .venv/bin/python benchmarks/run.py             # more steps and rounds: steadier medians
    .venv/bin/python benchmarks/run.py --only engine,padding --threads 2
    .venv/bin/python benchmarks/run.py --smoke     # a few steps of everything: checks that it runs

Each section is a module of this folder with `run(quick) -> common.Section`, whose docstring says
what it times: engine, bf16, trainer, display, padding, sft, grpo, cell, gpu (by default, in this order)
and strategies, defaults, vs_trainer, grading (slow: on request, with --only). Within a section,
contenders run in this one process, interleaved: whole runs round-robin with the order rotating every round,
or single steps in lockstep; a ratio is the median over rounds of that round's ratio.

This script only collects the sections and prints them: each one's table as it finishes, then the
goals table, then, as its last line, one JSON object with every figure (see docs/performance.md).
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import time

import common  # first: the offline environment, before torch or transformers load

DEFAULT = ("engine", "bf16", "trainer", "display", "padding", "sft", "grpo", "cell", "gpu")
ON_REQUEST = ("strategies", "defaults", "vs_trainer", "grading")
GOALS = {
    "overhead_vs_plain": ("<=", 1.02),
    "trainer_ratio": ("<=", 0.9),
    "cell_ratio_vs_trainer": ("<=", 0.9),
    "padding_speedup": (">=", 1.5),
    "display_cost_fraction": ("<=", 0.01),
    "load_ext_seconds": ("<=", 0.3),
    "bf16_speedup": (">=", 1.5),
    "bf16_accuracy_delta": ("abs<=", 0.01),
    "mfu": (">=", 0.5),
    "packing_speedup": (">=", 1.5),
    "packing_auto_vs_best": (">=", 0.95),
    "sft_overhead_vs_plain": ("<=", 1.05),
    "cell_display_cost_fraction": ("<=", 0.01),
    "sandbox_cost_ratio": ("<=", 1.2),
    "grpo_overhead_vs_plain": ("<=", 1.10),
}
# The JSON's first keys, in this order (null when their section did not run), then everything else.
HEADLINE = ("overhead_vs_plain", "trainer_ratio", "cell_ratio_vs_trainer", "padding_speedup", "display_cost_fraction",
            "load_ext_seconds", "bf16_speedup", "bf16_accuracy_delta", "mfu", "peak_rss_mb", "packing_speedup",
            "packing_auto_vs_best", "sft_overhead_vs_plain", "cell_display_cost_fraction")


def met(key, value):
    op, goal = GOALS[key]
    if value is None:
        return None
    return value <= goal if op == "<=" else value >= goal if op == ">=" else abs(value) <= goal


def fmt_goal(key):
    op, goal = GOALS[key]
    return f"|x| <= {goal}" if op == "abs<=" else f"{op} {goal}"


def rounded(value):
    return round(value, 4) if isinstance(value, float) else value


def merge(found: dict, summary: dict) -> None:
    """Add a section's figures; a dict figure two sections share (achieved_gflops: fp32, bf16) is joined."""
    for key, value in summary.items():
        if isinstance(value, dict) and isinstance(found.get(key), dict):
            found[key] = {**found[key], **value}
        else:
            found[key] = value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds (about 13 minutes on 2 busy cores)")
    parser.add_argument("--smoke", action="store_true", help="a few steps of everything: checks that the script runs (numbers meaningless)")
    parser.add_argument("--threads", default="auto", help="torch threads (default auto: 1 on a machine busier than its cores)")
    parser.add_argument("--only", default=",".join(DEFAULT), help=f"comma-separated sections, of {', '.join(DEFAULT + ON_REQUEST)}")
    args = parser.parse_args()
    names = [name for name in args.only.split(",") if name]
    unknown = sorted(set(names) - set(DEFAULT + ON_REQUEST))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(DEFAULT + ON_REQUEST)}")
    common.MODE = "smoke" if args.smoke else None
    mode = common.mode(args.quick)
    threads, load = common.set_threads(args.threads)
    common.log(f"llmnb benchmarks ({mode}): {common.cpu_name()}, {os.cpu_count()} cores, "
               f"load average {load:.1f} at start, {threads} torch thread(s)")
    step_s = common.step_seconds()
    if mode == "quick":
        common.log(f"one training step takes {step_s:.2f} s here (quick mode is sized for {common.REFERENCE_STEP_S} s): "
                   f"busy scale {common.busy_scale(True):.2f}")
    sections = {}
    for name in names:
        module = importlib.import_module(name)  # its imports, before its timing
        common.log(f"\n-- {name} (at {time.perf_counter() - common.STARTED:.0f} s)")
        sections[name] = module.run(args.quick)
        common.print_section(name, sections[name])
    report(sections, mode, threads, load, step_s)


def report(sections: dict, mode: str, threads: int, load: float, step_s: float) -> None:
    found, notes = {}, {}
    for section in sections.values():
        merge(found, section.summary)
        notes.update(section.notes)
    common.log(f"\n{'metric':<27}{'value':>9}  {'goal':<13}{'met':<4} {'how':<62} detail")
    for key in HEADLINE:
        value = found.get(key)
        shown = "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
        ok = met(key, value) if key in GOALS else None
        how, detail = notes.get(key, ("", ""))
        common.log(f"{key:<27}{shown:>9}  {fmt_goal(key) if key in GOALS else '':<13}{'' if ok is None else 'yes' if ok else 'NO':<4} "
                   f"{how:<62} {detail}")
    summary = {key: rounded(found.get(key)) for key in HEADLINE}
    summary["goals_met"] = {key: met(key, found.get(key)) for key in GOALS}
    summary.update({key: rounded(value) for key, value in found.items() if key not in summary})
    summary.update({
        "sections": list(sections),
        "mode": mode,
        "step_seconds_calibration": round(step_s, 3),
        "torch_threads": threads,
        "load_average_start": round(load, 2),
        "load_average_end": round(os.getloadavg()[0], 2),
        "seconds_total": round(time.perf_counter() - common.STARTED, 1),
        "machine": f"{common.cpu_name()}, {os.cpu_count()} cores",
        "date": datetime.date.today().isoformat(),
        "versions": common.versions(),
    })
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
