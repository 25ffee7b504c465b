"""Questions about short paragraphs whose answers are spans of the paragraph (SQuAD form), for extractive QA.

    from llmnb.datasets.reading import build_questions
    rows = build_questions(100, seed=0)       # dicts {"id", "kind", "question", "context", "answers"}
    llmnb.datasets.load("reading")            # the bundled train split (1,500 questions)
    llmnb.datasets.load("reading", "test")    # the bundled test split (400): new names, places, objects, wordings

Data card (the full card is in data/DATA_CARD.md)
---------
* **What it is.** A `context` of 2 to 5 sentences about a journey (who went where, when, how, with
  whom, carrying what, how many of something, why; often a second person who stayed somewhere
  else), a `question` about it and `answers` = {"text": [...], "answer_start": [...]}: spans of the
  context, by character offset (context[start:start + len(text)] == text). A person named in full
  has two answers ("Mia Kovac" and "Mia"). About one context in thirteen is a diary of several
  journeys, over 200 words, longer than a 128- or 256-token window. A context has 1 to 3 questions.
* **Kinds** (`kind`): who, where, when, what, how_many, why, how.
* **Held out.** Test contexts use first names, towns, carried objects, counted things, reasons and
  means of travel that occur nowhere in train, and half of the test questions use wordings that
  train never uses ("What was Mia's destination?", "By what means did Mia reach Carrow?").
* **How it is made.** By the seeded generator in this module, from hand-written templates and word
  lists (the surnames and towns of `llmnb.datasets.entities`); nothing was copied from a data set
  and no model wrote any of it. `write_bundled()` rewrites both files byte for byte.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

from llmnb.datasets.entities import DAYS, LAST, MONTHS, TOWNS
from llmnb.datasets.instructions import SPLITS, check_args
from llmnb.errors import DataError

GIRLS = {"train": ["Anna", "Bea", "Carla", "Dora", "Eva", "Fiona", "Gemma", "Hedda", "Isla", "Julia", "Kaya", "Lotte",
                   "Mina", "Nell", "Opal", "Pia", "Rhea", "Sara"],
         "test": ["Tova", "Una", "Vesna", "Willa", "Xenia", "Zora", "Agnes", "Brita", "Cosima", "Dagny",
                  "Elvira", "Frida", "Greer", "Hilde"]}
BOYS = {"train": ["Aldo", "Bram", "Cyril", "Dev", "Emil", "Fritz", "Gus", "Henrik", "Ivan", "Joel", "Karl", "Lars",
                  "Milo", "Nils", "Otis", "Paolo", "Rune", "Stig"],
        "test": ["Tobin", "Ulf", "Viggo", "Wendel", "Yusuf", "Zane", "Anders", "Benno", "Casper", "Dorian",
                 "Edvin", "Folke", "Gideon", "Halvard"]}
OBJECTS = {"train": ["blue suitcase", "box of apples", "old violin", "basket of pears", "red umbrella", "wooden chair",
                     "bag of flour", "small telescope", "jar of honey", "green kite", "sack of potatoes", "brass lamp",
                     "bundle of letters", "leather saddle"],
           "test": ["silver kettle", "crate of lemons", "folding table", "pair of skates", "tin of paint", "chess set"]}
UNITS = {"train": ["bags", "books", "postcards", "jars of jam", "loaves of bread", "blankets"],
         "test": ["parcels", "bottles of juice", "candles"]}
REASONS = {"train": ["to visit {pos} grandmother", "to sell apples at the market", "to see the new bridge",
                     "to start a new job", "to watch a football match", "to buy a boat", "to learn to sail",
                     "to find an old friend", "to help at a wedding", "to play in a concert"],
           "test": ["to repair a church roof", "to sing in a choir", "to meet a lawyer", "to collect a prize"]}
VEHICLES = {"train": ["train", "bus", "ferry", "plane", "bicycle"], "test": ["tram", "taxi", "canoe"]}
NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "ten", "twelve", "15", "20"]
RELATIONS = {"she": ["sister", "aunt", "cousin", "friend", "neighbour"], "he": ["brother", "uncle", "cousin", "friend", "neighbour"]}

# The first sentence of a journey; it always names the traveller (TF), the destination (D) and the time (W).
TRIPS = ["{TF} left {O} for {D} {W}.", "{W}, {TF} travelled from {O} to {D} by {V}.", "{TF} went to {D} by {V} {W}.",
         "{W}, {TF} set off for {D}.", "{TF} took the {V} from {O} to {D} {W}."]
# Fact -> sentences that state it (only the traveller's first name or a pronoun refers back to them).
SENTENCES = {
    "companion": ["{Pro} went with {pos} {rel} {C}.", "{C}, {pos} {rel}, came along.", "{Pos} {rel} {C} went too."],
    "object": ["{Pro} took {a_X} with {obj}.", "In {pos} bag, {pro} carried {a_X}.", "{T} packed {a_X}."],
    "count": ["{Pro} brought {N} {U} for the journey.", "{T} had {N} {U} with {obj}."],
    "reason": ["{Pro} went there {R}.", "{T} made the trip {R}.", "The plan was {R}."],
    "host": ["In {D}, {pro} met {H}.", "{H} met {obj} at the station.", "At the station, {H} was waiting for {obj}."],
    "vehicle": ["{Pro} took the {V}.", "{Pro} went by {V}.", "The whole way, {pro} travelled by {V}."],
    "other": ["{P}, {pos} {rel2}, stayed in {Q}.", "{P} stayed behind in {Q}.", "Meanwhile, {P} was in {Q}."],
}
FILLERS = ["It rained all morning.", "The station was busy.", "The journey took most of the day.", "Nobody was late.",
           "The roads were quiet.", "Everyone was tired by the evening.", "The weather was mild for the season."]
# (kind, fact) -> phrasings per split; the fact's slot is the answer.
ANSWER_SLOT = {"traveller": "TF", "companion": "C", "host": "H", "dest": "D", "origin": "O", "other": "Q", "when": "W",
               "object": "a_X", "count": "N", "reason": "R", "vehicle": "V"}
QUESTIONS = {
    ("who", "traveller"): {"train": ["Who travelled to {D}?", "Who went to {D}?", "Who made the trip to {D}?"],
                           "test": ["Which person journeyed to {D}?"]},
    ("who", "companion"): {"train": ["Who went with {T}?", "Who travelled with {T} to {D}?", "Who came along with {T}?"],
                           "test": ["Who kept {T} company on the journey?"]},
    ("who", "host"): {"train": ["Who met {T} in {D}?", "Whom did {T} meet in {D}?"],
                      "test": ["By whom was {T} greeted in {D}?"]},
    ("where", "dest"): {"train": ["Where did {T} go?", "Where did {T} travel to?", "To which town did {T} go?"],
                        "test": ["What was {T}'s destination?"]},
    ("where", "origin"): {"train": ["Where did {T} leave from?", "Where did {T}'s journey start?"],
                          "test": ["From which town did {T} set out?"]},
    ("where", "other"): {"train": ["Where did {P} stay?", "Where was {P} during the trip?"],
                         "test": ["In which town did {P} remain?"]},
    ("when", "when"): {"train": ["When did {T} leave?", "When did {T} travel to {D}?", "When did {T} set off?"],
                       "test": ["When was {T}'s journey to {D}?"]},
    ("what", "object"): {"train": ["What did {T} carry?", "What did {T} take to {D}?", "What did {T} pack?"],
                         "test": ["Which item did {T} bring along?"]},
    ("how_many", "count"): {"train": ["How many {U} did {T} bring?", "How many {U} did {T} have?"],
                            "test": ["What number of {U} did {T} take?"]},
    ("why", "reason"): {"train": ["Why did {T} go to {D}?", "Why did {T} travel?", "For what reason did {T} go?"],
                        "test": ["What was the purpose of {T}'s trip?"]},
    ("how", "vehicle"): {"train": ["How did {T} travel?", "How did {T} get to {D}?"],
                         "test": ["By what means did {T} reach {D}?"]},
}
KINDS = ("who", "where", "when", "what", "how_many", "why", "how")
SLOT = re.compile(r"\{(\w+)\}")
LONG_SHARE, LONG_WORDS = 1 / 12, 200  # contexts that are a diary of several journeys, longer than LONG_WORDS words
NEW_WORDING_SHARE = 0.5  # of the test questions, asked in a wording that train never uses


def article(phrase: str) -> str:
    return "an" if phrase[0] in "aeiou" else "a"


def fill(template: str, values: dict) -> tuple[str, dict]:
    """(sentence, spans): the template filled in; spans[slot] = (offset, answer text) of each slot's first use.

    A value may be (prefix, answer): "on " + "Monday", "a " + "blue suitcase"; only the answer is the span.
    """
    text, spans, last = "", {}, 0
    for match in SLOT.finditer(template):
        text += template[last:match.start()]
        value = values[match.group(1)]
        prefix, core = value if isinstance(value, tuple) else ("", value)
        spans.setdefault(match.group(1), (len(text) + len(prefix), core))
        text += prefix + core
        last = match.end()
    text += template[last:]
    return text[0].upper() + text[1:], spans


def _person(rng: random.Random, split: str, taken: set) -> tuple[str, str]:
    """(first name, pronoun) not yet `taken` in this context."""
    if len(taken) >= len(GIRLS[split]) + len(BOYS[split]):
        raise DataError(f"Too few names in split '{split}' for the people of one context.")
    while True:
        pronoun = rng.choice(["she", "he"])
        name = rng.choice((GIRLS if pronoun == "she" else BOYS)[split])
        if name not in taken:
            taken.add(name)
            return name, pronoun


def make_facts(rng: random.Random, split: str, taken: set, destinations: set) -> dict:
    """The values of one journey's slots: its four people are not `taken` in the context, nor its destination."""
    destination = rng.choice([t for t in TOWNS[split] if t not in destinations])
    destinations.add(destination)
    origin, elsewhere = rng.sample([t for t in TOWNS[split] if t != destination], 2)
    name, pro = _person(rng, split, taken)
    full = f"{name} {rng.choice(LAST[split])}" if rng.random() < 0.5 else name
    companion, c_pro = _person(rng, split, taken)
    other, o_pro = _person(rng, split, taken)
    pos = "her" if pro == "she" else "his"
    day, month = rng.choice(DAYS), rng.choice(MONTHS)
    when = rng.choice([("on ", day), ("in ", month), ("on ", f"{rng.randint(1, 28)} {month}")])
    thing = rng.choice(OBJECTS[split])
    return {"T": name, "TF": full, "Pro": pro.capitalize(), "pro": pro, "pos": pos, "Pos": pos.capitalize(),
            "obj": "her" if pro == "she" else "him", "O": origin, "D": destination,
            "W": when, "V": rng.choice(VEHICLES[split]), "C": companion, "rel": rng.choice(RELATIONS[c_pro]),
            "H": _person(rng, split, taken)[0], "a_X": (f"{article(thing)} ", thing), "N": rng.choice(NUMBERS),
            "U": rng.choice(UNITS[split]), "R": rng.choice(REASONS[split]).format(pos=pos), "P": other,
            "rel2": rng.choice(RELATIONS[o_pro]), "Q": elsewhere}


