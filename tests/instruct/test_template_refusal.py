"""A chat template that refuses a conversation (as Gemma's refuses system turns) is a DataError
naming the template's words and the row, never jinja's TemplateError from deep inside transformers."""
import copy

import pytest

import llmnb
from llmnb.errors import DataError

REFUSAL = "This model takes no system turns"
# Written for this test (not Gemma's): refuses a system turn through transformers' raise_exception.
REFUSING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('" + REFUSAL + "') }}{% endif %}"
    "{{ message['role'] }}: {{ message['content'] }}{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
PLAIN = [{"messages": [{"role": "user", "content": f"Say {w}."}, {"role": "assistant", "content": w}]}
         for w in ("yes", "no", "red", "blue", "up", "down", "left", "right")]
WITH_SYSTEM = {"messages": [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Say hi."},
                            {"role": "assistant", "content": "hi"}]}
OPTIONS = dict(task="sft", max_steps=1, batch_size=4, save_checkpoints=False, quiet=True, eval_generate=0)


def refusing_model():
    loaded = llmnb.load_model("tiny-llama", task="sft")
    loaded.tokenizer.chat_template = REFUSING_TEMPLATE
    return loaded


def test_a_refused_system_turn_in_training_data_names_the_template_and_the_row():
    data = PLAIN[:1] + [WITH_SYSTEM] + PLAIN[1:]
    given = copy.deepcopy(data)
    with pytest.raises(DataError, match=f"^Row 1 of the training data: .*{REFUSAL}") as caught:
        llmnb.finetune(refusing_model(), data, eval=PLAIN[:2], **OPTIONS)
    assert "TemplateError" not in str(caught.value) and "\n" not in str(caught.value)
    assert data == given  # the user's data object is untouched


def test_a_refused_row_of_the_eval_data_is_named_as_such():
    with pytest.raises(DataError, match=f"^Row 2 of the eval data: .*{REFUSAL}"):
        llmnb.finetune(refusing_model(), PLAIN, eval=PLAIN[:2] + [WITH_SYSTEM], **OPTIONS)


def test_chatting_with_a_system_turn_the_template_refuses():
    ft = llmnb.finetune(refusing_model(), PLAIN, eval=PLAIN[:2], **OPTIONS)
    assert ft.generate("Say yes.", max_new_tokens=2) is not None  # a plain conversation renders
    with pytest.raises(DataError, match=REFUSAL):
        ft.chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say yes."}], max_new_tokens=2)
