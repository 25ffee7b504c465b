"""08_trends_challenges: a learning curve that rises beyond the noise of its points, costs measured for size,
length and precision, probes against their baselines. Numbers are read from the notebook's own objects
(VALUES), and its fits and ratios are recomputed here, not read from its printed text.
Its "your turn" exercises pass with their solutions in place."""
import math

import numpy as np

from test_notebooks import outputs

from notebook_checks import assert_exercises_correct, printed

VALUES = {
    # 1
    "labels": "curve.index.tolist()",
    "accuracy": "curve['test accuracy'].tolist()",
    "slope": "slope",
    "n_test": "len(test_df)",
    "clean_accuracy": "clean_accuracy",
    "noisy_accuracy": "noisy_accuracy",
    # 2
    "sizes": "{column: sizes[column].tolist() for column in ('non_embedding_parameters', 'seconds')}",
    "exponent": "exponent",
    "ratio_time": "ratio_time",
    "lengths": "{'tokens': lengths.index.tolist(), 'seconds': lengths['seconds'].tolist()}",
    "device": "device.type",
    "fast_bf16": "cpu_has_fast_bf16()",
    "support": "support",
    "precision_seconds": "precision['seconds'].to_dict()",
    "bf16_speedup": "bf16_speedup",
    # 3 and 4
    "faithful": "{row: faithful.loc[row].to_dict() for row in faithful.index}",
    "probe_rows": "len(probe)",
    "probe_mean": "probe['p'].mean()",
    "probe_cases": "len(templates) * sum(len(phrases) for phrases in groups.values())",
    "spread": "summary['mean spread of p(positive)'].to_dict()",
    "times_control": "summary[\"times the control's\"].to_dict()",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('08.'))",
}


def close(a, b, rel=1e-9):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def check(nb, workdir, values):
    v = values
    images = sum("image/png" in o.get("data", {}) for o in outputs(nb))
    assert images >= 2, f"only {images} figures"

    # 1: more labels, more accuracy: the fewest-to-most gain exceeds two standard errors of a difference of
    # two accuracies on this test set, and the straight-line fit against log2(labels), recomputed, rises.
    labels, accuracy = v["labels"], v["accuracy"]
    assert labels == sorted(labels), labels
    gain, n = accuracy[-1] - accuracy[0], v["n_test"]
    se_difference = math.sqrt(sum(a * (1 - a) for a in (accuracy[0], accuracy[-1])) / n)
    assert gain > 2 * se_difference, (labels, accuracy, se_difference)
    slope = np.polyfit(np.log2(labels), accuracy, 1)[0]
    assert close(slope, v["slope"], 1e-6) and slope > 0, (slope, v["slope"])
    # flipped labels cost accuracy against the clean run on the same reviews
    assert v["clean_accuracy"] == accuracy[-1] and v["noisy_accuracy"] < v["clean_accuracy"], (v["clean_accuracy"], v["noisy_accuracy"])

    # 2: every bigger model takes longer per step, the biggest clearly so, and time grows slower than the
    # non-embedding weights over this small range (the text's reading; fit recomputed here)
    weights, seconds = v["sizes"]["non_embedding_parameters"], v["sizes"]["seconds"]
    order = sorted(range(len(weights)), key=weights.__getitem__)
    assert [seconds[i] for i in order] == sorted(seconds), (weights, seconds)
    exponent = np.polyfit(np.log(weights), np.log(seconds), 1)[0]
    assert close(exponent, v["exponent"], 1e-6) and 0.2 < exponent < 1, (exponent, v["exponent"])
    assert close(v["ratio_time"], seconds[-1] / seconds[0]) and v["ratio_time"] > 2, (v["ratio_time"], seconds)
    # longer texts take longer
    tokens, length_seconds = v["lengths"]["tokens"], v["lengths"]["seconds"]
    assert tokens == sorted(tokens) and length_seconds[-1] > length_seconds[0], v["lengths"]
    # the bf16 line states what llmnb detected on this machine, and the speed-up is fp32's time over bf16's
    if v["device"] == "cpu":
        assert v["support"] == "CPU: fast bf16 instructions (AVX512-BF16 or AMX) " + ("present" if v["fast_bf16"] else "absent"), v
    else:
        assert v["support"].startswith("GPU ") and "bf16" in v["support"], v["support"]
    precision = v["precision_seconds"]
    assert close(v["bf16_speedup"], precision["fp32"] / precision["bf16"]) and v["bf16_speedup"] > 0, (v["bf16_speedup"], precision)

    # 3: the deletion test ran on both models, against its random baseline (the ratio recomputed)
    assert set(v["faithful"]) == {f"{min(labels)} labels", f"{max(labels)} labels"}, v["faithful"]
    for row, drops in v["faithful"].items():
        assert drops["random"] > 0 and close(drops["saliency / random"], drops["saliency"] / drops["random"]), (row, drops)
    assert "saliency / random" in printed(nb)  # the table the learner reads
    # 4: the probe scored every sentence with every phrase; each group's spread is compared with the control's
    assert v["probe_rows"] == v["probe_cases"] and 0 < v["probe_mean"] < 1, (v["probe_rows"], v["probe_cases"], v["probe_mean"])
    control = v["spread"]["control: coat colour"]
    assert control > 0 and all(close(v["times_control"][g], s / control) for g, s in v["spread"].items()), (v["spread"], v["times_control"])
    # the reference (words that carry sentiment) moves p(positive) more than the coat-colour control
    assert v["spread"]["reference: manners"] > control, v["spread"]
    assert "mean p(positive) of all" in printed(nb)
    assert v["exercises"] == ["08.1", "08.2", "08.3", "08.4", "08.5", "08.e1", "08.e2", "08.e3"], v["exercises"]
    assert_exercises_correct(nb, "08.e1", "08.e2", "08.e3")
