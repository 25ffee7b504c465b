"""09_faq: overfitting visible and cured, a faithful saliency, a 2-process run, int8 and ensembles measured.
Numbers are read from the notebook's own objects (VALUES): the runs' histories, from which the test finds
the overfitting, the cures and the early stop itself; the embedding tables, from which it predicts int8's
file ratio. Its "your turn" exercises pass with their solutions in place."""
import math
from collections import Counter

from test_notebooks import outputs

from notebook_checks import assert_exercises_correct

FREED = "held_mb = llmnb.resident_mb()"  # the cell that deletes the 64-review runs
HALVES = "whole, first_half, second_half = gradients("  # generic names are read right after their cell
LAUNCH = "run = llmnb.launch(script"
VALUES = {
    # 1.1-1.5, 1.7: every run's evaluations and training losses
    "histories": "{name: {'eval_step': h.dropna(subset=['eval_loss'])['step'].tolist(), 'eval_loss': h['eval_loss'].dropna().tolist(),"
                 " 'train_loss': h['train_loss'].dropna().tolist(), 'lr': h['lr'].dropna().tolist()} for name, h in histories.items()}",
    "steps": "STEPS",
    "patience": "PATIENCE",
    "weight_decay": "WEIGHT_DECAY",
    "shrink": "shrink",
    "stopped_at": "stopped_at",
    "kept_step": ("stopped_at = stopped.state.step", "stopped.state.best_step"),
    "more_test": "more_test",
    "test_labels": "test_df['label'].tolist()",
    # 1.6: the ensemble's cost, then the memory the deleted runs give back
    "ensemble_table": "{column: ensemble_table[column].to_dict() for column in ensemble_table}",
    "ensemble_cost": "ensemble_cost",
    "weights_mb": "weights_mb",
    "runs_deleted": (FREED, "len(histories)"),
    "held_mb": "held_mb",
    "now_mb": (FREED, "llmnb.resident_mb()"),
    # 2
    "mean_drop": "by_ranking['mean_drop'].to_dict()",
    # 3
    "gradient_difference": (HALVES, "difference"),
    "largest_gradient": (HALVES, "largest"),
    "process_counts": (LAUNCH, "list(counts)"),
    "script_returncode": (LAUNCH, "run.returncode"),
    "script_lines": (LAUNCH, "[line for line in run.stdout.splitlines() if 'process(es) on' in line or line.startswith('eval_')]"),
    "size_mb": "list(quantized.size_mb)",
    "embedding_tables": ("tables = sum(", "tables"),
    "parameters": "more.num_parameters",
    "embedding_shape": "{key: getattr(more.model.config, key) for key in"
                       " ('vocab_size', 'max_position_embeddings', 'type_vocab_size', 'hidden_size')}",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('09.'))",
}
FLOAT32_EPS = 2.0**-23


def stop_index(losses, patience):
    """Where early stopping stops: the first evaluation that completes `patience` in a row without a new lowest loss."""
    best, bad = math.inf, 0
    for i, loss in enumerate(losses):
        best, bad = (loss, 0) if loss < best else (best, bad + 1)
        if bad == patience:
            return i
    return None


