"""Every input a user can get wrong, through the %finetune magic: one readable line, no traceback,
nothing of the user's changed. docs/errors.md lists the same cases (checked below)."""
import re
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError

import llmnb

ROOT = Path(__file__).resolve().parent.parent

# (what the user got wrong, the %finetune line, a fragment of the message they see)
CASES = [
    ("data variable that does not exist", "tiny-bert nope", "No variable, file or bundled data set called 'nope'"),
    ("file of a type llmnb cannot read", "tiny-bert {tmp}/data.parquet", "llmnb reads .csv"),
    ("CSV row with too many fields", "tiny-bert {tmp}/ragged.csv", "line 3"),
    ("JSON-lines file with a broken line", "tiny-bert {tmp}/broken.jsonl", "line 2 is not valid JSON"),
    ("empty CSV file", "tiny-bert {tmp}/empty.csv", "is empty"),
    ("text column that does not exist", "tiny-bert df --text body", "No column 'body' for the text"),
    ("label column that cannot be told apart", "tiny-bert wide_df", "Cannot tell which column holds the labels"),
    ("a single class", "tiny-bert one_class_df", "single class"),
    ("eval labels never seen in training", "tiny-bert df --eval odd_eval_df", "never seen in training: angry"),
    ("eval data without the training columns", "tiny-bert df --eval other_df", "The eval data has no 'text' column"),
    ("every text empty", "tiny-bert blank_df", "Every row of the training data has an empty"),
    ("empty list of examples", "tiny-bert empty_list", "empty list"),
    ("non-numeric regression targets", "tiny-bert df --task regression", "Regression needs numeric targets"),
    ("zero epochs", "tiny-bert df --epochs 0", "epochs=0 is out of range"),
    ("negative learning rate", "tiny-bert df --lr -0.001", "lr=-0.001 is out of range"),
    ("batch size that is not a number", "tiny-bert df --batch-size many", "--batch-size: invalid int value: 'many'"),
    ("fractional batch size", "tiny-bert df --batch-size 2.5", "--batch-size: invalid int value: '2.5'"),
    ("unknown task", "tiny-bert df --task translate", "task='translate' is not known; choose one of: classification"),
    ("unknown flag", "tiny-bert df --epoch 3", "unrecognized arguments: --epoch"),
    ("a metric the task does not compute", "tiny-bert df --metric acc", "Did you mean 'accuracy'"),
    ("LoRA and freeze together", "tiny-bert df --lora --freeze 1", "not both"),
    ("negative checkpoint interval", "tiny-bert df --checkpoint-every -1", "checkpoint_every=-1 is out of range"),
    ("model not in the local cache (offline)", "someone/missing-model df", "not in the local cache"),
    ("model folder without config.json", "{tmp} df", "has no config.json"),
    ("output folder inside a file", "tiny-bert df --out {tmp}/data.parquet/model", "is a file, not a folder"),
    ("output folder holding an earlier run", "tiny-bert df --out {tmp}/earlier", "holds an earlier run"),
    ("nothing to resume", "tiny-bert df --resume {tmp}/nothing", "No checkpoint to resume"),
    ("result name that is not a variable name", "tiny-bert df --name 2ft", "not a valid Python variable name"),
    ("code inside braces in the magic line", "tiny-bert df --epochs {{__import__('os').getpid()}}", "expressions are not run"),
    ("instruction data without prompt and answer columns", "tiny-llama df --task sft", "'prompt' + 'completion'"),
    ("an answer cut away by truncation", "tiny-llama long_chat_df --task sft --max-length 12", "have no answer token left"),
    ("an example longer than the model's whole context", "short_gpt long_chat_df --task sft",
     "which max_length cannot go beyond. Use a model with a longer context: for a GPT from llmnb.pretrain, "
     "pretrain it again with block_size="),
    ("a message with an unknown role", "tiny-llama bad_role_df --task sft", "role 'bot' is not one of"),
    ("a conversation the model's chat template refuses", "no_system_llama system_chat_df --task sft",
     "Row 1 of the training data: The model's chat template refuses this conversation: No system turns here"),
    ("preference data without a rejected column", "tiny-llama chat_df --task dpo", "lacks rejected"),
    ("a non-causal model for instruction tuning", "tiny-t5 chat_df --task sft", "tiny-t5 is an encoder-decoder"),
    ("train on the prompt outside sft", "tiny-bert df --train-on-prompt", "train_on_prompt is an option of task='sft'"),
    ("a negative weight for the chosen answers' loss", "tiny-llama chat_df --task dpo --rpo-alpha -1", "rpo_alpha=-1"),
    ("a reporting tool llmnb does not write", "tiny-bert df --report-to wandb", "report_to='wandb' is not allowed"),
    ("a learning rate that is neither a number nor find", "tiny-bert df --lr fast", "'fast' is neither a number (e.g. 5e-5) nor 'find'"),
    ("token-classification data without tokens and tags", "tiny-bert df --task ner", "reads a 'tokens' column"),
    ("words and tags of different lengths", "tiny-bert short_tags_df --task ner", "Row 1 of the training data has 2 words but 1 tags"),
    ("an empty sentence", "tiny-bert empty_sentence_df --task ner", "Row 1 of the training data is an empty sentence"),
    ("a tag outside the training data's tags", "tiny-bert tags_df --task ner --eval odd_tags_df", "which is not among the known tags"),
    ("question-answering data without question and context", "tiny-bert df --task qa", "reads 'question', 'context' and 'answers'"),
    ("an answer that is not in its context", "tiny-bert qa_df --task qa", "Row 1 of the training data: the answer 'Lorne' is not in its context"),
    ("prompts without a prompt column", "tiny-llama df --task grpo --reward exact_match", "needs a 'prompt' column"),
    ("learning from rewards without a reward", "tiny-llama prompt_df --task grpo", "task='grpo' needs a reward"),
    ("a reward llmnb does not know", "tiny-llama prompt_df --task grpo --reward exact", "reward='exact' is not a built-in reward"),
    ("exact match without an answer column", "tiny-llama prompt_df --task grpo --reward exact_match",
     "The reward 'exact_match' compares each completion with an 'answer' column"),
    ("a reward function that fails", "tiny-llama prompt_df --task grpo --reward broken_reward",
     "The reward 'broken_reward' raised ZeroDivisionError"),
    ("a loss type GRPO does not have", "tiny-llama prompt_df --task grpo --reward length:3 --loss-type ppo", "loss_type='ppo' must be one of"),
]


