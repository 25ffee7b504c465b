"""Does `llmnb.finetune` with its DEFAULT options match Hugging Face's Trainer and a plain
PyTorch loop, in accuracy and in wall time, on the same data?

    python benchmarks/vs_trainer.py              # 2 rounds (a few minutes on a laptop CPU)
    python benchmarks/vs_trainer.py --repeats 5  # steadier medians
    python benchmarks/vs_trainer.py --quick      # 1 round

Contenders, all on the bundled MiniLM, trained on reviews (480 rows), tested on reviews_test (240):
  llmnb    llmnb.finetune("minilm", train, eval=test, quiet=True): nothing changed.
  trainer  transformers.Trainer: lr 5e-5, 3 epochs, batch 16, eval each epoch, dynamic padding
           (DataCollatorWithPadding), its default precision (fp32 on CPU), on CPU.
  plain    a hand-written loop: AdamW lr 5e-5, 3 epochs, batch 16, shuffled, padded per batch,
           no schedule, fp32, no evaluation during training.
They run in one process, round-robin (llmnb, trainer, plain, llmnb, ...), so slow phases of a
shared machine hit all of them alike. Each is timed from "model loading starts" to "training
done" (model load and tokenization included, imports excluded). Accuracy is recomputed after
timing, from each model's predictions on the test texts.

Reading it: the table gives per-contender medians over the rounds. `time_ratio_vs_*` below 1
means llmnb was faster than that baseline; accuracies are fractions of the 240 test rows
(one row = 0.0042). The last line is one JSON object with every number, for scripts.
Caveat: llmnb validates on the test set it is scored on and keeps its best epoch's weights
("best step" column); the baselines keep their last weights.
"""
import argparse
import json
import statistics
import tempfile
import time

import torch  # noqa: E402  (after common, which sets the offline environment first)
import transformers  # noqa: E402
from common import (
    BATCH,
    EPOCHS,
    LR,
    SEED,
    accuracy,
    load_data,
    load_minilm,
    tokenize,
    versions,
    warm_up,
)
from transformers import (  # noqa: E402
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)

import llmnb.core.engine  # noqa: E402
import llmnb.display  # noqa: E402,F401
import llmnb.finetuning.inference  # noqa: E402,F401
from llmnb import finetune  # noqa: E402  (the function; importing it here keeps the import out of the timing)
from llmnb.core.models import bundled_minilm_path  # noqa: E402

# ----------------------------------------------------------------------------- contenders
# Each returns (seconds, accuracy, notes); only the part before `seconds = ...` is timed.

def run_llmnb(data, path):
    train, test = data["frames"]
    start = time.perf_counter()
    ft = finetune("minilm", train, eval=test, quiet=True)
    seconds = time.perf_counter() - start
    texts, _ = data["test"]
    acc = sum(p == y for p, y in zip(ft.predict(texts), test["label"])) / len(texts)
    s = ft.state
    return seconds, acc, f"{s.status}, best step {s.best_step}/{s.max_steps} (epoch {s.best_step / s.steps_per_epoch:g})"


def run_trainer(data, path):
    with tempfile.TemporaryDirectory(prefix="vs_trainer_") as out:
        start = time.perf_counter()
        model, tokenizer = load_minilm(path)
        train_rows, test_rows = tokenize(tokenizer, *data["train"]), tokenize(tokenizer, *data["test"])
        args = TrainingArguments(
            output_dir=out,
            learning_rate=LR,
            num_train_epochs=EPOCHS,
            per_device_train_batch_size=BATCH,
            per_device_eval_batch_size=2 * BATCH,
            eval_strategy="epoch",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=True,
            dataloader_pin_memory=False,  # nothing to pin on CPU; avoids a warning
            seed=SEED,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_rows,
            eval_dataset=test_rows,
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        trainer.remove_callback(PrinterCallback)  # disable_tqdm prints every eval's dict otherwise
        trainer.train()
        seconds = time.perf_counter() - start
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    return seconds, accuracy(model, tokenizer, *data["test"]), f"{precision}, optim {args.optim.value}, {args.lr_scheduler_type.value} decay"


def run_plain(data, path):
    start = time.perf_counter()
    model, tokenizer = load_minilm(path)
    rows = tokenize(tokenizer, *data["train"])
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
    return seconds, accuracy(model, tokenizer, *data["test"]), "fp32, AdamW (torch defaults but lr)"


CONTENDERS = {"llmnb": run_llmnb, "trainer": run_trainer, "plain": run_plain}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="rounds of llmnb, trainer, plain (default 2)")
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    transformers.logging.set_verbosity_error()  # the "newly initialized classifier" report, once per load
    transformers.logging.disable_progress_bar()  # the weight-loading bar, once per load

    path = str(bundled_minilm_path())  # checks the weights' sha256 once, before any timing
    data = load_data()
    warm_up(path)
    results = {name: [] for name in CONTENDERS}
    for round_ in range(1, repeats + 1):
        for name, run in CONTENDERS.items():
            seconds, acc, notes = run(data, path)
            results[name].append((seconds, acc, notes))
            print(f"round {round_}/{repeats}  {name:<8} {seconds:7.1f} s  accuracy {acc:.4f}  ({notes})", flush=True)

    med = {n: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)) for n, rs in results.items()}
    llmnb_precision = llmnb.core.engine.choose_precision("auto", torch.device("cpu"))
    summary = {
        "llmnb_accuracy": round(med["llmnb"][1], 4),
        "trainer_accuracy": round(med["trainer"][1], 4),
        "plain_accuracy": round(med["plain"][1], 4),
        "llmnb_seconds": round(med["llmnb"][0], 2),
        "trainer_seconds": round(med["trainer"][0], 2),
        "plain_seconds": round(med["plain"][0], 2),
        "time_ratio_vs_trainer": round(med["llmnb"][0] / med["trainer"][0], 3),
        "time_ratio_vs_plain": round(med["llmnb"][0] / med["plain"][0], 3),
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "versions": {
            **versions(),
            "llmnb_cpu_precision": str(llmnb_precision).replace("torch.", "") if llmnb_precision else "fp32",
        },
    }
    print(f"\nmedians over {repeats} round(s), {torch.get_num_threads()} torch threads, CPU")
    print(f"{'contender':<10}{'seconds':>9}{'accuracy':>10}{'llmnb time / this':>19}  notes (last round)")
    for name, (seconds, acc) in med.items():
        ratio = med["llmnb"][0] / seconds
        print(f"{name:<10}{seconds:>9.1f}{acc:>10.4f}{ratio:>19.3f}  {results[name][-1][2]}")
    verdict = all(med["llmnb"][1] >= med[n][1] and med["llmnb"][0] <= med[n][0] for n in ("trainer", "plain"))
    print(f"llmnb defaults at least as accurate and no slower than both: {'yes' if verdict else 'no'}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
