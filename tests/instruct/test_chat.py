"""Which tokens instruction tuning trains on: every data form, multi-turn, pad == eos, truncation."""
import pytest

import llmnb
from llmnb.errors import DataError
from llmnb.instruct import chat
from llmnb.tasks.sft import SFT

STORY = "Mia had a red ball. She played with it in the park."


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level BPE as llmnb's pretrained GPT has: <|endoftext|> is eos, bos AND pad."""
    tok = llmnb.train_tokenizer([STORY, "User: Assistant: Who had the ball? Mia. Red. Tom played too."] * 20, vocab_size=300)
    assert tok.pad_token_id == tok.eos_token_id
    chat.ensure_chat_template(tok)
    return tok


def trained_text(tokenizer, ids, labels):
    return tokenizer.decode([i for i, label in zip(ids, labels) if label != chat.IGNORE])


def untrained_text(tokenizer, ids, labels):
    return tokenizer.decode([i for i, label in zip(ids, labels) if label == chat.IGNORE])


def test_single_turn_trains_the_answer_and_its_end_only(tokenizer):
    messages = chat.to_conversation({"prompt": f"{STORY}\n\nWho had the ball?", "completion": "Mia."})
    ids, labels = chat.tokenize_conversation(tokenizer, messages, max_length=128)
    assert trained_text(tokenizer, ids, labels) == " Mia.<|endoftext|>"
    assert "Who had the ball?" in untrained_text(tokenizer, ids, labels)
    assert labels[-1] == tokenizer.eos_token_id  # the end is trained although pad == eos


def test_multi_turn_with_a_system_message_trains_every_answer(tokenizer):
    messages = chat.to_conversation({"messages": [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Who had the ball?"},
        {"role": "assistant", "content": "Mia."},
        {"role": "user", "content": "What colour was it?"},
        {"role": "assistant", "content": "Red."},
    ]})
    ids, labels = chat.tokenize_conversation(tokenizer, messages, max_length=128)
    assert trained_text(tokenizer, ids, labels) == " Mia.<|endoftext|> Red.<|endoftext|>"
    prompt = untrained_text(tokenizer, ids, labels)
    assert "Answer in one word." in prompt and "What colour was it?" in prompt


def test_messages_given_as_json_text_as_in_a_csv(tokenizer):
    row = {"messages": '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Red."}]'}
    ids, labels = chat.tokenize_conversation(tokenizer, chat.to_conversation(row), 64)
    assert trained_text(tokenizer, ids, labels) == " Red.<|endoftext|>"


@pytest.mark.parametrize("given", ["", None, float("nan"), STORY])
def test_instruction_with_and_without_input(tokenizer, given):
    messages = chat.to_conversation({"instruction": "Who had the ball?", "input": given, "output": "Mia."})
    user = messages[0]["content"]
    assert user.endswith("Who had the ball?")
    assert (STORY in user) == (given == STORY)
    ids, labels = chat.tokenize_conversation(tokenizer, messages, 128)
    assert trained_text(tokenizer, ids, labels) == " Mia.<|endoftext|>"


def test_train_on_prompt_trains_everything_but_the_first_token(tokenizer):
    messages = chat.to_conversation({"prompt": "Who had the ball?", "completion": "Mia."})
    ids, labels = chat.tokenize_conversation(tokenizer, messages, 128, train_on_prompt=True)
    assert labels[0] == chat.IGNORE and labels[1:] == ids[1:]


def test_padding_is_not_trained_though_it_is_the_end_token(tokenizer):
    task = SFT()
    rows = [chat.to_conversation({"prompt": p, "completion": "Mia."}) for p in ("Who?", f"{STORY} Who had the ball?")]
    enc = task.encode(tokenizer, rows, [{"row": i, "reference": "Mia.", "what": "data"} for i in range(2)], 128)
    batch = task.collate(enc, [0, 1], tokenizer.pad_token_id)
    short = batch["input_ids"][0]
    padding = batch["attention_mask"][0] == 0
    assert padding.any() and (short[padding] == tokenizer.eos_token_id).all()
    assert (batch["labels"][0][padding] == chat.IGNORE).all()
    real_ends = (batch["labels"][0] == tokenizer.eos_token_id).sum()
    assert real_ends == 1  # the answer's own end, and no padding position


def test_an_answer_cut_by_truncation_is_an_error_naming_the_rows(tokenizer):
    task = SFT()
    rows = [chat.to_conversation({"prompt": p, "completion": "Mia."}) for p in ("Who?", STORY * 4, "Who had it?", STORY * 5)]
    targets = [{"row": i, "reference": "Mia.", "what": "training data"} for i in range(4)]
    with pytest.raises(DataError) as caught:
        task.encode(tokenizer, rows, targets, max_length=40)
    message = str(caught.value)
    assert "2 of 4 examples" in message and "rows 1, 3" in message and "max_length=40" in message and "--max-length" in message


def test_missing_columns_and_bad_roles_read_well():
    with pytest.raises(DataError, match="'prompt' \\+ 'completion'"):
        chat.find_form(["text", "label"])
    with pytest.raises(DataError, match="role 'bot'"):
        chat.check_messages([{"role": "bot", "content": "hi"}])


def test_show_masking_table(tokenizer):
    data = [{"prompt": "Who had the ball?", "completion": "Mia."}, {"instruction": "x", "output": "y"}]
    table = llmnb.show_masking(tokenizer, data[:1], n=3)
    assert list(table.columns) == ["example", "position", "token", "id", "trained"]
    trained = table[table.trained]
    assert tokenizer.decode(trained["id"].tolist()) == " Mia.<|endoftext|>"
    assert table.position.tolist() == list(range(len(table)))
    assert tokenizer.chat_template == chat.DEFAULT_CHAT_TEMPLATE  # the caller's tokenizer is untouched otherwise
