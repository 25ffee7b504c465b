"""`llmnb.finetune`: one call from data to a trained model.

(The module is `finetuning`, not `finetune`: importing a submodule binds its name on the
package, which would replace the function `llmnb.finetune` with this module.)

    ft = llmnb.finetune("minilm", "reviews", eval="reviews_test")
    ft.predict("The battery died on day two.")

Order of work, so that mistakes cost seconds: check options -> read and check the data ->
check the output folder -> load the model -> tokenize once -> train (the engine) -> result.
"""
from __future__ import annotations

import json
import warnings

from .config import FineTuneConfig
from .data import LabelMap, Notice, drop_missing, pick_columns, stratified_split, to_frame
from .errors import DataError
from .events import FAILED, TrainState
from .result import FineTuneResult
from .tasks import Task, check_metric, get_task


def finetune(model="minilm", data=None, eval=None, config: FineTuneConfig | None = None, callbacks=(), resume=None, **options):
    """Fine-tune `model` on `data`; returns a `FineTuneResult`.

    model:    an alias ('minilm', 'tiny-bert'), a Hub id, a local folder, a `LoadedModel`
              or an earlier `FineTuneResult` (training continues from its weights).
    data:     a DataFrame, list of dicts, dict of lists, `datasets.Dataset`, a file path
              (.csv .tsv .json .jsonl .txt) or a bundled name ('reviews').
    eval:     validation data in the same forms; without it a stratified share of `data`
              (`eval_fraction`) is held out.
    resume:   a run folder (or True for this model's newest run) to continue after a restart
              or crash; the run's own options are used, and its loss curve continues exactly.
    options:  any `FineTuneConfig` field, e.g. epochs=3, lr=5e-5 (see `llmnb.FineTuneConfig`).

    Ctrl-C stops training and still returns the result, holding the best weights so far.
    """
    config = (config or FineTuneConfig()).replace(**options) if options else (config or FineTuneConfig())
    if data is None:
        raise DataError("No training data given. Pass data=... (a DataFrame, a file path, or 'reviews').")
    checkpoint = None
    if resume:
        checkpoint, config = _resume_point(resume, model, config)
    task = get_task(config.task)
    check_metric(task, config.metric)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", Notice)
        prepared = prepare_data(data, eval, config, task)
    notices = [str(w.message) for w in caught if issubclass(w.category, Notice)]
    for w in caught:
        if not issubclass(w.category, Notice):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    run_dir = _run_dir(config, model, checkpoint)
    if checkpoint is not None:
        model = str(checkpoint)  # the checkpoint folder is a complete save_pretrained folder
        _check_same_labels(checkpoint, prepared["labels"])
    loaded, model_name = _load(model, config, task, prepared["labels"])
    from .strategies import apply_strategy

    loaded.model = apply_strategy(loaded.model, config)
    check_memory(loaded.model, config)
    tokenizer = loaded.tokenizer
    train_enc = task.encode(tokenizer, prepared["train_texts"], prepared["train_targets"], config.max_length)
    eval_enc = task.encode(tokenizer, prepared["eval_texts"], prepared["eval_targets"], config.max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    from .data import batch_order
    from .display import make_display
    from .engine import Engine

    lengths = train_enc.lengths.tolist()

    def train_batches(epoch):
        for rows in batch_order(lengths, config.batch_size, True, config.seed + epoch, config.group_by_length):
            yield task.collate(train_enc, rows, pad_id)

    def evaluate():
        return evaluate_encoded(loaded.model, eval_enc, task, tokenizer, config.batch_size * 2) if len(eval_enc) else {}

    state = TrainState(
        task=task.name,
        model_name=model_name,
        metric_name="eval_" + (metric := (config.metric or task.headline).removeprefix("eval_")),
        greater_is_better=task.greater_is_better if not config.metric else metric not in ("mse", "loss", "perplexity"),
    )
    steps_per_epoch = -(-len(train_enc) // config.batch_size)
    display = None if config.quiet else make_display("auto", plot=config.plot)
    if not config.quiet:
        for line in notices:
            print(f"llmnb: {line}")
    import torch

    torch.manual_seed(config.seed)  # dropout masks repeat from run to run
    # No validation data (eval_fraction=0): no evaluations, so nothing can stop the run early either.
    engine = Engine(loaded.model, config, train_batches, steps_per_epoch, evaluate if len(eval_enc) else None, [display, *callbacks], state)
    if run_dir is not None and config.save_checkpoints:
        from .checkpoint import Checkpointer

        extra = {"model_name": model_name, "labels": prepared["labels"].names if prepared["labels"] else None, "config": config.to_dict()}
        engine.callbacks.callbacks.insert(0, Checkpointer(run_dir, engine, tokenizer, extra, config.checkpoint_every))
    if checkpoint is not None:
        _restore(engine, checkpoint)
    if not config.quiet:
        print(_plan(engine, loaded, model_name, prepared))
        from .run_folders import size_warning

        warning = size_warning()
        if warning:
            print(warning)
    engine.fit()
    del engine  # its optimizer state and best-weights copy go now, not at the next gc
    from .memory import release_memory

    release_memory()

    result = FineTuneResult(
        model=loaded.model,
        tokenizer=tokenizer,
        config=config,
        task=task,
        labels=prepared["labels"],
        state=state,
        model_name=model_name,
        text_column=prepared["text_column"],
        label_column=prepared["label_column"],
        train_size=len(train_enc),
        eval_size=len(eval_enc),
        notices=notices,
    )
    if state.status == FAILED:
        from .errors import TrainingError

        error = TrainingError(state.message)
        error.result = result  # the magic binds it, so nothing trained is lost
        raise error
    result.run_dir = run_dir
    if run_dir is not None and state.status != "interrupted":
        save_final(result, run_dir)
    return result


def save_final(result, run_dir) -> bool:
    """The final (best) weights at the top of the run folder; then the resumable checkpoint goes,
    since a finished run has nothing left to resume. A save that fails warns and keeps the model
    in memory (and the checkpoint on disk): the result is returned all the same."""
    from .checkpoint import DiskWarning, discard_checkpoint, state_bytes, write_errors, write_failed

    try:
        result.save(run_dir)
    except write_errors() as error:
        message = write_failed(run_dir, error, state_bytes(result.model), "the final model")
        result.state.notes.append("the final model was not saved: " + message)
        warnings.warn(message, DiskWarning, stacklevel=3)
        return False
    discard_checkpoint(run_dir)
    return True


def prepare_data(data, eval, config: FineTuneConfig, task: Task) -> dict:
    """Read, check and split the data; nothing here touches a model (so errors come fast)."""
    frame = to_frame(data, "training data")
    text_col, label_col = pick_columns(frame, config.text, config.label, need_label=task.needs_target_column)
    columns = [c for c in (text_col, label_col) if c]
    frame = drop_missing(frame, columns, "training data")
    labels = LabelMap.from_values(frame[label_col].tolist()) if task.uses_labels else None
    texts = frame[text_col].astype(str).tolist()
    targets = task.make_targets(frame[label_col].tolist() if label_col else texts, labels, "training data")
    if eval is not None:
        eval_frame = to_frame(eval, "eval data")
        for col, kind in ((text_col, "text"), (label_col, "label")):
            if col and col not in eval_frame.columns:
                raise DataError(
                    f"The eval data has no '{col}' column (the {kind} column of the training data); "
                    f"its columns are: {', '.join(eval_frame.columns)}."
                )
        eval_frame = drop_missing(eval_frame, columns, "eval data")
        eval_texts = eval_frame[text_col].astype(str).tolist()
        eval_targets = task.make_targets(eval_frame[label_col].tolist() if label_col else eval_texts, labels, "eval data")
    elif config.eval_fraction > 0:
        strata = targets if labels else [0] * len(targets)
        train_rows, eval_rows = stratified_split(strata, config.eval_fraction, config.seed)
        if not train_rows or not eval_rows:
            raise DataError(f"Only {len(texts)} examples: too few to hold some out for validation. Add data or pass eval=...")
        eval_texts, eval_targets = [texts[i] for i in eval_rows], [targets[i] for i in eval_rows]
        texts, targets = [texts[i] for i in train_rows], [targets[i] for i in train_rows]
    else:
        eval_texts, eval_targets = [], []
    if labels and len(set(targets)) < 2:
        raise DataError("After holding out validation data, the training data has a single class. Add examples.")
    return {
        "train_texts": texts,
        "train_targets": targets,
        "eval_texts": eval_texts,
        "eval_targets": eval_targets,
        "labels": labels,
        "text_column": text_col,
        "label_column": label_col,
    }


def evaluate_encoded(model, enc, task: Task, tokenizer, batch_size: int) -> dict[str, float]:
    """eval_loss and the task's metrics over encoded examples."""
    return task.evaluate(model, enc, tokenizer, batch_size)


def prepare_eval(result: FineTuneResult, data, text=None, label=None):
    """Encode new labelled data the way `result` was trained (same columns, labels, length)."""
    frame = to_frame(data, "eval data")
    task = result.task
    text_col, label_col = pick_columns(
        frame, text or _present(frame, result.text_column), label or _present(frame, result.label_column), need_label=task.needs_target_column
    )
    frame = drop_missing(frame, [c for c in (text_col, label_col) if c], "eval data")
    texts = frame[text_col].astype(str).tolist()
    targets = task.make_targets(frame[label_col].tolist() if label_col else texts, result.labels, "eval data")
    return task.encode(result.tokenizer, texts, targets, result.config.max_length)


def _resume_point(resume, model, config: FineTuneConfig):
    """(checkpoint folder, the run's own config) for `resume=`."""
    from pathlib import Path

    from .checkpoint import CHECKPOINT, find_checkpoint, latest_run
    from .errors import ConfigError

    if resume is True:
        name = model if isinstance(model, str) else getattr(model, "model_name", getattr(model, "name", "model"))
        run_dir = latest_run(name)
        if run_dir is None:
            raise ConfigError(f"Nothing to resume: no run of '{name}' with a checkpoint under runs/. Give the run folder: resume='runs/...'.")
    else:
        run_dir = Path(resume)
    checkpoint = find_checkpoint(run_dir, CHECKPOINT)
    if checkpoint is None:
        raise ConfigError(
            f"No checkpoint to resume in '{run_dir}'. A run leaves {CHECKPOINT}/ when Ctrl-C stopped it, or while it is "
            "still training after checkpoint_every minutes; a finished run has its final model there instead."
        )
    saved = json.loads((checkpoint / "trainer_state.json").read_text())
    own = FineTuneConfig(**{**saved["config"], "quiet": config.quiet, "plot": config.plot, "out": str(run_dir), "overwrite": True})
    return checkpoint, own


def _run_dir(config: FineTuneConfig, model, checkpoint):
    """Where this run's checkpoints and final model go (None: nowhere)."""
    from pathlib import Path

    from .checkpoint import check_writable, holds_a_run, new_run_dir
    from .errors import ConfigError

    if checkpoint is not None:
        return checkpoint.parent
    if config.out:
        run_dir = check_writable(config.out)
        if holds_a_run(run_dir) and not config.overwrite:
            raise ConfigError(
                f"out='{config.out}' holds an earlier run. Choose a new folder, continue it with resume='{config.out}', "
                "or pass overwrite=True (--overwrite) to replace it."
            )
        return run_dir
    if not config.save_checkpoints:
        return None
    name = model if isinstance(model, str) else getattr(model, "model_name", getattr(model, "name", "model"))
    return check_writable(new_run_dir(Path(str(name)).name))


def _check_same_labels(checkpoint, labels):
    saved = json.loads((checkpoint / "trainer_state.json").read_text()).get("labels")
    now = labels.names if labels else None
    if saved != now:
        raise DataError(f"The data's labels {now} differ from the checkpoint's {saved}: resume with the same data.")


def _restore(engine, checkpoint):
    """Put the engine back where the checkpoint left it: state, optimizer, RNG, best weights."""
    from .checkpoint import read_best_weights, read_checkpoint, state_from_dict

    payload, snapshot, weights = read_checkpoint(checkpoint)
    saved = state_from_dict(payload["state"])
    best_weights = read_best_weights(checkpoint)
    if best_weights is None and saved.best_step == saved.step:
        best_weights = weights  # the checkpoint's own weights were the best ones
    del weights
    for name in ("step", "epoch", "samples_seen", "tokens_seen", "train_loss", "lr", "best_metric", "best_step", "last_eval", "history"):
        setattr(engine.state, name, getattr(saved, name))
    engine.restore(snapshot, best_weights)


def check_memory(model, config: FineTuneConfig) -> None:
    """On the CPU, refuse a run that cannot fit in free memory, before it swaps or gets killed.

    Estimate: weights + gradients + AdamW's two moments (4 copies of the parameters in fp32),
    plus activations (~40 bytes per token, per layer, per hidden unit, for one micro-batch).
    Generous on purpose: it is meant to catch a 10x mistake, not to be tight.
    """
    device = next(model.parameters()).device
    if device.type != "cpu":
        return  # on CUDA an out-of-memory step halves the micro-batch instead (see Engine._step)
    available = _available_memory()
    if available is None:
        return
    params = sum(p.numel() for p in model.parameters())
    hidden = getattr(model.config, "hidden_size", 768)
    layers = getattr(model.config, "num_hidden_layers", 12)
    micro = -(-config.batch_size // config.grad_accum)
    needed = params * 4 * 4 + micro * config.max_length * hidden * layers * 40
    if needed > available:
        from .errors import ConfigError

        raise ConfigError(
            f"This run needs about {needed / 2**30:.1f} GB of memory but only {available / 2**30:.1f} GB is free. "
            "Try a smaller batch_size, grad_accum > 1, a smaller max_length, or a smaller model."
        )


def _available_memory() -> int | None:
    from .memory import available_bytes

    return available_bytes()  # a container's limit included (Binder: 2 GiB), not only the host's RAM


def _present(frame, column):
    return column if column in frame.columns else None


def _load(model, config: FineTuneConfig, task: Task, labels: LabelMap | None):
    from .models import LoadedModel, load_model

    if isinstance(model, FineTuneResult):
        model = LoadedModel(model.model, model.tokenizer, model.model_name, model.task.name)
    if isinstance(model, LoadedModel):
        expected = 1 if task.float_targets else len(labels.names) if labels else None
        got = getattr(model.model.config, "num_labels", expected)
        if expected is not None and got != expected:
            raise DataError(
                f"The model '{model.name}' has {got} outputs, but the data needs {expected} "
                f"({'a number' if task.float_targets else ', '.join(map(str, labels.names))}). "
                "Load it again with the right num_labels, or pass the model by name."
            )
        return model, model.name
    if not isinstance(model, str):
        raise DataError(f"model must be a name, a folder, or a loaded model, not a {type(model).__name__}.")
    loaded = load_model(
        model,
        task=task.name,
        num_labels=len(labels.names) if labels else 1,
        id2label=labels.id2label if labels else None,
        device=config.device,
        trust_remote_code=config.trust_remote_code,
        seed=config.seed,
    )
    return loaded, model


def _plan(engine, loaded, model_name, prepared) -> str:
    """What is about to happen, with the defaults in force: two short lines, because a notebook's
    output area wraps a long one wherever the width ends, even inside a number."""
    c, s = engine.config, engine.state
    precision = str(engine.autocast_dtype).replace("torch.", "") if engine.autocast_dtype else "fp32"
    return (
        f"llmnb: fine-tuning {model_name} ({loaded.num_parameters / 1e6:.1f} M parameters) on "
        f"{len(prepared['train_texts'])} examples, validating on {len(prepared['eval_texts'])}\n"
        f"llmnb: {s.max_steps} steps ({s.num_epochs:.3g} epochs of {s.steps_per_epoch}), batch {c.batch_size}, "
        f"lr {c.lr:.0e}, {precision} on {engine.device}"
    )
