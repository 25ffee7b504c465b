"""The DPO loss against a hand computation, and a short preference-tuning run on a tiny model."""
import math

import pytest
import torch

import llmnb
from llmnb.errors import DataError
from llmnb.tasks.dpo import answer_logps, dpo_loss


def test_the_loss_is_the_chapter_s_formula_by_hand():
    policy_chosen, policy_rejected = torch.tensor([-3.0, -8.0]), torch.tensor([-6.0, -5.0])
    reference_chosen, reference_rejected = torch.tensor([-4.0, -7.0]), torch.tensor([-5.0, -6.0])
    beta = 0.5
    loss, chosen_reward, rejected_reward = dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta)
    for i in range(2):
        margin = beta * ((float(policy_chosen[i]) - float(reference_chosen[i])) - (float(policy_rejected[i]) - float(reference_rejected[i])))
        assert float(loss[i]) == pytest.approx(-math.log(1 / (1 + math.exp(-margin))), rel=1e-6)
    assert chosen_reward.tolist() == pytest.approx([0.5, -0.5])
    assert rejected_reward.tolist() == pytest.approx([-0.5, 0.5])
    # At the start the policy is the reference: every margin is 0 and the loss is log 2.
    zero, _, _ = dpo_loss(reference_chosen, reference_rejected, reference_chosen, reference_rejected, 0.1)
    assert zero.tolist() == pytest.approx([math.log(2)] * 2)


def test_answer_logps_sum_only_the_answer_tokens():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 6)

    class Fixed(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"logits": logits})()

    ids = torch.tensor([[1, 2, 3, 4]])
    labels = torch.tensor([[-100, -100, 3, 4]])  # the last two tokens are the answer
    expected = logits[0, 1].log_softmax(-1)[3] + logits[0, 2].log_softmax(-1)[4]
    assert float(answer_logps(Fixed(), ids, torch.ones_like(ids), labels)) == pytest.approx(float(expected))


# The rejected answer is as long as the chosen one (another colour): a random model then has no
# reason to prefer either (summed log-probs favour short answers), so preference accuracy starts
# near one half and only training can take it to 1.
PAIRS = [
    {"prompt": f"{name} had a {colour} ball. What colour was the ball?", "chosen": f"{colour.capitalize()}.",
     "rejected": f"{other.capitalize()}."}
    for name in ("Mia", "Tom", "Ben", "Ivy", "Zoe", "Sam") for colour, other in (("red", "blue"), ("green", "pink"), ("white", "brown"))
]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_preference_tuning_raises_preference_accuracy_and_margin(precision):
    # bf16 autocast runs on every CPU (emulated where the CPU lacks bf16 instructions), so this
    # checks on any machine that the reference is taken at the policy's own precision: a reference
    # in fp32 under a bf16 policy gave a margin of -0.0013 and a reward accuracy of 0.17 at step 0.
    from llmnb.instruct.chat import as_messages
    from llmnb.instruct.generation import generate_answers

    ft = llmnb.finetune("tiny-llama", PAIRS, eval=PAIRS[:6], task="dpo", beta=0.5, lr=3e-3, max_steps=30, batch_size=6,
                        eval_every=10, save_checkpoints=False, quiet=True, precision=precision)
    evals = ft.history.dropna(subset=["eval_reward_margin"])
    assert evals.step.iloc[0] == 0
    assert evals.eval_reward_margin.iloc[0] == 0.0 and evals.eval_reward_accuracy.iloc[0] == 0.0  # the policy is the reference
    assert evals.eval_loss.iloc[0] == pytest.approx(math.log(2), abs=1e-6)
    assert evals.eval_preference_accuracy.iloc[0] < 1.0  # a random model: no reason to prefer the right colour
    assert evals.eval_reward_margin.iloc[-1] > 0.5
    assert evals.eval_loss.iloc[-1] < math.log(2)  # below the untrained loss
    assert evals.eval_preference_accuracy.iloc[-1] == 1.0
    assert evals.eval_reward_accuracy.iloc[-1] == 1.0
    assert {"eval_logp_chosen", "eval_logp_rejected"} <= set(ft.history.columns)
    # generate() answers in the chat template, greedily: the same words as the batched evaluation path
    answer = ft.generate(PAIRS[0]["prompt"], max_new_tokens=5)
    assert answer and answer == generate_answers(ft.model, ft.tokenizer, [as_messages(PAIRS[0]["prompt"], "user")], 5)[0]
    later = ft.evaluate(PAIRS[6:12])  # new pairs: no reference log-probs, so the model's own preference only
    assert set(later) == {"eval_preference_accuracy", "eval_logp_chosen", "eval_logp_rejected"}
    assert llmnb.preference_accuracy(ft, PAIRS[6:12]) == later["eval_preference_accuracy"]
    start = llmnb.finetune("tiny-llama", [{"prompt": p["prompt"], "completion": p["chosen"]} for p in PAIRS], task="sft",
                           max_steps=1, lr=1e-9, batch_size=6, eval_generate=0, save_checkpoints=False, quiet=True,
                           precision=precision)
    assert llmnb.preference_accuracy(start, PAIRS[:6]) == evals.eval_preference_accuracy.iloc[0]  # an SFT result too
    assert later["eval_preference_accuracy"] == 1.0


