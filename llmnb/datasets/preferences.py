"""Preference pairs (prompt, chosen, rejected) about tiny stories, for DPO of the story GPT.

    from llmnb.datasets.preferences import build_preferences
    rows = build_preferences(600, seed=0)           # dicts with keys prompt, chosen, rejected
    llmnb.datasets.load("preferences")              # the bundled train split (made by build_preferences)
    llmnb.datasets.load("preferences", "test")      # the bundled test split

Data card
---------
* **What it is.** Rows of `prompt` (a story of 2 or 3 sentences, a blank line, a question about
  it), `chosen` (the correct concise answer, in the same form as the outputs of
  `llmnb.datasets.instructions`: "Red.", "In the park.", "Yes.") and `rejected` (a worse answer).
  The stories and questions are those of the instruction set (same generator, same kinds: who,
  colour, where, which animal, yes/no, title, retelling; only questions about a story).
* **Rejected answers, four kinds in turn** (shuffled): *wrong* (the same form with one fact
  changed: another name, colour, place or animal, the opposite yes/no, a title or retelling with
  a wrong fact), *rambling* (capitalised, 20 words or more: repeats the question, wanders, and
  sometimes buries the right answer), *off-format* (lower case, no final full stop: the right
  answer with filler words, "red i think", or the answer to a different question, "in the park
  ok") and *unanswerable* (a question no story of the corpus answers: an age, a meal, the day, a
  pet's name, with its own phrasings per split; chosen "The story does not say.", rejected a
  confident made-up answer). The instruction set has no unanswerable questions, so an
  instruction-tuned model makes answers up: those pairs are what DPO has left to teach.
* **How it is made.** By the seeded generator in this module and `llmnb.datasets.instructions`
  (hand-written templates, the word lists of `llmnb.datasets.stories`). Nothing was copied from
  a data set or web page and no model wrote any of it. The same `n`, `seed` and `split` give the
  same rows on every machine (only `random.Random` with an integer seed). Stories are unique
  within a call (a stream of their own, not the instruction set's).
* **Held out.** As in the instruction set: a story's split is fixed by a hash of its facts (so
  no test story is in either train split) and each question kind has its own test phrasings.
* **Bundled splits.** `preferences_train.csv` (600 rows) and `preferences_test.csv` (150 rows)
  in `llmnb/datasets/data/`, written by `write_bundled()`.
* **Limits.** Templated English, a tiny vocabulary; the rejected answers are made by rules, so
  they are easier to tell apart than a real model's mistakes. For teaching DPO (the reward
  margin, the accuracy of preferring `chosen`), not for judging real assistants.
* **Licence.** Same as llmnb (the generator and its output).
"""
from __future__ import annotations

import random
from pathlib import Path

from llmnb.datasets.instructions import (
    STORY_KINDS,
    WEIGHTS,
    YES_FIELDS,
    answer,
    article,
    ask,
    check_args,
    other,
    stories,
)
from llmnb.datasets.stories import BOYS, GIRLS

REJECTIONS = ("wrong", "rambling", "off_format", "unanswerable")
NOT_SAID = "The story does not say."
# Questions no story of the corpus answers (no ages, meals, days or pet names are ever told), with
# a made-up answer of the right form. The instruction set has none: an SFT model answers them anyway.
UNANSWERABLE = {
    "age": {"train": ["How old was {name}?", "How old is {name}?"], "test": ["What age was {name}?"],
            "made_up": ["Six.", "Five.", "Seven.", "Four."]},
    "food": {"train": ["What did {name} eat?", "What did {name} have for lunch?"], "test": ["What food did {name} have?"],
             "made_up": ["An apple.", "A cake.", "Bread.", "Soup."]},
    "day": {"train": ["On which day did {name} play?", "What day was it?"], "test": ["What day of the week was it?"],
            "made_up": ["On Monday.", "On Sunday.", "On Friday."]},
    "pet_name": {"train": ["What was the name of the {animal}?", "What was the {animal}'s name?"],
                 "test": ["What was the {animal} called?"], "made_up": ["{other}.", "Spot.", "Bella."]},
}
CHANGES = {"who": ["name"], "friend": ["friend"], "colour": ["color"], "where": ["place"], "animal": ["animal"],
           "title": ["name", "color"], "retell": ["color", "place", "animal"]}