def make_journey(rng: random.Random, facts: dict, n_more: int) -> tuple[list[str], dict]:
    """(sentences, spans): a trip sentence and `n_more` others; spans[fact] = (sentence index, offset, text)."""
    trip = rng.choice(TRIPS)
    stated = {"traveller", "dest", "when"} | ({"origin"} if "{O}" in trip else set())
    choices = [f for f in SENTENCES if not (f == "vehicle" and "{V}" in trip)] + ["filler"]
    facts_told = rng.sample(choices, min(n_more, len(choices)))
    sentences, spans = [], {}
    for i, fact in enumerate(["trip"] + facts_told):
        if fact == "filler":
            sentences.append(rng.choice(FILLERS))
            continue
        text, slots = fill(trip if fact == "trip" else rng.choice(SENTENCES[fact]), facts)
        sentences.append(text)
        if fact == "trip":
            told = stated | ({"vehicle"} if "V" in slots else set())
        else:
            told = {fact}
        for name in told:
            offset, answer = slots[ANSWER_SLOT[name]]
            spans[name] = (i, offset, answer)
    return sentences, spans


def ask(rng: random.Random, facts: dict, spans: dict, split: str, asked: set) -> dict | None:
    """One question about a journey, spans[fact] = (offset in the context, text); None: nothing new to ask."""
    options = [(k, f) for (k, f) in QUESTIONS if f in spans and (k, f, facts["T"]) not in asked]
    if not options:
        return None
    kind = rng.choice([k for k in KINDS if any(k == o[0] for o in options)])  # kinds about equally often
    fact = rng.choice([f for k, f in options if k == kind])
    asked.add((kind, fact, facts["T"]))
    wording = "test" if split == "test" and rng.random() < NEW_WORDING_SHARE else "train"
    question = rng.choice(QUESTIONS[(kind, fact)][wording]).format(**facts)
    offset, answer = spans[fact]
    texts, starts = [answer], [offset]
    if fact == "traveller" and answer != facts["T"]:  # "Mia Kovac" or just "Mia"
        texts, starts = texts + [facts["T"]], starts + [offset]
    return {"kind": kind, "question": question, "answers": {"text": texts, "answer_start": starts}}