def test_preference_data_needs_its_three_columns():
    with pytest.raises(DataError, match="prompt, chosen and rejected.*lacks rejected"):
        llmnb.finetune("tiny-llama", [{"prompt": "a", "chosen": "b"}] * 4, task="dpo", save_checkpoints=False, quiet=True)


def test_an_interrupted_dpo_run_resumes_with_the_reference_of_its_start(tmp_path):
    # The reference log-probs come from the starting weights, which a checkpoint no longer holds:
    # a resumed run reads them from the checkpoint. Recomputed from the step-7 weights instead,
    # every reward margin after the restart would differ from the uninterrupted run's.
    from easy_data import interrupt_at

    options = dict(eval=PAIRS[:6], task="dpo", beta=0.5, lr=3e-3, epochs=6, batch_size=6, eval_every=3, log_every=1,
                   precision="fp32", quiet=True, early_stopping=None)
    whole = llmnb.finetune("tiny-llama", PAIRS, out=str(tmp_path / "a"), **options)
    cut = llmnb.finetune("tiny-llama", PAIRS, out=str(tmp_path / "b"), callbacks=[interrupt_at(7)], **options)
    assert cut.status == "interrupted" and cut.state.step == 7
    with pytest.raises(DataError, match="same data"):  # other pairs: the kept reference does not fit them
        llmnb.finetune("tiny-llama", PAIRS[:12], eval=PAIRS[:6], resume=str(tmp_path / "b"), quiet=True)
    resumed = llmnb.finetune("tiny-llama", PAIRS, eval=PAIRS[:6], resume=str(tmp_path / "b"), quiet=True)
    assert resumed.status == "finished" and resumed.state.step == whole.state.step == 18
    a, b = whole.history, resumed.history
    assert b["train_loss"].dropna().tolist() == pytest.approx(a["train_loss"].dropna().tolist(), abs=1e-5)
    assert b["eval_reward_margin"].dropna().tolist() == pytest.approx(a["eval_reward_margin"].dropna().tolist(), abs=1e-4)


def test_rpo_alpha_adds_the_chosen_answers_own_loss():
    from llmnb.finetuning.config import FineTuneConfig
    from llmnb.tasks.dpo import DPO

    torch.manual_seed(0)
    batch = {"input_ids": torch.randint(0, 9, (2, 2, 5)), "attention_mask": torch.ones(2, 2, 5, dtype=torch.long),
             "labels": torch.tensor([[[-100, -100, 3, 4, 5], [-100, -100, 6, -100, -100]]] * 2),
             "reference_logps": torch.tensor([[-3.0, -4.0], [-2.0, -5.0]])}
    logps = torch.tensor([[-6.0, -1.0], [-3.0, -2.0]])
    plain, with_nll = DPO(FineTuneConfig(task="dpo", beta=0.5)), DPO(FineTuneConfig(task="dpo", beta=0.5, rpo_alpha=2.0))
    for task in (plain, with_nll):
        task._logps = lambda model, batch: logps
    dpo_part = float(plain.compute_loss(None, batch))
    # chosen answers have 3 labelled tokens after the shift: NLL per token = 6/3 and 3/3, mean 1.5
    assert float(with_nll.compute_loss(None, batch)) == pytest.approx(dpo_part + 2.0 * 1.5)
