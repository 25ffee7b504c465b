"""Fault injection: interrupts anywhere, NaN, out of memory, and memory checks before training."""
import importlib
import json
import random

import pytest
import torch

import llmnb
from llmnb.core.events import Callback


@pytest.mark.parametrize("step", sorted(random.Random(7).sample(range(2, 30), 3)))
def test_interrupt_at_a_random_step_keeps_model_and_checkpoint(step, easy_rows, easy_eval_rows, tiny_options, tmp_path):
    class InterruptAt(Callback):
        def on_log(self, state, row):
            if state.step == step:
                raise KeyboardInterrupt

    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, out=str(tmp_path / "run"), callbacks=[InterruptAt()],
                        **{**tiny_options, "epochs": 3, "log_every": 1})
    assert ft.status == "interrupted" and ft.state.step == step
    assert len(ft.history) >= step
    if ft.state.best_step is None:  # no evaluation yet: the model keeps the weights of the step it stopped at
        saved = llmnb.load_model(str(tmp_path / "run" / "checkpoint")).model.state_dict()
        own = ft.model.state_dict()
        assert len(saved.keys() & own.keys()) > 10 and all(torch.equal(saved[k], own[k]) for k in saved.keys() & own.keys())
    else:  # the weights held are those of the best evaluation, not of the step it stopped at
        assert ft.evaluate(easy_eval_rows) == pytest.approx(ft.metrics, rel=1e-4)
    # Ctrl-C wrote a checkpoint of the very step it stopped at, and it loads.
    assert json.loads((tmp_path / "run" / "checkpoint" / "trainer_state.json").read_text())["state"]["step"] == step
    assert llmnb.load_model(str(tmp_path / "run" / "checkpoint")).model.config.num_labels == 2


def test_interrupt_during_evaluation(easy_rows, easy_eval_rows, tiny_options, monkeypatch):
    from llmnb.finetuning.run import FineTuneJob

    real, calls = FineTuneJob.evaluate, []

    def evaluate_then_interrupt(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(FineTuneJob, "evaluate", evaluate_then_interrupt)
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, **{**tiny_options, "epochs": 3})
    assert ft.status == "interrupted" and ft.state.best_step == 10 and not ft.model.training


def test_out_of_memory_halves_the_micro_batch_and_goes_on(easy_rows, tiny_options):
    lm = llmnb.load_model("tiny-bert")
    real_forward, attempts, ran = lm.model.forward, [], []

    def forward(*args, **kwargs):
        size = len(kwargs["input_ids"])
        attempts.append(size)
        if size > 4:  # pretend anything above 4 examples does not fit on the device
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        ran.append(size)
        return real_forward(*args, **kwargs)

    lm.model.forward = forward
    ft = llmnb.finetune(lm, easy_rows, **{**tiny_options, "max_steps": 3, "eval_fraction": 0.1})
    assert ft.status == "finished" and ft.state.samples_seen == 3 * 16
    assert attempts[:4] == [16, 8, 4, 4] and max(ran) == 4  # evaluation halves its batch the same way
    assert any("out of memory" in note and "same effective batch" in note for note in ft.state.notes)


def test_skip_bad_batches_policy(easy_rows, tiny_options):
    lm = llmnb.load_model("tiny-bert")
    real_forward, calls = lm.model.forward, []

    def forward(*args, **kwargs):
        out = real_forward(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # one poisoned batch
            out.loss = out.loss * float("nan")
        return out

    lm.model.forward = forward
    ft = llmnb.finetune(lm, easy_rows, **{**tiny_options, "max_steps": 6, "on_nan": "skip", "eval_fraction": 0.1})
    assert ft.status == "finished" and ft.state.skipped_batches == 1
    assert all(torch.isfinite(p).all() for p in ft.model.parameters())


def test_cpu_memory_is_checked_before_training(easy_rows, monkeypatch):
    ft_module = importlib.import_module("llmnb.finetuning.run")

    monkeypatch.setattr(ft_module, "_available_memory", lambda: 10 * 2**20)  # 10 MB free
    with pytest.raises(llmnb.ConfigError, match=r"needs about .* GB of memory but only 0.0 GB is free"):
        llmnb.finetune("tiny-bert", easy_rows, quiet=True)