RAMBLES = [
    ("Well, you asked me: {question} That is a good question. The story is about {name}. I think it is {inline}, "
     "but I am not sure."),
    "Let me think. {question} Hmm. There was {a_obj}, and there was {a_animal}, and it was a nice day. Stories are fun.",
    "{question} {question} That is what you want to know. Once upon a time there was a story. It is {inline}. The end.",
    ("Before I answer, I want to say that I like this story, and {name} is very kind. {question} Maybe it is {inline}, "
     "or maybe not."),
]
FILLERS = ["{plain} i think", "um {plain}", "the answer is {plain} i guess", "{plain} ok", "{plain} i am sure"]


def plain(text: str) -> str:
    """Lower case, no punctuation: 'In the park.' -> 'in the park'."""
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace() or ch == "'").strip()


def inline(chosen: str, f: dict) -> str:
    """The answer as words inside a sentence: 'In the park.' -> 'in the park', 'Mia.' stays 'Mia'."""
    text = chosen.rstrip(".")
    return text if text.split()[0] in (f["name"], f["friend"]) else text[0].lower() + text[1:]


def reject(rng: random.Random, how: str, kind: str, f: dict, question: str, chosen: str, truth: bool) -> str:
    """A worse answer than `chosen`: 'wrong', 'rambling' or 'off_format' (see the data card)."""
    if how == "wrong":
        if kind in YES_FIELDS:
            return answer(kind, f, not truth)
        return answer(kind, other(rng, f, rng.choice(CHANGES[kind])))
    if how == "rambling":
        return rng.choice(RAMBLES).format(question=question, name=f["name"], inline=inline(chosen, f),
                                          a_obj=f"{article(f['obj'])} {f['obj']}",
                                          a_animal=f"{article(f['animal'])} {f['animal']}")
    if rng.random() < 0.6:  # off format: right answer, wrong form
        return rng.choice(FILLERS).format(plain=plain(chosen))
    others = [k for k in ("who", "colour", "where", "animal") if plain(answer(k, f)) != plain(chosen)]
    return rng.choice(FILLERS).format(plain=plain(answer(rng.choice(others), f)))  # answers another question


def unanswerable(rng: random.Random, f: dict, split: str) -> tuple[str, str]:
    """(question the story cannot answer, a confident made-up answer) for facts `f`."""
    topic = UNANSWERABLE[rng.choice(sorted(UNANSWERABLE))]
    other_name = rng.choice([n for n in GIRLS + BOYS if n not in (f["name"], f["friend"])])
    question = rng.choice(topic[split]).format(name=f["name"], animal=f["animal"])
    return question, rng.choice(topic["made_up"]).format(other=other_name)


def build_preferences(n: int = 600, seed: int = 0, split: str = "train") -> list[dict]:
    """`n` rows {"prompt", "chosen", "rejected"} about tiny stories; see the data card above.

    split: "train" or "test" (different stories and different phrasings of every question).
    """
    check_args(n, seed, split)
    weights = [WEIGHTS[k] for k in STORY_KINDS]
    rng = random.Random(seed)
    hows = [REJECTIONS[i % len(REJECTIONS)] for i in range(n)]
    rng.shuffle(hows)
    rows, yes_no = [], 0
    for (story_rng, facts, story), how in zip(stories(n, seed, split, stream=1), hows):
        truth = yes_no % 2 == 0
        kind, question, chosen = ask(story_rng, story_rng.choices(STORY_KINDS, weights)[0], facts, split, truth)
        yes_no += kind in YES_FIELDS
        if how == "unanswerable":
            (question, rejected), chosen = unanswerable(story_rng, facts, split), NOT_SAID
        else:
            rejected = reject(story_rng, how, kind, facts, question, chosen, truth)
        rows.append({"prompt": f"{story}\n\n{question}", "chosen": chosen, "rejected": rejected})
    return rows


TRAIN_SIZE, TEST_SIZE = 600, 150


def bundled_splits():
    """(train, test) DataFrames exactly as shipped in llmnb/datasets/data/preferences_*.csv."""
    import pandas as pd

    return (pd.DataFrame(build_preferences(TRAIN_SIZE, 0, "train")),
            pd.DataFrame(build_preferences(TEST_SIZE, 0, "test")))


def write_bundled(folder=None) -> list[Path]:
    """Write preferences_train.csv and preferences_test.csv (the bundled files) into `folder`."""
    folder = Path(folder) if folder else Path(__file__).parent / "data"
    paths = [folder / "preferences_train.csv", folder / "preferences_test.csv"]
    for frame, path in zip(bundled_splits(), paths):
        frame.to_csv(path, index=False)
    return paths
