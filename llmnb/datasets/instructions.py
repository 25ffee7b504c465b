"""Instruction data (Alpaca form) about tiny stories, for supervised fine-tuning of the story GPT.

    from llmnb.datasets.instructions import build_instructions
    rows = build_instructions(1200, seed=0)         # dicts with keys instruction, input, output
    llmnb.datasets.load("instructions")             # the bundled train split (made by build_instructions)
    llmnb.datasets.load("instructions", "test")     # the bundled test split

Data card
---------
* **What it is.** Rows of `instruction` (a question or command), `input` (a story of 2 or 3
  sentences, or "" for the few instructions that need none) and `output` (a short reference
  answer), e.g. input "Mia had a red ball. She played with it in the park. Her dog ran after
  it.", instruction "What colour was the ball?", output "Red.". The stories live in the world of
  `llmnb.datasets.stories` (same names, animals, objects, places, colours, same simple
  sentences), so a GPT pretrained on that corpus already knows every word. Kinds, mixed:
  who had the object (or who came to play), its colour, where the child played, which animal
  was there, yes/no questions about one fact (yes and no alternate, so exactly half are true),
  a title ("Mia and the Red Ball."), a retelling in one sentence, and without a story: a title
  for a described story, or what an animal likes to do.
* **Answers.** Concise and fixed by the facts (one name, colour or place; "Yes."/"No."; one
  templated title or sentence), so exact match is a meaningful score. Every name, colour and
  place in an answer to a story question appears in its story.
* **How it is made.** By the seeded generator in this module, from hand-written templates and
  the word lists of the stories corpus. Nothing was copied from a data set or web page and no
  model wrote any of it. The same `n`, `seed` and `split` give the same rows on every machine
  (only `random.Random` with an integer seed is used). Stories are unique within a call.
* **Held out twice.** A story's split is fixed by a hash (CRC-32) of its facts (child, object,
  colour, place, animal), so no test story, and no test combination of facts, is in train. And
  every kind of question has its own phrasings for each split (3 to 7 in train: "Who had the
  ball?", "Whose ball was it?"...; 1 or 2 in test: "Which child had the ball?"); they share key
  words, and several train wordings per kind are what lets a small model generalise to new ones.
* **Bundled splits.** `instructions_train.csv` (1,200 rows) and `instructions_test.csv` (200
  rows) in `llmnb/datasets/data/`, written by `write_bundled()`. A whole example (story,
  question, answer) has at most about 55 words: under 90 tokens of a 1,000-token BPE trained on
  the stories corpus, with room for a prompt template.
* **Limits.** Templated English with a tiny vocabulary; every answer is stated in the story (no
  reasoning beyond lookup, except the title and the retelling, which recombine facts). It
  teaches and tests instruction tuning; it says nothing about how a real assistant behaves.
* **Licence.** Same as llmnb (the generator and its output).
* **Intended use.** Teaching SFT (and, with `llmnb.datasets.preferences`, DPO) of the small GPT
  pretrained on `llmnb.datasets.stories`; exact match or a per-kind accuracy on the test split.
"""
from __future__ import annotations

import random
import zlib
from pathlib import Path

from llmnb.datasets.stories import (
    ANIMALS,
    BOYS,
    COLORS,
    GIRLS,
    OBJECTS,
    PLACES,
    SIZES,
    WEATHER,
)
from llmnb.errors import ConfigError, DataError

SPLITS = ("train", "test")
STORY_COLORS = [c for c in COLORS if c != "shiny"]  # "What colour was it?" "Shiny." is not an answer
LIKES = {animal: likes for animal, _, likes in ANIMALS}

