"""06_applications: each of the four applications beats its baseline. The scores are recomputed here from
the notebook's own predictions and data (VALUES), not read from its printed text, and must equal the ones
the notebook reports. Its "your turn" exercises pass with their solutions in place."""
from collections import Counter

from test_notebooks import outputs

from notebook_checks import assert_exercises_correct

VALUES = {
    # 1 sentiment (the model is deleted in section 4)
    "test_labels": "reviews_test['label'].tolist()",
    "zero_shot": "zero_shot",
    "zero_shot_accuracy": "zero_shot_accuracy",
    "fine_tuned_accuracy": "fine_tuned_accuracy",
    "fine_tuned_predictions": ("fine_tuned_accuracy = sentiment.evaluate", "sentiment.predict(reviews_test['text'].tolist())"),
    # 2 generation
    "before": "before",
    "after": "after",
    "writer_perplexities": "writer.history['eval_perplexity'].dropna().tolist()",
    "head_start": "head_start",
    # 3 extraction (the extractor is deleted in section 4; its answers are kept in `extracted`)
    "answers": "{field: bookings_test[field].tolist() for field in QUESTIONS}",
    "extracted": "extracted",
    "rule": "{field: [rule_extract(t, field) for t in bookings_test['text']] for field in QUESTIONS}",
    "table": "{column: table[column].to_dict() for column in table}",
    # 4 ratings
    "train_ratings": "ratings['rating'].tolist()",
    "test_ratings": "ratings_test['rating'].tolist()",
    "p_positive": "p_positive",
    "predicted_ratings": "predicted",
    "baselines": "baselines",
    "fine_tuned_mse": "fine_tuned_mse",
    # 5 summary
    "summary": "summary",
    "better": "overview['better than baseline'].to_dict()",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('06.'))",
}
HIGHER_IS_BETTER = {"sentiment": True, "text generation": False, "extraction": True, "rating prediction": False}


def share_equal(predicted, truth):
    """Exact match: the share of answers equal to the truth, case and surrounding spaces ignored."""
    assert len(predicted) == len(truth) > 0, (len(predicted), len(truth))
    return sum(str(p).strip().lower() == str(t).strip().lower() for p, t in zip(predicted, truth)) / len(truth)


def mse(predicted, truth):
    assert len(predicted) == len(truth) > 0, (len(predicted), len(truth))
    return sum((p - t) ** 2 for p, t in zip(predicted, truth)) / len(truth)


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def check(nb, workdir, values):
    v = values
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    assert len(images) >= 5, "expected the static curves of %pretrain and four %finetune runs"

    # 1 sentiment: the accuracies are those of the notebook's own labels; fine-tuning beats the zero-shot
    # prompt, and the prompt beats always answering the commonest test label
    labels = v["test_labels"]
    zero_shot, fine_tuned = share_equal(v["zero_shot"], labels), share_equal(v["fine_tuned_predictions"], labels)
    assert close(zero_shot, v["zero_shot_accuracy"]) and close(fine_tuned, v["fine_tuned_accuracy"]), (
        zero_shot, v["zero_shot_accuracy"], fine_tuned, v["fine_tuned_accuracy"])
    chance = max(Counter(labels).values()) / len(labels)
    assert chance < zero_shot < fine_tuned and fine_tuned > 0.7, (chance, zero_shot, fine_tuned)

    # 2 generation: llmnb.perplexity scores as %finetune's evaluations do, so "after" is the fine-tune's best
    # evaluation; fine-tuning divides the test perplexity at least twice; pretraining gives a head start
    before, after = v["before"], v["after"]
    assert abs(after - min(v["writer_perplexities"])) <= 1e-3 * after, (after, v["writer_perplexities"])
    assert before > 2 * after, (before, after)
    head_start = v["head_start"]
    assert head_start["pretrained start"] < head_start["random start"], head_start
    assert (workdir / "runs" / "ch06-gpt" / "model.safetensors").exists()

    # 3 extraction: exact match per field and over all fields, recomputed from the answers; the fine-tuned
    # extractor beats the first-of-its-kind rule
    fields, table = list(v["answers"]), v["table"]
    rule = {f: share_equal(v["rule"][f], v["answers"][f]) for f in fields}
    model = {f: share_equal(v["extracted"][f], v["answers"][f]) for f in fields}
    rule_all, model_all = sum(rule.values()) / len(fields), sum(model.values()) / len(fields)
    assert all(close(rule[f], table["rule: first of its kind"][f]) and close(model[f], table["fine-tuned extractor"][f])
               for f in fields), (rule, model, table)
    assert close(rule_all, table["rule: first of its kind"]["all fields"]) and close(model_all, table["fine-tuned extractor"]["all fields"]), table
    assert model_all > rule_all and model_all > 0.85, (rule_all, model_all)

    # 4 ratings: the MSEs recomputed from the ratings and predictions; the regression is far below the
    # always-the-average MSE and below the reused sentiment model's
    train, test = v["train_ratings"], v["test_ratings"]
    average = mse([sum(train) / len(train)] * len(test), test)
    sentiment = mse([1 + 4 * p for p in v["p_positive"]], test)
    regression = mse(v["predicted_ratings"], test)
    baselines = v["baselines"]
    assert close(average, baselines["always the average"]) and close(sentiment, baselines["sentiment model, 1 + 4·p(positive)"]), (
        average, sentiment, baselines)
    assert close(regression, v["fine_tuned_mse"]), (regression, v["fine_tuned_mse"])
    assert regression < 0.6 * average and regression < sentiment, (average, sentiment, regression)

    # 5 the summary holds these scores, and each application beats its baseline in its own direction
    recomputed = {"sentiment": (zero_shot, fine_tuned), "text generation": (before, after),
                  "extraction": (rule_all, model_all), "rating prediction": (average, regression)}
    summary = v["summary"]
    assert set(summary) == set(HIGHER_IS_BETTER), summary
    for name, (baseline, tuned) in recomputed.items():
        row = summary[name]
        assert close(row["baseline score"], baseline) and close(row["fine-tuned score"], tuned), (name, row, baseline, tuned)
        assert (tuned > baseline) if HIGHER_IS_BETTER[name] else (tuned < baseline), (name, baseline, tuned)
    assert v["better"] == {name: True for name in HIGHER_IS_BETTER}, v["better"]
    assert v["exercises"] == ["06.1", "06.2", "06.3", "06.4", "06.5", "06.e1", "06.e2", "06.e3"], v["exercises"]
    assert_exercises_correct(nb, "06.e1", "06.e2", "06.e3")