def make_context(rng: random.Random, split: str) -> tuple[str, list[dict]]:
    """(context, questions): one journey of 2-5 sentences, or a diary of several longer ones; 1 to 3 questions."""
    long = rng.random() < LONG_SHARE
    names, places, parts, journeys = set(), set(), [], []
    while not journeys or (long and len(" ".join(parts).split()) <= LONG_WORDS):
        facts = make_facts(rng, split, names, places)
        sentences, spans = make_journey(rng, facts, rng.randint(6, 8) if long else rng.randint(1, 4))
        offset = len(" ".join(parts)) + 1 if parts else 0
        starts = [offset + sum(len(s) + 1 for s in sentences[:i]) for i in range(len(sentences))]
        journeys.append((facts, {f: (starts[i] + off, text) for f, (i, off, text) in spans.items()}))
        parts.extend(sentences)
    asked, rows = set(), []
    for _ in range(3 if long else rng.randint(1, 3)):
        row = ask(rng, *rng.choice(journeys), split, asked)
        if row:
            rows.append(row)
    return " ".join(parts), rows


def build_questions(n: int = 1500, seed: int = 0, split: str = "train") -> list[dict]:
    """`n` questions {"id", "kind", "question", "context", "answers"} about distinct contexts of this split.

    split: "train" or "test" (other names, towns, objects, reasons and means of travel; half in new wordings).
    """
    check_args(n, seed, split)
    rng = random.Random(2 * seed + SPLITS.index(split) + 100)
    rows, seen, tries = [], set(), 0
    while len(rows) < n:
        tries += 1
        if tries > 20 * n + 1000:
            raise DataError(f"Could not make {n} questions for split '{split}'.")
        context, questions = make_context(rng, split)
        if context in seen:
            continue
        seen.add(context)
        for q in questions[: n - len(rows)]:
            rows.append({"id": f"{split}-{len(rows):04d}", "kind": q["kind"], "question": q["question"],
                         "context": context, "answers": q["answers"]})
    return rows


