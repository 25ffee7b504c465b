"""06_applications: each of the five applications beats its baseline. The scores are recomputed here from
the notebook's own predictions and data (VALUES), not read from its printed text, and must equal the ones
the notebook reports. Its "your turn" exercises pass with their solutions in place."""
import re
import string
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
    # 3a named entities (the tagger is deleted in 3b; its tags are kept in `tagger_tags`)
    "ner_gold": "eval_tags",
    "ner_capitals": "capitals_tags",
    "ner_dictionary": "dictionary_tags",
    "ner_baselines": "ner_baselines",
    "ner_predicted": "tagger_tags",
    "tagger_f1": "tagger_f1",
    "tagger_metrics": ("tagger_f1 = compute", "tagger.metrics"),
    # 3b reading comprehension (the reader is deleted in section 4; its answers are kept in `reader_answers`)
    "qa_references": "references",
    "qa_overlap": "overlap_answers",
    "qa_predicted": "reader_answers",
    "overlap_em": "overlap_em",
    "reader_em": "reader_em",
    "reader_metrics": ("reader_em = compute", "reader.metrics"),
    "qa_questions": "len(reading_eval)",
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
HIGHER_IS_BETTER = {"sentiment": True, "text generation": False, "named entities": True, "reading comprehension": True,
                    "rating prediction": False}


def share_equal(predicted, truth):
    """The share of predictions equal to the truth."""
    assert len(predicted) == len(truth) > 0, (len(predicted), len(truth))
    return sum(p == t for p, t in zip(predicted, truth)) / len(truth)


def entity_spans(sentences):
    """{(sentence, start, end, type)} of BIO tag sequences, read as seqeval's default mode does: B-X starts
    an entity, I-X continues one of type X and otherwise starts one, O ends it."""
    found = set()
    for n, tags in enumerate(sentences):
        start = kind = None
        for i, tag in enumerate([*tags, "O"]):
            if start is not None and (tag == "O" or tag.startswith("B-") or tag[2:] != kind):
                found.add((n, start, i, kind))
                start = None
            if tag != "O" and start is None:
                start, kind = i, tag[2:]
    return found


def entity_f1(predicted, gold):
    assert len(predicted) == len(gold) > 0 and all(len(p) == len(g) for p, g in zip(predicted, gold))
    guessed, true = entity_spans(predicted), entity_spans(gold)
    right = len(guessed & true)
    return 0.0 if right == 0 else 2 * right / (len(guessed) + len(true))


def squad_normal(text):
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact_match(predicted, references):
    assert len(predicted) == len(references) > 0, (len(predicted), len(references))
    return sum(any(squad_normal(p) == squad_normal(r) for r in refs) for p, refs in zip(predicted, references)) / len(references)


def mse(predicted, truth):
    assert len(predicted) == len(truth) > 0, (len(predicted), len(truth))
    return sum((p - t) ** 2 for p, t in zip(predicted, truth)) / len(truth)


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def check(nb, workdir, values):
    v = values
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    assert len(images) >= 6, "expected the static curves of %pretrain and five %finetune runs"

    # 1 sentiment: the accuracies are those of the notebook's own labels; fine-tuning beats zero-shot
    # classification by similarity, and that beats always answering the commonest test label
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

    # 3a named entities: entity F1 recomputed from the tags; the notebook's scoring agrees with the engine's
    # evaluation of the kept weights (the same test sentences, batched otherwise); the dictionary knows no
    # held-out name, and the tagger beats capitalisation clearly
    gold = v["ner_gold"]
    capitals, dictionary = entity_f1(v["ner_capitals"], gold), entity_f1(v["ner_dictionary"], gold)
    tagger = entity_f1(v["ner_predicted"], gold)
    assert close(capitals, v["ner_baselines"]["capitalised runs"]) and close(dictionary, v["ner_baselines"]["dictionary of training's names"]), (
        capitals, dictionary, v["ner_baselines"])
    assert close(tagger, v["tagger_f1"]) and abs(tagger - v["tagger_metrics"]["eval_f1"]) <= 0.02, (tagger, v["tagger_f1"], v["tagger_metrics"])
    assert dictionary == 0.0 and tagger > capitals + 0.25 and tagger > 0.6, (dictionary, capitals, tagger)

    # 3b reading comprehension: exact match recomputed with SQuAD's normalisation; the reader beats word overlap
    references = v["qa_references"]
    assert len(references) == v["qa_questions"] and all(references), v["qa_questions"]
    overlap, reader = exact_match(v["qa_overlap"], references), exact_match(v["qa_predicted"], references)
    assert close(overlap, v["overlap_em"]) and close(reader, v["reader_em"]), (overlap, v["overlap_em"], reader, v["reader_em"])
    assert abs(reader - v["reader_metrics"]["eval_exact_match"]) <= 0.05, (reader, v["reader_metrics"])
    assert reader > overlap + 0.1, (overlap, reader)

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
                  "named entities": (capitals, tagger), "reading comprehension": (overlap, reader),
                  "rating prediction": (average, regression)}
    summary = v["summary"]
    assert set(summary) == set(HIGHER_IS_BETTER), summary
    for name, (baseline, tuned) in recomputed.items():
        row = summary[name]
        assert close(row["baseline score"], baseline) and close(row["fine-tuned score"], tuned), (name, row, baseline, tuned)
        assert (tuned > baseline) if HIGHER_IS_BETTER[name] else (tuned < baseline), (name, baseline, tuned)
    assert v["better"] == {name: True for name in HIGHER_IS_BETTER}, v["better"]
    assert v["exercises"] == ["06.1", "06.2", "06.3", "06.4", "06.5", "06.e1", "06.e2", "06.e3"], v["exercises"]
    assert_exercises_correct(nb, "06.e1", "06.e2", "06.e3")
