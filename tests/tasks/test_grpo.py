"""Learning from rewards (`--task grpo`): the reward convention and its errors, group advantages,
each loss type against a hand computation, the probe's formula, and runs on tiny models
(a reward learned, resume, LoRA with a KL to the adapters switched off, truncation masking)."""
import math

import pandas as pd
import pytest
import torch

import llmnb
from llmnb.errors import ConfigError, DataError, LlmnbError
from llmnb.instruct.reward_probe import no_signal_share, summarise
from llmnb.instruct.rewards import resolve_rewards, score
from llmnb.instruct.sampling import Completions, completion_logps, left_padded, sample_completions
from llmnb.instruct.policy_loss import group_advantages, policy_loss

COLOURS = ["red", "blue", "green", "pink", "white", "brown"]
THINGS = ["ball", "kite", "hat", "cup", "box", "car", "boat", "drum", "bag", "sock"]
NAMES = ["Mia", "Tom", "Ben", "Ivy", "Zoe", "Sam", "Max", "Ella", "Leo", "Ada", "Kim", "Ray"]


def colour_sft_data():
    """Any colour is a right answer to "pick a colour for X": after SFT the model names each about as often."""
    return [{"prompt": f"{n} wants a new {t}. Pick a colour for it.", "completion": f"{c.capitalize()}."}
            for i, (n, t) in enumerate((n, t) for n in NAMES for t in THINGS) for c in [COLOURS[i % len(COLOURS)]]]


def prompts_frame(rows):
    return pd.DataFrame({"prompt": [r["prompt"] for r in rows]})


@pytest.fixture(scope="module")
def sft_model():
    data = colour_sft_data()
    return llmnb.finetune("tiny-llama", data, task="sft", lr=3e-3, max_steps=80, batch_size=16, eval_fraction=0,
                          save_checkpoints=False, quiet=True, seed=0)


# ---------------------------------------------------------------------- the reward convention
def test_rewards_receive_the_completions_the_prompts_and_every_other_column():
    seen = {}

    def spy(completions, prompts, answer, level, **rest):
        seen.update(completions=completions, prompts=prompts, answer=answer, level=level, rest=rest)
        return [len(c) for c in completions]

    total, per_function = score(resolve_rewards([spy, "exact_match"]), [1.0, 2.0], ["Red.", "blue"],
                                ["p1", "p2"], {"answer": ["red", "Green"], "level": [1, 2]})
    assert seen["completions"] == ["Red.", "blue"] and seen["prompts"] == ["p1", "p2"]
    assert seen["answer"] == ["red", "Green"] and seen["level"] == [1, 2] and seen["rest"] == {}
    assert per_function["exact_match"].tolist() == [1.0, 0.0]  # llmnb's normaliser: case and final stop ignored
    assert total.tolist() == [4 + 2.0, 4 + 0.0]


def test_built_in_rewards():
    completions = ["The cat sat.", "a dog", "CAT!"]
    def values(spec, **columns):
        return score(resolve_rewards(spec), None, completions, ["p"] * 3, columns)[0].tolist()

    assert values("contains:cat") == [1.0, 0.0, 1.0]
    assert values("contains", answer=["sat", "cat", "cat"]) == [1.0, 0.0, 1.0]
    assert values("regex:^[A-Z]") == [1.0, 0.0, 1.0]
    assert values("length:2") == [0.5, 1.0, 0.5]  # 3 words: |3 - 2| / 2 off; 1 word likewise
    assert values("exact_match;contains:dog", answer=["the cat sat", "x", "cat"]) == [1.0, 1.0, 1.0]
    with pytest.raises(ConfigError, match="not a built-in reward"):
        resolve_rewards("exact_mtch")
    with pytest.raises(ConfigError, match="length:N"):
        resolve_rewards("length:0")
    with pytest.raises(ConfigError, match="regular expression"):
        resolve_rewards("regex:(")
    with pytest.raises(DataError, match="'answer' column"):
        values("exact_match")


@pytest.mark.parametrize("reward, message", [
    (lambda completions, **_: 1 / 0, r"'<lambda>' raised ZeroDivisionError"),
    (lambda completions, **_: [1.0], "returned 1 values for 2 completions"),
    (lambda completions, **_: [1.0, "yes"], r"returned 'yes' for completion 1 \('b'\)"),
    (lambda completions, **_: [1.0, float("nan")], "returned nan for completion 1"),
    (lambda completions, **_: 3.0, "returned a float, not a list"),
])
def test_a_bad_reward_is_an_error_naming_the_function_and_the_row(reward, message):
    with pytest.raises(LlmnbError, match=message):
        score(resolve_rewards(reward), None, ["a", "b"], ["p", "p"], {})


