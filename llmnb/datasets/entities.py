"""Sentences with named entities tagged word by word (BIO tags for PER, LOC, ORG), for token classification.

    from llmnb.datasets.entities import build_sentences, label_names
    rows = build_sentences(200, seed=0)        # dicts {"tokens": [...], "tags": [...]}
    llmnb.datasets.load("entities")            # the bundled train split (1,500 sentences)
    llmnb.datasets.load("entities", "test")    # the bundled test split (400): held-out names, places, organisations

Data card (the full card is in data/DATA_CARD.md)
---------
* **What it is.** Short English sentences split into words (punctuation and 's are words of their
  own), each word tagged "O" or B-/I- with one of three types: PER (a person: "Mia", "Mia Kovac",
  "Luca van Dijk"; titles such as "Dr" are not part of it), LOC (a town, country or place: "Carrow",
  "Port Ellis", "Estavia") and ORG (a company, club, bank, newspaper, university: "Kovac Foods",
  "Carrow Rovers", "University of Halden"). A sentence has 0 to 3 entities of 1 to 3 words.
* **Not every capital is an entity.** Sentence-initial words, "I", weekdays, months, languages and
  titles are capitalised and tagged O; "of", "van", "de" inside a name are tagged I-; the same
  town is a LOC alone and part of an ORG in "Carrow Rovers"; surnames such as Baker or Cook are
  also jobs ("the cook"), and "the bank", "the lake", "the port" are not entities.
* **Held out.** Each word list is split in two: test sentences use first names, surnames, towns,
  countries and company names that occur nowhere in the train split (only the generic words of
  names, such as "Port", "Bank", "University", "of", are shared). A third of the test sentences
  also come from sentence shapes that train never uses. Memorising the names therefore fails;
  a model has to learn from the context.
* **How it is made.** By the seeded generator in this module, from hand-written templates and
  word lists (all names are invented or common first names; nothing was copied from a data set
  and no model wrote any of it). `write_bundled()` rewrites both files byte for byte.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from llmnb.datasets.instructions import SPLITS, check_args  # the same splits and argument checks
from llmnb.errors import DataError

TYPES = ("PER", "LOC", "ORG")

# Word lists, one per split: no word of a test list occurs in train.
FIRST = {
    "train": ["Mia", "Tomas", "Anika", "Leon", "Sofia", "Arjun", "Elif", "Marek", "Nadia", "Oskar", "Priya", "Rafael",
              "Selma", "Tariq", "Ines", "Jonas", "Keiko", "Luca", "Amara", "Bruno", "Chiara", "Dmitri", "Esme", "Farid",
              "Greta", "Hugo", "Ilse", "Jamal", "Kira", "Lorenzo", "Maren", "Nikos", "Olga", "Pavel", "Quinn", "Sanjay"],
    "test": ["Thea", "Umar", "Wanda", "Xavier", "Yara", "Zeno", "Alma", "Boris", "Celia", "Dario", "Goran", "Hana"],
}
LAST = {
    "train": ["Kovac", "Lindqvist", "Okafor", "Brandt", "Moreau", "Haddad", "Petrov", "Castillo", "Novak", "Ferreira",
              "Tanaka", "Walsh", "Adeyemi", "Bergman", "Costa", "Dubois", "Eriksen", "Gallo", "Horvat", "Jansen",
              "Larsen", "Mensah", "Ortega", "Rossi", "Santos", "Vidal", "Weber", "Yilmaz", "Baker", "Cook", "Mason",
              "Fisher", "Carter", "Shepherd", "Dijk", "Souza"],
    "test": ["Zielinski", "Delgado", "Engel", "Falk", "Ibsen", "Jovic", "Keller", "Marsh", "Nagy", "Osei", "Thorne",
             "Varga"],
}
TOWNS = {
    "train": ["Carrow", "Dunmore", "Halden", "Ellis", "Fenwick", "Garrow", "Hollin", "Istra", "Jorvale", "Kestrel",
              "Lorne", "Marrick", "Nethan", "Orvik", "Pellam", "Rathby", "Selvig", "Torrin", "Ulsby", "Varden",
              "Wexmoor", "Zell", "Ambleford", "Brackley"],
    "test": ["Brennock", "Valmora", "Kirrin", "Lestov", "Ardane", "Cullow", "Drest", "Yelland"],
}
COUNTRIES = {
    "train": ["Estavia", "Norland", "Veloria", "Marovia", "Gallesia", "Ostrenia", "Belvania", "Sundria", "Tarquina"],
    "test": ["Arvenia", "Dalmira", "Quorvia"],
}
COMPANIES = {
    "train": ["Zentrix", "Novalink", "Brightwell", "Corvane", "Datrix", "Elmcrest", "Finlore", "Gravix", "Helmstone",
              "Irongate", "Jovano", "Lumora"],
    "test": ["Quillon", "Redmark", "Solvane", "Trivex"],
}
# Generic words inside names, shared by both splits (they say what kind of name it is, not which one).
PARTICLES = ["van", "de", "da"]
LOC_FORMS = ["Port {t}", "Lake {t}", "Mount {t}", "North {t}", "New {t}", "{t} Bay"]
ORG_FORMS = ["{t} Rovers", "{t} United", "{t} Times", "{t} Council", "Bank of {t}", "University of {t}",
             "{s} Foods", "{s} Motors", "{s} Brothers", "{c}", "{c}", "{c} Labs", "{c} Airlines", "{c} Group"]
# Capitalised words that are never entities here, and lower-case words that look like parts of names.
TITLES = ["Dr", "Mr", "Mrs", "Ms", "Professor", "Captain"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
LANGS = ["French", "English", "Spanish", "German", "Polish", "Greek", "Italian", "Dutch"]
JOBS = ["baker", "teacher", "nurse", "driver", "cook", "farmer", "pilot", "tailor", "fisher", "mason", "shepherd"]
THINGS = ["bicycle", "clock", "painting", "lamp", "violin", "boat", "map", "radio", "kettle", "camera"]
SPOTS = ["station", "market", "harbour", "library", "bank", "port", "lake", "museum"]
NUMS = ["two", "three", "five", "ten", "12", "20", "40"]

# Sentence shapes, words separated by spaces. {PER}, {LOC}, {ORG}: entities; {TITLE} {LAST}: a title
# (O) and a surname (B-PER); {DAY} {MONTH} {LANG} {JOB} {THING} {SPOT} {NUM}: words tagged O.
SHARED = [
    "{PER} lives in {LOC} .", "{PER} works for {ORG} in {LOC} .", "On {DAY} , {PER} flew from {LOC} to {LOC} .",
    "{ORG} opened a new office in {LOC} last {MONTH} .", "{TITLE} {LAST} joined {ORG} in {MONTH} .",
    "The {JOB} from {LOC} sold the shop to {ORG} .", "{PER} and {PER} met at the {SPOT} in {LOC} .",
    "According to {ORG} , prices in {LOC} rose by {NUM} per cent .",
    "{PER} said the {JOB} would stay in {LOC} until {DAY} .", "We drove to {LOC} on {DAY} and visited the old bank .",
    "The {JOB} closed the {SPOT} early on {DAY} .", "I spoke {LANG} with the {JOB} all through {MONTH} .",
    "{PER} , a {JOB} at {ORG} , was born in {LOC} .", "{ORG} signed {PER} from {ORG} on {DAY} .",
    "Last {MONTH} , {PER} wrote a letter to {TITLE} {LAST} .", "Fans of {ORG} travelled {NUM} miles to {LOC} .",
    "{PER} 's brother moved to {LOC} .", "After the storm , the river near {LOC} rose again .",
    "Nobody at the bank knew why the {JOB} left on {DAY} .", "{PER} teaches {LANG} at {ORG} .",
    "The mayor of {LOC} thanked {ORG} for the new bridge .", "Every {DAY} , {PER} takes the train to {LOC} .",
    "{PER} told {PER} that {ORG} was hiring .", "The {THING} that {PER} bought in {LOC} was broken .",
    "In {MONTH} the {JOB} and the {JOB} went fishing at the lake .", "Reporters from {ORG} asked {PER} about the port .",
    "{PER} left {ORG} after {NUM} years .", "She grew up between {LOC} and {LOC} .",
    "Yesterday {TITLE} {LAST} visited {LOC} with {PER} .", "On {DAY} I met {PER} at the {SPOT} .",
]
ONLY = {
    "train": [
        "{PER} was elected to the council of {LOC} .", "The museum in {LOC} borrowed a {THING} from {ORG} .",
        "{PER} , the new head of {ORG} , starts on {DAY} .", "Tickets for the {JOB} 's talk in {LOC} sold out in {MONTH} .",
        "{ORG} and {ORG} agreed to share the building .", "My aunt met {PER} on a boat to {LOC} .",
        "The {THING} was made by {ORG} in {LOC} .", "Ask {PER} , not the {JOB} .",
        "Most of the {JOB}s in {LOC} read {ORG} .", "The {JOB} lent {PER} a {THING} for the trip .",
    ],
    "test": [
        "It was {PER} who found the {THING} near {LOC} .", "Since {MONTH} , {ORG} has paid {PER} twice a week .",
        "Few people in {LOC} had heard of {ORG} before {DAY} .", "Why did {PER} never return to {LOC} ?",
        "{TITLE} {LAST} and her {JOB} drove to {LOC} , then on to {LOC} .",
        "The letter from {ORG} reached {PER} on a wet {DAY} .", "Without {PER} , the {JOB} could not have mended the {THING} .",
        "On {DAY} the {JOB} asked me for the {THING} .",
    ],
}
PLAIN = {"TITLE": TITLES, "DAY": DAYS, "MONTH": MONTHS, "LANG": LANGS, "JOB": JOBS, "THING": THINGS, "SPOT": SPOTS,
         "NUM": NUMS}
TEST_ONLY_SHARE = 1 / 3  # of the test sentences, drawn from the shapes train never sees


def label_names() -> list[str]:
    """Every tag, in the fixed order that tag ids follow: "O", then B- and I- of PER, LOC, ORG."""
    return ["O"] + [f"{bio}-{kind}" for kind in TYPES for bio in ("B", "I")]


def person(rng: random.Random, split: str) -> str:
    """A person's name: a first name, a full name, a bare surname, or one with "van"/"de" or a middle name."""
    first, last = rng.choice(FIRST[split]), rng.choice(LAST[split])
    form = rng.random()
    if form < 0.3:
        return first
    if form < 0.75:
        return f"{first} {last}"
    if form < 0.85:
        return last
    if form < 0.95:
        return f"{first} {rng.choice(PARTICLES)} {last}"
    return f"{first} {rng.choice([f for f in FIRST[split] if f != first])} {last}"


