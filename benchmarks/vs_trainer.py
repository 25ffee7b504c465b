"""vs_trainer: does `llmnb.finetune` with its DEFAULT options match Hugging Face's Trainer and a
plain PyTorch loop, in accuracy and in wall time, on the same data?

    python benchmarks/vs_trainer.py              # 2 rounds (a few minutes on a laptop CPU)
    python benchmarks/vs_trainer.py --repeats 5  # steadier medians
    python benchmarks/vs_trainer.py --quick      # 1 round

Contenders, all on the bundled MiniLM, trained on reviews (480 rows), tested on reviews_test (240):
  llmnb    llmnb.finetune("minilm", train, eval=test, quiet=True): nothing changed.
  trainer  common.train_with_trainer, the Trainer recipe: lr 5e-5, 3 epochs, batch 16, accuracy
           each epoch, dynamic padding, fp32, on CPU (the one Trainer baseline of the benchmarks).
  plain    a hand-written loop: AdamW lr 5e-5, 3 epochs, batch 16, shuffled, padded per batch,
           no schedule, fp32, no evaluation during training.
They run in one process, round-robin (llmnb, trainer, plain, llmnb, ...), so slow phases of a
shared machine hit all of them alike. Each is timed from "model loading starts" to "training
done" (model load and tokenization included, imports excluded). Accuracy is recomputed after
timing, from each model's predictions on the test texts.

Reading it: `time_ratio_vs_*` below 1 means llmnb was faster than that baseline; accuracies are
fractions of the 240 test rows (one row = 0.0042). The last line is one JSON object, for scripts.
Caveat: llmnb validates on the test set it is scored on and keeps its best epoch's weights
("best step" column); the baselines keep their last weights.
"""
import argparse
import json
import tempfile
import time

import common  # offline environment first
import torch
from common import BATCH, EPOCHS, LR, SEED, Section, accuracy, median

import llmnb.core.engine
import llmnb.finetuning.inference  # noqa: F401  (imported by finetune's result: kept out of the timing)
from llmnb import finetune

# ----------------------------------------------------------------------------- contenders
# Each returns a row with "seconds" (from model load to the end of training), "accuracy" and "notes".

def run_llmnb(data):
    train, test = data["frames"]
    start = time.perf_counter()
    ft = finetune("minilm", train, eval=test, quiet=True)
    seconds = time.perf_counter() - start
    texts, _ = data["test"]
    acc = sum(p == y for p, y in zip(ft.predict(texts), test["label"])) / len(texts)
    s = ft.state
    return {"seconds": seconds, "accuracy": acc, "notes": f"{s.status}, best step {s.best_step}/{s.max_steps}"}


def run_trainer(data):
    with tempfile.TemporaryDirectory(prefix="vs_trainer_") as out:
        start = time.perf_counter()
        trainer = common.train_with_trainer(common.minilm_path(), data["train"], data["test"], out)
        seconds = time.perf_counter() - start
    args = trainer.args
    return {"seconds": seconds, "accuracy": accuracy(trainer.model, trainer.processing_class, *data["test"]),
            "notes": f"fp32, optim {args.optim.value}, {args.lr_scheduler_type.value} decay"}


def run_plain(data):
    start = time.perf_counter()
    model, tokenizer = common.load_minilm(common.minilm_path())
    rows = common.tokenize(tokenizer, *data["train"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    order = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        for batch_rows in torch.randperm(len(rows), generator=order).split(BATCH):
            batch = tokenizer.pad([rows[i] for i in batch_rows.tolist()], return_tensors="pt")
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "accuracy": accuracy(model, tokenizer, *data["test"]), "notes": "fp32, AdamW (torch defaults but lr)"}


CONTENDERS = {"llmnb": run_llmnb, "trainer": run_trainer, "plain": run_plain}


def measure(repeats: int) -> dict:
    common.warm_up()
    data = common.load_data()
    return common.interleave({name: (lambda run=run: run(data)) for name, run in CONTENDERS.items()}, repeats, "vs_trainer")


def run(quick: bool) -> Section:
    return summarize(measure(1 if quick or common.MODE == "smoke" else 2))


def summarize(results: dict) -> Section:
    med = {n: (median([r["seconds"] for r in rs]), median([r["accuracy"] for r in rs])) for n, rs in results.items()}
    precision = llmnb.core.engine.choose_precision("auto", torch.device("cpu"))
    summary = {
        **{f"{n}_accuracy": round(acc, 4) for n, (_, acc) in med.items()},
        **{f"{n}_seconds": round(seconds, 2) for n, (seconds, _) in med.items()},
        "time_ratio_vs_trainer": round(med["llmnb"][0] / med["trainer"][0], 3),
        "time_ratio_vs_plain": round(med["llmnb"][0] / med["plain"][0], 3),
        "repeats": len(results["llmnb"]),
        "torch_threads": torch.get_num_threads(),
        "llmnb_cpu_precision": str(precision).replace("torch.", "") if precision else "fp32",
    }
    timed = "llmnb.finetune with its defaults vs the Trainer recipe vs a plain loop, from model load to the end of training"
    return Section(summary, common.round_rows(results), timed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="rounds of llmnb, trainer, plain (default 2)")
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    results = measure(repeats)
    section = summarize(results)
    med = {n: (median([r["seconds"] for r in rs]), median([r["accuracy"] for r in rs])) for n, rs in results.items()}
    print(f"\nmedians over {repeats} round(s), {torch.get_num_threads()} torch threads, CPU")
    print(f"{'contender':<10}{'seconds':>9}{'accuracy':>10}{'llmnb time / this':>19}  notes (last round)")
    for name, (seconds, acc) in med.items():
        print(f"{name:<10}{seconds:>9.1f}{acc:>10.4f}{med['llmnb'][0] / seconds:>19.3f}  {results[name][-1]['notes']}")
    verdict = all(med["llmnb"][1] >= med[n][1] and med["llmnb"][0] <= med[n][0] for n in ("trainer", "plain"))
    print(f"llmnb defaults at least as accurate and no slower than both: {'yes' if verdict else 'no'}")
    print(json.dumps({**section.summary, "versions": common.versions()}))


if __name__ == "__main__":
    main()
