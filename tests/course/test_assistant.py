"""The course's assistant (llmnb.course_assistant): the shipped copy loads and answers as it did when
it was built, its record says the recipe, and the build writes a folder that loads back."""
import json

import pytest

import llmnb
from llmnb.course import assistant as course


def test_the_shipped_assistant_answers_as_when_it_was_built():
    sft = llmnb.course_assistant()
    recorded = json.loads((course.FOLDER / course.ANSWERS_FILE).read_text())
    answers = course.reference_answers(sft, len(recorded))
    same = sum(a == b for a, b in zip(answers, recorded))
    # Greedy decoding on another CPU can flip a near-tie; more than a few flips means the weights,
    # the tokenizer or the generation code no longer match what was shipped.
    assert same >= 0.9 * len(recorded), list(zip(answers, recorded))
    # and it learned the task: most answers are short sentences ending in a full stop, like the references
    assert sum(a.strip().endswith(".") for a in answers) >= 0.8 * len(answers), answers


def test_the_shipped_record_is_the_recipe():
    sft = llmnb.course_assistant()
    assert sft.config.task == "sft"
    assert sft.config.epochs == course.RECIPE["sft_epochs"] and sft.config.lr == course.RECIPE["sft_lr"]
    assert sft.config.seed == course.RECIPE["seed"]
    assert sft.history["train_loss"].dropna().iloc[-1] < sft.history["train_loss"].dropna().iloc[0] / 3


def test_build_writes_a_folder_that_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # pretraining may write its run folder under the working directory
    built = course.build(tmp_path / "assistant", pretrain_steps=4, sft_epochs=0.05)
    loaded = llmnb.load_run(tmp_path / "assistant")
    recorded = json.loads((tmp_path / "assistant" / course.ANSWERS_FILE).read_text())
    assert len(recorded) == course.REFERENCE_QUESTIONS
    assert loaded.generate("Who had the ball?", max_new_tokens=4) == built.generate("Who had the ball?", max_new_tokens=4)


def test_a_missing_copy_says_how_to_rebuild_it(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "FOLDER", tmp_path / "nowhere")
    with pytest.raises(llmnb.DataError, match="python -m llmnb.course.assistant"):
        llmnb.course_assistant()


def test_a_list_of_prompts_is_answered_in_batches_as_one_by_one():
    """ChatResult.generate([...]): left-padded batches give the answers single calls give (on a trained
    model, where a wrong position or mask would change them)."""
    from llmnb.datasets import load
    from llmnb.instruct.chat import prompt_of, to_conversation

    sft = llmnb.course_assistant()
    prompts = [prompt_of(to_conversation(row)) for row in load("instructions", "test").head(40).to_dict("records")]
    batched = sft.generate(prompts, max_new_tokens=8)
    single = [sft.generate(p, max_new_tokens=8) for p in prompts]
    assert len(batched) == len(prompts)
    # Padding changes the shapes of the sums, so a near-tie may flip; a broken mask flips most answers.
    assert sum(a == b for a, b in zip(batched, single)) >= 38, list(zip(batched, single))
    with pytest.raises(llmnb.ConfigError, match="greedily in batches"):
        sft.generate(prompts[:2], temperature=1.0)