def test_data_without_a_prompt_column_is_a_data_error(sft_model):
    before = [r.copy() for r in colour_sft_data()[:20]]
    with pytest.raises(DataError, match="needs a 'prompt' column"):
        llmnb.finetune(sft_model, pd.DataFrame({"question": ["x"] * 20}), task="grpo", reward="exact_match", quiet=True)
    with pytest.raises(ConfigError, match="needs a reward"):
        llmnb.finetune(sft_model, prompts_frame(before), task="grpo", quiet=True)
    with pytest.raises(ConfigError, match="loss_type"):
        llmnb.finetune(sft_model, prompts_frame(before), task="grpo", reward="contains:red", loss_type="ppo", quiet=True)


# ---------------------------------------------------------------------- advantages and losses
def test_advantages_are_relative_to_the_group_and_a_group_without_spread_gets_zero():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 3.0])
    centred = group_advantages(rewards, 4, "none")
    assert centred.tolist() == pytest.approx([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, -0.75, -0.75, -0.75, 2.25])
    scaled = group_advantages(rewards, 4, "group")
    std = torch.tensor([1.0, 0.0, 0.0, 1.0]).std()
    assert scaled[:4].tolist() == pytest.approx((centred[:4] / (std + 1e-4)).tolist())
    assert scaled[4:8].tolist() == [0.0, 0.0, 0.0, 0.0]  # every completion right: no signal
    assert float(scaled[8:].sum()) == pytest.approx(0.0, abs=1e-5)


def hand_loss(logps, old, adv, mask, loss_type, eps, beta=0.0, ref=None, max_new_tokens=None):
    """The same losses with Python loops over rows and tokens."""
    rows, width = len(logps), len(logps[0])
    per_row, total, tokens = [], 0.0, 0
    for i in range(rows):
        row_sum, row_tokens = 0.0, 0
        for t in range(width):
            if not mask[i][t]:
                continue
            ratio = math.exp(logps[i][t] - old[i][t])
            term = -min(ratio * adv[i], min(max(ratio, 1 - eps), 1 + eps) * adv[i])
            if beta:
                gap = ref[i][t] - logps[i][t]
                term += beta * (math.exp(gap) - gap - 1)
            row_sum, row_tokens = row_sum + term, row_tokens + 1
        per_row.append(row_sum / max(row_tokens, 1))
        total, tokens = total + row_sum, tokens + row_tokens
    if loss_type == "grpo":
        return sum(per_row) / rows
    if loss_type == "dr_grpo":
        return total / (rows * max_new_tokens)
    return total / tokens


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_each_loss_type_matches_a_hand_computation(loss_type, beta):
    generator = torch.Generator().manual_seed(1)
    logps = -torch.rand(3, 5, generator=generator) * 3
    ratios = torch.tensor([[1.0, 1.5, 0.7, 1.1, 0.9], [0.6, 1.3, 1.0, 1.0, 1.0], [1.25, 0.95, 0.5, 1.0, 1.0]])
    old = logps - ratios.log()  # clipped where A > 0 and the ratio > 1.2, or A < 0 and the ratio < 0.8: 3 of 10 tokens
    ref = logps + (torch.rand(3, 5, generator=generator) - 0.5)
    adv = torch.tensor([1.5, -0.7, 0.3])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    loss, stats = policy_loss(logps, old, adv, mask, loss_type, 0.2, beta, ref, max_new_tokens=8)
    want = hand_loss(logps.tolist(), old.tolist(), adv.tolist(), mask.tolist(), loss_type, 0.2, beta, ref.tolist(), 8)
    assert float(loss) == pytest.approx(want, rel=1e-5)
    assert stats["clip_ratio"] == pytest.approx(0.3)
    assert ("kl" in stats) == bool(beta)


def test_with_fresh_completions_the_gradient_is_the_advantage_weighted_log_likelihood():
    logps = torch.tensor([[-1.0, -2.0], [-0.5, -3.0]], requires_grad=True)
    adv = torch.tensor([2.0, -1.0])
    loss, _ = policy_loss(logps, logps.detach(), adv, torch.ones(2, 2), "dapo")
    loss.backward()
    assert logps.grad.flatten().tolist() == pytest.approx([-0.5, -0.5, 0.25, 0.25])  # -A / 4 tokens