def place(rng: random.Random, split: str) -> str:
    """A town, a country or a town in a place form ("Port Carrow", "Lake Carrow")."""
    form = rng.random()
    if form < 0.5:
        return rng.choice(TOWNS[split])
    if form < 0.7:
        return rng.choice(COUNTRIES[split])
    return rng.choice(LOC_FORMS).format(t=rng.choice(TOWNS[split]))


def organisation(rng: random.Random, split: str) -> str:
    """A company, club, bank, council, newspaper or university, built from the split's word lists."""
    form = rng.choice(ORG_FORMS)
    return form.format(t=rng.choice(TOWNS[split]), s=rng.choice(LAST[split]), c=rng.choice(COMPANIES[split]))


MAKERS = {"PER": person, "LOC": place, "ORG": organisation}


def make_sentence(rng: random.Random, template: str, split: str) -> dict:
    """Fill one template: {"tokens": [...], "tags": [...]}, no entity twice in the sentence."""
    tokens, tags, used = [], [], set()
    for word in template.split():
        slot = word[1:-1] if word.startswith("{") and word.endswith("}") else None
        if slot in MAKERS:
            name = MAKERS[slot](rng, split)
            while name in used:
                name = MAKERS[slot](rng, split)
            used.add(name)
            parts = name.split()
            tokens += parts
            tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(parts) - 1)
        elif slot == "LAST":
            tokens.append(rng.choice(LAST[split]))
            tags.append("B-PER")
        elif slot in PLAIN:
            tokens.append(rng.choice(PLAIN[slot]))
            tags.append("O")
        elif "{" in word:  # a slot glued to letters: "{JOB}s"
            head, rest = word[1:].split("}")
            tokens.append(rng.choice(PLAIN[head]) + rest)
            tags.append("O")
        else:
            tokens.append(word)
            tags.append("O")
    tokens[0] = tokens[0][0].upper() + tokens[0][1:]
    return {"tokens": tokens, "tags": tags}