# Kind -> split -> phrasings. {name}, {obj}, {friend}, {value}, {a_value} are filled from the story.
QUESTIONS = {
    "who": {"train": ["Who had the {obj}?", "Who owned the {obj}?", "Whose {obj} was it?", "Who played with the {obj}?",
                      "Which child owned the {obj}?", "Tell me who had the {obj}."],
            "test": ["Which child had the {obj}?"]},
    "friend": {"train": ["Who came to play with {name}?", "Who played with {name}?", "Which friend came to play?",
                         "Tell me who came to play with {name}.", "Who was {name}'s friend in the story?"],
               "test": ["Which friend played with {name}?"]},
    "colour": {"train": ["What colour was the {obj}?", "What colour was {name}'s {obj}?", "What was the colour of the {obj}?",
                         "Which colour did the {obj} have?", "Say the colour of the {obj}.", "The {obj} was which colour?"],
               "test": ["Which colour was the {obj}?", "Tell me the colour of the {obj}."]},
    "where": {"train": ["Where did {name} play?", "Where did {name} play with the {obj}?", "Where was the {obj}?",
                        "In what place did {name} play?", "Tell me where {name} played.", "Where did the story happen?",
                        "Which place did {name} go to?"],
              "test": ["In which place did {name} play?", "Where was {name} with the {obj}?"]},
    "animal": {"train": ["Which animal was in the story?", "What animal was in the story?", "Which animal came along?",
                         "What animal did the story have?", "Tell me the animal in the story.", "Say which animal was there."],
               "test": ["What kind of animal was in the story?", "Name the animal in the story."]},
    "yes_colour": {"train": ["Was the {obj} {value}?", "Was {name}'s {obj} {value}?", "Is it true that the {obj} was {value}?"],
                   "test": ["Was the colour of the {obj} {value}?"]},
    "yes_place": {"train": ["Did {name} play {value}?", "Was the story set {value}?", "Did {name} play with the {obj} {value}?"],
                  "test": ["Was {name} {value}?"]},
    "yes_animal": {"train": ["Was there {a_value} in the story?", "Did {a_value} come along?", "Is there {a_value} in the story?"],
                   "test": ["Did the story have {a_value} in it?"]},
    "yes_who": {"train": ["Did {value} have the {obj}?", "Was the {obj} {value}'s?", "Did {value} own the {obj}?"],
                "test": ["Was it {value} who had the {obj}?"]},
    "title": {"train": ["Give the story a title.", "Write a title for the story.", "Title this story.",
                        "What would you call this story?", "Make up a title for the story.", "Give this story a name."],
              "test": ["What is a good title for the story?", "Suggest a title for this story."]},
    "retell": {"train": ["Retell the story in one sentence.", "Sum up the story in one sentence.", "Tell the story in one sentence.",
                         "What happened in the story? Use one sentence.", "Say the story again, short.",
                         "Write the story as one sentence."],
               "test": ["Tell the story again in one sentence.", "Say what happened in one sentence."]},
    # No story needed ("input" is ""):
    "topic_title": {"train": ["Write a title for a story about {name} and {a_value}.", "Name a story about {name} and {a_value}."],
                    "test": ["Give a title to a story about {name} and {a_value}."]},
    "likes": {"train": ["What does {a_value} like to do?", "What do you think {a_value} likes to do?"],
              "test": ["Tell me what {a_value} likes to do."]},
}
# How often each kind of row is asked for ("friend" falls back to "who" in stories with no friend;
# the yes/no kinds together are one kind, "yes_no").
WEIGHTS = {"who": 14, "friend": 4, "colour": 16, "where": 16, "animal": 12, "yes_no": 20, "title": 7, "retell": 7,
           "topic_title": 2, "likes": 2}
STORY_KINDS = [k for k in WEIGHTS if k not in ("topic_title", "likes")]

# Story sentences. {Name} and friends capitalised; {a_color} is "a red" / "an orange".
OBJECT_LINES = ["{name} had {a_color} {obj}.", "{name} got {a_color} {obj} from {pos} mom.",
                "One day, {name} found {a_color} {obj}.", "{name} loved {pos} {color} {obj} very much."]
PLACE_LINES = ["{Sub} played with it {prep} the {place}.", "{Sub} took it to the {place} to play.",
               "{Sub} liked to {verb} it {prep} the {place}."]
BOTH_LINES = ["{name} played with {pos} {color} {obj} {prep} the {place}.",
              "One {weather} day, {name} took {pos} {color} {obj} to the {place} to play."]
ANIMAL_LINES = ["{Pos} {animal} ran after it.", "{A_size} {animal} came to look at it.",
                "{A_animal} {sound} at {obj_p}, and {name} laughed."]
FRIEND_LINES = ["{friend} came too, with {fpos} {animal}.", "Then {friend} and {a_animal} came to play."]


