"""`FineTuneJob`: what `llmnb.finetune` (finetuning/finetune.py) runs, from data to a trained model.

    ft = llmnb.finetune("minilm", "reviews", eval="reviews_test")
    ft.predict("The battery died on day two.")

The job fills in the steps of `llmnb.core.job.Job`, so mistakes cost seconds: check options ->
read and check the data -> check the run folder -> load the model -> tokenize once -> train
(the engine) -> result -> save the final model. Resuming and run folders: finetuning/resume.py.
"""
from __future__ import annotations

import dataclasses
import os
import warnings

from llmnb.core.events import TrainState
from llmnb.core.job import Job
from llmnb.core.result import TrainResult
from llmnb.errors import DataError
from llmnb.finetuning.config import FineTuneConfig
from llmnb.finetuning.data import LabelMap, Notice
from llmnb.finetuning.result import FineTuneResult
from llmnb.finetuning.resume import (
    check_same_labels,
    load_checkpoint_adapters,
    restore_engine,
    resume_point,
    run_dir_for,
    saved_task_state,
)
from llmnb.core.models import context_limit, pad_id
from llmnb.core.task import Task, make_task


class FineTuneJob(Job):
    """A pretrained model, labelled data and a task: the steps of `Job.run` for fine-tuning."""

    def __init__(self, model, data, eval, config: FineTuneConfig, callbacks=(), resume=None):
        if data is None:
            raise DataError("No training data given. Pass data=... (a DataFrame, a file path, or 'reviews').")
        if isinstance(model, os.PathLike):
            model = os.fspath(model)  # a folder as a Path, e.g. what `result.save()` returned
        self.checkpoint = None
        self.resumes_adapters = False  # a LoRA checkpoint: adapters only, put back onto MODEL in build_model
        if resume:
            self.checkpoint, config = resume_point(resume, model, config)
        super().__init__(config, callbacks)
        self.task = make_task(config)  # this run's own task object: it may keep state (samples, references)
        self.eval_at_start = self.task.eval_at_start  # sft/dpo: the starting model's scores at step 0
        self.task.check_metric(config.metric)
        self.model_source, self.data, self.eval_data = model, data, eval
        # Started from another run's result: its weights exist only in memory, so no name reloads them.
        self.started_from_result = isinstance(model, TrainResult)

    def prepare_data(self):
        config = self.config
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Notice)
            self.prepared = self.task.prepare(self.data, self.eval_data, config)
        self.notices = [str(w.message) for w in caught if issubclass(w.category, Notice)]
        for w in caught:
            if not issubclass(w.category, Notice):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.run_dir = run_dir_for(config, self.model_source, self.checkpoint)
        if self.checkpoint is not None:
            check_same_labels(self.checkpoint, self.prepared.labels)
            self.resumes_adapters = (self.checkpoint / "adapter_config.json").exists()
            if not self.resumes_adapters:
                self.model_source = str(self.checkpoint)  # a full fine-tune's checkpoint is a complete model folder

    def data_fingerprint(self) -> dict:
        from llmnb.core.record import data_fingerprint

        p = self.prepared
        names = p.labels.names if p.labels else None

        def targets(values):  # class ids back to the data's own labels, so the counts read well (tag lists stay)
            return [names[v] if isinstance(v, int) else v for v in values] if names else values

        return {"train": data_fingerprint(p.train_texts, targets(p.train_targets)),
                "validation": data_fingerprint(p.eval_texts, targets(p.eval_targets))}

    def build_model(self):
        from llmnb.finetuning.strategies import apply_strategy

        config, prepared = self.config, self.prepared
        self.loaded, self.model_name = _load(self.model_source, config, self.task, prepared.labels)
        context = context_limit(self.loaded.model)
        self.task.context = context  # sft/dpo: an answer cut at the context needs a longer one, not max_length
        if context and context < config.max_length:  # longer rows would index past the position table
            self.notices.append(f"max_length lowered from {config.max_length} to {context}: the longest input this model takes.")
            with warnings.catch_warnings():  # the options' warnings were given once already
                warnings.simplefilter("ignore")
                config = self.config = dataclasses.replace(config, max_length=context)
        self.task.prepare_tokenizer(self.loaded.tokenizer)  # sft/dpo: a chat template, saved with the model
        self.loaded.model = apply_strategy(self.loaded.model, config)
        if self.resumes_adapters:
            load_checkpoint_adapters(self.loaded.model, self.checkpoint)
        check_memory(self.loaded.model, config)
        tokenizer = self.tokenizer = self.loaded.tokenizer
        self.train_enc = self.task.encode(tokenizer, prepared.train_texts, prepared.train_targets, config.max_length)
        self.eval_enc = self.task.encode(tokenizer, prepared.eval_texts, prepared.eval_targets, config.max_length)
        self.pad_id = pad_id(tokenizer)
        saved = saved_task_state(self.checkpoint)
        if saved is not None:
            self.task.restore_resume_state(saved, [self.train_enc, self.eval_enc])
        else:
            self.task.before_training(self.loaded.model, [self.train_enc, self.eval_enc], config.batch_size * 2, self.pad_id)
        self.steps_per_epoch = self.task.steps_per_epoch(len(self.train_enc), config.batch_size)
        if not config.quiet:
            for line in self.notices:
                print(f"llmnb: {line}")
        return self.loaded.model

    def new_state(self, model) -> TrainState:
        config, task = self.config, self.task
        metric = (config.metric or task.headline).removeprefix("eval_")
        self.state = TrainState(
            task=task.name,
            model_name=self.model_name,
            metric_name="eval_" + metric,
            greater_is_better=task.greater_is_better if not config.metric else metric not in ("mse", "loss", "perplexity"),
            panel_keys=task.panel_keys,
        )
        return self.state

    def batches(self, epoch):
        return self.task.batches(self.train_enc, self.config, epoch, self.pad_id)

    def has_eval_data(self) -> bool:
        return len(self.eval_enc) > 0  # eval_fraction=0 and no eval data: no evaluations

    def evaluate(self):
        metrics = self.task.evaluate(self.loaded.model, self.eval_enc, self.tokenizer, self.config.batch_size * 2)
        self.state.samples = list(self.task.samples)  # answers beside references, for the display
        return metrics

    @property
    def compute_loss(self):
        return self.task.compute_loss

    def listeners(self, engine):
        own = self.task.listeners()  # first: they fill in the log rows everything after them reads
        if self.run_dir is None or not self.config.save_checkpoints:
            return own
        from llmnb.core.checkpoint import Checkpointer

        labels = self.prepared.labels
        extra = {"model_name": self.model_name, "labels": labels.names if labels else None, "config": self.config.to_dict(),
                 "task_state": self.task.resume_state([self.train_enc, self.eval_enc])}
        return [*own, Checkpointer(self.run_dir, engine, self.tokenizer, extra, self.config.checkpoint_every)]

    def before_fit(self, engine):
        if self.checkpoint is not None:
            restore_engine(engine, self.checkpoint)

    def plan(self, engine) -> str:
        from llmnb.core.run_folders import size_warning

        warning = size_warning()
        plan = _plan(engine, self.loaded, self.model_name, self.prepared)
        plan += "".join(f"\nllmnb: {line}" for line in self.task.plan_lines(self.train_enc, self.tokenizer, self.config))
        return plan + (f"\n{warning}" if warning else "")

    def make_result(self, model, state):
        prepared = self.prepared
        return self.task.result_class(
            model=model,
            tokenizer=self.tokenizer,
            config=self.config,
            state=state,
            task=self.task,
            labels=prepared.labels,
            model_name=self.model_name,
            text_column=prepared.text_column,
            label_column=prepared.label_column,
            train_size=len(self.train_enc),
            eval_size=len(self.eval_enc),
            notices=self.notices,
        )

    def finish(self, result):
        result.run_dir = self.run_dir
        result.started_from_result = self.started_from_result
        if self.run_dir is not None and result.status != "interrupted":
            save_final(result, self.run_dir)


