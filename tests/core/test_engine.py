"""The training loop on a tiny BERT: it learns, it stops, it survives Ctrl-C, it never draws."""
import subprocess
import sys

import pytest

import llmnb
from llmnb.core.events import Callback


class Recorder(Callback):
    def __init__(self, interrupt_at=None):
        self.events, self.interrupt_at = [], interrupt_at

    def on_train_begin(self, state):
        self.events.append("begin")

    def on_log(self, state, row):
        self.events.append("log")
        if self.interrupt_at and state.step >= self.interrupt_at:
            raise KeyboardInterrupt

    def on_evaluate(self, state, metrics):
        self.events.append("evaluate")

    def on_epoch_end(self, state):
        self.events.append("epoch")

    def on_train_end(self, state):
        self.events.append(f"end:{state.status}")


def test_loss_falls_and_accuracy_rises(easy_rows, easy_eval_rows, tiny_options):
    recorder = Recorder()
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, callbacks=[recorder], **tiny_options)
    losses = ft.history["train_loss"].dropna().tolist()
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    assert ft.metrics["eval_accuracy"] >= 0.9
    assert recorder.events[0] == "begin" and recorder.events[-1] == "end:finished"
    assert recorder.events.count("evaluate") == tiny_options["epochs"]
    assert recorder.events.count("epoch") == tiny_options["epochs"]


def test_ctrl_c_returns_the_result_with_best_weights(easy_rows, easy_eval_rows, tiny_options):
    recorder = Recorder(interrupt_at=25)  # epoch 1 ends at step 10, epoch 2 at 20
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, callbacks=[recorder], **{**tiny_options, "log_every": 1})
    assert ft.status == "interrupted" and recorder.events[-1] == "end:interrupted"
    assert ft.state.step == 25 and ft.state.best_step in (10, 20)
    assert "interrupted at step 25" in ft.state.message and "best weights" in ft.state.message
    # The held weights are the best evaluation's: evaluating again reproduces its metric.
    again = ft.evaluate(easy_eval_rows)
    assert again["eval_loss"] == pytest.approx(ft.metrics["eval_loss"], rel=1e-4)
    # A second run afterwards works normally.
    assert llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 3}).status == "finished"


def test_early_stopping_keeps_the_best_weights(easy_rows, easy_eval_rows, tiny_options):
    # lr 0.05 makes a tiny BERT diverge after a few steps: evaluation stops improving.
    ft = llmnb.finetune(
        "tiny-bert", easy_rows, eval=easy_eval_rows, **{**tiny_options, "lr": 5e-2, "epochs": 10, "eval_every": 3,
                                                       "early_stopping": 2, "metric": "loss", "warmup": 0}
    )
    assert ft.status == "stopped early" and ft.state.step < ft.state.max_steps, ft.state.message
    evals = ft.history.dropna(subset=["eval_loss"])
    best = evals["eval_loss"].min()
    assert evals["eval_loss"].iloc[-1] > best and ft.best_step < ft.state.step  # it moved past the best...
    assert ft.metrics["eval_loss"] == pytest.approx(best)
    assert ft.evaluate(easy_eval_rows)["eval_loss"] == pytest.approx(best, rel=1e-4)  # ...and went back to it


def test_early_stopping_stops_after_the_patience_runs_out(easy_rows, easy_eval_rows, tiny_options):
    # A learning rate too small to move accuracy: nothing improves after the first evaluation.
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows,
                        **{**tiny_options, "lr": 1e-12, "epochs": 10, "eval_every": 2, "early_stopping": 3, "warmup": 0})
    assert ft.status == "stopped early" and ft.best_step == 2 and ft.state.step == 2 + 3 * 2, ft.state.message


def test_max_steps_and_grad_accumulation(easy_rows, tiny_options):
    ft = llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 7, "grad_accum": 4, "eval_fraction": 0.2})
    assert ft.state.step == 7 and ft.state.samples_seen == 7 * 16
    assert ft.eval_size == 32 and ft.train_size == 128


def test_engine_never_imports_display_code():
    code = "import sys, llmnb.core.engine, llmnb.finetuning.run; bad = [m for m in ('IPython', 'ipywidgets', 'matplotlib') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_importing_llmnb_is_cheap():
    code = "import sys, llmnb; heavy = [m for m in ('torch', 'transformers', 'pandas') if m in sys.modules]; sys.exit(bool(heavy))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_nan_loss_stops_with_a_message_and_keeps_the_result(easy_rows, easy_eval_rows, tiny_options):
    class PoisonAfterFirstEpoch(Callback):
        """Turns the weights into NaN after the first evaluation, as a diverging run would."""

        def on_evaluate(self, state, metrics):
            if state.step == state.steps_per_epoch:
                import torch

                with torch.no_grad():
                    for p in self.model.parameters():
                        p.fill_(float("nan"))

    poison = PoisonAfterFirstEpoch()
    lm = llmnb.load_model("tiny-bert")
    poison.model = lm.model
    with pytest.raises(llmnb.TrainingError, match="loss became nan by step") as info:
        llmnb.finetune(lm, easy_rows, eval=easy_eval_rows, callbacks=[poison], **{**tiny_options, "log_every": 1})
    result = info.value.result
    assert result.status == "failed" and result.state.best_step == 10
    import torch

    assert all(torch.isfinite(p).all() for p in result.model.parameters())  # the good weights came back


def test_a_listener_that_raises_ends_the_run_as_failed(easy_rows, tiny_options):
    """The display's last frame used to say "running" after a callback raised."""
    from llmnb.display.notebook import render_html

    class Broken(Callback):
        def on_log(self, state, row):
            if state.step == 3:
                raise ValueError("a bug in my callback")

    class LastFrame(Callback):
        def on_train_end(self, state):
            self.status, self.html = state.status, render_html(state, chart=False)

    frame = LastFrame()
    with pytest.raises(ValueError, match="a bug in my callback"):
        llmnb.finetune("tiny-bert", easy_rows, callbacks=[Broken(), frame], **{**tiny_options, "log_every": 1})
    assert frame.status == "failed"
    assert "ValueError: a bug in my callback" in frame.html and "running" not in frame.html.lower()


def test_a_metric_given_with_its_eval_prefix_works(easy_rows, easy_eval_rows, tiny_options):
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, metric="eval_loss", **{**tiny_options, "epochs": 1})
    assert ft.state.metric_name == "eval_loss" and ft.state.greater_is_better is False and ft.state.best_step