def article(word: str) -> str:
    """'a' or 'an' for a word of this corpus."""
    return "an" if word[0] in "aeiou" else "a"


def _person(rng):
    return (rng.choice(GIRLS), "she", "her", "her") if rng.random() < 0.5 else (rng.choice(BOYS), "he", "him", "his")


def make_facts(rng: random.Random) -> dict:
    """The facts of one story: the child, the object and its colour, the place, the animal, maybe a friend."""
    name, sub, obj_p, pos = _person(rng)
    friend, _, _, fpos = _person(rng)
    while friend == name:
        friend, _, _, fpos = _person(rng)
    animal, sound, _ = rng.choice(ANIMALS)
    place, prep, _ = rng.choice(PLACES)
    obj, verb = rng.choice(OBJECTS)
    return {"name": name, "sub": sub, "obj_p": obj_p, "pos": pos, "friend": friend, "fpos": fpos, "animal": animal,
            "sound": sound, "place": place, "prep": prep, "obj": obj, "verb": verb, "color": rng.choice(STORY_COLORS),
            "size": rng.choice(SIZES), "weather": rng.choice(WEATHER), "has_friend": rng.random() < 0.3}


def split_of(facts: dict) -> str:
    """'test' for about one story in five, fixed by its facts (not by a seed), else 'train'."""
    key = "|".join(facts[k] for k in ("name", "obj", "color", "place", "animal"))
    return "test" if zlib.crc32(key.encode()) % 5 == 0 else "train"


def _fill(template: str, f: dict, **extra) -> str:
    values = dict(f, Sub=f["sub"].capitalize(), Pos=f["pos"].capitalize(), a_color=f"{article(f['color'])} {f['color']}",
                  a_animal=f"{article(f['animal'])} {f['animal']}", A_animal=f"{article(f['animal']).capitalize()} {f['animal']}",
                  A_size=f"{article(f['size']).capitalize()} {f['size']}", **extra)
    return template.format(**values)


def make_story(rng: random.Random, facts: dict) -> str:
    """A story of 2 or 3 short sentences that states the facts."""
    lines = [rng.choice(BOTH_LINES)] if rng.random() < 0.3 else [rng.choice(OBJECT_LINES), rng.choice(PLACE_LINES)]
    lines.append(rng.choice(FRIEND_LINES if facts["has_friend"] else ANIMAL_LINES))
    return " ".join(_fill(line, facts) for line in lines)


def where(f: dict) -> str:
    return f"{f['prep']} the {f['place']}"


def title(f: dict) -> str:
    return f"{f['name']} and the {f['color'].capitalize()} {f['obj'].capitalize()}."


def retell(f: dict) -> str:
    who = f"{f['name']} and {f['friend']}" if f["has_friend"] else f["name"]
    thing, animal = f"{article(f['color'])} {f['color']} {f['obj']}", f"{article(f['animal'])} {f['animal']}"
    return f"{who} played with {thing} {where(f)} with {animal}."


def answer(kind: str, f: dict, truth: bool = True) -> str:
    """The reference answer to a question of this kind about facts `f` (`truth`: for yes/no)."""
    if kind.startswith("yes_"):
        return "Yes." if truth else "No."
    if kind == "who":
        return f"{f['name']}."
    if kind == "friend":
        return f"{f['friend']}."
    if kind == "colour":
        return f"{f['color'].capitalize()}."
    if kind == "where":
        return f"{where(f).capitalize()}."
    if kind == "animal":
        return f"{article(f['animal']).capitalize()} {f['animal']}."
    if kind in ("title", "topic_title"):
        return title(f)
    if kind == "retell":
        return retell(f)
    if kind == "likes":
        return f"{article(f['animal']).capitalize()} {f['animal']} likes to {LIKES[f['animal']]}."
    raise DataError(f"kind={kind!r} is not a question kind; choose one of: {', '.join(QUESTIONS)}.")


