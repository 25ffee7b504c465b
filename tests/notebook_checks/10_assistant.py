"""10_assistant: SFT lifts held-out exact match from about nothing; DPO lifts the model's own held-out
preference accuracy well above the SFT model's (the unanswerable pairs) while the chosen answers'
log-probabilities rise; the mask trains the end token.
Its "your turn" exercises pass with their solutions in place."""
import re

from notebook_checks import assert_exercises_correct
from test_notebooks import number, numbers, outputs


def check(nb, workdir, values):
    all_outputs = outputs(nb)
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in all_outputs)
    stderr = [o["text"] for o in all_outputs if o.get("name") == "stderr"]
    assert not stderr, stderr

    # The mask: a few tokens trained, the answer's end token among them.
    trained, total = numbers(r"(\d+) of (\d+) tokens trained: '[^']*<\|endoftext\|>'", text)
    assert 0 < trained < total / 3, (trained, total)
    assert "loss on " in text and re.search(r"packing (on|off) \(auto\): padding", text)  # the plan's masking and packing lines

    # SFT: the base model answers (almost) nothing exactly; the tuned one a real share of held-out prompts.
    before, after = numbers(r"held-out exact match: before SFT ([\d.]+)% -> after ([\d.]+)%", text)
    assert before <= 5, before
    assert after >= before + 10, (before, after)

    # DPO: what it optimises climbs on held-out pairs, and the chosen answers stay likely.
    start, end = numbers(r"held-out reward accuracy: ([\d.]+)% at the start -> ([\d.]+)% after DPO", text)
    assert start == 0 and end >= 70, (start, end)
    sft_pref, dpo_pref = numbers(r"held-out preference accuracy: SFT model ([\d.]+)% -> after DPO ([\d.]+)%", text)
    assert dpo_pref >= sft_pref + 10, (sft_pref, dpo_pref)  # the model's own choice, not only the reward
    chosen_before, chosen_after = numbers(r"mean log-prob of chosen answers (-?[\d.]+) -> (-?[\d.]+)", text)
    assert chosen_after > chosen_before, (chosen_before, chosen_after)  # no collapse: they rise
    # After DPO the model says so when the story does not tell (at least one of the two such questions).
    assert "-> after DPO 'The story does not say.'" in text

    assert number(r"LoRA run: ([\d.]+) s wall", text) > 0
    images = [o for o in all_outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, len(images)  # the final curves of %pretrain and the two %finetune runs
    assert_exercises_correct(nb, "10.e1", "10.e2", "10.e3")