@pytest.fixture(scope="module")
def ip(tmp_path_factory, shell):
    tmp = tmp_path_factory.mktemp("inputs")
    (tmp / "data.parquet").write_text("not really")
    (tmp / "ragged.csv").write_text("text,label\nfine,positive\ntoo,many,fields\n")
    (tmp / "broken.jsonl").write_text('{"text": "ok", "label": "positive"}\n{"text": "broken"\n')
    (tmp / "empty.csv").write_text("")
    (tmp / "earlier" / "checkpoint-last").mkdir(parents=True)
    (tmp / "nothing").mkdir()
    rows = {"text": ["good film", "bad film", "great food", "awful food"], "label": ["positive", "negative"] * 2}
    shell.user_ns.update(
        df=pd.DataFrame(rows),
        wide_df=pd.DataFrame({**rows, "source": ["a", "b", "c", "d"]}).rename(columns={"label": "verdict"}),
        one_class_df=pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]}),
        odd_eval_df=pd.DataFrame({"text": ["fine", "meh"], "label": ["positive", "angry"]}),
        other_df=pd.DataFrame({"sentence": ["fine"], "label": ["positive"]}),
        blank_df=pd.DataFrame({"text": ["", None], "label": ["positive", "negative"]}),
        empty_list=[],
        chat_df=pd.DataFrame({"prompt": ["Who had the ball?", "What colour?"], "completion": ["Mia.", "Red."],
                              "chosen": ["Mia.", "Red."]}),
        long_chat_df=pd.DataFrame({"prompt": ["Mia had a red ball and played in the park with her dog. " * 3, "Hi"],
                                   "completion": ["Mia.", "Hello."]}),
        bad_role_df=pd.DataFrame({"messages": [[{"role": "bot", "content": "hi"}], [{"role": "user", "content": "x"}]]}),
        tags_df=pd.DataFrame({"tokens": [["Mia", "went", "home"], ["Leon", "slept"]], "tags": [["B-PER", "O", "O"], ["B-PER", "O"]]}),
        short_tags_df=pd.DataFrame({"tokens": [["Mia", "went"], ["Leon", "slept"]], "tags": [["B-PER", "O"], ["B-PER"]]}),
        empty_sentence_df=pd.DataFrame({"tokens": [["Mia", "went"], []], "tags": [["B-PER", "O"], []]}),
        odd_tags_df=pd.DataFrame({"tokens": [["Zell", "is", "far"]], "tags": [["B-LOC", "O", "O"]]}),
        qa_df=pd.DataFrame({"question": ["Where did Mia go?", "Where did Leon go?"], "answer": ["Zell", "Lorne"],
                            "context": ["Mia went to Zell.", "Leon went to Carrow."]}),
        system_chat_df=pd.DataFrame({"messages": [
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi."}],
        ]}),
        no_system_llama=no_system_llama(),
        prompt_df=pd.DataFrame({"prompt": ["Who had the ball?", "What colour?"] * 4}),
        broken_reward=broken_reward,
        short_gpt=llmnb.pretrain(corpus_chars=20_000, max_steps=1, block_size=32, vocab_size=300, prompts=(), quiet=True),
        tmp=str(tmp),
    )
    shell.tmp = tmp
    return shell


