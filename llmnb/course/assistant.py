"""The course's assistant: chapter 10's recipe, trained once and shipped with llmnb.

    sft = llmnb.course_assistant()           # a ChatResult: .generate, .chat, .history, .config
    grpo = llmnb.finetune(sft, prompts, task="grpo", reward="exact_match")

Chapter 11 starts from an instruction-tuned GPT. Rebuilding one in that notebook cost a minute of
its three (pretraining, then SFT), and on a CPU the rebuilt model differs from machine to machine
(thread counts change the order of float sums), so each learner's GRPO started somewhere else.
The shipped copy is the same everywhere: chapter 10's `fast` recipe, seed 0, trained once. A
learner who ran chapter 10 can start from their own model instead (`llmnb.load_run(...)`).

Rebuild it (about a minute on 2 CPU cores; the folder is 2.3 MB):

    python -m llmnb.course.assistant

Taught in chapter 11 (tutorials/11_rewards.ipynb); built as chapter 10 (tutorials/10_assistant.ipynb)
builds its assistant.
"""
from __future__ import annotations

import json
from pathlib import Path

from llmnb.errors import DataError

FOLDER = Path(__file__).parent / "data" / "assistant"
# Chapter 10's fast profile: the GPT of chapter 3 pretrained on the bundled stories, then SFT on the
# 1,200 bundled instructions. The seeds fix the corpus, the split, the weights and the batch order.
# (Chapter 10's full profile, 1,500 pretraining steps and 10 epochs, measured 50 % held out against 31 %,
# but GRPO gained nothing on it: its remaining errors are facts it cannot read from a story, which no
# sampled answer gets right, so no group has a signal.)
RECIPE = {"pretrain_steps": 300, "block_size": 128, "sft_epochs": 6, "sft_lr": 3e-3, "seed": 0}
# Greedy answers of the shipped model to the first test questions, written at build time: a loaded
# copy must give (nearly all of) the same answers, or the files and the code no longer agree.
ANSWERS_FILE = "reference_answers.json"
REFERENCE_QUESTIONS = 40


def course_assistant():
    """Chapter 10's instruction-tuned GPT as shipped with llmnb (its `fast` recipe, seed 0): the
    start of chapter 11's GRPO. Returns a ChatResult, as `llmnb.load_run` does; its `config` and
    `history` are those of the SFT run that made it.

    Taught in chapter 11 (tutorials/11_rewards.ipynb).
    """
    from llmnb.tools.load_run import load_run

    if not (FOLDER / "llmnb.json").exists():
        raise DataError(f"The course's assistant is missing from {FOLDER}: reinstall llmnb, or rebuild it with "
                        "`python -m llmnb.course.assistant` (about a minute on a CPU).")
    return load_run(FOLDER)


def reference_answers(model, count: int = REFERENCE_QUESTIONS) -> list[str]:
    """Greedy answers (8 new tokens) of `model` to the first `count` bundled test instructions, each
    asked as SFT showed it: the user turn of the row's training conversation."""
    from llmnb.datasets import load
    from llmnb.instruct.chat import prompt_of, to_conversation

    rows = load("instructions", "test").head(count).to_dict("records")
    return [model.generate(prompt_of(to_conversation(row)), max_new_tokens=8) for row in rows]


def build(folder=FOLDER, pretrain_steps: int = RECIPE["pretrain_steps"], block_size: int = RECIPE["block_size"],
          sft_epochs: float = RECIPE["sft_epochs"], sft_lr: float = RECIPE["sft_lr"], seed: int = RECIPE["seed"]):
    """Train the assistant by chapter 10's recipe and save it to `folder` (weights, tokenizer, run
    record and the reference answers the tests compare with). Returns the result."""
    from llmnb.finetuning.finetune import finetune
    from llmnb.pretraining.run import pretrain
    from llmnb.tasks.sft import SFT

    gpt = pretrain(max_steps=pretrain_steps, block_size=block_size, seed=seed, quiet=True)
    # No evaluation set: the last weights are the model (chapter 10 keeps the best by loss on its test
    # split, which would make that split part of the recipe).
    sft = finetune(gpt, "instructions", task=SFT.name, epochs=sft_epochs, lr=sft_lr, eval_fraction=0,
                   early_stopping=None, save_checkpoints=False, quiet=True, seed=seed)
    out = sft.save(folder)
    (out / "README.md").unlink(missing_ok=True)   # the model card repeats llmnb.json; the package ships one record
    (out / ANSWERS_FILE).write_text(json.dumps(reference_answers(sft), indent=1) + "\n")
    return sft


if __name__ == "__main__":
    import time

    began = time.perf_counter()
    build()
    print(f"built the course's assistant in {time.perf_counter() - began:.0f} s: {FOLDER}")