# ---------------------------------------------------------------------- the probe
def test_the_no_signal_share_is_p_to_the_g_plus_one_minus_p_to_the_g():
    p = 0.25
    group = [1.0] * 2 + [0.0] * 6  # one prompt solved 2 times in 8
    for g in (2, 4, 8, 16):
        assert no_signal_share([group], g) == pytest.approx(p**g + (1 - p) ** g)
    # Mixed prompts: the mean of each prompt's share, not the share at the mean pass rate.
    easy, impossible = [1.0] * 8, [0.0] * 8
    assert no_signal_share([easy, impossible], 4) == 1.0
    report = summarise([group, [1.0, 0.0] * 4], 8)
    assert report.binary and report.pass_rate == pytest.approx(0.375)
    assert report.recommended_g == next(g for g in (2, 4, 8, 16) if report.no_signal[g] <= 0.25)
    assert "recommended G" in report.line()
    assert summarise([impossible, impossible], 8).never_rewarded


def test_the_probe_stops_a_run_that_can_earn_nothing_and_a_public_probe_reports(sft_model):
    prompts = prompts_frame(colour_sft_data()[:32])
    with pytest.raises(DataError, match="train with SFT first; the model never solves a prompt"):
        llmnb.finetune(sft_model, prompts, task="grpo", reward="regex:^zebra$", max_steps=2, quiet=True, save_checkpoints=False)
    report = llmnb.reward_probe(sft_model, prompts, "contains:blue", num_generations=8, num_prompts=16, max_new_tokens=6)
    assert report.prompts == 16 and report.completions == 128
    assert 0.02 < report.pass_rate < 0.6  # SFT taught every colour: blue is one of six
    assert report.no_signal[2] > report.no_signal[16]


# ---------------------------------------------------------------------- sampling
def test_completion_log_probabilities_are_those_generation_sampled_from(sft_model):
    """Left-padded prompts of different lengths: the positions must count real tokens only."""
    model, tokenizer = sft_model.model, sft_model.tokenizer
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("Mia wants a new kite. Pick", "Tom? Pick a colour")]
    ids, mask = left_padded(rows, tokenizer.eos_token_id)
    c = sample_completions(model, tokenizer, ids, mask, 2, 1.0, 6, seed=3)
    with torch.no_grad():
        logps = completion_logps(model, c, 1.0)
        for row in range(len(c.texts)):
            tokens = c.prompt_ids[row][c.prompt_mask[row].bool()].tolist()
            for t in range(int(c.completion_mask[row].sum())):
                alone = model(input_ids=torch.tensor([tokens])).logits[0, -1].log_softmax(-1)
                token = int(c.completion_ids[row, t])
                assert float(logps[row, t]) == pytest.approx(float(alone[token]), abs=1e-4)
                tokens.append(token)
    again = sample_completions(model, tokenizer, ids, mask, 2, 1.0, 6, seed=3)
    assert again.texts == c.texts  # the call's own seed, not the global generator


def test_truncated_completions_can_be_left_out_of_the_loss():
    c = Completions(None, None, torch.zeros(2, 3, dtype=torch.long), torch.tensor([[1, 1, 1], [1, 0, 0]]),
                    torch.tensor([True, False]), ["a b c", "a"])
    assert c.scored_mask().tolist() == [[1, 1, 1], [1, 0, 0]]
    assert c.scored_mask(mask_truncated=True).tolist() == [[0, 0, 0], [1, 0, 0]]
    logps = torch.full((2, 3), -1.0, requires_grad=True)
    loss, _ = policy_loss(logps, logps.detach(), torch.tensor([1.0, 1.0]), c.scored_mask(True), "dapo")
    loss.backward()
    assert logps.grad[0].tolist() == [0.0, 0.0, 0.0] and logps.grad[1, 0] != 0


# ---------------------------------------------------------------------- runs
def greedy_rate(result, prompts, word):
    answers = result.predict(list(prompts))
    return sum(word in a.lower() for a in answers) / len(answers)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_contains_word_reward_is_learned_within_100_steps(sft_model, seed):
    data = colour_sft_data()
    train, held_out = prompts_frame(data[:96]), prompts_frame(data[96:])
    start = greedy_rate(sft_model, held_out.prompt, "blue")
    ft = llmnb.finetune(sft_model, train, eval=held_out, task="grpo", reward="contains:blue", lr=3e-3, max_steps=100,
                        batch_size=8, num_generations=8, max_new_tokens=6, eval_every=25, seed=seed,
                        save_checkpoints=False, quiet=True)
    assert start < 0.5
    assert greedy_rate(ft, held_out.prompt, "blue") >= 0.9, ft.history.dropna(subset=["eval_reward"])
    history = ft.history
    assert {"reward_mean", "reward_std", "reward/contains:blue", "zero_std_share", "completion_length", "truncated_share",
            "clip_ratio", "completion_tokens_per_second"} <= set(history.columns)
    rewards = history.reward_mean.dropna()
    assert rewards.iloc[-10:].mean() > rewards.iloc[:10].mean() + 0.3
    assert ft.samples and "reward" in ft.samples[0]