def other(rng: random.Random, f: dict, field: str) -> dict:
    """A copy of facts `f` with `field` ('name', 'friend', 'color', 'place', 'animal') changed to another value."""
    g = dict(f)
    if field in ("name", "friend"):
        g[field] = rng.choice([n for n in GIRLS + BOYS if n not in (f["name"], f["friend"])])
    elif field == "color":
        g["color"] = rng.choice([c for c in STORY_COLORS if c != f["color"]])
    elif field == "place":
        g["place"], g["prep"], _ = rng.choice([p for p in PLACES if p[0] != f["place"]])
    else:
        g["animal"] = rng.choice([a for a, _, _ in ANIMALS if a != f["animal"]])
    return g


YES_FIELDS = {"yes_colour": "color", "yes_place": "place", "yes_animal": "animal", "yes_who": "name"}


def ask(rng: random.Random, kind: str, f: dict, split: str, truth: bool = True) -> tuple[str, str, str]:
    """(kind, question, answer) for facts `f`, phrased for `split`; yes/no questions are true iff `truth`."""
    if kind == "friend" and not f["has_friend"]:
        kind = "who"
    if kind == "yes_no":
        kind = rng.choice(list(YES_FIELDS))
    extra = {}
    if kind in YES_FIELDS:
        g = f if truth else other(rng, f, YES_FIELDS[kind])
        value = {"yes_colour": g["color"], "yes_place": where(g), "yes_animal": g["animal"], "yes_who": g["name"]}[kind]
        extra = {"value": value, "a_value": f"{article(value)} {value}"}
    elif kind == "topic_title":
        extra = {"a_value": f"{article(f['color'])} {f['color']} {f['obj']}"}
    elif kind == "likes":
        extra = {"a_value": f"{article(f['animal'])} {f['animal']}"}
    question = _fill(rng.choice(QUESTIONS[kind][split]), f, **extra)
    return kind, question, answer(kind, f, truth)


def check_args(n, seed, split) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n={n!r} must be a whole number >= 1.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} must be a whole number.")
    if split not in SPLITS:
        raise DataError(f"split={split!r} is not known; choose 'train' or 'test'.")


def stories(n: int, seed: int, split: str, stream: int):
    """`n` (facts, story) pairs of this split, distinct stories; `stream` keeps data sets apart."""
    rng = random.Random(4 * seed + 2 * stream + SPLITS.index(split))
    seen, tries = set(), 0
    while len(seen) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise DataError(f"Could not make {n} distinct stories for split '{split}'.")
        facts = make_facts(rng)
        if split_of(facts) != split:
            continue
        story = make_story(rng, facts)
        if story not in seen:
            seen.add(story)
            yield rng, facts, story


def build_instructions(n: int = 1200, seed: int = 0, split: str = "train") -> list[dict]:
    """`n` rows {"instruction", "input", "output"} (Alpaca form) about tiny stories; see the data card above.

    split: "train" or "test" (different stories and different phrasings of every question).
    """
    check_args(n, seed, split)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    rows, asked, yes_no = [], set(), 0
    for rng, facts, story in stories(n, seed, split, stream=0):
        kind = rng.choices(kinds, weights)[0]
        if kind in ("topic_title", "likes"):
            kind, question, output = ask(rng, kind, facts, split)
            if question not in asked:  # no story: keep each question once
                asked.add(question)
                rows.append({"instruction": question, "input": "", "output": output})
                continue
            kind = "title"
        truth = yes_no % 2 == 0
        kind, question, output = ask(rng, kind, facts, split, truth)
        yes_no += kind in YES_FIELDS
        rows.append({"instruction": question, "input": story, "output": output})
    return rows


TRAIN_SIZE, TEST_SIZE = 1200, 200


def bundled_splits():
    """(train, test) DataFrames exactly as shipped in llmnb/datasets/data/instructions_*.csv."""
    import pandas as pd

    return (pd.DataFrame(build_instructions(TRAIN_SIZE, 0, "train")),
            pd.DataFrame(build_instructions(TEST_SIZE, 0, "test")))


def write_bundled(folder=None) -> list[Path]:
    """Write instructions_train.csv and instructions_test.csv (the bundled files) into `folder`."""
    folder = Path(folder) if folder else Path(__file__).parent / "data"
    paths = [folder / "instructions_train.csv", folder / "instructions_test.csv"]
    for frame, path in zip(bundled_splits(), paths):
        frame.to_csv(path, index=False)
    return paths
