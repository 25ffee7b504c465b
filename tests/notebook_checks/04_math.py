"""04_math: cross-entropy by hand = F.cross_entropy, the chain rule on a real GPT, seq2seq beats copying,
and the 4.4 table shows the trade-offs the text describes. Numbers are read from the notebook's own
objects (VALUES), and compared with what the test computes itself, not with hand-picked ranges."""
import math

from test_notebooks import outputs

from notebook_checks import assert_exercises_correct, printed

PRETRAIN = "%pretrain --steps {PRETRAIN_STEPS} --name gpt"
VALUES = {
    # 4.2 and 4.1, before cell 37 deletes the models
    "ce_by_hand": "loss_by_hand.item()",
    "ce_torch": "loss_torch.item()",
    "perplexities": (PRETRAIN, "[r['eval_perplexity'] for r in gpt.evaluations]"),
    "gpt_vocab": (PRETRAIN, "len(gpt.tokenizer)"),
    "sentence_log_prob": ("shuffled_log_probs", "sentence_log_prob"),
    "model_loss_times_tokens": ("shuffled_log_probs", "model_loss * n_tokens"),
    "shuffled_log_prob": ("shuffled_log_probs", "shuffled_log_probs.sum().item()"),
    # case 1
    "head_loss_by_hand": "loss_hand",
    "head_loss_model": "loss_model",
    "loss_after_by_hand": "loss_hand_after",
    "minilm_parameters": ("head = minilm.model.classifier", "minilm.num_parameters"),
    # case 2
    "copy_bleu": "copy_bleu",
    "model_bleu": "model_bleu",
    "s2s_log_prob": ("per_token = ", "per_token.sum().item()"),
    "s2s_loss_times_tokens": ("per_token = ", "-out.loss.item() * labels.shape[1]"),
    "tense_test": "{'source': list(tense_test['source']), 'target': list(tense_test['target'])}",
    # 4.4
    "accuracy": "{name: last_accuracy(run) for name, run in runs.items()}",
    "trained": "{name: run.parameter_counts()['trainable'] for name, run in runs.items()}",
    "lr": "{name: run.config.lr for name, run in runs.items()}",
    "found_lr": "LORA_FOUND_LR",
    "finder_suggestion": "finder.suggestion",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('04.'))",
}


def check(nb, workdir, values):
    v = values
    # 4.2: the hand-written loss equals PyTorch's, to float rounding
    assert abs(v["ce_by_hand"] - v["ce_torch"]) < 1e-6
    assert "naive softmax:  [[nan" in printed(nb)  # the overflow the text explains
    # 4.1: an untrained GPT guesses near-uniformly over its vocabulary (perplexity ~ vocabulary size),
    # and pretraining brings that down many times over
    start, end = v["perplexities"][0], v["perplexities"][-1]
    assert v["gpt_vocab"] / 3 < start < 3 * v["gpt_vocab"] and end < start / 5, (start, end, v["gpt_vocab"])
    # the chain rule: sum of per-token log-probs = -(loss x tokens); word order matters to the model
    assert abs(v["sentence_log_prob"] + v["model_loss_times_tokens"]) < 1e-3 * max(1.0, abs(v["sentence_log_prob"]))
    assert v["sentence_log_prob"] > v["shuffled_log_prob"]
    # case 1: the untrained head is a coin flip, the trained one is not; by hand = the model's own loss
    assert abs(v["head_loss_model"] - math.log(2)) < 0.05 and abs(v["head_loss_by_hand"] - v["head_loss_model"]) < 1e-5
    assert v["loss_after_by_hand"] < v["head_loss_by_hand"]
    assert v["accuracy"]["full fine-tuning"] > 0.7
    # case 2: copying's BLEU is what BLEU gives copying the test sources (computed here, independently),
    # and the trained seq2seq model beats it
    import llmnb

    tense = v["tense_test"]
    assert abs(v["copy_bleu"] - llmnb.metrics.compute(["bleu"], tense["source"], tense["target"])["bleu"]) < 1e-9
    assert v["model_bleu"] > v["copy_bleu"], (v["copy_bleu"], v["model_bleu"])
    assert abs(v["s2s_log_prob"] - v["s2s_loss_times_tokens"]) < 1e-3 * max(1.0, abs(v["s2s_log_prob"]))
    assert "Offline: skipped" in printed(nb)  # the online-only cell stays quiet in the tests
    # 4.4: fewer weights trained with freeze, fewest with LoRA; lr_find's suggestion is the rate used
    trained, accuracy = v["trained"], v["accuracy"]
    lora_found, lora_default, freeze = "LoRA + head, lr_find's lr", "LoRA + head, default lr", "top layer + head (freeze=1)"
    assert trained[lora_default] == trained[lora_found] < trained[freeze] < trained["full fine-tuning"] == v["minilm_parameters"]
    assert accuracy[freeze] > 0.6 and accuracy[lora_default] > 0.6, accuracy
    assert v["found_lr"] == v["finder_suggestion"] == v["lr"][lora_found] and 1e-5 < v["found_lr"] < 1
    assert "lr_find: suggested lr" in printed(nb)  # the sweep's own line, with its rule
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs(nb))
    assert 'alt="lr range test"' in html and 'alt="curves of the compared runs"' in html
    assert "best accuracy" in html and "wall x first" in html and "full fine-tuning" in html
    assert images or "data:image/png" in html
    assert_exercises_correct(nb, "04.e1")
    assert v["exercises"] == ["04.1", "04.2", "04.3", "04.4", "04.5", "04.6", "04.e1"], v["exercises"]