def test_the_panel_shows_the_reward_and_the_chart_draws_it(sft_model):
    from llmnb.display.notebook import render_html
    from llmnb.display.series import chart_panels

    ft = llmnb.finetune(sft_model, prompts_frame(colour_sft_data()[:40]), task="grpo", reward=["contains:blue", "length:1"],
                        max_steps=4, batch_size=4, num_generations=4, max_new_tokens=6, eval_every=2, save_checkpoints=False,
                        quiet=True)
    html = render_html(ft.state)
    assert "reward " in html and "zero std share" in html and "contains:blue" in html and "length:1" in html
    assert chart_panels(ft.state.history, ft.state.metric_name)[0].title == "reward"
    assert ft.state.metric_name == "eval_reward"  # no answer column: the best weights by reward


def test_resume_continues_the_same_reward_curve(sft_model, tmp_path):
    from llmnb.core.events import Callback

    data = prompts_frame(colour_sft_data()[:48])
    options = dict(task="grpo", reward="contains:blue", lr=3e-3, max_steps=8, batch_size=4, num_generations=4,
                   max_new_tokens=6, eval_every=4, log_every=1, seed=5, quiet=True, probe=False, precision="fp32")
    whole = llmnb.finetune(sft_model, data, out=str(tmp_path / "whole"), **options)

    class StopAtStep(Callback):
        def on_log(self, state, row):
            if state.step == 5:
                raise KeyboardInterrupt

    cut = llmnb.finetune(sft_model, data, out=str(tmp_path / "cut"), callbacks=[StopAtStep()], **options)
    assert cut.status == "interrupted"
    resumed = llmnb.finetune(sft_model, data, resume=str(tmp_path / "cut"), task="grpo", reward="contains:blue", quiet=True)
    assert resumed.state.step == 8
    curve = lambda r: r.history.dropna(subset=["reward_mean"]).set_index("step").reward_mean
    assert curve(resumed).loc[6:].tolist() == pytest.approx(curve(whole).loc[6:].tolist(), abs=1e-6)


def test_lora_with_a_kl_term_uses_the_adapters_switched_off_as_reference(sft_model):
    ft = llmnb.finetune(sft_model, prompts_frame(colour_sft_data()[:40]), task="grpo", reward="contains:blue", lora=True,
                        beta=0.1, lr=5e-3, max_steps=6, batch_size=4, num_generations=4, max_new_tokens=6, log_every=1,
                        save_checkpoints=False, quiet=True)
    assert ft.task.reference is None  # no second copy of the model
    kl = ft.history.kl.dropna()
    assert kl.iloc[0] == pytest.approx(0.0, abs=1e-6)  # the adapters start at zero: policy == reference
    assert kl.iloc[-1] > 1e-6
    assert ft.trainable_parameters < 0.3 * ft.total_parameters


def test_the_record_card_and_comparison_carry_the_rewards(sft_model, tmp_path):
    ft = llmnb.finetune(sft_model, prompts_frame(colour_sft_data()[:40]), task="grpo", reward="contains:blue;length:1",
                        reward_weights="1,0.5", max_steps=3, batch_size=4, num_generations=4, max_new_tokens=6,
                        out=str(tmp_path / "run"), quiet=True, probe=False)
    assert ft.config.to_dict()["reward"] == "contains:blue;length:1"
    card = ft.card()
    assert "Training reward at step 3" in card and "contains:blue" in card and "groups with no signal" in card
    loaded = llmnb.load_run(tmp_path / "run")
    assert loaded.history.reward_mean.dropna().tolist() == pytest.approx(ft.history.reward_mean.dropna().tolist())
    assert loaded.generate(colour_sft_data()[0]["prompt"], max_new_tokens=6) == ft.generate(colour_sft_data()[0]["prompt"], max_new_tokens=6)
    from llmnb.tools.export import ExportError

    with pytest.raises(ExportError, match="this run's task is 'grpo', which the script cannot train yet. Nothing was written"):
        llmnb.export_script(ft, tmp_path / "job" / "train.py", data=prompts_frame(colour_sft_data()[:40]))
    assert not (tmp_path / "job").exists()
    table = llmnb.compare(ft, loaded).table
    assert table["final training reward"].tolist() == pytest.approx([ft.history.reward_mean.dropna().iloc[-1]] * 2)


