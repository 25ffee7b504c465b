"""`llmnb.finetune`: one call from data to a trained model (the job itself: finetuning/run.py).

    ft = llmnb.finetune("minilm", "reviews", eval="reviews_test")
    ft = llmnb.finetune("minilm", "reviews", lr="find")    # llmnb.lr_find picks the learning rate first
"""
from __future__ import annotations

from llmnb.finetuning.config import FineTuneConfig
from llmnb.finetuning.run import FineTuneJob


def finetune(model="minilm", data=None, eval=None, config: FineTuneConfig | None = None, callbacks=(), resume=None, **options):
    """Fine-tune `model` on `data`; returns a `FineTuneResult` (chapters 0 and 2).

    model:    an alias ('minilm', 'tiny-bert'), a Hub id, a local folder, a `LoadedModel`
              or an earlier `FineTuneResult` (training continues from its weights).
    data:     a DataFrame, list of dicts, dict of lists, `datasets.Dataset`, a file path
              (.csv .tsv .json .jsonl .txt) or a bundled name ('reviews').
    eval:     validation data in the same forms; without it a stratified share of `data`
              (`eval_fraction`) is held out.
    resume:   a run folder (or True for this model's newest run) to continue after a restart
              or crash; the run's own options are used, and its loss curve continues exactly.
    options:  any `FineTuneConfig` field, e.g. epochs=3, lr=5e-5 (see `llmnb.FineTuneConfig`);
              lr="find" runs `llmnb.lr_find` first and trains with its suggestion.

    Ctrl-C stops training and still returns the result, holding the best weights so far.
    """
    if isinstance(options.get("lr"), str) and options["lr"].strip().lower() == "find":
        options["lr"] = _found_lr(model, data, config, options)
    config = (config or FineTuneConfig()).replace(**options) if options else (config or FineTuneConfig())
    from llmnb.display import watchers

    return FineTuneJob(model, data, eval, config, callbacks, resume).run(watchers)


def _found_lr(model, data, config, options) -> float:
    """lr='find': the learning rate `llmnb.lr_find` suggests for this model, data and options."""
    from llmnb.errors import TrainingError
    from llmnb.tools.lr_find import lr_find

    finder = lr_find(model, data, config=config, **{**{k: v for k, v in options.items() if k != "lr"}, "quiet": True})
    if finder.suggestion is None:
        raise TrainingError("lr='find': the learning-rate sweep found no lr at which the loss fell, so there is "
                            "nothing to suggest. Give lr=... yourself, or look at llmnb.lr_find(...).plot().")
    quiet = options.get("quiet", config.quiet if config else False)
    if not quiet:
        print(f"llmnb: lr=find: training with lr {finder.suggestion:.2g}, suggested by llmnb.lr_find "
              f"({finder.rule}, {len(finder.lrs)} sweep steps)")
    return finder.suggestion
