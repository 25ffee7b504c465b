"""llmnb.display.bridge: llmnb's live display driven by a real (tiny) transformers Trainer run."""
import io

import pytest
from easy_data import make_easy_sentiment

import llmnb
from llmnb.core.events import Callback
from llmnb.display import ConsoleDisplay
from llmnb.display.bridge import LiveCallback, attach
from llmnb.errors import ConfigError


class Recorder(Callback):
    """A fake display that keeps every event with a copy of what the state said then."""

    def __init__(self):
        self.events = []

    def _keep(self, name, state, payload=None):
        self.events.append((name, state.step, state.max_steps, state.train_loss, dict(payload or {})))

    def on_train_begin(self, state):
        self._keep("begin", state)

    def on_log(self, state, row):
        self._keep("log", state, row)

    def on_evaluate(self, state, metrics):
        self._keep("evaluate", state, metrics)

    def on_epoch_end(self, state):
        self._keep("epoch", state)

    def on_train_end(self, state):
        self._keep("end", state)


def encoded(tokenizer, rows):
    return [{**tokenizer(r["text"], truncation=True), "labels": int(r["label"] == "positive")} for r in rows]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Six optimizer steps, a loss point every step, an evaluation every third step."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    lm = llmnb.load_model("tiny-bert", num_labels=2, device="cpu")
    args = TrainingArguments(
        output_dir=str(tmp_path_factory.mktemp("trainer")), max_steps=6, per_device_train_batch_size=16, learning_rate=2e-3,
        logging_steps=1, eval_strategy="steps", eval_steps=3, save_strategy="no", report_to=[], use_cpu=True,
        remove_unused_columns=False, metric_for_best_model="accuracy", disable_tqdm=True,
    )
    trainer = Trainer(
        lm.model, args, train_dataset=encoded(lm.tokenizer, make_easy_sentiment(96)), eval_dataset=encoded(lm.tokenizer, make_easy_sentiment(32, seed=1)),
        data_collator=DataCollatorWithPadding(lm.tokenizer),
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
    )
    recorder = Recorder()
    live = attach(trainer, display=recorder)
    console = io.StringIO()
    trainer.add_callback(LiveCallback(ConsoleDisplay(stream=console)))  # the real console bar, on the same run
    trainer.train()
    return trainer, live, recorder, console.getvalue()


def test_state_follows_the_trainer(run):
    trainer, live, _, _ = run
    s = live.state
    assert s.step == s.max_steps == 6 and s.status == "finished" and s.steps_per_epoch == 6
    logged = [r for r in trainer.state.log_history if "loss" in r]
    rows = [r for r in s.history if "train_loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["train_loss"] for r in rows] == pytest.approx([r["loss"] for r in logged])
    assert [r["lr"] for r in rows] == pytest.approx([r["learning_rate"] for r in logged])
    evals = [r for r in s.history if "eval_loss" in r]
    assert [r["step"] for r in evals] == [3, 6]
    assert all("eval_accuracy" in r and "eval_runtime" not in r for r in evals)
    trainer_evals = [r for r in trainer.state.log_history if "eval_loss" in r]
    assert [r["eval_accuracy"] for r in evals] == pytest.approx([r["eval_accuracy"] for r in trainer_evals])
    assert s.metric_name == "eval_accuracy" and s.greater_is_better
    assert s.best_metric == max(r["eval_accuracy"] for r in evals)
    assert s.samples_seen == 6 * 16
    assert type(live.plot()).__name__ == "Figure"


def test_display_gets_every_event_in_order(run):
    _, _, recorder, _ = run
    names = [e[0] for e in recorder.events]
    assert names[0] == "begin" and names[-1] == "end"
    assert names.count("log") == 6 and names.count("evaluate") == 2 and "epoch" in names
    begin = recorder.events[0]
    assert begin[1] == 0 and begin[2] == 6  # the display knows the run's length from the start
    third_log = [e for e in recorder.events if e[0] == "log"][2]
    assert third_log[1] == 3 and third_log[3] == pytest.approx(third_log[4]["train_loss"])
    first_eval = next(e for e in recorder.events if e[0] == "evaluate")
    assert first_eval[1] == 3 and "eval_accuracy" in first_eval[4]


def test_attach_replaces_the_trainers_own_printing(run):
    trainer, live, _, _ = run
    kinds = [type(c).__name__ for c in trainer.callback_handler.callbacks]
    assert "LiveCallback" in kinds and "PrinterCallback" not in kinds and "ProgressCallback" not in kinds


def test_console_display_shows_the_run(run):
    _, _, _, console = run
    assert console.startswith("training ") and "6 steps" in console
    assert "eval at step 3" in console and "eval at step 6" in console and "accuracy" in console
    assert "100%" in console and "finished" in console.splitlines()[-1]


def test_bad_display_is_explained():
    with pytest.raises(ConfigError, match="console"):
        LiveCallback(display="fancy")
    with pytest.raises(ConfigError, match="Callback"):
        LiveCallback(display=print)
    assert isinstance(LiveCallback("console").display, ConsoleDisplay) and LiveCallback("quiet").display is None


def test_display_name_is_short(tmp_path):
    from llmnb.core.models import bundled_minilm_path
    from llmnb.display.bridge import display_name

    assert display_name(str(bundled_minilm_path())) == "minilm"  # not a path into site-packages
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert display_name(str(folder)) == "my-model"
    assert display_name("bert-base-uncased") == "bert-base-uncased"  # a Hub id stays as it is
    assert display_name("") == ""