def build_sentences(n: int = 1500, seed: int = 0, split: str = "train", exclude=()) -> list[dict]:
    """`n` distinct tagged sentences {"tokens", "tags"} of this split's names and sentence shapes.

    split: "train" or "test" (other names, places and organisations, and some sentence shapes of its own).
    exclude: sentences (rows or token lists) to skip, e.g. the test split's sentences with no entity.
    """
    check_args(n, seed, split)
    rng = random.Random(2 * seed + SPLITS.index(split))
    only = ONLY[split]
    own_share = TEST_ONLY_SHARE if split == "test" else len(only) / (len(only) + len(SHARED))
    rows, seen, tries = [], {" ".join(r["tokens"] if isinstance(r, dict) else r) for r in exclude}, 0
    while len(rows) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise DataError(f"Could not make {n} distinct sentences for split '{split}'.")
        template = rng.choice(only if rng.random() < own_share else SHARED)
        row = make_sentence(rng, template, split)
        key = " ".join(row["tokens"])
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def entities(tokens: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """(type, text) of each entity in a tagged sentence, in order (a B- starts one, I- of the same type continue it)."""
    found, prev = [], "O"
    for token, tag in zip(tokens, tags):
        if tag.startswith("I-") and prev[2:] == tag[2:]:
            found[-1] = (found[-1][0], f"{found[-1][1]} {token}")
        elif tag != "O":
            found.append((tag[2:], token))
        prev = tag
    return found


# ---------------------------------------------------------------------- baselines for the chapter
def dictionary_baseline(train: list[dict], sentences: list[list[str]]) -> list[list[str]]:
    """Tags every name seen in training wherever it occurs (longest first): tutorials/06_applications.ipynb."""
    known: dict[tuple, Counter] = {}
    for row in train:
        for kind, text in entities(row["tokens"], row["tags"]):
            known.setdefault(tuple(text.split()), Counter())[kind] += 1
    longest = max((len(k) for k in known), default=0)
    out = []
    for tokens in sentences:
        tags, i = ["O"] * len(tokens), 0
        while i < len(tokens):
            for size in range(min(longest, len(tokens) - i), 0, -1):
                kinds = known.get(tuple(tokens[i:i + size]))
                if kinds:
                    kind = kinds.most_common(1)[0][0]
                    tags[i:i + size] = [f"B-{kind}"] + [f"I-{kind}"] * (size - 1)
                    i += size
                    break
            else:
                i += 1
        out.append(tags)
    return out


def capitals_baseline(train: list[dict], sentences: list[list[str]]) -> list[list[str]]:
    """Each run of capitalised words after the first word is one entity of training's commonest type: tutorials/06_applications.ipynb."""
    counts = Counter(kind for row in train for kind, _ in entities(row["tokens"], row["tags"]))
    kind = counts.most_common(1)[0][0] if counts else "PER"
    out = []
    for tokens in sentences:
        tags = ["O"] * len(tokens)
        for i in range(1, len(tokens)):
            if tokens[i][:1].isupper():
                tags[i] = f"I-{kind}" if tags[i - 1] != "O" else f"B-{kind}"
        out.append(tags)
    return out


# ---------------------------------------------------------------------- the bundled files
TRAIN_SIZE, TEST_SIZE = 1500, 400


def bundled_splits() -> tuple[list[dict], list[dict]]:
    """(train, test) rows exactly as shipped in llmnb/datasets/data/entities_*.jsonl."""
    test = build_sentences(TEST_SIZE, 0, "test")
    return build_sentences(TRAIN_SIZE, 0, "train", exclude=test), test


def write_bundled(folder=None) -> list[Path]:
    """Write entities_train.jsonl and entities_test.jsonl (the bundled files) into `folder`."""
    folder = Path(folder) if folder else Path(__file__).parent / "data"
    paths = [folder / "entities_train.jsonl", folder / "entities_test.jsonl"]
    for rows, path in zip(bundled_splits(), paths):
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return paths
