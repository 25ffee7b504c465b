"""Instruction tuning end to end on tiny models: the loss falls, answers are scored, saved models chat."""
import pytest
import transformers

import llmnb
from llmnb.errors import ConfigError, DataError
from llmnb.instruct.chat import DEFAULT_CHAT_TEMPLATE

COLOURS = ["red", "blue", "green", "pink", "white", "brown"]
NAMES = ["Mia", "Tom", "Ben", "Ivy", "Zoe", "Sam", "Max", "Ella"]
DATA = [{"prompt": f"{n} had a {c} ball. What colour was the ball?", "completion": f"{c.capitalize()}."} for n in NAMES for c in COLOURS]


@pytest.fixture(scope="module")
def tuned():
    return llmnb.finetune("tiny-llama", DATA, task="sft", lr=3e-3, max_steps=60, batch_size=8, eval_every=20,
                          save_checkpoints=False, quiet=True)


def test_the_answer_loss_falls_and_answers_are_scored(tuned):
    evals = tuned.history.dropna(subset=["eval_loss"])
    assert evals.step.iloc[0] == 0  # the starting model is scored too
    assert evals.eval_loss.iloc[-1] < 0.5 * evals.eval_loss.iloc[0]
    assert {"eval_exact_match", "eval_token_accuracy", "eval_perplexity"} <= set(evals.columns)
    assert evals.eval_exact_match.iloc[0] == 0.0
    assert tuned.history.tokens_per_second.dropna().gt(0).all()
    assert tuned.samples and set(tuned.samples[0]) == {"prompt", "answer", "reference"}


def test_generate_answers_in_the_template_and_stops(tuned, capsys):
    answer = tuned.generate(DATA[1]["prompt"], max_new_tokens=20)
    assert isinstance(answer, str) and len(answer.split()) < 20  # stopped at the end token, well before 20
    streamed = tuned.chat([{"role": "user", "content": DATA[1]["prompt"]}], max_new_tokens=20)
    assert streamed == answer and answer in capsys.readouterr().out  # streamed into the cell
    with pytest.raises(ConfigError, match="top_p"):
        tuned.generate("hi", top_p=0)


def test_save_keeps_the_chat_template(tuned, tmp_path):
    tuned.save(tmp_path / "chat")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "chat")
    assert tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "chat")
    assert model.config.model_type == "llama"


def test_a_pretrained_gpt_is_a_starting_model_and_stays_as_it_was():
    gpt = llmnb.pretrain(corpus_chars=20_000, max_steps=5, block_size=64, vocab_size=300, quiet=True)
    before = {k: v.clone() for k, v in gpt.model.state_dict().items()}
    ft = llmnb.finetune(gpt, DATA[:24], task="sft", max_steps=4, batch_size=8, save_checkpoints=False, quiet=True, eval_generate=2)
    assert ft.model is not gpt.model and ft.status == "finished"
    assert all((gpt.model.state_dict()[k] == v).all() for k, v in before.items())
    assert gpt.tokenizer.chat_template is None and ft.tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE
    assert ft.tokenizer.pad_token_id == ft.tokenizer.eos_token_id  # the pad == eos case, trained end to end


def test_lora_sft_then_merge():
    ft = llmnb.finetune("tiny-llama", DATA, task="sft", lora=True, max_steps=10, batch_size=8, save_checkpoints=False, quiet=True,
                        eval_generate=4)
    assert ft.trainable_parameters < 0.2 * ft.total_parameters
    merged = ft.merge()
    assert type(merged).__name__ == "LlamaForCausalLM"


def test_unpacked_and_options_that_do_not_fit_read_well():
    ft = llmnb.finetune("tiny-llama", DATA[:16], task="sft", packing=False, max_steps=2, batch_size=8,
                        save_checkpoints=False, quiet=True, eval_fraction=0.25, eval_generate=0)
    assert ft.status == "finished" and "eval_exact_match" not in ft.history.columns
    with pytest.raises(ConfigError, match="train_on_prompt is an option of task='sft'"):
        llmnb.FineTuneConfig(task="classification", train_on_prompt=True)
    with pytest.raises(DataError, match="'instruction' \\+ 'output'"):
        llmnb.finetune("tiny-llama", "reviews", task="sft", save_checkpoints=False, quiet=True)


def test_an_interrupted_lora_sft_run_resumes_onto_its_base_and_saves_the_same_model(tmp_path):
    # A LoRA checkpoint holds adapters only; they go back onto the same MODEL (not merged into it),
    # so the run continues exactly and its saved adapters still fit the base.
    from easy_data import interrupt_at

    options = dict(task="sft", lora=True, lr=3e-3, epochs=2, batch_size=8, eval_every=4, log_every=1, precision="fp32",
                   quiet=True, early_stopping=None, eval_generate=0)
    whole = llmnb.finetune("tiny-llama", DATA, out=str(tmp_path / "a"), **options)
    cut = llmnb.finetune("tiny-llama", DATA, out=str(tmp_path / "b"), callbacks=[interrupt_at(5)], **options)
    assert cut.status == "interrupted" and (tmp_path / "b" / "checkpoint" / "adapter_config.json").exists()
    resumed = llmnb.finetune("tiny-llama", DATA, resume=str(tmp_path / "b"), quiet=True)
    assert resumed.status == "finished" and resumed.state.step == whole.state.step
    assert resumed.history["train_loss"].dropna().tolist() == pytest.approx(whole.history["train_loss"].dropna().tolist(), abs=1e-5)
    assert resumed.generate(DATA[3]["prompt"], max_new_tokens=8) == whole.generate(DATA[3]["prompt"], max_new_tokens=8)