def save_final(result, run_dir) -> bool:
    """The final (best) weights at the top of the run folder; then the resumable checkpoint goes,
    since a finished run has nothing left to resume. A save that fails warns and keeps the model
    in memory (and the checkpoint on disk): the result is returned all the same."""
    from llmnb.core.checkpoint import (
        DiskWarning,
        discard_checkpoint,
        state_bytes,
        write_errors,
        write_failed,
    )

    try:
        result.save(run_dir)
    except write_errors() as error:
        message = write_failed(run_dir, error, state_bytes(result.model), "the final model")
        result.state.notes.append("the final model was not saved: " + message)
        warnings.warn(message, DiskWarning, stacklevel=3)
        return False
    discard_checkpoint(run_dir)
    return True


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
        from llmnb.errors import ConfigError

        raise ConfigError(
            f"This run needs about {needed / 2**30:.1f} GB of memory but only {available / 2**30:.1f} GB is free. "
            "Try a smaller batch_size, grad_accum > 1, a smaller max_length, or a smaller model."
        )


def _available_memory() -> int | None:
    from llmnb.core.memory import available_memory

    return available_memory()  # a container's limit included (Binder: 2 GiB), not only the host's RAM


def _load(model, config: FineTuneConfig, task: Task, labels: LabelMap | None):
    from llmnb.core.models import LoadedModel, load_model

    if isinstance(model, TrainResult) and task.continues_results:
        import copy

        # A copy: the result passed in keeps its weights and tokenizer, for before/after comparisons.
        name = model.model_name if isinstance(model, FineTuneResult) else "pretrained-gpt"
        weights = copy.deepcopy(model.model)
        if hasattr(weights, "merge_and_unload"):
            weights = weights.merge_and_unload()  # a LoRA run's adapters folded in: new adapters start from here
        model = LoadedModel(weights, copy.deepcopy(model.tokenizer), name, task.name)
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
        f"{len(prepared.train_texts)} examples, validating on {len(prepared.eval_texts)}\n"
        f"llmnb: {s.max_steps} steps ({s.num_epochs:.3g} epochs of {s.steps_per_epoch}), batch {c.batch_size}, "
        f"lr {c.lr:.0e}, {precision} on {engine.device}"
    )