def no_system_llama():
    """tiny-llama with a chat template that refuses system turns, as Gemma's does (written here, not Gemma's)."""
    loaded = llmnb.load_model("tiny-llama", task="sft")
    loaded.tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('No system turns here') }}{% endif %}"
        "{{ m['role'] }}: {{ m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    return loaded


def broken_reward(completions, **columns):
    return [1 / 0 for _ in completions]


def snapshot(ns):
    return {k: v.copy() for k, v in ns.items() if isinstance(v, pd.DataFrame)}


@pytest.mark.parametrize("what, line, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(ip, capsys, what, line, message):
    line = line.replace("{tmp}", str(ip.tmp)).replace("{{", "{").replace("}}", "}")
    before = snapshot(ip.user_ns)
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("finetune", line + " --quiet")
    assert message in str(info.value), str(info.value)
    assert "\n" not in str(info.value).strip()  # one paragraph
    for name, frame in before.items():
        pd.testing.assert_frame_equal(ip.user_ns[name], frame)
    ip.run_cell("%finetune " + line + " --quiet")  # as a notebook cell shows it
    shown = capsys.readouterr()
    assert "Traceback" not in shown.out + shown.err and "UsageError" in shown.out + shown.err


def test_docs_table_lists_every_case():
    table = (ROOT / "docs" / "errors.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (.+?) \| `%finetune .*?` \| (.+?) \|$", table, re.M)}
    assert set(rows) == {c[0] for c in CASES}, "regenerate docs/errors.md: python scripts/update_docs.py"
    for what, _, message in CASES:
        assert message in rows[what], what


@pytest.mark.parametrize(
    "setup, line",
    [
        ("rows = [{'text': 'good', 'label': 'yes'}, {'text': 'bad', 'label': 'no'}] * 4", "tiny-bert rows"),
        ("holes = pd.DataFrame({'text': ['good', None, 'bad', 'fine', 'poor', 'ok'], 'label': ['p', 'n', 'n', 'p', 'n', 'p']})", "tiny-bert holes"),
        ("long = pd.DataFrame({'text': ['word ' * 5000, 'short'] * 4, 'label': [1, 0] * 4})", "tiny-bert long"),
        ("open(tmp + '/latin.csv', 'wb').write('text,label\\ncafé crème,1\\nbof,0\\nsuper,1\\nnul,0\\n'.encode('latin-1'))", "tiny-bert {tmp}/latin.csv"),
    ],
    ids=["list of dicts with string labels", "missing texts dropped", "very long texts truncated", "latin-1 CSV"],
)
def test_inputs_that_just_work(ip, setup, line):
    ip.run_cell("import pandas as pd\n" + setup)
    ip.run_line_magic("finetune", line.replace("{tmp}", str(ip.tmp)) + " --max-steps 1 --eval-fraction 0.25 --quiet --no-save-checkpoints")
    assert ip.user_ns["ft"].status == "finished"