def check(nb, workdir, values):
    v = values
    all_outputs = outputs(nb)
    html = " ".join(o.get("data", {}).get("text/html", "") for o in all_outputs)
    images = sum("image/png" in o.get("data", {}) for o in all_outputs) + html.count("data:image/png;base64,")
    assert images >= 3, f"only {images} figures"  # live curve, the comparison of 1.8, the explanation

    # 1: the baseline memorises (training loss near 0) while validation loss climbs well above its lowest point
    runs = v["histories"]
    base = runs["baseline"]
    assert base["train_loss"][-1] < 0.1, base["train_loss"][-1]
    assert base["eval_loss"][-1] > 1.3 * min(base["eval_loss"]), base["eval_loss"]
    # a cure that makes memorising harder (augmentation or dropout) ends with a validation loss clearly
    # (10 % or more, the notebook's own rule) below the baseline's
    cured = [name for name, run in runs.items() if run["eval_loss"][-1] <= 0.9 * base["eval_loss"][-1]]
    assert {"augmentation", "dropout"} & set(cured), {name: run["eval_loss"][-1] for name, run in runs.items()}
    # weight decay is a near no-op here, as the text says: the factor recomputed from the logged learning rates
    shrink = math.prod(1 - lr * v["weight_decay"] for lr in runs["weight decay"]["lr"])
    assert len(runs["weight decay"]["lr"]) == v["steps"] and math.isclose(shrink, v["shrink"], rel_tol=1e-9), (shrink, v["shrink"])
    assert shrink > 0.99, shrink
    # early stopping stopped where its rule says, before the planned steps, and kept the lowest validation loss
    stopping = runs["early stopping"]
    at = stop_index(stopping["eval_loss"], v["patience"])
    assert at is not None and stopping["eval_step"][at] == v["stopped_at"] < v["steps"], (stopping, v["stopped_at"])
    lowest = min(range(at + 1), key=stopping["eval_loss"].__getitem__)
    assert v["kept_step"] == stopping["eval_step"][lowest], (v["kept_step"], stopping)
    # the 'more data' model used in sections 2 and 3 learned
    chance = max(Counter(v["test_labels"]).values()) / len(v["test_labels"])
    assert v["more_test"] > 0.7 and v["more_test"] > chance, (v["more_test"], chance)
    # 1.6: the ensemble predicts with every member, so it costs at least half of one prediction per member
    table = v["ensemble_table"]
    time_column = next(column for column in table if column.startswith("seconds to predict"))
    members = [name for name in table[time_column] if name != "ensemble of the 4"]
    cost = table[time_column]["ensemble of the 4"] / (sum(table[time_column][m] for m in members) / len(members))
    assert math.isclose(cost, v["ensemble_cost"], rel_tol=1e-9) and cost > len(members) / 2, (cost, v["ensemble_cost"], table)
    # then deleting the 64-review runs gives back at least their weights
    freed, deleted = v["held_mb"] - v["now_mb"], v["runs_deleted"] * v["weights_mb"]
    assert freed >= deleted, f"deleting {v['runs_deleted']} runs ({deleted:.0f} MB of weights) gave back only {freed:.0f} MB"

    # 2: deleting the tokens saliency ranks first does more damage than deleting random ones; the explanation was rendered
    drop = v["mean_drop"]
    assert drop["saliency"] > drop["random"] > 0, drop
    assert "saliency for" in html or "data:image/png;base64," in html

    # 3: DDP arithmetic: the whole batch's gradient is the mean of its halves' to float32 rounding (a hundred
    # ulps of the largest entry)
    assert v["gradient_difference"] <= 100 * FLOAT32_EPS * v["largest_gradient"], (v["gradient_difference"], v["largest_gradient"])
    # the 2-process run finished, evaluated and saved its model
    lines = v["script_lines"]
    assert 2 in v["process_counts"] and v["script_returncode"] == 0, (v["process_counts"], v["script_returncode"])
    assert any("2 process(es) on" in line for line in lines) and any(line.startswith("eval_accuracy") for line in lines), lines
    assert (workdir / "job" / "model-2proc" / "model.safetensors").exists()
    # int8: the embedding tables (counted here from the model's shape) stay 32-bit and only the rest shrinks
    # 4 times, which accounts for the measured file ratio; it can never exceed 4
    shape = v["embedding_shape"]
    tables = (shape["vocab_size"] + shape["max_position_embeddings"] + shape["type_vocab_size"]) * shape["hidden_size"]
    assert tables == v["embedding_tables"], (tables, v["embedding_tables"])
    share = tables / v["parameters"]
    predicted = 1 / (share + (1 - share) / 4)
    before, after = v["size_mb"]
    ratio = before / after
    assert 1.3 < ratio < 4 and abs(ratio - predicted) < 0.1, (ratio, predicted)
    assert v["exercises"] == ["09.1", "09.2", "09.3", "09.4", "09.5", "09.e1", "09.e2", "09.e3"], v["exercises"]
    assert_exercises_correct(nb, "09.e1", "09.e2", "09.e3")
