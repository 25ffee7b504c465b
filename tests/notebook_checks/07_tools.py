"""07_tools: each library used for real, the Trainer's live curve, and no network in the fast profile.
Numbers are read from the notebook's own objects (VALUES) and compared with what the test computes itself:
the adapters' weights from LoRA's arithmetic, llmnb's view of the Trainer run against the Trainer's own log.
Its "your turn" exercises pass with their solutions in place."""
import math
from collections import Counter

from test_notebooks import outputs

from notebook_checks import assert_exercises_correct

VALUES = {
    # peft
    "by_hand": "by_hand",
    "by_hand_share": "by_hand_share",
    "peft_total": "sum(p.numel() for p in peft_model.parameters())",
    "lora": "{'r': lora_config.r, 'modules': sorted(lora_config.target_modules)}",
    "minilm": "{key: getattr(classifier.config, key) for key in ('num_hidden_layers', 'hidden_size', 'num_labels')}",
    # accelerate
    "script_returncode": "completed.returncode",
    "script_lines": "[line for line in completed.stdout.splitlines() if 'process(es) on' in line]",
    # Trainer + LiveCallback
    "trainer_losses": "trainer_losses",
    "live_losses": "live_losses",
    "trainer_accuracies": "[(row['step'], row['eval_accuracy']) for row in trainer.state.log_history if 'eval_accuracy' in row]",
    "live_accuracies": "[(row['step'], row['eval_accuracy']) for row in live.state.history if 'eval_accuracy' in row]",
    "best": "{'metric': live.state.best_metric, 'step': live.state.best_step, 'max_steps': live.state.max_steps}",
    "trainer_steps": "TRAINER_STEPS",
    "eval_labels": "list(trainer.eval_dataset['labels'])",
    # benchmarks
    "network_allowed": "NETWORK_ALLOWED",
    "benchmark": "{'from_hub': sst2.from_hub, 'source': sst2.source}",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('07.'))",
}


def check(nb, workdir, values):
    v = values
    assert any("image/png" in o.get("data", {}) for o in outputs(nb)), "no static curve of the Trainer run"
    # peft: the trainable weights are LoRA's A and B on query and value in every layer (r x d_in + d_out x r each)
    # plus the new classification head, and they are a small share of all weights
    m, lora = v["minilm"], v["lora"]
    assert lora["modules"] == ["query", "value"], lora
    hidden, labels = m["hidden_size"], m["num_labels"]
    adapters = m["num_hidden_layers"] * len(lora["modules"]) * lora["r"] * (hidden + hidden)
    assert v["by_hand"] == adapters + hidden * labels + labels, (v["by_hand"], adapters, m)
    assert math.isclose(v["by_hand_share"], v["by_hand"] / v["peft_total"], rel_tol=1e-12), (v["by_hand_share"], v["peft_total"])
    assert 0 < v["by_hand_share"] < 0.01, v["by_hand_share"]  # under 1 % of the weights train
    # accelerate: the exported script ran as one process and saved its model
    assert v["script_returncode"] == 0 and any("1 process(es) on" in line for line in v["script_lines"]), v["script_lines"]
    assert (workdir / "runs" / "ch07-job" / "model" / "config.json").exists()
    # Trainer + LiveCallback: llmnb's view holds exactly the Trainer's numbers (a loss per step, every
    # evaluation), its best is the best evaluation, and the run learned: it beats the untrained head of
    # step 0 and always answering the commonest label of the evaluation rows
    assert v["live_losses"] == v["trainer_losses"] and len(v["live_losses"]) == v["trainer_steps"], (
        len(v["live_losses"]), len(v["trainer_losses"]), v["trainer_steps"])
    accuracies, best = v["live_accuracies"], v["best"]
    assert accuracies == v["trainer_accuracies"] and accuracies[0][0] == 0, (accuracies, v["trainer_accuracies"])
    top = max(accuracies, key=lambda step_accuracy: step_accuracy[1])
    assert [best["step"], best["metric"]] == list(top) and best["max_steps"] == v["trainer_steps"], (best, accuracies)
    chance = max(Counter(v["eval_labels"]).values()) / len(v["eval_labels"])
    assert best["metric"] > 0.6 and best["metric"] > accuracies[0][1] and best["metric"] > chance, (best, accuracies, chance)
    # benchmarks: the fast profile never tries the Hub and says what it used instead
    assert v["network_allowed"] is False and v["benchmark"]["from_hub"] is False, v
    assert v["benchmark"]["source"] == "the bundled 'reviews' (test split) instead of glue/sst2: offline=True", v["benchmark"]
    assert v["exercises"] == ["07.1", "07.2", "07.3", "07.4", "07.5", "07.e1", "07.e2", "07.e3"], v["exercises"]
    assert_exercises_correct(nb, "07.e1", "07.e2", "07.e3")
