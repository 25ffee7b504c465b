"""The training loop. It knows nothing about notebooks, tasks or files.

`Engine(model, config, train_batches, steps_per_epoch, evaluate, callbacks).fit()` runs AdamW
with warmup and decay, gradient clipping and accumulation, mixed precision, periodic evaluation
and early stopping that keeps the best weights. It reads only the loop's options (`TrainConfig`),
so every job (fine-tuning, pretraining) trains through it. Everything the outside world sees goes through the
events in `events.py`. Ctrl-C ends the run cleanly: the best weights so far are put back,
`on_train_end` fires with status "interrupted", and `fit` returns normally.
"""
from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, Callable, Iterable

import torch

from llmnb.core.config import TrainConfig
from llmnb.core.events import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    RUNNING,
    STOPPED_EARLY,
    CallbackList,
    TrainState,
)
from llmnb.errors import TrainingError

log = logging.getLogger("llmnb")


def choose_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32.

    Taught in chapter 1 (tutorials/01_background.ipynb) and chapter 5 (tutorials/05_project.ipynb).
    """
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    # auto: bf16 on GPUs that have it; fp16 elsewhere on CUDA; on CPUs only where it was measured to pay.
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with bf16 matrix instructions (Intel AMX, AVX512-BF16 on Intel and AMD Zen 4+).

    Measured on an AVX512-BF16 machine (docs/defaults.md): MiniLM fine-tuning ran 1.7x faster
    under bf16 autocast at equal accuracy. Without these instructions bf16 is emulated and slower.

    Taught in chapter 1 (tutorials/01_background.ipynb) and chapter 8 (tutorials/08_trends_challenges.ipynb).
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast(dtype: torch.dtype | None, device: torch.device):
    """The mixed-precision context of `dtype` (from `choose_precision`) on `device`; none for fp32.
    Whatever must match the training forward pass exactly (DPO's reference log-probabilities)
    runs under this same context."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def make_optimizer(model, config: TrainConfig, device: torch.device):
    """AdamW over the weights that train; weight decay on matrices only.

    Taught in chapter 5 (tutorials/05_project.ipynb).
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            # Biases and normalisation weights are not regularised: decaying them only hurts.
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel does the whole update in one pass: on this CPU an fp32 step ran 1.28-1.38x
    # faster than with foreach (benchmarks/run.py), with the same weights to 5e-7.
    try:
        return torch.optim.AdamW(groups, lr=config.lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without the fused kernel
        return torch.optim.AdamW(groups, lr=config.lr, foreach=True)


def make_scheduler(optimizer, config: TrainConfig, max_steps: int):
    """The learning rate over the run: linear warmup, then linear, cosine or constant.

    Taught in chapter 5 (tutorials/05_project.ipynb).
    """
    warmup = int(round(config.warmup * max_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, max_steps - warmup)
        if config.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return max(0.0, 1 - progress)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Engine:
    """One training run's loop over `train_batches(epoch)`, reporting to its listeners.

    A job builds it (`llmnb.core.job.Job.run`), may `add_callback` listeners and set
    `eval_at_start`, then calls `fit()`. `snapshot()` / `restore()` are what a checkpoint holds.
    """

    def __init__(
        self,
        model,
        config: TrainConfig,
        train_batches: Callable[[int], Iterable[dict]],
        steps_per_epoch: int,
        evaluate: Callable[[], dict] | None = None,
        callbacks=(),
        state: TrainState | None = None,
    ):
        self.model = model
        self.config = config
        self.train_batches = train_batches
        self.evaluate_fn = evaluate
        self.callbacks = CallbackList(callbacks)
        self.device = next(model.parameters()).device
        self.autocast_dtype = choose_precision(config.precision, self.device)
        self.state = state or TrainState()
        self.state.steps_per_epoch = steps_per_epoch
        self.state.max_steps = config.planned_steps(steps_per_epoch)
        self.eval_every = config.evaluation_interval(self.state.max_steps)  # None: at each epoch's end
        self.eval_at_start = False  # True: evaluate the untrained model first, so step 0 is on the curve
        # The loss of one micro-batch. A job whose loss is not the model's own (preference tuning
        # compares two answers) sets its own; the loop stays the same.
        self.compute_loss: Callable[[Any, dict], torch.Tensor] = lambda model, batch: model(**batch).loss
        self.state.num_epochs = self.state.max_steps / steps_per_epoch
        # About 100 points per run: enough for a smooth curve, few host syncs.
        self.state.log_every = config.log_every or max(1, self.state.max_steps // 100)
        self.optimizer = make_optimizer(model, config, self.device)
        self.scheduler = make_scheduler(self.optimizer, config, self.state.max_steps)
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast_dtype == torch.float16 else None
        self.best_weights = None
        self._best_weights_owned = False
        self.grad_accum = config.grad_accum  # may grow when a step runs out of memory
        self._evals_without_improvement = 0
        # Training loss summed on the device since the last log row (read back only when logging).
        self._loss_sum = torch.zeros((), device=self.device)
        self._loss_count = 0

    def add_callback(self, callback, first: bool = False) -> None:
        """Add a listener; `first` puts it before the others (it sees each event before the display)."""
        if first:
            self.callbacks.callbacks.insert(0, callback)
        else:
            self.callbacks.callbacks.append(callback)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainState:
        """Train until max_steps, early stopping, Ctrl-C or a numerical fault; returns the state.

        A state restored from a checkpoint (`restore`) continues where it stopped: the batches
        of the current epoch already seen are skipped, so the run repeats the uninterrupted one.
        """
        state = self.state
        self.model.train()
        self.callbacks.on_train_begin(state)
        try:
            if self.eval_at_start and state.step == 0 and not any(r.get("step") == 0 and "eval_loss" in r for r in state.history):
                self._evaluate()
            epoch, skip = divmod(state.step, state.steps_per_epoch)
            while state.step < state.max_steps and state.status == RUNNING:
                for index, batch in enumerate(self.train_batches(epoch)):
                    if index < skip:
                        continue
                    self._loss_sum += self._step(batch)
                    self._loss_count += 1
                    state.step += 1
                    state.epoch = state.step / state.steps_per_epoch
                    if state.step % state.log_every == 0 or state.step == state.max_steps:
                        mean_loss = self._loss_sum.item() / self._loss_count  # the only host sync of the step
                        # Reset before the listeners run: one that stops the run (Ctrl-C) would
                        # otherwise leave this row's loss in a checkpoint, counted again on resume.
                        self._loss_sum.zero_()
                        self._loss_count = 0
                        self._log(mean_loss)
                    if self.eval_every and state.step % self.eval_every == 0:
                        self._evaluate()
                    if state.step >= state.max_steps or state.status != RUNNING:
                        break
                epoch, skip = epoch + 1, 0
                if state.step == epoch * state.steps_per_epoch:  # the epoch ran to its end
                    self.callbacks.on_epoch_end(state)
                    if not self.eval_every and state.status == RUNNING:
                        self._evaluate()
            if state.status == RUNNING:
                if state.last_eval is None or state.last_eval.get("step") != state.step:
                    self._evaluate()
                state.status = FINISHED
        except KeyboardInterrupt:
            state.status = INTERRUPTED
            state.message = f"interrupted at step {state.step} of {state.max_steps}"
            try:
                self.callbacks.on_interrupt(state)  # e.g. a resumable checkpoint of this very step
            except KeyboardInterrupt:  # a second Ctrl-C: stop saving, keep what is in memory
                pass
        except TrainingError as e:
            # The caller reads the status; the best weights are restored below all the same.
            state.status = FAILED
            state.message = str(e)
        except Exception as e:
            # Anything else (a listener's bug, a model's error) ends the run too: the display must
            # not go on saying "running", and the best weights are restored below before it re-raises.
            state.status = FAILED
            state.message = f"{type(e).__name__}: {e}"
            raise
        finally:
            self.model.eval()
            self._restore_best()
            self.callbacks.on_train_end(state)
        return state

    # ------------------------------------------------------------------ checkpoints
    def snapshot(self) -> dict:
        """Everything besides the weights that a resumed run needs to continue exactly."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "loss_sum": self._loss_sum.detach().cpu(),
            "loss_count": self._loss_count,
            "evals_without_improvement": self._evals_without_improvement,
            "grad_accum": self.grad_accum,
        }

    def _keep_best_weights(self) -> None:
        """A CPU copy: the best weights survive whatever the next steps do. A later improvement
        overwrites the copy in place, so two copies never exist at once (a notebook's memory
        peak would grow by the model's size, 87 MB for MiniLM)."""
        weights = self.model.state_dict()
        mine = self._best_weights_owned and self.best_weights is not None and self.best_weights.keys() == weights.keys()
        if mine:
            for key, value in weights.items():
                self.best_weights[key].copy_(value.detach())
        else:
            self.best_weights = None  # let a checkpoint's copy go before the new one is made
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}
            self._best_weights_owned = True

    def restore(self, snapshot: dict, best_weights: dict | None = None) -> None:
        self.optimizer.load_state_dict(snapshot["optimizer"])
        self.scheduler.load_state_dict(snapshot["scheduler"])
        if self.scaler and snapshot.get("scaler"):
            self.scaler.load_state_dict(snapshot["scaler"])
        torch.set_rng_state(snapshot["torch_rng"])
        if snapshot.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(snapshot["cuda_rng"])
        self._loss_sum = snapshot["loss_sum"].to(self.device)
        self._loss_count = snapshot["loss_count"]
        self._evals_without_improvement = snapshot["evals_without_improvement"]
        self.grad_accum = snapshot.get("grad_accum", self.grad_accum)
        self.best_weights = best_weights
        self._best_weights_owned = False  # read from a checkpoint file: never written into

    def _step(self, batch) -> torch.Tensor:
        """One optimizer step over `batch`, split into grad_accum micro-batches.

        Out of memory in the middle of a step: the gradients so far are dropped, the micro-batch
        is halved (grad_accum doubled, so the effective batch stays the same) and the step is
        retried. That is the usual fix by hand, done for the user.
        """
        while True:
            try:
                total = self._forward_backward(batch)
                break
            except RuntimeError as error:
                if " out of memory" not in str(error) or self.grad_accum >= len(batch["input_ids"]):
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.grad_accum *= 2
                note = f"out of memory at step {self.state.step + 1}: micro-batch halved to {-(-self.config.batch_size // self.grad_accum)} (grad_accum {self.grad_accum}), same effective batch"
                self.state.notes.append(note)
                log.warning(note)
        if self.config.on_nan == "skip" and not torch.isfinite(total):
            # Skipping needs this host sync every step, which is why it is not the default.
            self.optimizer.zero_grad(set_to_none=True)
            self.state.skipped_batches += 1
            self.state.samples_seen += len(batch["input_ids"])
            return torch.zeros((), device=self.device)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.samples_seen += len(batch["input_ids"])
        return total

    def _forward_backward(self, batch) -> torch.Tensor:
        size = len(batch["input_ids"])
        micro = max(1, -(-size // self.grad_accum))
        total = torch.zeros((), device=self.device)
        tokens = int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()
        for start in range(0, size, micro):
            part = {k: v[start : start + micro].to(self.device, non_blocking=True) for k, v in batch.items()}
            with self._autocast():
                loss = self.compute_loss(self.model, part)
            share = len(part["input_ids"]) / size
            (self.scaler.scale(loss * share) if self.scaler else loss * share).backward()
            total += loss.detach() * share
        self.state.tokens_seen += tokens  # counted on the CPU copy: no device sync
        return total

    def _autocast(self):
        return autocast(self.autocast_dtype, self.device)

    # ------------------------------------------------------------------ logging and evaluation
    def _log(self, mean_loss: float):
        state = self.state
        if not math.isfinite(mean_loss):
            raise TrainingError(
                f"The training loss became {mean_loss} by step {state.step}. The weights from the last good "
                "evaluation were kept. Try a lower learning rate (e.g. lr=2e-5) or precision='fp32'."
            )
        state.train_loss = mean_loss
        state.lr = self.scheduler.get_last_lr()[0]
        elapsed = state.elapsed
        row = {"step": state.step, "epoch": round(state.epoch, 4), "train_loss": mean_loss, "lr": state.lr,
               "tokens_per_second": round(state.tokens_seen / max(elapsed, 1e-9), 1), "seconds": round(elapsed, 3)}
        state.history.append(row)
        self.callbacks.on_log(state, row)

    def _evaluate(self):
        if self.evaluate_fn is None:
            return
        state = self.state
        self.model.eval()
        with torch.no_grad(), self._autocast():
            metrics = self.evaluate_fn()
        self.model.train()
        row = {"step": state.step, "epoch": round(state.epoch, 4), **metrics, "seconds": round(state.elapsed, 3)}
        state.history.append(row)
        state.last_eval = row
        value = metrics.get(state.metric_name)
        improved = value is not None and math.isfinite(value) and (
            state.best_metric is None
            or (value > state.best_metric if state.greater_is_better else value < state.best_metric)
        )
        if improved:
            state.best_metric, state.best_step = value, state.step
            self._evals_without_improvement = 0
            self._keep_best_weights()
        else:
            self._evals_without_improvement += 1
        self.callbacks.on_evaluate(state, metrics)
        patience = self.config.early_stopping
        if patience and self._evals_without_improvement >= patience and state.step < state.max_steps:
            state.status = STOPPED_EARLY
            state.message = (
                f"stopped early at step {state.step}: {state.metric_name} did not improve for {patience} "
                f"evaluations; kept the best weights (step {state.best_step})"
            )

    def _restore_best(self):
        """Put back the best weights seen at an evaluation, if the model has moved past them."""
        state = self.state
        if self.best_weights is not None and state.best_step != state.step:
            self.model.load_state_dict(self.best_weights)
            log.info("restored the weights of step %s (%s=%.4f)", state.best_step, state.metric_name, state.best_metric)
            if state.status == INTERRUPTED:
                state.message += f"; kept the best weights (step {state.best_step})"
        elif state.status == INTERRUPTED and self.best_weights is None:
            state.message += "; no evaluation yet, so the model keeps its current weights"
