"""10_assistant: SFT lifts held-out exact match from about nothing; DPO lifts the model's own held-out
preference accuracy well above the SFT model's (the unanswerable pairs) while the chosen answers'
log-probabilities rise; the mask trains exactly the answer and its end token. Numbers are read from the
notebook's own objects (VALUES), not from its printed text.
Its "your turn" exercises pass with their solutions in place."""
import re

from test_notebooks import outputs

from notebook_checks import assert_exercises_correct, printed

VALUES = {
    # the mask of the first training example
    "trained": "mask['trained'].tolist()",
    "trained_text": "gpt.tokenizer.decode(mask[mask.trained].id.tolist())",
    "first_answer": "train['output'].iloc[0]",
    "eos": "gpt.tokenizer.eos_token",
    # SFT and DPO: every held-out evaluation
    "exact_match": "sft.history['eval_exact_match'].dropna().tolist()",
    "dpo_evals": "{column: aligned.history.dropna(subset=['eval_preference_accuracy'])[column].tolist() for column in"
                 " ('step', 'eval_reward_margin', 'eval_reward_accuracy', 'eval_preference_accuracy', 'eval_logp_chosen')}",
    "by_kind": "{column: by_kind[column].to_dict() for column in by_kind}",
    # LoRA
    "lora_seconds": "lora_cost.seconds",
    "trainable": "{name: (run.trainable_parameters, run.total_parameters) for name, run in (('full', aligned), ('lora', lora))}",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('10.'))",
}


def check(nb, workdir, values):
    v = values
    all_outputs = outputs(nb)
    text = printed(nb)
    stderr = [o["text"] for o in all_outputs if o.get("name") == "stderr"]
    assert not stderr, stderr

    # The mask: the trained tokens are the last ones, and they are the example's answer and its end token.
    trained = v["trained"]
    first = trained.index(True)
    assert 0 < first and all(trained[first:]), trained
    assert v["trained_text"] == " " + v["first_answer"] + v["eos"], (v["trained_text"], v["first_answer"])
    assert "loss on " in text and re.search(r"packing (on|off) \(auto\): padding", text)  # the plan's masking and packing lines

    # SFT: the base model answers (almost) nothing exactly; the tuned one a real share of held-out prompts.
    before, after = v["exact_match"][0], v["exact_match"][-1]
    assert before <= 0.05, v["exact_match"]
    assert after >= before + 0.10, v["exact_match"]

    # DPO, on held-out pairs. At step 0 the policy is its reference, so every reward is 0: no pair's
    # chosen answer can gain more than its rejected one. Then what DPO optimises climbs.
    dpo = v["dpo_evals"]
    assert dpo["step"][0] == 0 and dpo["eval_reward_margin"][0] == 0 and dpo["eval_reward_accuracy"][0] == 0, dpo
    assert dpo["eval_reward_accuracy"][-1] >= 0.70, dpo
    sft_pref, dpo_pref = dpo["eval_preference_accuracy"][0], dpo["eval_preference_accuracy"][-1]
    assert dpo_pref >= sft_pref + 0.10, (sft_pref, dpo_pref)  # the model's own choice, not only the reward
    assert dpo["eval_logp_chosen"][-1] > dpo["eval_logp_chosen"][0], dpo  # no collapse: the chosen answers rise
    # The gain is on the unanswerable pairs, and after DPO the model says so when the story does not tell
    # (at least one of the two such questions).
    by_kind = v["by_kind"]
    assert by_kind["after DPO"]["unanswerable"] > by_kind["SFT model"]["unanswerable"], by_kind
    assert "-> after DPO 'The story does not say.'" in text

    # LoRA: a measured run that trains a share of the weights, where full DPO trains them all.
    (full, full_total), (lora, lora_total) = v["trainable"]["full"], v["trainable"]["lora"]
    assert full == full_total and 0 < lora < lora_total and lora < full, v["trainable"]
    assert v["lora_seconds"] > 0, v["lora_seconds"]
    images = [o for o in all_outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, len(images)  # the final curves of %pretrain and the two %finetune runs
    assert v["exercises"] == ["10.1", "10.2", "10.3", "10.4", "10.e1", "10.e2", "10.e3"], v["exercises"]
    assert_exercises_correct(nb, "10.e1", "10.e2", "10.e3")