# ---------------------------------------------------------------------- a baseline for the chapter
def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text)


def overlap_baseline(questions: list[str], contexts: list[str]) -> list[str]:
    """In the sentence sharing most words with the question, the first capitalised word not in it: tutorials/06_applications.ipynb."""
    out = []
    for question, context in zip(questions, contexts):
        asked = {w.lower() for w in words(question)}
        sentences = re.split(r"(?<=[.!?])\s+", context)
        best = max(sentences, key=lambda s: len(asked & {w.lower() for w in words(s)}))  # the first of equals
        out.append(next((w for w in words(best) if w[0].isupper() and w.lower() not in asked), ""))
    return out


# ---------------------------------------------------------------------- the bundled files
TRAIN_SIZE, TEST_SIZE = 1500, 400


def bundled_splits() -> tuple[list[dict], list[dict]]:
    """(train, test) rows exactly as shipped in llmnb/datasets/data/reading_*.jsonl."""
    return build_questions(TRAIN_SIZE, 0, "train"), build_questions(TEST_SIZE, 0, "test")


def write_bundled(folder=None) -> list[Path]:
    """Write reading_train.jsonl and reading_test.jsonl (the bundled files) into `folder`."""
    folder = Path(folder) if folder else Path(__file__).parent / "data"
    paths = [folder / "reading_train.jsonl", folder / "reading_test.jsonl"]
    for rows, path in zip(bundled_splits(), paths):
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return paths
