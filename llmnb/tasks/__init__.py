"""The tasks `finetune` can run, one class per file, each registered with `llmnb.core.task.register`.

    classification.py        text -> one of the labels           accuracy, macro-F1    (chapters 0, 4, 5)
    regression.py            text -> a number                    MSE                   (chapter 6)
    token_classification.py  words -> a tag each (ner)           entity F1 (seqeval)   (chapter 6)
    qa.py                    question + context -> a span        exact match, F1       (chapter 6)
    causal_lm.py             text -> the next tokens             perplexity            (chapters 3, 6)
    seq2seq.py               source text -> target text          BLEU                  (chapter 4)
    sft.py                   conversations -> answers            answer loss, EM       (chapter 10)
    dpo.py                   (prompt, chosen, rejected) pairs    preference accuracy   (chapter 10)
    grpo.py                  prompts + rewards -> completions    reward, exact match   (chapter 11)

Importing this package imports every module in it, so a new file here is a new task: nothing
else lists them (docs/extending.md).
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