def test_a_function_reward_is_kept_by_name_and_must_be_given_again_to_resume(sft_model, tmp_path):
    def likes_blue(completions, **_):
        return [float("blue" in c.lower()) for c in completions]

    config = llmnb.FineTuneConfig(task="grpo", reward=[likes_blue, "length:1"])
    assert config.to_dict()["reward"] == ["likes_blue", "length:1"]
    assert config.replace(lr=1e-3).reward[0] is likes_blue  # copies keep the function itself


def test_the_magic_takes_a_notebook_function_as_reward_and_bad_input_is_a_usage_error(shell, sft_model):
    from IPython.core.error import UsageError

    shell.user_ns.update(sft=sft_model, questions=prompts_frame(colour_sft_data()[:40]),
                         likes_blue=lambda completions, **_: [float("blue" in c.lower()) for c in completions])
    shell.run_line_magic("finetune", "sft questions --task grpo --reward likes_blue;length:1 --reward-weights 1,0.5 "
                                     "--max-steps 2 --batch-size 4 --num-generations 4 --max-new-tokens 6 --no-probe "
                                     "--no-save-checkpoints --quiet --name tuned")
    tuned = shell.user_ns["tuned"]
    assert {"reward/<lambda>", "reward/length:1"} <= set(tuned.history.columns)
    with pytest.raises(UsageError, match="not a built-in reward"):
        shell.run_line_magic("finetune", "sft questions --task grpo --reward likes_red --max-steps 2 --quiet")


def test_tensorboard_gets_the_reward_columns(sft_model, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard not installed: pip install -e '.[test]'")
    from tensorboard.backend.event_processing import event_accumulator as ea

    ft = llmnb.finetune(sft_model, prompts_frame(colour_sft_data()[:40]), task="grpo", reward="contains:blue", max_steps=2,
                        batch_size=4, num_generations=4, max_new_tokens=6, log_every=1, report_to="tensorboard",
                        out=str(tmp_path / "run"), quiet=True, probe=False)
    events = [p.parent for p in (tmp_path / "run").rglob("events.out.tfevents*")]
    acc = ea.EventAccumulator(str(events[0]), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/reward_mean", "train/zero_std_share", "train/completion_length", "eval/reward"} <= tags, tags
    assert [e.value for e in acc.Scalars("train/reward_mean")] == pytest.approx(ft.history.reward_mean.dropna().tolist())


def test_num_iterations_reuses_each_batch_of_completions_with_clipping(sft_model):
    ft = llmnb.finetune(sft_model, prompts_frame(colour_sft_data()[:16]), task="grpo", reward="contains:blue", num_iterations=2,
                        lr=2e-2, max_steps=4, batch_size=8, num_generations=4, max_new_tokens=6, log_every=1,
                        eval_fraction=0, save_checkpoints=False, quiet=True, probe=False)
    rows = ft.history.dropna(subset=["reward_mean"])
    assert len(rows) == 4 and ft.state.max_steps == 4
    # Steps 1-2 train on one batch of completions, steps 3-4 on the next: the same rewards twice.
    assert rows.reward_mean.iloc[0] == rows.reward_mean.iloc[1] and rows.reward_mean.iloc[2] == rows.reward_mean.iloc[3]
    assert rows.clip_ratio.iloc[0] == 0.0  # the first pass: the policy is the one that sampled
    assert rows.clip_ratio.iloc[1] > 0.0  # the second, after a large step: the clip bites


def test_out_of_memory_in_generation_halves_the_prompts_of_a_micro_batch(sft_model, monkeypatch):
    import llmnb.tasks.grpo as grpo

    real, sizes = grpo.sample_completions, []

    def tight_memory(model, tokenizer, ids, mask, *args, **kwargs):
        sizes.append(len(ids))
        if len(ids) > 4:  # more than 4 prompts at once does not fit
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, tokenizer, ids, mask, *args, **kwargs)

    monkeypatch.setattr(grpo, "sample_completions", tight_memory)
    ft = llmnb.finetune(sft_model, prompts_frame(colour_sft_data()[:16]), task="grpo", reward="contains:blue", max_steps=2,
                        batch_size=8, num_generations=4, max_new_tokens=6, eval_fraction=0, save_checkpoints=False,
                        quiet=True, probe=False)
    assert ft.status == "finished" and any("out of memory" in note for note in ft.state.notes)
    assert sizes[:3] == [8, 4, 4]  # the step retried with two micro-batches of 4 prompts
