"""11_rewards: the probe's no-signal shares are p^G + (1-p)^G prompt by prompt; GRPO from the shipped
assistant, on practice questions in wordings SFT never saw, raises held-out greedy exact match (held-out: other
stories, none trained on or used to choose weights; +7.8 points measured in the fast profile, +6.6 to +9.6 over
other seeds and 120 steps, asserted with room at +4), nearly all of it on yes/no questions (15 % -> 48 %); the same seconds of SFT on the same practice answers do better;
a reward that can be gamed (length:8) rises while exact match on the evaluation prompts falls. Numbers are read from
the notebook's own objects (VALUES), not from its printed text. Its "your turn" exercises pass with their
solutions in place."""
from test_notebooks import outputs

from notebook_checks import assert_exercises_correct, printed

VALUES = {
    "kinds": "KINDS",
    "held_out_kinds": "sorted(held_out.kind.unique())",
    "held_out_rows": "len(held_out)",
    "eval_overlap": "len(set(grpo_eval.input) & set(held_out.input))",
    "practice_overlap": "len(set(grpo_train.input) & (set(held_out.input) | set(grpo_eval.input)))",
    "practice_kinds": "sorted(practice.kind.unique())",
    "by_kind": "{'sft': start_by_kind.to_dict(), 'grpo': grpo_by_kind.to_dict()}",
    # the probe
    "probe": "{'pass_rate': probe.pass_rate, 'per_prompt': list(probe.per_prompt), 'no_signal': dict(probe.no_signal),"
             " 'binary': probe.binary, 'prompts': probe.prompts, 'completions': probe.completions}",
    "colour_probe": "{name: (r.pass_rate, r.no_signal[G]) for name, r in colour_probe.items()}",
    "G": "G",
    # GRPO
    "grpo_steps": "grpo.history.dropna(subset=['reward_mean'])[['step', 'reward_mean', 'zero_std_share']].to_dict('list')",
    "grpo_evals": "grpo.history.dropna(subset=['eval_exact_match'])[['step', 'eval_exact_match', 'eval_reward']].to_dict('list')",
    "em": "{'sft': start_em, 'grpo': grpo_em, 'more_sft': more_em, 'dpo': dpo_em}",
    "seconds": "{'grpo': grpo_seconds, 'more_sft': more_cost.seconds, 'dpo': dpo_cost.seconds}",
    # the reward that can be gamed
    "hack_steps": "hack_steps[['step', 'reward_mean']].to_dict('list')",
    "hack_evals": "hack_evals[['step', 'eval_reward', 'eval_exact_match']].to_dict('list')",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('11.'))",
}


def mean(values):
    return sum(values) / len(values)


def check(nb, workdir, values):
    v = values
    all_outputs = outputs(nb)
    text = printed(nb)
    # The only words on stderr: llmnb's note when most groups of the gamed reward carry no signal.
    stderr = [o["text"] for o in all_outputs if o.get("name") == "stderr" and "of the groups have no signal" not in o["text"]]
    assert not stderr, stderr

    # The yardstick: held-out questions of the trained kinds, none of them among the evaluation prompts
    # that choose the best weights.
    assert v["held_out_kinds"] == sorted(v["kinds"]) and v["held_out_rows"] >= 100, (v["held_out_kinds"], v["held_out_rows"])
    assert v["eval_overlap"] == 0, v["eval_overlap"]
    # GRPO practises on other stories again: none of held_out's, none of the evaluation prompts'.
    assert v["practice_overlap"] == 0 and v["practice_kinds"] == sorted(v["kinds"]), (v["practice_overlap"], v["practice_kinds"])

    # The probe: a pass/fail reward, and each no-signal share is the mean over prompts of p^G + (1-p)^G.
    probe = v["probe"]
    assert probe["binary"] and probe["prompts"] == 32 and probe["completions"] == 32 * v["G"], probe
    assert 0 < probe["pass_rate"] < 1, probe  # something to learn from: neither never nor always right
    for g, share in probe["no_signal"].items():
        formula = mean([p ** int(g) + (1 - p) ** int(g) for p in probe["per_prompt"]])
        assert abs(share - formula) < 1e-9, (g, share, formula)
    shares = [probe["no_signal"][g] for g in sorted(probe["no_signal"], key=int)]
    assert shares == sorted(shares, reverse=True), shares  # larger groups: fewer silent ones
    # Partial credit (contains, nearly the learner's names_the_colour) is earned at least as often as exact match.
    assert v["colour_probe"]["contains"][0] >= v["colour_probe"]["exact_match"][0], v["colour_probe"]

    # GRPO: every step logged its reward and its share of silent groups; on held-out questions greedy
    # exact match rises (the weights kept are those of the best evaluation), most on the yes/no kind whose
    # new wordings the SFT model answered with a name. The training reward is not asserted to rise: in
    # the fast profile it rises little (0.48 -> 0.56), since most groups have no signal.
    steps = v["grpo_steps"]
    assert len(steps["reward_mean"]) >= 10 and all(0 <= r <= 1.2 for r in steps["reward_mean"]), steps
    assert all(0 <= z <= 1 for z in steps["zero_std_share"]), steps
    em = v["em"]
    assert em["grpo"] >= em["sft"] + 0.04, em  # +7.8 measured; +6.6 to +9.6 over other GRPO seeds, same start
    by_kind = v["by_kind"]
    assert by_kind["grpo"]["yes_no"] >= by_kind["sft"]["yes_no"] + 0.2, by_kind  # +0.33 in every run we made
    assert "groups with no signal" in text and "probe: mean reward" in text  # the probe line in the plan

    # The rivals ran: SFT for about GRPO's wall time, and DPO.
    seconds = v["seconds"]
    assert 0.3 * seconds["grpo"] <= seconds["more_sft"] <= 3 * seconds["grpo"], seconds
    # What we measured: the same seconds of SFT on the same practice answers do better than GRPO here (the
    # reward re-checks the very reference answer SFT imitates, and one GRPO step costs many SFT steps).
    assert em["more_sft"] >= em["sft"] + 0.05 and em["more_sft"] > em["grpo"], em
    assert all(0 <= em[k] <= 1 for k in em), em

    # Reward hacking: the gameable reward rises, exact match on the evaluation prompts falls.
    hack, hack_evals = v["hack_steps"], v["hack_evals"]
    assert mean(hack["reward_mean"][-3:]) > mean(hack["reward_mean"][:3]) + 0.1, hack["reward_mean"]
    assert hack_evals["eval_reward"][-1] > hack_evals["eval_reward"][0], hack_evals
    assert hack_evals["eval_exact_match"][-1] < hack_evals["eval_exact_match"][0], hack_evals

    images = [o for o in all_outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, len(images)  # the GRPO run's curves and the reward-hacking figure
    assert v["exercises"] == ["11.1", "11.2", "11.3", "11.4", "11.5", "11.e1", "11.e2", "11.e3"], v["exercises"]
    assert_exercises_correct(nb, "11.e1", "11.e2", "11.e3")
